// The kube source against a wire-level fake API server, with the real @kubernetes/client-node
// doing every HTTP request (kubeconfig -> typed list calls and Watch).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { KubeSource, loadKubeConfig, PROXY_LABEL_SELECTOR, apiServerUrl, type KubeSourceOptions } from '../../src/sources/kube.js';
import type { ChangeKind } from '../../src/sources/types.js';
import { FakeApiServer, type FakeApiServerOptions } from '../helpers/fake-apiserver.js';
import { node, service, slice, waitFor } from '../helpers/manifests.js';

const silent = pino({ level: 'silent' });
type T = { after: (fn: () => Promise<void>) => void };

async function setup(t: T, fake: FakeApiServerOptions = {}, opts: Partial<KubeSourceOptions> = {}) {
  const api = await FakeApiServer.start(fake);
  api.apply('services', service('web', { clusterIP: '10.96.0.10' }));
  api.apply('endpointslices', slice('web-abc', 'web', ['10.0.1.5']));
  api.apply('nodes', node('node-a'));
  api.apply('nodes', node('node-b', '192.168.50.3'));
  const src = new KubeSource({
    connection: { kubeconfig: await api.writeKubeconfig() },
    nodeName: 'node-a',
    backoff: { initialMs: 50, maxMs: 400, jitter: 0 },
    log: silent,
    ...opts,
  });
  const changes: Array<[ChangeKind, string]> = [];
  const conn: string[] = [];
  src.on('change', (k, key) => changes.push([k, key]));
  src.on('connection', (st, d) => conn.push(`${st} ${d ?? ''}`));
  t.after(async () => {
    await src.stop();
    await api.stop();
  });
  return { api, src, changes, conn };
}

const addrs = (src: KubeSource, key: string) => src.slices(key).flatMap((s) => s.endpoints.flatMap((e) => e.addresses)).sort();

test('start resolves only after all three lists, even when one is slow', async (t) => {
  const { api, src } = await setup(t);
  api.setListDelay('nodes', 400);
  let resolved = false;
  const t0 = Date.now();
  const started = src.start().then(() => (resolved = true));
  await waitFor(() => api.count('services', 'list') === 1 && api.count('endpointslices', 'list') === 1, 'service and slice lists');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(resolved, false, 'not synced while the Node list is outstanding');
  assert.equal(src.synced, false);
  await started;
  assert.ok(Date.now() - t0 >= 380, `resolved after ${Date.now() - t0} ms`);
  assert.equal(src.synced, true);
  assert.equal(src.service('default/web')?.spec?.clusterIP, '10.96.0.10');
  assert.deepEqual(addrs(src, 'default/web'), ['10.0.1.5']);
  assert.equal(src.node()?.metadata?.name, 'node-a');
  assert.equal(src.services()[0]!.kind, 'Service', 'list items get the same shape as watch objects');
  const nodeList = api.requests.find((r) => r.resource === 'nodes' && r.verb === 'list')!;
  assert.equal(nodeList.query.fieldSelector, 'metadata.name=node-a');
});

test('listed objects reach the cache as plain decoded data, as watched ones do', async (t) => {
  const { api, src } = await setup(t);
  api.apply('endpointslices', slice('web-def', 'web', ['10.0.1.6', '10.0.1.7']));
  await src.start();
  const listed = src.slices('default/web');
  assert.equal(listed.length, 2);
  for (const s of listed) {
    assert.equal(Object.getPrototypeOf(s), Object.prototype, 'not the client serializer\'s V1EndpointSlice');
    for (const e of s.endpoints) assert.equal(Object.getPrototypeOf(e), Object.prototype);
  }
  // decode() shares one conditions object between endpoints with the same conditions
  const eps = listed.flatMap((s) => s.endpoints);
  assert.ok(eps.every((e) => e.conditions === eps[0]!.conditions && Object.isFrozen(e.conditions)));
  assert.equal(Object.getPrototypeOf(src.service('default/web')), Object.prototype);
  assert.equal(Object.getPrototypeOf(src.node()), Object.prototype);
});

test('adds, updates and deletes reach the cache with one change event per key', async (t) => {
  const { api, src, changes } = await setup(t);
  await src.start();
  changes.length = 0;
  // Services and EndpointSlices come on two watch streams with no order between them: each
  // change is awaited before the next, so the expected sequence of events is the only one.
  api.apply('services', service('api', { ns: 'shop', clusterIP: '10.96.0.20' }));
  await waitFor(() => src.service('shop/api') !== undefined, 'shop/api service');
  api.apply('endpointslices', slice('api-1', 'api', ['10.0.2.1'], { ns: 'shop' }));
  await waitFor(() => addrs(src, 'shop/api').length === 1, 'shop/api endpoints');
  api.apply('endpointslices', slice('api-1', 'api', ['10.0.2.1', '10.0.2.2'], { ns: 'shop' }));
  await waitFor(() => addrs(src, 'shop/api').length === 2, 'second endpoint');
  api.apply('nodes', node('node-a', '192.168.50.2', { 'xlb.io/enabled': 'false' }));
  api.apply('nodes', node('node-b', '192.168.50.3', { 'xlb.io/enabled': 'false' }));
  await waitFor(() => src.node()?.metadata?.labels?.['xlb.io/enabled'] === 'false', 'node label');
  api.remove('services', 'web');
  await waitFor(() => src.service('default/web') === undefined, 'web service gone');
  api.remove('endpointslices', 'web-abc');
  await waitFor(() => addrs(src, 'default/web').length === 0, 'web endpoints gone');
  assert.deepEqual(changes, [
    ['service', 'shop/api'],
    ['slices', 'shop/api'],
    ['slices', 'shop/api'],
    ['node', 'node-a'],
    ['service', 'default/web'],
    ['slices', 'default/web'],
  ]);
  const svc = src.service('shop/api')!;
  assert.ok(svc.metadata!.creationTimestamp instanceof Date, 'watch objects are typed like list objects');
  assert.equal(api.count('nodes', 'list'), 1);
  assert.equal(api.requests.filter((r) => r.resource === 'nodes').every((r) => r.query.fieldSelector === 'metadata.name=node-a'), true);
});

test('the own Node: other nodes never show, deletion and re-creation do', async (t) => {
  const { api, src, changes } = await setup(t);
  await src.start();
  changes.length = 0;
  api.remove('nodes', 'node-b');
  api.remove('nodes', 'node-a');
  await waitFor(() => src.node() === undefined, 'own node deleted');
  api.apply('nodes', node('node-a', '192.168.50.9'));
  await waitFor(() => src.node()?.status?.addresses?.[0]?.address === '192.168.50.9', 'own node back');
  assert.deepEqual(changes, [['node', 'node-a'], ['node', 'node-a']]);
});

test("kube-proxy's label selector keeps other proxies' and headless Services out", async (t) => {
  const { api, src } = await setup(t);
  api.apply('services', service('other', { labels: { 'service.kubernetes.io/service-proxy-name': 'cilium' } }));
  api.apply('endpointslices', slice('other-1', 'other', ['10.0.3.1'], { labels: { 'service.kubernetes.io/service-proxy-name': 'cilium' } }));
  api.apply('services', service('db', { clusterIP: 'None', labels: { 'service.kubernetes.io/headless': '' } }));
  api.apply('endpointslices', slice('db-1', 'db', ['10.0.4.1'], { labels: { 'service.kubernetes.io/headless': '' } }));
  await src.start();
  assert.deepEqual(src.services().map((s) => s.metadata!.name), ['web']);
  assert.deepEqual(addrs(src, 'default/other'), []);
  assert.deepEqual(addrs(src, 'default/db'), []);
  for (const r of api.requests.filter((x) => x.resource === 'services' || x.resource === 'endpointslices')) assert.equal(r.query.labelSelector, PROXY_LABEL_SELECTOR, `${r.resource} ${r.verb}`);
  // Labelling a Service for another proxy later withdraws it (the server sends DELETED).
  api.apply('services', service('web', { labels: { 'service.kubernetes.io/service-proxy-name': 'cilium' } }));
  await waitFor(() => src.service('default/web') === undefined, 'web withdrawn');
  api.apply('services', service('other'));
  await waitFor(() => src.service('default/other') !== undefined, 'other adopted');
});

for (const goneAsHttpStatus of [false, true]) {
  test(`410 Gone ${goneAsHttpStatus ? 'as HTTP status' : 'as a watch ERROR event'} relists and the cache ends exact`, async (t) => {
    const { api, src, changes } = await setup(t, { goneAsHttpStatus });
    api.apply('services', service('old', { clusterIP: '10.96.0.30' }));
    await src.start();
    api.refuseConnections(true);
    await waitFor(() => api.openWatches() === 0, 'watches cut');
    api.remove('services', 'old');
    api.apply('services', service('new', { clusterIP: '10.96.0.31' }));
    api.apply('services', service('web', { clusterIP: '10.96.0.11' }));
    api.apply('endpointslices', slice('web-abc', 'web', ['10.0.1.9']));
    api.expireHistory();
    changes.length = 0;
    api.refuseConnections(false);
    await waitFor(() => src.service('default/new') !== undefined && src.service('default/old') === undefined && addrs(src, 'default/web')[0] === '10.0.1.9', 'relisted state', 5000);
    assert.equal(src.service('default/web')!.spec!.clusterIP, '10.96.0.11');
    assert.equal(src.listCount('services'), 2);
    assert.equal(src.listCount('endpointslices'), 2);
    assert.deepEqual([...changes].sort(), [['service', 'default/new'], ['service', 'default/old'], ['service', 'default/web'], ['slices', 'default/web']]);
    assert.equal(api.requests.filter((r) => r.verb === 'list' && r.query.resourceVersion).length, 0, 'relists read the latest state');
  });
}

test('dropped connections reconnect with backoff and resume without a relist', async (t) => {
  const { api, src, conn } = await setup(t);
  await src.start();
  await waitFor(() => conn.includes(`up ${api.url}`), 'connection up');
  const watchesBefore = api.count('services', 'watch');
  api.refuseConnections(true);
  const t0 = Date.now();
  api.apply('services', service('during', { clusterIP: '10.96.0.40' }));
  api.remove('endpointslices', 'web-abc');
  await waitFor(() => conn.some((c) => c.startsWith('down')), 'connection down');
  await new Promise((r) => setTimeout(r, 1200));
  // Three watches, each retrying at 50, 100, 200, 400, 400... ms: about 5 tries each in 1.2 s.
  const attempts = api.connections.filter((at) => at >= t0).length;
  t.diagnostic(`${attempts} connection attempts during a 1.2 s outage`);
  assert.ok(attempts >= 6 && attempts <= 24, `${attempts} connection attempts during the outage`);
  api.refuseConnections(false);
  await waitFor(() => src.service('default/during') !== undefined && addrs(src, 'default/web').length === 0, 'changes made during the outage');
  await waitFor(() => conn[conn.length - 1] === `up ${api.url}`, 'connection up again');
  assert.equal(src.listCount('services'), 1);
  assert.equal(src.listCount('endpointslices'), 1);
  const resumed = api.requests.filter((r) => r.resource === 'services' && r.verb === 'watch').slice(watchesBefore);
  assert.equal(resumed.length, 1);
  assert.ok(Number(resumed[0]!.query.resourceVersion) > 0, 'resumed from the last resourceVersion');
  assert.equal(conn.filter((c) => c.startsWith('down')).length, 1, 'one down per outage, not one per retry');
});

test('reconnect attempts back off exponentially up to the cap', async (t) => {
  const delays: number[] = [];
  const { api, src } = await setup(t, {}, {
    sleep: (ms, signal) => {
      delays.push(ms);
      return new Promise((r) => { const tm = setTimeout(r, 5); signal.addEventListener('abort', () => { clearTimeout(tm); r(); }); });
    },
  });
  await src.start();
  api.refuseConnections(true);
  await waitFor(() => delays.length >= 18, '6 retries per resource');
  const perResource = delays.slice(0, 18).sort((a, b) => a - b);
  assert.deepEqual([...new Set(perResource)], [50, 100, 200, 400], 'doubling from 50 ms, capped at 400 ms');
  api.refuseConnections(false);
});

test('watches the server ends cleanly every few hundred ms resume without relists', async (t) => {
  const { api, src, changes } = await setup(t, { closeWatchesAfterMs: 300 }, { minHealthyWatchMs: 200 });
  await src.start();
  for (let i = 0; i < 8; i++) {
    api.apply('endpointslices', slice('web-abc', 'web', [`10.0.1.${10 + i}`]));
    await new Promise((r) => setTimeout(r, 250));
  }
  await waitFor(() => addrs(src, 'default/web')[0] === '10.0.1.17', 'last update');
  assert.ok(api.count('endpointslices', 'watch') >= 5, `${api.count('endpointslices', 'watch')} watches`);
  for (const r of ['services', 'endpointslices', 'nodes'] as const) assert.equal(api.count(r, 'list'), 1, `${r} listed once`);
  assert.equal(changes.filter(([k]) => k === 'slices').length, 8 + 1, 'one event per update, none from reconnects');
  assert.equal(src.service('default/web')?.spec?.clusterIP, '10.96.0.10');
  assert.equal(src.node()?.metadata?.name, 'node-a');
});

test('bookmarks keep a quiet watch resumable after history is compacted', async (t) => {
  const { api, src } = await setup(t, { bookmarkIntervalMs: 50 });
  await src.start();
  for (let i = 0; i < 5; i++) api.apply('endpointslices', slice('web-abc', 'web', [`10.0.1.${20 + i}`]));
  await new Promise((r) => setTimeout(r, 200)); // bookmarks carry the newer version to the quiet watches
  api.expireHistory();
  api.closeWatches();
  await waitFor(() => api.openWatches() === 4, 'watches resumed');
  await new Promise((r) => setTimeout(r, 100));
  for (const r of ['services', 'endpointslices', 'nodes', 'loadbalancerippools'] as const) assert.equal(api.count(r, 'list'), 1, `${r} not relisted`);
  assert.ok(api.requests.every((r) => r.verb === 'list' || r.query.allowWatchBookmarks === 'true'));
});

test('a watch silent past the idle limit is replaced', async (t) => {
  const { api, src, conn } = await setup(t, {}, { idleTimeoutMs: 300 });
  await src.start();
  await waitFor(() => api.count('nodes', 'watch') >= 3, 'watch reopened twice', 3000);
  assert.ok(conn.some((c) => /no event or bookmark for 300 ms/.test(c)));
  assert.equal(api.count('nodes', 'list'), 1);
});

test('a rejected credential is reported and start can be abandoned', async (t) => {
  const api = await FakeApiServer.start({ token: 'right' });
  t.after(() => api.stop());
  const src = new KubeSource({ connection: { server: api.url, token: 'wrong', insecureSkipTLSVerify: true }, nodeName: 'node-a', backoff: { initialMs: 20, maxMs: 50 }, log: silent });
  const conn: string[] = [];
  src.on('connection', (st, d) => conn.push(`${st} ${d}`));
  const started = src.start();
  started.catch(() => undefined); // a list still in flight may hold stop() past a tick; asserted below
  await waitFor(() => conn.length > 0, 'a connection event');
  assert.match(conn[0]!, /^down .*HTTP 401/);
  // The handler goes on before stop() rejects start(): otherwise the rejection can be seen as unhandled.
  const abandoned = assert.rejects(started, /stopped before the initial list completed/);
  await src.stop();
  await abandoned;
});

test('connection settings: the API server comes from config, never from the ClusterIP env', () => {
  const saved = process.env.KUBERNETES_SERVICE_HOST;
  process.env.KUBERNETES_SERVICE_HOST = '10.96.0.1';
  try {
    const kc = loadKubeConfig({ inCluster: true, server: apiServerUrl('fd00::10', 6443), serviceAccountDir: '/tmp/none' });
    assert.equal(kc.server, 'https://[fd00::10]:6443');
    assert.equal(kc.caFile, '/tmp/none/ca.crt');
    assert.equal(kc.tokenFile, '/tmp/none/token');
  } finally {
    if (saved === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
    else process.env.KUBERNETES_SERVICE_HOST = saved;
  }
  assert.throws(() => loadKubeConfig({ server: 'http://10.0.0.1:8080' }), /plain http; use https/);
  assert.throws(() => loadKubeConfig({ server: 'kube:6443x' }), /must be an https:\/\/ URL|is not a URL/);
});

test('100,000 objects are listed in pages, and a dropped connection resumes the watch without a relist', async (t) => {
  const N = 50_000; // Services, and as many EndpointSlices
  const { api, src, conn } = await setup(t);
  for (let i = 0; i < N; i++) {
    const ip = `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
    api.apply('services', service(`s${i}`, { clusterIP: ip }));
    api.apply('endpointslices', slice(`s${i}-a`, `s${i}`, ['10.0.1.5']));
  }
  const t0 = performance.now();
  await src.start();
  t.diagnostic(`listed ${2 * N + 4} objects in ${Math.round(performance.now() - t0)} ms`);
  assert.equal(src.services().length, N + 1);
  assert.deepEqual(addrs(src, `default/s${N - 1}`), ['10.0.1.5']);
  for (const res of ['services', 'endpointslices'] as const) {
    const lists = api.requests.filter((r) => r.resource === res && r.verb === 'list');
    assert.equal(lists.length, Math.ceil((N + 1) / 500), `${res}: one request per page of 500`);
    assert.ok(lists.every((r, i) => r.query.limit === '500' && !!r.query.continue === (i > 0)), `${res}: limit on every page, continue after the first`);
  }
  await waitFor(() => conn.includes(`up ${api.url}`), 'connection up');
  const listsBefore = api.requests.filter((r) => r.verb === 'list').length;
  api.dropConnections();
  api.apply('services', service('after-drop', { clusterIP: '10.95.0.1' }));
  api.remove('endpointslices', 's7-a');
  await waitFor(() => src.service('default/after-drop') !== undefined && addrs(src, 'default/s7').length === 0, 'changes made across the disconnect');
  assert.equal(api.requests.filter((r) => r.verb === 'list').length, listsBefore, 'no list request after the disconnect');
  assert.equal(src.listCount('services'), 1);
  assert.equal(src.listCount('endpointslices'), 1);
  const resumed = api.requests.filter((r) => r.resource === 'services' && r.verb === 'watch').at(-1)!;
  assert.ok(Number(resumed.query.resourceVersion) > 2 * N, 'the watch resumed from the last resourceVersion');
});
