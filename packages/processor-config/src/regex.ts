/**
 * Model-name regular expressions: RE2 syntax and semantics, matched in linear time by re2js (the maintained
 * JavaScript port of RE2/J). A pattern matches the WHOLE model name. Patterns RE2 cannot run (backreferences,
 * lookaround, repeat counts over 1000, ...) do not compile: the constructs refuse them at synth and the processor
 * at config load.
 *
 * Like schema.ts, this module must stay free of Node-only or processor-only imports (the constructs compile it).
 */
import type { RE2JS } from 're2js';

type Re2Module = typeof import('re2js');
let re2js: Re2Module | undefined;

/**
 * re2js (150 KB) is loaded only when a config has a regular expression (the processor's bundle keeps it in its own
 * chunk).
 */
function compile(pattern: string): RE2JS {
  // Loaded on first use; the cast is needed under @types/node, whose require() returns any.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  re2js ??= require('re2js') as Re2Module;
  return re2js.RE2JS.compile(pattern);
}

/** A compiled model-name pattern: `test` is a whole-value match. */
export interface ModelRegex {
  test(model: string): boolean;
}

/** Compiles an RE2 pattern for whole-value matching; throws an Error with RE2's reason when it cannot. */
export function compileModelRegex(pattern: string): ModelRegex {
  let compiled: RE2JS;
  try {
    compiled = compile(pattern);
  } catch (error) {
    throw new Error(re2Reason(error), { cause: error });
  }
  return { test: (model) => compiled.testExact(model) };
}

/** Why RE2 cannot compile `pattern`, or undefined when it can. */
export function re2Problem(pattern: string): string | undefined {
  try {
    compile(pattern);
    return undefined;
  } catch (error) {
    return re2Reason(error);
  }
}

function re2Reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^error parsing regexp: /, '');
}
