/**
 * Envoy's request path normalisation as Envoy Gateway configures the HTTP connection manager by default:
 * `normalize_path: true` (RFC 3986 dot-segment removal; `%2E` counts as a dot), `merge_slashes: true`, and
 * `path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT` (a path with `%2F` or `%5C` is answered with a
 * redirect to the unescaped path). It runs before the first route match, so routes and filters only ever see
 * the normalised path. The query string is left as it is.
 */

export type NormalizedPath =
  { readonly kind: 'path'; readonly path: string } | { readonly kind: 'redirect'; readonly location: string };

function removeDotSegments(path: string): string {
  const output: string[] = [];
  const segments = path.split('/');
  // segments[0] is the empty string before the leading `/`.
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i].replace(/%2e/gi, '.');
    const last = i === segments.length - 1;
    if (segment === '.') {
      if (last) output.push('');
    } else if (segment === '..') {
      output.pop();
      if (last) output.push('');
    } else output.push(segments[i]);
  }
  return `/${output.join('/')}`;
}

export function normalizeRequestPath(fullPath: string): NormalizedPath {
  const queryAt = fullPath.search(/[?#]/);
  const rawPath = queryAt < 0 ? fullPath : fullPath.slice(0, queryAt);
  const rest = queryAt < 0 ? '' : fullPath.slice(queryAt);
  if (!rawPath.startsWith('/')) return { kind: 'path', path: fullPath };
  const normalize = (path: string) => removeDotSegments(path).replace(/\/{2,}/g, '/');
  if (/%2f|%5c/i.test(rawPath)) {
    const unescaped = rawPath.replace(/%2f/gi, '/').replace(/%5c/gi, '\\');
    return { kind: 'redirect', location: normalize(unescaped) + rest };
  }
  return { kind: 'path', path: normalize(rawPath) + rest };
}
