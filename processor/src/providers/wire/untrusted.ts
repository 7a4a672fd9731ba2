/**
 * What a provider sent, read by its documented field names: every field optional and of unknown type until a guard
 * (asString, count, isObject...) checks it. Reading a field the wire type does not name does not compile. An optional
 * field's type can be given as is (`Untrusted<Response['usage']>`).
 */
export type Untrusted<T> = { readonly [K in keyof NonNullable<T>]?: unknown };
