/**
 * The value of `flag` in a processor's args as the processor's own parser (`processor/src/cli.ts`) reads them: each
 * argument is a flag, given as `--flag=value` or as `--flag value` (then the next argument is its value, whatever
 * it looks like), and a repeated flag's last value wins. Undefined when the flag is absent or has no value after it.
 */
export function argValue(args: readonly string[], flag: string): string | undefined {
  let value: string | undefined;
  for (const given of processorFlags(args)) if (given.name === flag) value = given.value;
  return value;
}

/** One flag as given: its name, its value, and the arguments it took (`--flag=value`, or `--flag` and the next one). */
export interface ProcessorFlag {
  readonly name: string;
  readonly value: string | undefined;
  readonly args: readonly string[];
}

/** The processor's args split into flags the way `processor/src/cli.ts` reads them. */
export function processorFlags(args: readonly string[]): ProcessorFlag[] {
  const flags: ProcessorFlag[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const eq = arg.indexOf('=');
    if (eq !== -1) flags.push({ name: arg.slice(0, eq), value: arg.slice(eq + 1), args: [arg] });
    else {
      const value = args[i + 1];
      flags.push({ name: arg, value, args: value === undefined ? [arg] : [arg, value] });
      i++;
    }
  }
  return flags;
}
