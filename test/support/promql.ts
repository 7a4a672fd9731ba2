import { parser } from '@prometheus-io/lezer-promql';

export interface ParsedPromql {
  /** Syntax errors, as `at <offset>: <text>`; empty when the expression parses. */
  readonly errors: string[];
  /** The metric names of its vector selectors. */
  readonly metrics: string[];
  /** Label names in its matchers and groupings. */
  readonly labels: string[];
}

/**
 * Parses a PromQL expression with Prometheus' own grammar (@prometheus-io/lezer-promql). Grafana's range variables
 * (`$__rate_interval`, `$__interval`) become `5m` first, as Grafana substitutes them before querying.
 */
export function parsePromql(expr: string): ParsedPromql {
  const text = expr.replace(/\$__(rate_)?interval/g, '5m');
  const tree = parser.parse(text);
  const errors: string[] = [];
  const metrics = new Set<string>();
  const labels = new Set<string>();
  tree.iterate({
    enter(node) {
      const value = text.slice(node.from, node.to);
      if (node.type.isError) errors.push(`at ${node.from}: ${JSON.stringify(value)}`);
      else if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector') metrics.add(value);
      else if (node.name === 'LabelName') labels.add(value);
    },
  });
  return { errors, metrics: [...metrics], labels: [...labels] };
}
