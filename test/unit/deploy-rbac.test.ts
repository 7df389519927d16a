// The ClusterRole and the leader-election Role grant what the kube source really asks the API
// server for, and nothing else but events. The requests are not a hand-kept list: the real
// KubeSource syncs, leads (Lease, Service status, Events) and hands over through a recording
// HTTP proxy in front of the wire-level fake API server, and each request is mapped to
// (apiGroup, resource, verb, namespace) the way the API server's authorizer sees it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pino } from 'pino';
import { KubeSource } from '../../src/sources/kube.js';
import { translate } from '../../src/model/translate.js';
import { FakeApiServer } from '../helpers/fake-apiserver.js';
import { ipPool, node, service, slice, waitFor } from '../helpers/manifests.js';
import { baseObjects, find, type KObj } from './deploy-manifests.js';

interface Access {
  group: string;
  resource: string;
  verb: string;
  namespace?: string;
}

const key = (a: Access) => `${a.group || 'core'}/${a.resource}:${a.verb}`;

/** (apiGroup, resource, verb) of a request, as the API server's request-info resolution. */
function accessOf(method: string, rawUrl: string): Access {
  const u = new URL(rawUrl, 'http://x');
  const parts = u.pathname.split('/').filter(Boolean);
  let group: string;
  let rest: string[];
  if (parts[0] === 'api') [group, rest] = ['', parts.slice(2)];
  else if (parts[0] === 'apis') [group, rest] = [parts[1]!, parts.slice(3)];
  else throw new Error(`not a resource request: ${method} ${rawUrl}`);
  let watch = ['true', '1'].includes(u.searchParams.get('watch') ?? '');
  if (rest[0] === 'watch') [watch, rest] = [true, rest.slice(1)];
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) [namespace, rest] = [rest[1], rest.slice(2)];
  const [resource, name, sub] = rest;
  if (!resource) throw new Error(`no resource in ${method} ${rawUrl}`);
  const verbs: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: name ? 'delete' : 'deletecollection' };
  const verb = method === 'GET' ? (watch ? 'watch' : name ? 'get' : 'list') : verbs[method];
  if (!verb) throw new Error(`unexpected method ${method} ${rawUrl}`);
  return { group, resource: sub ? `${resource}/${sub}` : resource, verb, ...(namespace ? { namespace } : {}) };
}

/** Forwards every request to `target` and records its method and URL. */
async function recordingProxy(target: string) {
  const t = new URL(target);
  const seen: Array<{ method: string; url: string }> = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '' });
    const up = request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function granted(role: KObj): Access[] {
  return (role.rules as KObj[]).flatMap((r) =>
    (r.apiGroups as string[]).flatMap((group) =>
      (r.resources as string[]).flatMap((resource) => (r.verbs as string[]).map((verb) => ({ group, resource, verb })))));
}

const EVENTS = new Set(['core/events:create', 'core/events:patch', 'events.k8s.io/events:create', 'events.k8s.io/events:patch']);

test('request mapping follows the API server: list, watch, get, create, patch, subresources', () => {
  assert.deepEqual(accessOf('GET', '/api/v1/services?labelSelector=x'), { group: '', resource: 'services', verb: 'list' });
  assert.deepEqual(accessOf('GET', '/apis/discovery.k8s.io/v1/endpointslices?watch=true&resourceVersion=5'), { group: 'discovery.k8s.io', resource: 'endpointslices', verb: 'watch' });
  assert.deepEqual(accessOf('GET', '/api/v1/nodes/node-a'), { group: '', resource: 'nodes', verb: 'get' });
  assert.deepEqual(accessOf('GET', '/api/v1/namespaces/kube-system'), { group: '', resource: 'namespaces', verb: 'get' });
  assert.deepEqual(accessOf('POST', '/api/v1/namespaces/default/events'), { group: '', resource: 'events', verb: 'create', namespace: 'default' });
  assert.deepEqual(accessOf('PATCH', '/apis/events.k8s.io/v1/namespaces/default/events/e1'), { group: 'events.k8s.io', resource: 'events', verb: 'patch', namespace: 'default' });
  assert.deepEqual(accessOf('PATCH', '/api/v1/nodes/node-a/status'), { group: '', resource: 'nodes/status', verb: 'patch' });
  assert.deepEqual(accessOf('PATCH', '/api/v1/namespaces/shop/services/web/status'), { group: '', resource: 'services/status', verb: 'patch', namespace: 'shop' });
  assert.deepEqual(accessOf('PUT', '/apis/coordination.k8s.io/v1/namespaces/xlb-system/leases/l'), { group: 'coordination.k8s.io', resource: 'leases', verb: 'update', namespace: 'xlb-system' });
  assert.deepEqual(accessOf('GET', '/api/v1/watch/namespaces/default/services'), { group: '', resource: 'services', verb: 'watch', namespace: 'default' });
});

test('the ClusterRole and Role grant every request of a kube source that syncs, leads and hands over, and nothing else but events', async (t) => {
  const api = await FakeApiServer.start();
  const proxy = await recordingProxy(api.url);
  api.apply('services', service('web', { clusterIP: '10.96.0.10' }));
  api.apply('endpointslices', slice('web-abc', 'web', ['10.0.1.5']));
  api.apply('nodes', node('node-a'));
  api.apply('loadbalancerippools', ipPool('demo', ['198.18.0.10']));
  api.apply('services', service('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.11' }));
  const ext = service('ext', { clusterIP: '10.96.0.12' });
  ext.spec.externalIPs = ['203.0.113.9'];
  api.apply('services', ext);
  const ns = find(baseObjects(), 'Role').metadata.namespace as string;
  const source = () => new KubeSource({
    connection: { server: proxy.url, token: api.token, insecureSkipTLSVerify: true },
    nodeName: 'node-a',
    backoff: { initialMs: 50, maxMs: 400, jitter: 0 },
    log: pino({ level: 'silent' }),
    leaderElection: { namespace: ns, durationMs: 1000, renewMs: 100, eventIntervalMs: 50 },
  });
  const sources: KubeSource[] = [];
  t.after(async () => {
    for (const s of sources) await s.stop();
    await proxy.stop();
    await api.stop();
  });
  /** What the agent reports after translating `ext`: the real refused-externalIP warning. */
  const warn = (src: KubeSource) => {
    const r = translate(src.service('default/ext')!, [], undefined, { nodeName: 'node-a', externalIPCidrs: [] });
    assert.ok(r.ok);
    src.reportWarnings('default/ext', r.service.warnings);
  };
  const src = source();
  sources.push(src);
  await src.start();
  // One change per resource through the watches, so the watch requests are on the wire too.
  api.apply('services', service('api', { ns: 'shop', clusterIP: '10.96.0.20' }));
  api.apply('endpointslices', slice('api-1', 'api', ['10.0.2.1'], { ns: 'shop' }));
  api.apply('nodes', node('node-a', '192.168.50.2', { 'xlb.io/enabled': 'true' }));
  await waitFor(() => src.service('shop/api') !== undefined && src.slices('shop/api').length === 1
    && src.node()?.metadata?.labels?.['xlb.io/enabled'] === 'true', 'changes through the watches');
  // Leading: the pool address into the Service status, a refused externalIP as an Event that,
  // seen again after it went away, is counted on the same Event.
  await waitFor(() => src.leading, 'the first source leads');
  await waitFor(() => api.get('services', 'lb')?.status?.loadBalancer?.ingress?.[0]?.ip === '198.18.0.10', 'status written');
  warn(src);
  src.reportWarnings('default/ext', []);
  warn(src);
  await waitFor(() => api.all('events')[0]?.count === 2, 'the repeat counted on the same Event');
  // Handing over: the first releases the Lease; the next continues the same Event.
  await src.stop();
  sources.pop();
  const next = source();
  sources.push(next);
  await next.start();
  await waitFor(() => next.leading, 'the second source leads');
  warn(next);
  await next.settled();
  assert.equal(api.all('events').length, 1, 'one Event, continued');

  const used = new Map(proxy.seen.map((r) => {
    const a = accessOf(r.method, r.url);
    return [`${key(a)}@${a.namespace ?? ''}`, a] as const;
  }));
  const role = find(baseObjects(), 'ClusterRole');
  const nsRole = find(baseObjects(), 'Role');
  const clusterGrants = new Set(granted(role).map(key));
  const nsGrants = new Set(granted(nsRole).map(key));
  const allowed = (a: Access) => clusterGrants.has(key(a)) || (a.namespace === nsRole.metadata.namespace && nsGrants.has(key(a)));
  for (const [k, a] of used) assert.ok(allowed(a), `the ClusterRole or Role must grant ${k}: the kube source uses it`);
  const usedKeys = new Set([...used.values()].map(key));
  for (const k of [...clusterGrants, ...nsGrants]) assert.ok(usedKeys.has(k) || EVENTS.has(k), `the RBAC grants ${k}, which no code uses: remove it`);
  for (const k of ['core/services/status:patch', 'xlb.io/loadbalancerippools/status:patch', 'coordination.k8s.io/leases:update', 'core/events:create', 'core/events:get']) assert.ok(usedKeys.has(k), `${k} exercised`);
  assert.ok([...clusterGrants].some((k) => EVENTS.has(k)), 'events can be recorded');
  for (const r of [...role.rules, ...nsRole.rules] as KObj[]) assert.equal(r.resourceNames, undefined, 'no resourceNames: list/watch cannot be limited by name');
});
