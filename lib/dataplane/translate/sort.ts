/**
 * Envoy Gateway's route precedence (`XdsIRRoutes.Less` in internal/gatewayapi/sort.go, v1.9.0), applied to all
 * routes of a listener with a stable descending sort: ties keep their input order.
 */
import type { HeaderMatch, PathMatch, QueryMatch } from '../model';

export interface SortableRoute {
  readonly path?: PathMatch;
  readonly headers: readonly HeaderMatch[];
  readonly queryParams: readonly QueryMatch[];
}

const PATH_TYPE_RANK: Record<PathMatch['type'], number> = { Exact: 3, RegularExpression: 2, PathPrefix: 1 };

/** The character count EG compares; prefix `/` counts 0 because it matches everything. */
function pathLength(path: PathMatch | undefined): number {
  if (!path) return 0;
  if (path.type === 'PathPrefix' && path.value === '/') return 0;
  return path.value.length;
}

function exactCount(matches: readonly { type: string }[]): number {
  return matches.filter((m) => m.type === 'Exact').length;
}

/** Positive when `a` is more specific than `b` (sorts first), negative when less, 0 on a tie. */
export function comparePrecedence(a: SortableRoute, b: SortableRoute): number {
  // A route without a path match has no type rank: EG only compares types when both have one.
  if (a.path && b.path) {
    const byType = PATH_TYPE_RANK[a.path.type] - PATH_TYPE_RANK[b.path.type];
    if (byType !== 0) return byType;
  }
  return (
    pathLength(a.path) - pathLength(b.path) ||
    a.headers.length - b.headers.length ||
    exactCount(a.headers) - exactCount(b.headers) ||
    a.queryParams.length - b.queryParams.length ||
    exactCount(a.queryParams) - exactCount(b.queryParams)
  );
}

/** Most specific first; equal routes keep their input order (Array.prototype.sort is stable). */
export function sortRoutes<T extends SortableRoute>(routes: readonly T[]): T[] {
  return [...routes].sort((a, b) => comparePrecedence(b, a));
}
