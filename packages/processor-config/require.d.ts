/**
 * The one CommonJS global the contract uses: regex.ts loads re2js lazily (the processor's bundle keeps it in a chunk of
 * its own). Declared here instead of through @types/node so that any other Node.js global or module fails the build.
 */
declare function require(id: 're2js'): typeof import('re2js');
