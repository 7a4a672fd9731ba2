/**
 * An ordinary (non-AI) HTTPRoute on the example's Gateway keeps serving unchanged: the processor is enabled only
 * on the AIRoutes' HTTPRoutes, so the website's requests never reach it (the example's AI routes answer 400
 * without the tenant header; the website does not ask for it), carry none of the gateway's internal headers and
 * are charged to no budget. The AI routes on the same Gateway keep working next to it.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AccessLogEntry } from '../../lib/dataplane/filter-manager';
import type { KubeObject, RouteModel } from '../../lib/dataplane/model';
import { HELLO, openAIClient, rawChat } from './support/clients';
import { answerText } from './support/fake-providers';
import { clusterMode, startScenario, type RunningScenario } from './support/harness';
import { exampleScenario } from './support/scenarios';

jest.setTimeout(60_000);

const WEBSITE: KubeObject[] = [
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'website', namespace: 'team-chat' },
    spec: { selector: { app: 'website' }, ports: [{ port: 8080 }] },
  },
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'website', namespace: 'team-chat' },
    spec: {
      parentRefs: [{ name: 'ai-gateway', namespace: 'ai-platform' }],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: 'website', port: 8080 }] },
      ],
    },
  },
];

(clusterMode() ? describe.skip : describe)('an ordinary HTTPRoute beside the AIRoutes', () => {
  let run: RunningScenario;
  let website: http.Server;
  const received: http.IncomingHttpHeaders[] = [];
  const log: AccessLogEntry<RouteModel>[] = [];

  beforeAll(async () => {
    website = http.createServer((req, res) => {
      received.push(req.headers);
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`website ${req.method} ${req.url}`));
    });
    await new Promise<void>((resolve) => website.listen(0, '127.0.0.1', resolve));
    const scenario = exampleScenario();
    run = await startScenario(scenario, {
      objects: [...scenario.objects, ...WEBSITE],
      backendUrls: { 'team-chat/website': `http://127.0.0.1:${(website.address() as AddressInfo).port}` },
      dataPlane: { accessLog: (entry) => log.push(entry) },
    });
  });
  afterAll(async () => {
    await run?.close();
    await new Promise((resolve) => website?.close(resolve));
  });

  it('serves the website without the processor: no tenant header needed, no internal headers, no tokens', async () => {
    log.length = 0;
    for (const path of ['/', '/docs/getting-started', '/model/looks-like-bedrock', '/openai/deployments/x']) {
      const response = await fetch(`${run.gatewayUrl}${path}`, {
        headers: { 'x-ai-gateway-backend': 'spoofed', 'x-ai-gateway-route': 'spoofed' },
      });
      expect({ path, status: response.status, body: await response.text() }).toEqual({
        path,
        status: 200,
        body: `website GET ${path}`,
      });
    }
    for (const headers of received) expect(Object.keys(headers).filter((name) => name.startsWith('x-ai-'))).toEqual([]);
    expect(log.map((entry) => entry.route?.route)).toEqual(Array(4).fill({ namespace: 'team-chat', name: 'website' }));
    expect(log.every((entry) => entry.dynamicMetadata.size === 0)).toBe(true);
  });

  it('keeps the AI routes working on the same Gateway, and their 404 for paths under the API prefix', async () => {
    const completion = await openAIClient(`${run.gatewayUrl}/v1`, { 'x-tenant-id': 'acme' }).chat.completions.create({
      model: 'nova-pro',
      messages: HELLO,
    });
    expect(completion.choices[0].message.content).toBe(answerText('bedrock', 'us.amazon.nova-pro-v1:0'));
    // Under /v1 the AIRoute's catch-all out-ranks the website's `/`: the processor answers.
    const missingTenant = await rawChat(`${run.gatewayUrl}/v1/chat/completions`, {
      model: 'nova-pro',
      messages: HELLO,
    });
    expect(missingTenant.status).toBe(400);
  });
});
