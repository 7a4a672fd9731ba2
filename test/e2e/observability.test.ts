/**
 * Issue 15: the dashboard and the alerts query what the processor really exports. The governance scenario's real
 * processor serves a little load (consumers, streamed and plain requests, a refused model, a budget running out),
 * then its `/metrics` is scraped and every PromQL expression of the synthesized Grafana dashboard and PrometheusRule
 * must parse (Prometheus' own grammar) and name only series that exist: processor metrics in the scrape (with
 * samples, except those that only count rare events), recording rules defined by the rule, and Envoy's,
 * kube-state-metrics' and Prometheus' series in their documented lists (no Envoy runs here).
 */
import { randomBytes } from 'node:crypto';
import { Chart, Testing } from 'cdk8s';
import { AIGateway } from '../../lib';
import { METRICS, type MetricDefinition } from '../../lib/observability-queries';
import { parsePromql } from '../support/promql';
import { redisUrlForTests } from '../support/redis';
import { findAll, synthAll } from '../support/synth';
import { HELLO, rawChat } from './support/clients';
import { clusterMode, startScenario, type RunningScenario } from './support/harness';
import { CONSUMER_KEYS, governanceScenario } from './support/scenarios';

jest.setTimeout(90_000);

/**
 * Envoy statistics the queries may use, in their Prometheus form. Cluster statistics
 * (https://www.envoyproxy.io/docs/envoy/latest/configuration/upstream/cluster_manager/cluster_stats):
 * `upstream_rq_total`, `upstream_rq_<class>xx` (the class becomes `envoy_response_code_class`), and the circuit
 * breaker gauges `circuit_breakers.<priority>.rq_open` and `rq_pending_open`. The HTTP rate-limit filter's
 * statistics (https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/rate_limit_filter#statistics)
 * live under `cluster.<route target cluster>.ratelimit.`: `ok`, `error`, `over_limit`, `failure_mode_allowed`.
 */
const ENVOY_DOCUMENTED = new Set([
  'envoy_cluster_upstream_rq_total',
  'envoy_cluster_upstream_rq_xx',
  'envoy_cluster_circuit_breakers_default_rq_open',
  'envoy_cluster_circuit_breakers_default_rq_pending_open',
  'envoy_cluster_ratelimit_ok',
  'envoy_cluster_ratelimit_error',
  'envoy_cluster_ratelimit_over_limit',
  'envoy_cluster_ratelimit_failure_mode_allowed',
]);
/** kube-state-metrics' Deployment metrics (docs/metrics/workload/deployment-metrics.md) and Prometheus' `up`. */
const CLUSTER_DOCUMENTED = new Set(['kube_deployment_status_replicas_unavailable', 'up']);
/** Labels Prometheus adds to every scraped series (target labels, the PodMonitor's `ai_gateway`), and `le`. */
const ADDED_LABELS = new Set(['ai_gateway', 'pod', 'namespace', 'job', 'instance', 'le']);

const KEY_A = CONSUMER_KEYS['team-a']['team-a-openai'];
const KEY_B = CONSUMER_KEYS['team-b']['team-b-openai'];

/** The scraped samples: series name -> label names seen on it; and the declared families (`# TYPE`). */
interface Scrape {
  readonly samples: Map<string, Set<string>>;
  readonly families: Set<string>;
}

function parseExposition(text: string): Scrape {
  const samples = new Map<string, Set<string>>();
  const families = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) /.exec(line);
    if (type) families.add(type[1]);
    if (line === '' || line.startsWith('#')) continue;
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0];
    const labels = samples.get(name) ?? new Set<string>();
    for (const match of line.slice(name.length).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g))
      labels.add(match[1]);
    samples.set(name, labels);
  }
  return { samples, families };
}

async function scrape(run: RunningScenario): Promise<Scrape> {
  const texts = await Promise.all(
    run.processors!.processors.map(async (p) => (await fetch(`http://${p.adminAddress}/metrics`)).text()),
  );
  return parseExposition(texts.join('\n'));
}

function chat(run: RunningScenario, key: string, model: string, stream: boolean) {
  return rawChat(
    `${run.gatewayUrl}/v1/chat/completions`,
    {
      model,
      messages: HELLO,
      max_tokens: 16,
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    },
    { authorization: `Bearer ${key}` },
  );
}

/** The expressions of a gateway with every observability object on, by where they come from. */
function synthesizedExpressions(): { where: string; expr: string }[] {
  const app = Testing.app();
  const chart = new Chart(app, 'obs', { namespace: 'obs' });
  new AIGateway(chart, 'Gateway', {
    name: 'gw',
    processor: { metricsNamespace: 'monitoring' },
    observability: { prometheus: true, grafanaDashboard: true },
  });
  const manifests = synthAll(app) as any[];
  const found: { where: string; expr: string }[] = [];
  for (const rule of findAll(manifests, 'PrometheusRule') as any[])
    for (const group of rule.spec.groups)
      for (const r of group.rules) found.push({ where: `rule ${r.record ?? r.alert}`, expr: r.expr });
  for (const configMap of findAll(manifests, 'ConfigMap') as any[]) {
    if (configMap.metadata.labels?.grafana_dashboard !== '1') continue;
    for (const json of Object.values<string>(configMap.data))
      for (const panel of JSON.parse(json).panels)
        for (const target of panel.targets ?? []) found.push({ where: `panel ${panel.title}`, expr: target.expr });
  }
  return found;
}

/** The processor metric a series name belongs to (histograms: `_bucket`, `_sum`, `_count`). */
function processorMetricOf(name: string): MetricDefinition | undefined {
  return Object.values(METRICS).find(
    (m: MetricDefinition) =>
      m.source === 'processor' &&
      (m.type === 'histogram' ? ['_bucket', '_sum', '_count'].some((s) => name === `${m.name}${s}`) : name === m.name),
  );
}

const describeLocal = clusterMode() ? describe.skip : describe;

describeLocal('dashboard and alert expressions against the real processor', () => {
  let run: RunningScenario;
  let scraped: Scrape;

  beforeAll(async () => {
    const namespace = `obs-${randomBytes(4).toString('hex')}`;
    run = await startScenario(governanceScenario(namespace), { redisUrl: redisUrlForTests() });
    const answers: number[] = [];
    // Plain and streamed requests of team-a, concurrently (time to first token, tokens, spend).
    for (let round = 0; round < 4; round++) {
      const batch = await Promise.all(
        Array.from({ length: 6 }, (_, i) => chat(run, KEY_A, 'gpt-4o-mini', i % 2 === 0)),
      );
      answers.push(...batch.map((a) => a.status));
    }
    // A model team-a may not use: the processor answers 403 itself.
    answers.push((await chat(run, KEY_A, 'gpt-4o', false)).status);
    // team-b's $0.01 budget runs out after 3 requests of $0.0044: the rest are budget rejections.
    for (let i = 0; i < 6; i++) answers.push((await chat(run, KEY_B, 'gpt-4o-mini', false)).status);
    expect(answers.filter((s) => s === 200).length).toBe(24 + 3);
    expect(answers).toContain(403);
    expect(answers).toContain(429);
    scraped = await scrape(run);
  });

  afterAll(async () => {
    await run?.close();
  });

  it('every expression parses and every series it names exists', () => {
    const expressions = synthesizedExpressions();
    const recorded = new Set(
      expressions.filter((e) => e.where.startsWith('rule ai_gateway:')).map((e) => e.where.slice('rule '.length)),
    );
    const processorNames = new Set<string>();
    for (const { where, expr } of expressions) {
      const parsed = parsePromql(expr);
      expect({ where, expr, errors: parsed.errors }).toEqual({ where, expr, errors: [] });
      // An expression over processor series only names labels those series carry (or Prometheus adds).
      const ownSeries = parsed.metrics.filter((name) => processorMetricOf(name) && scraped.samples.has(name));
      if (ownSeries.length === parsed.metrics.length) {
        const carried = new Set(ownSeries.flatMap((name) => [...scraped.samples.get(name)!]));
        const unknown = parsed.labels.filter((label) => !carried.has(label) && !ADDED_LABELS.has(label));
        expect({ where, unknown }).toEqual({ where, unknown: [] });
      }
      for (const name of parsed.metrics) {
        const processor = processorMetricOf(name);
        if (processor) {
          processorNames.add(name);
          expect({ where, name, declared: scraped.families.has(processor.name) }).toEqual({
            where,
            name,
            declared: true,
          });
          if (!processor.onEvent)
            expect({ where, name, sampled: scraped.samples.has(name) }).toEqual({ where, name, sampled: true });
        } else {
          const documented = recorded.has(name) || ENVOY_DOCUMENTED.has(name) || CLUSTER_DOCUMENTED.has(name);
          expect({ where, name, documented }).toEqual({ where, name, documented: true });
        }
      }
    }
    // The dashboard and the rules use every processor metric of the table.
    const used = [...processorNames].map((n) => processorMetricOf(n)!.name);
    const table = Object.values(METRICS)
      .filter((m: MetricDefinition) => m.source === 'processor')
      .map((m) => m.name);
    expect(new Set(used)).toEqual(new Set(table));
  });

  it("shows each consumer's budget use as the rate-limit service reported it", async () => {
    const texts = await Promise.all(
      run.processors!.processors.map(async (p) => (await fetch(`http://${p.adminAddress}/metrics`)).text()),
    );
    const used = new Map<string, number>();
    for (const line of texts.join('\n').split('\n')) {
      const match = /^ai_gateway_budget_used_ratio\{.*consumer="([^"]+)".*\} (\S+)$/.exec(line);
      if (match) used.set(match[1], Math.max(used.get(match[1]) ?? 0, Number(match[2])));
    }
    // team-b's budget refused requests; team-a used a few cents of its $500 (checked before each request).
    expect(used.get('team-b')).toBe(1);
    expect(used.get('team-a')).toBeGreaterThan(0);
    expect(used.get('team-a')).toBeLessThan(0.001);
  });

  it("the table's processor labels are those the scraped series carry", () => {
    for (const metric of Object.values(METRICS) as MetricDefinition[]) {
      if (metric.source !== 'processor' || metric.onEvent) continue;
      const series = metric.type === 'histogram' ? `${metric.name}_count` : metric.name;
      const seen = [...(scraped.samples.get(series) ?? [])].filter((l) => !ADDED_LABELS.has(l));
      expect({ metric: metric.name, labels: seen.sort() }).toEqual({
        metric: metric.name,
        labels: [...metric.labels].sort(),
      });
    }
  });
});
