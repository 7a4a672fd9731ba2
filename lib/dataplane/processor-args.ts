/**
 * The value of `flag` in a processor's args as the processor's own parser (`processor/src/cli.ts`) reads them: each
 * argument is a flag, given as `--flag=value` or as `--flag value` (then the next argument is its value, whatever
 * it looks like), and a repeated flag's last value wins. Undefined when the flag is absent or has no value after it.
 */
export function argValue(args: readonly string[], flag: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const given = eq === -1 ? args[++i] : arg.slice(eq + 1);
    if (name === flag) value = given;
  }
  return value;
}
