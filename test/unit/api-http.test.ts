// /healthz and /livez (kube-proxy's contract), healthCheckNodePort listeners, and /metrics
// scraped over HTTP and parsed from the Prometheus text format.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { setLogger } from '../../src/log.js';
import { HealthCheckServers, startHealthServer } from '../../src/api/health.js';
import type { HttpEndpoint } from '../../src/api/http.js';
import { startMetricsServer, XlbMetrics } from '../../src/api/metrics.js';
import type { ServiceSpec } from '../../src/model/types.js';
import { FakeView, T0 } from '../helpers/fake-view.js';

setLogger(pino({ level: 'silent' }));

async function get(url: string): Promise<{ status: number; type: string | null; body: string }> {
  const r = await fetch(url);
  return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
}

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

describe('/healthz and /livez', () => {
  const TIMEOUT_MS = 300;
  let view: FakeView;
  let ep: HttpEndpoint;
  let base: string;

  before(async () => {
    view = new FakeView();
    ep = await startHealthServer(view, '127.0.0.1:0', { healthTimeoutMs: TIMEOUT_MS });
    base = `http://127.0.0.1:${ep.port}`;
  });
  after(() => ep?.close());

  test('binds the requested port 0 to a real one', () => {
    assert.ok(ep.port > 0);
  });

  test('healthy with nothing pending: 200, JSON with RFC3339 times, lastUpdated = now', async () => {
    view.healthInfo = { lastUpdated: T0, pendingSince: null, nodeEligible: true };
    const before = Date.now();
    const r = await get(`${base}/healthz`);
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    const b = JSON.parse(r.body);
    assert.deepEqual(Object.keys(b), ['lastUpdated', 'currentTime', 'nodeEligible']);
    assert.match(b.lastUpdated, RFC3339);
    assert.match(b.currentTime, RFC3339);
    assert.equal(b.nodeEligible, true);
    assert.ok(Date.parse(b.lastUpdated) >= before - 1, 'a healthy proxy reports lastUpdated as now (kube-proxy compatibility)');
  });

  test('a change pending past the timeout turns 503, and 200 again once applied', async () => {
    view.healthInfo = { lastUpdated: T0, pendingSince: Date.now(), nodeEligible: true };
    assert.equal((await get(`${base}/healthz`)).status, 200, 'pending but not late yet');
    await sleep(TIMEOUT_MS + 100);
    const late = await get(`${base}/healthz`);
    assert.equal(late.status, 503);
    assert.equal(JSON.parse(late.body).lastUpdated, new Date(T0).toISOString(), 'unhealthy: lastUpdated is the last real sync');
    const lateLive = await get(`${base}/livez`);
    assert.equal(lateLive.status, 503);
    view.healthInfo = { lastUpdated: Date.now(), pendingSince: null, nodeEligible: true };
    assert.equal((await get(`${base}/healthz`)).status, 200);
    assert.equal((await get(`${base}/livez`)).status, 200);
  });

  test('a node being deleted fails /healthz but not /livez', async () => {
    view.healthInfo = { lastUpdated: T0, pendingSince: null, nodeEligible: false };
    const h = await get(`${base}/healthz`);
    assert.equal(h.status, 503);
    assert.equal(JSON.parse(h.body).nodeEligible, false);
    const l = await get(`${base}/livez`);
    assert.equal(l.status, 200);
    assert.deepEqual(Object.keys(JSON.parse(l.body)), ['lastUpdated', 'currentTime']);
    view.healthInfo = { lastUpdated: T0, pendingSince: null, nodeEligible: true };
  });

  test('other paths are 404', async () => {
    assert.equal((await get(`${base}/metrics`)).status, 404);
  });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

function lbService(key: string, hcPort: number, local: number): ServiceSpec {
  return { key, type: 'LoadBalancer', frontends: [], healthCheckNodePort: hcPort, localReadyEndpoints: local, warnings: [] };
}

describe('healthCheckNodePort servers', () => {
  let hc: HealthCheckServers;
  let proxyHealthy = true;
  before(() => { hc = new HealthCheckServers('127.0.0.1', () => proxyHealthy); });
  after(() => hc?.close());

  test('200 with local endpoints, 503 without, closed when the Service goes away', async () => {
    const port = await freePort();
    await hc.sync([lbService('shop/lb', port, 2), { ...lbService('default/plain', 0, 1), type: 'ClusterIP', healthCheckNodePort: undefined }]);
    assert.deepEqual([...hc.ports()], [['shop/lb', port]]);
    const ok = await get(`http://127.0.0.1:${port}/`);
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body), { service: { namespace: 'shop', name: 'lb' }, localEndpoints: 2, serviceProxyHealthy: true });

    await hc.sync([lbService('shop/lb', port, 0)]);
    const none = await get(`http://127.0.0.1:${port}/`);
    assert.equal(none.status, 503);
    assert.deepEqual(JSON.parse(none.body), { service: { namespace: 'shop', name: 'lb' }, localEndpoints: 0, serviceProxyHealthy: true });

    await hc.sync([]);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/`));
  });

  test('an unhealthy agent fails the probe even with local endpoints', async () => {
    const port = await freePort();
    await hc.sync([lbService('shop/lb', port, 1)]);
    proxyHealthy = false;
    try {
      const r = await get(`http://127.0.0.1:${port}/`);
      assert.equal(r.status, 503);
      assert.equal(JSON.parse(r.body).serviceProxyHealthy, false);
    } finally {
      proxyHealthy = true;
      await hc.sync([]);
    }
  });

  test('a changed healthCheckNodePort moves the listener', async () => {
    const p1 = await freePort();
    const p2 = await freePort();
    await hc.sync([lbService('shop/lb', p1, 1)]);
    await hc.sync([lbService('shop/lb', p2, 1)]);
    await assert.rejects(fetch(`http://127.0.0.1:${p1}/`));
    assert.equal((await get(`http://127.0.0.1:${p2}/`)).status, 200);
    await hc.sync([]);
  });

  test('a port already in use is skipped and retried on the next sync', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as AddressInfo).port;
    await hc.sync([lbService('shop/lb', port, 1)]);
    assert.equal(hc.ports().size, 0);
    await new Promise((r) => busy.close(r));
    await hc.sync([lbService('shop/lb', port, 1)]);
    assert.equal((await get(`http://127.0.0.1:${port}/`)).status, 200);
    await hc.sync([]);
  });
});

interface Sample { name: string; labels: Record<string, string>; value: number }

/** Prometheus text exposition format -> samples and TYPE declarations. */
function parseProm(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) { types.set(t[1], t[2]); continue; }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { samples, types };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

describe('/metrics', () => {
  let view: FakeView;
  let metrics: XlbMetrics;
  let ep: HttpEndpoint;
  let url: string;

  before(async () => {
    view = new FakeView();
    metrics = new XlbMetrics(view);
    ep = await startMetricsServer(metrics, '127.0.0.1:0');
    url = `http://127.0.0.1:${ep.port}/metrics`;
  });
  after(() => ep?.close());

  test('kube-proxy-named sync metrics, map fill, drops and per-service counters', async () => {
    metrics.observeSync(0.02);
    metrics.observeProgramming(0.3);
    metrics.serviceChange();
    metrics.serviceChange();
    for (let i = 0; i < 3; i++) metrics.endpointChange();
    metrics.setPending(1, 4);
    const r = await get(url);
    assert.equal(r.status, 200);
    assert.match(r.type ?? '', /^text\/plain; version=0\.0\.4/);
    const { samples, types } = parseProm(r.body);

    assert.equal(types.get('xlb_sync_proxy_rules_duration_seconds'), 'histogram');
    assert.equal(types.get('xlb_network_programming_duration_seconds'), 'histogram');
    assert.equal(types.get('xlb_sync_proxy_rules_last_timestamp_seconds'), 'gauge');
    assert.equal(types.get('xlb_datapath_drops_total'), 'counter');
    assert.equal(types.get('xlb_service_packets_total'), 'counter');

    assert.equal(value(samples, 'xlb_sync_proxy_rules_duration_seconds_count'), 1);
    assert.equal(value(samples, 'xlb_sync_proxy_rules_duration_seconds_bucket', { le: '0.016' }), 0);
    assert.equal(value(samples, 'xlb_sync_proxy_rules_duration_seconds_bucket', { le: '0.032' }), 1);
    assert.equal(value(samples, 'xlb_network_programming_duration_seconds_sum'), 0.3);
    const last = value(samples, 'xlb_sync_proxy_rules_last_timestamp_seconds') ?? 0;
    assert.ok(Math.abs(last - Date.now() / 1000) < 60, `last sync timestamp ${last} is now`);
    assert.equal(value(samples, 'xlb_sync_proxy_rules_service_changes_total'), 2);
    assert.equal(value(samples, 'xlb_sync_proxy_rules_endpoint_changes_total'), 3);
    assert.equal(value(samples, 'xlb_sync_proxy_rules_service_changes_pending'), 1);
    assert.equal(value(samples, 'xlb_sync_proxy_rules_endpoint_changes_pending'), 4);

    assert.equal(value(samples, 'xlb_map_entries', { map: 'services' }), 3);
    assert.equal(value(samples, 'xlb_map_max_entries', { map: 'backends' }), 16384);
    assert.equal(value(samples, 'xlb_datapath_drops_total', { reason: 'no_backend' }), 3);
    assert.equal(value(samples, 'xlb_datapath_drops_total', { reason: 'malformed' }), 1);
    assert.equal(value(samples, 'xlb_service_packets_total', { service: 'default/web', frontend: '10.96.0.10:80/TCP' }), 1200);
    assert.equal(value(samples, 'xlb_service_bytes_total', { service: 'default/web', frontend: '10.96.0.10:80/TCP' }), 3_500_000);
    assert.equal(value(samples, 'xlb_service_new_flows_total', { service: 'shop/lb', frontend: '192.0.2.10:53/UDP' }), 7);
    assert.equal(value(samples, 'xlb_conntrack_entries'), 47);
    assert.equal(value(samples, 'xlb_snat_ports_used'), 1230);
    assert.equal(value(samples, 'xlb_snat_ports_available'), 64512 - 28232);
    assert.equal(value(samples, 'xlb_enabled'), 1);
    assert.equal(value(samples, 'xlb_announce_arp_replies_total'), 12);
    assert.equal(value(samples, 'xlb_announce_arp_expired_total'), 1);
    assert.equal(value(samples, 'xlb_announce_ndp_replies_total'), 5);
    assert.equal(value(samples, 'xlb_announce_ndp_expired_total'), 2);
    assert.equal(value(samples, 'xlb_announce_takeovers_total'), 1);
    assert.equal(value(samples, 'xlb_announced_addresses'), 1);
    assert.ok(value(samples, 'process_resident_memory_bytes'), 'process metrics are exported');
  });

  test('datapath counters are read at scrape time', async () => {
    view.statsInfo = { ...view.statsInfo, services: [{ svc: 'default/web', frontend: '10.96.0.10:80/TCP', packets: 5000, bytes: 1, newFlows: 2 }] };
    await sleep(600); // past the one-scrape reuse window
    const { samples } = parseProm((await get(url)).body);
    assert.equal(value(samples, 'xlb_service_packets_total', { service: 'default/web' }), 5000);
    assert.equal(value(samples, 'xlb_service_packets_total', { service: 'shop/lb' }), undefined, 'a frontend that is gone has no series');
  });

  test('per-frontend label sets live only during a scrape; overlapping scrapes each get them', async () => {
    await sleep(600);
    const [a, b] = await Promise.all([get(url), get(url)]);
    for (const r of [a, b]) assert.equal(value(parseProm(r.body).samples, 'xlb_service_packets_total', { service: 'default/web' }), 5000);
    // 10,000 Services: three label sets per frontend held between scrapes were ~10 MB of the agent's heap
    for (const name of ['xlb_service_packets_total', 'xlb_service_bytes_total', 'xlb_service_new_flows_total']) {
      const held = (metrics.registry.getSingleMetric(name) as unknown as { hashMap: Record<string, unknown> }).hashMap;
      assert.equal(Object.keys(held).length, 0, `${name} holds no label set after the scrape`);
    }
  });

  test('a failing stats read drops the datapath series but still serves the rest', async () => {
    view.stats = () => Promise.reject(new Error('maps not loaded'));
    await sleep(600);
    const r = await get(url);
    assert.equal(r.status, 200);
    const { samples } = parseProm(r.body);
    assert.equal(value(samples, 'xlb_service_packets_total'), undefined);
    assert.equal(value(samples, 'xlb_map_entries', { map: 'services' }), 3);
  });
});

// kube-proxy's metrics address also answers /proxyMode (the Kubernetes e2e networking tests
// assert 200 there), /healthz and /configz; tooling reads them from any proxy on the node.
describe('kube-proxy status paths on the metrics address', () => {
  let ep: HttpEndpoint;
  let base: string;

  before(async () => {
    ep = await startMetricsServer(new XlbMetrics(new FakeView()), '127.0.0.1:0', { config: { node: 'node-a', conntrackSize: 262144 } });
    base = `http://127.0.0.1:${ep.port}`;
  });
  after(() => ep?.close());

  test('GET /proxyMode answers 200 with the body xlb', async () => {
    const r = await get(`${base}/proxyMode`);
    assert.deepEqual([r.status, r.body], [200, 'xlb']);
    assert.match(r.type ?? '', /^text\/plain/);
  });

  test('GET /healthz answers 200 ok; /configz the agent configuration as JSON', async () => {
    assert.deepEqual(await get(`${base}/healthz`), { status: 200, type: 'text/plain; charset=utf-8', body: 'ok' });
    const c = await get(`${base}/configz`);
    assert.equal(c.status, 200);
    assert.deepEqual(JSON.parse(c.body), { xlb: { node: 'node-a', conntrackSize: 262144 } });
  });

  test('a query string is ignored; unknown paths are 404 naming the served ones', async () => {
    assert.equal((await get(`${base}/proxyMode?x=1`)).body, 'xlb');
    const r = await get(`${base}/debug`);
    assert.equal(r.status, 404);
    assert.match(r.body, /\/proxyMode/);
  });
});

describe('HealthTracker', () => {
  test('keeps the oldest pending change, clears it on update, and follows the Node', async () => {
    const { HealthTracker } = await import('../../src/api/health.js');
    let now = 1000;
    const t = new HealthTracker(() => now);
    assert.deepEqual(t.info(), { lastUpdated: 0, pendingSince: null, nodeEligible: true });
    t.queued();
    now = 2000;
    t.queued();
    assert.equal(t.info().pendingSince, 1000, 'a later change does not hide an older one');
    now = 3000;
    t.updated();
    assert.deepEqual(t.info(), { lastUpdated: 3000, pendingSince: null, nodeEligible: true });
    t.syncNode({ spec: { taints: [{ key: 'ToBeDeletedByClusterAutoscaler' }] } });
    assert.equal(t.info().nodeEligible, false);
    t.syncNode({ metadata: {}, spec: { taints: [] } });
    assert.equal(t.info().nodeEligible, true);
    t.syncNode({ metadata: { deletionTimestamp: new Date() } });
    assert.equal(t.info().nodeEligible, false);
  });
});
