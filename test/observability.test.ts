import * as fs from 'node:fs';
import * as path from 'node:path';
import { Chart, Duration, Testing } from 'cdk8s';
import { AIGateway, GatewayClass, ProxyDeployMode, type AIGatewayProps } from '../lib';
import {
  METRICS,
  PANELS,
  RECORDS,
  alertingRules,
  panelQueries,
  recordingRules,
  type PanelDefinition,
} from '../lib/observability-queries';
import { manifestProblems, type Manifest } from './support/manifests';
import { parsePromql } from './support/promql';
import { describeWithShared } from './support/shared';
import { findAll, findOne, synthAll } from './support/synth';

function gateway(props: AIGatewayProps = {}) {
  const app = Testing.app();
  const chart = new Chart(app, 'platform', { namespace: 'platform' });
  new AIGateway(chart, 'Gateway', {
    name: 'gw',
    processor: { metricsNamespace: 'monitoring' },
    observability: { prometheus: true, grafanaDashboard: true, monitorLabels: { release: 'kps' } },
    ...props,
  });
  return { app, manifests: () => synthAll(app) };
}

/** Every PromQL expression of the synthesized dashboards and PrometheusRules. */
function expressionsOf(manifests: readonly Manifest[]): { where: string; expr: string }[] {
  const found: { where: string; expr: string }[] = [];
  for (const rule of findAll(manifests, 'PrometheusRule') as any[]) {
    for (const group of rule.spec.groups)
      for (const r of group.rules) found.push({ where: `rule ${r.record ?? r.alert}`, expr: r.expr });
  }
  for (const configMap of findAll(manifests, 'ConfigMap') as any[]) {
    if (configMap.metadata.labels?.grafana_dashboard !== '1') continue;
    for (const json of Object.values<string>(configMap.data)) {
      const dashboard = JSON.parse(json);
      for (const panel of dashboard.panels)
        for (const target of panel.targets ?? []) found.push({ where: `panel ${panel.title}`, expr: target.expr });
    }
  }
  return found;
}

/** Whether a markdown table of `docs` has a cell holding exactly `text` (prettier pads cells). */
function tableCell(docs: string, text: string): boolean {
  return docs.split('\n').some((line) => line.split('|').some((cell) => cell.trim() === text));
}

const KNOWN_NAMES = new Set<string>([
  ...Object.values(METRICS).flatMap((m) =>
    m.type === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name],
  ),
  ...Object.values(RECORDS),
]);

describe('AIGateway observability', () => {
  it('emits PodMonitors for the processor and the proxies, a PrometheusRule and a dashboard ConfigMap', () => {
    const all = gateway().manifests();
    const processor = findOne(all, 'PodMonitor', 'gw-processor');
    expect(processor.metadata).toMatchObject({ namespace: 'platform', labels: { release: 'kps' } });
    const deployment = findOne(all, 'Deployment', 'gw-processor') as any;
    expect(processor.spec).toEqual({
      selector: {
        matchLabels: { 'app.kubernetes.io/name': 'ai-gateway-processor', 'app.kubernetes.io/instance': 'gw-processor' },
      },
      namespaceSelector: { matchNames: ['platform'] },
      podMetricsEndpoints: [
        {
          port: 'admin',
          path: '/metrics',
          interval: '30s',
          relabelings: [{ action: 'replace', targetLabel: 'ai_gateway', replacement: 'platform/gw' }],
        },
      ],
    });
    // The processor's pods carry the labels the PodMonitor selects, and the port it names.
    expect(deployment.spec.template.metadata.labels).toMatchObject(processor.spec.selector.matchLabels);
    const ports = deployment.spec.template.spec.containers[0].ports.map((p: any) => p.name);
    expect(ports).toContain('admin');

    const envoy = findOne(all, 'PodMonitor', 'gw-envoy');
    expect(envoy.spec).toEqual({
      selector: {
        matchLabels: {
          'gateway.envoyproxy.io/owning-gateway-name': 'gw',
          'gateway.envoyproxy.io/owning-gateway-namespace': 'platform',
        },
      },
      namespaceSelector: { matchNames: ['envoy-gateway-system'] },
      podMetricsEndpoints: [
        {
          port: 'metrics',
          path: '/stats/prometheus',
          interval: '30s',
          relabelings: [{ action: 'replace', targetLabel: 'ai_gateway', replacement: 'platform/gw' }],
        },
      ],
    });

    const rule = findOne(all, 'PrometheusRule');
    const alerts = rule.spec.groups[1].rules.map((r: any) => r.alert);
    expect(alerts).toEqual([
      'AIGatewayBackendErrorRatioHigh',
      'AIGatewayCircuitBreakerOpen',
      'AIGatewayBackendCircuitOpen',
      'AIGatewayBudgetNearlyExhausted',
      'AIGatewayBudgetExhausted',
      'AIGatewayProcessorNotReady',
      'AIGatewayProcessorDown',
      'AIGatewayRateLimitServiceErrors',
      'AIGatewayConfigRejected',
    ]);
    expect(rule.spec.groups[0].rules.map((r: any) => r.record)).toEqual(Object.values(RECORDS));
    // Alerts name the processor's Deployment and its PodMonitor's job as synthesized.
    const exprs = rule.spec.groups[1].rules.map((r: any) => r.expr).join('\n');
    expect(exprs).toContain('deployment="gw-processor"');
    expect(exprs).toContain('job="platform/gw-processor"');

    const dashboards = findAll(all, 'ConfigMap').filter((c: any) => c.metadata.labels?.grafana_dashboard === '1');
    expect(dashboards.map((d) => `${d.metadata.namespace}/${d.metadata.name}`)).toEqual(['platform/gw-dashboard']);
    const dashboard = JSON.parse((dashboards[0] as any).data['gw-dashboard.json']);
    expect(dashboard.templating.list.map((v: any) => v.name)).toEqual(['datasource', 'gateway', 'route', 'consumer']);
    expect(dashboard.templating.list[1].current).toEqual({ text: 'platform/gw', value: 'platform/gw' });
    const titles = dashboard.panels.filter((p: any) => p.type === 'timeseries').map((p: any) => p.title);
    expect(titles).toEqual(PANELS.map((p) => p.title));
    // Panels do not overlap.
    const cells = new Set<string>();
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      for (let i = x; i < x + w; i++)
        for (let j = y; j < y + h; j++) {
          expect(cells.has(`${i},${j}`)).toBe(false);
          cells.add(`${i},${j}`);
        }
    }
  });

  it('parses every expression with the PromQL grammar and names only known metrics', () => {
    const expressions = expressionsOf(gateway().manifests());
    expect(expressions.length).toBeGreaterThan(30);
    for (const { where, expr } of expressions) {
      const parsed = parsePromql(expr);
      expect({ where, errors: parsed.errors }).toEqual({ where, errors: [] });
      expect(parsed.metrics.length).toBeGreaterThan(0);
      for (const name of parsed.metrics)
        expect({ where, name, known: KNOWN_NAMES.has(name) }).toMatchObject({ known: true });
    }
  });

  it('the parser catches broken PromQL (the check above can fail)', () => {
    expect(parsePromql('sum(rate(foo[5m]').errors).not.toEqual([]);
    expect(parsePromql('sum by (a (rate(foo[5m]))').errors).not.toEqual([]);
    expect(parsePromql('rate(foo[$__rate_interval])').errors).toEqual([]);
  });

  it('groups panels only by labels their metric has', () => {
    const bad: PanelDefinition = { ...PANELS[0], by: ['route'] };
    expect(() => panelQueries(bad)).toThrow(/has no label route/);
    const context = {
      gateway: 'ns/gw',
      namespace: 'ns',
      processorDeployment: 'gw-processor',
      processorJob: 'ns/gw-processor',
      errorRatio: 0.1,
      budgetWarningRatio: 0.75,
    };
    // Rules select this gateway's series only.
    for (const rule of [...recordingRules(context), ...alertingRules(context)]) {
      if ('alert' in rule && /ProcessorNotReady|ProcessorDown/.test(rule.alert)) continue;
      expect(rule.expr).toContain('ai_gateway="ns/gw"');
    }
    expect(alertingRules(context)[0].expr).toContain('> 0.1');
    const nearlyExhausted = alertingRules(context).find((rule) => rule.alert === 'AIGatewayBudgetNearlyExhausted');
    expect(nearlyExhausted?.expr).toBe(
      'max by (ai_gateway, budget, consumer) (ai_gateway_budget_used_ratio{ai_gateway="ns/gw"}) > 0.75',
    );
  });

  it('scrapes the proxies where Envoy Gateway runs them', () => {
    const inGatewayNamespace = gateway({
      processor: { metricsNamespace: 'monitoring', proxyDeployMode: ProxyDeployMode.gatewayNamespace() },
    }).manifests();
    expect(findOne(inGatewayNamespace, 'PodMonitor', 'gw-envoy').spec.namespaceSelector).toEqual({
      matchNames: ['platform'],
    });
    const merged = gateway({
      gatewayClass: GatewayClass.fromName('eg'),
      processor: { metricsNamespace: 'monitoring', proxyDeployMode: ProxyDeployMode.mergedGateways() },
    }).manifests();
    expect(findAll(merged, 'PodMonitor').map((m) => m.metadata.name)).toEqual(['gw-processor']);
  });

  it('emits nothing without observability, and only the monitoring objects without the dashboard', () => {
    const none = gateway({ observability: undefined }).manifests();
    expect(findAll(none, 'PodMonitor')).toEqual([]);
    expect(findAll(none, 'PrometheusRule')).toEqual([]);
    const noDashboard = gateway({
      observability: { prometheus: true, scrapeInterval: Duration.seconds(15) },
    }).manifests();
    expect(findAll(noDashboard, 'PodMonitor').map((m: any) => m.spec.podMetricsEndpoints[0].interval)).toEqual([
      '15s',
      '15s',
    ]);
    expect(findAll(noDashboard, 'PrometheusRule').map((r: any) => r.metadata.labels)).toEqual([undefined]);
    expect(findAll(noDashboard, 'ConfigMap').filter((c: any) => c.metadata.labels?.grafana_dashboard)).toEqual([]);
  });

  it('puts the dashboard where the Grafana sidecar looks', () => {
    const all = gateway({
      observability: { prometheus: true, grafanaDashboard: true, dashboardNamespace: 'grafana' },
    }).manifests();
    expect(findOne(all, 'ConfigMap', 'gw-dashboard').metadata.namespace).toBe('grafana');
  });

  it('docs/observability.md explains every panel and every alert', () => {
    const docs = fs.readFileSync(path.join(__dirname, '..', 'docs', 'observability.md'), 'utf8');
    for (const panel of PANELS)
      expect({ panel: panel.title, documented: tableCell(docs, panel.title) }).toEqual({
        panel: panel.title,
        documented: true,
      });
    const context = {
      gateway: 'a/b',
      namespace: 'a',
      processorDeployment: 'b',
      processorJob: 'a/b',
      errorRatio: 0.05,
      budgetWarningRatio: 0.8,
    };
    for (const alert of alertingRules(context))
      expect({ alert: alert.alert, documented: tableCell(docs, `\`${alert.alert}\``) }).toEqual({
        alert: alert.alert,
        documented: true,
      });
    for (const record of Object.values(RECORDS)) expect(docs).toContain(record);
  });

  it('passes a collector to the processor for tracing, with nothing else required', () => {
    const { manifests } = gateway({
      processor: {},
      observability: { otlpEndpoint: 'http://otel-collector.observability:4318', traceSamplingRatio: 0.1 },
    });
    const all = manifests();
    const args = (findOne(all, 'Deployment') as any).spec.template.spec.containers[0].args as string[];
    expect(args.slice(args.indexOf('--otlp-endpoint'))).toEqual([
      '--otlp-endpoint',
      'http://otel-collector.observability:4318',
      '--trace-sampling-ratio',
      '0.1',
    ]);
    // Tracing alone emits no monitoring objects.
    expect(all.filter((m) => m.apiVersion === 'monitoring.coreos.com/v1')).toEqual([]);
    const untraced = (findOne(gateway().manifests(), 'Deployment') as any).spec.template.spec.containers[0].args;
    expect(untraced).not.toContain('--otlp-endpoint');
  });

  it('refuses a collector URL that is not http(s), carries credentials, or a ratio without a collector', () => {
    expect(() => gateway({ observability: { otlpEndpoint: 'otel:4317' } })).toThrow(
      /invalid observability.otlpEndpoint "otel:4317": must be an http or https URL/,
    );
    const withCredentials = () =>
      gateway({ processor: {}, observability: { otlpEndpoint: 'https://user:s3cret@otel.example:4318' } });
    expect(withCredentials).toThrow(
      /invalid observability.otlpEndpoint "https:\/\/\*\*\*@otel.example:4318\/": must not/,
    );
    expect(withCredentials).not.toThrow(/s3cret/);
    const withToken = () =>
      gateway({ processor: {}, observability: { otlpEndpoint: 'https://otel.example:4318/v1/traces?token=s3cret' } });
    expect(withToken).toThrow(/must not carry credentials or a query/);
    expect(withToken).not.toThrow(/s3cret/);
    expect(() => gateway({ processor: {}, observability: { traceSamplingRatio: 0.5 } })).toThrow(
      /invalid observability.traceSamplingRatio 0.5: needs observability.otlpEndpoint/,
    );
    expect(() =>
      gateway({ processor: {}, observability: { otlpEndpoint: 'http://otel:4318', traceSamplingRatio: 2 } }),
    ).toThrow(/invalid observability.traceSamplingRatio 2: must be a number from 0 to 1/);
  });

  it('refuses settings that cannot work, naming the prop', () => {
    expect(() => gateway({ observability: { grafanaDashboard: true } })).toThrow(
      /Gateway\/Observability: invalid observability.grafanaDashboard true: .*set observability.prometheus/,
    );
    expect(() => gateway({ processor: {}, observability: { prometheus: true } })).toThrow(
      /invalid observability.prometheus true: .*processor.metricsNamespace/,
    );
    expect(() => gateway({ observability: { prometheus: true, backendErrorRatio: 1.5 } })).toThrow(
      /invalid observability.backendErrorRatio 1.5/,
    );
    expect(() => gateway({ observability: { prometheus: true, budgetWarningRatio: 0 } })).toThrow(
      /Gateway\/Observability: invalid observability.budgetWarningRatio 0: must be a number between 0 and 1/,
    );
    expect(() => gateway({ observability: { prometheus: true, monitorLabels: { 'bad key!': 'x' } } })).toThrow(
      /observability.monitorLabels/,
    );
  });
});

describeWithShared('crds/jsonschema', 'observability objects against the Prometheus Operator CRDs', (dir) => {
  it('validates, and the schemas reject a misspelled field and a bad strategy', () => {
    const all = gateway().manifests();
    const monitoring = all.filter((m) => m.apiVersion === 'monitoring.coreos.com/v1');
    expect(monitoring.map((m) => m.kind).sort()).toEqual(['PodMonitor', 'PodMonitor', 'PrometheusRule']);
    expect(manifestProblems(monitoring, dir)).toEqual([]);

    const monitor = JSON.parse(JSON.stringify(findOne(all, 'PodMonitor', 'gw-envoy')));
    monitor.spec.podMetricsEndpoints[0].intervall = '30s';
    expect(manifestProblems([monitor], dir).join('\n')).toMatch(/intervall/);
    const rule = JSON.parse(JSON.stringify(findOne(all, 'PrometheusRule')));
    rule.spec.groups[0].partial_response_strategy = 'nope';
    expect(manifestProblems([rule], dir).join('\n')).toMatch(/partial_response_strategy/);
    rule.spec.groups[0].partial_response_strategy = 'WARN';
    expect(manifestProblems([rule], dir)).toEqual([]);
  });
});
