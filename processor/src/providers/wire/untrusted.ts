/**
 * What a provider sent, read by its documented field names: every field optional and of unknown type until a guard
 * (asString, count, isObject...) checks it. Reading a field the wire type does not name does not compile.
 */
export type Untrusted<T> = { readonly [K in keyof T]?: unknown };
