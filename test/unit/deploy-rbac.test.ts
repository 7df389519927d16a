// The ClusterRole grants what the kube source really asks the API server for, and nothing
// else but events. The requests are not a hand-kept list: the real KubeSource syncs through
// a recording HTTP proxy in front of the wire-level fake API server, and each request is
// mapped to (apiGroup, resource, verb) the way the API server's authorizer sees it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pino } from 'pino';
import { KubeSource } from '../../src/sources/kube.js';
import { FakeApiServer } from '../helpers/fake-apiserver.js';
import { node, service, slice, waitFor } from '../helpers/manifests.js';
import { baseObjects, find, type KObj } from './deploy-manifests.js';

interface Access {
  group: string;
  resource: string;
  verb: string;
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
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  const [resource, name, sub] = rest;
  if (!resource) throw new Error(`no resource in ${method} ${rawUrl}`);
  const verbs: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: name ? 'delete' : 'deletecollection' };
  const verb = method === 'GET' ? (watch ? 'watch' : name ? 'get' : 'list') : verbs[method];
  if (!verb) throw new Error(`unexpected method ${method} ${rawUrl}`);
  return { group, resource: sub ? `${resource}/${sub}` : resource, verb };
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
  assert.deepEqual(accessOf('POST', '/api/v1/namespaces/default/events'), { group: '', resource: 'events', verb: 'create' });
  assert.deepEqual(accessOf('PATCH', '/apis/events.k8s.io/v1/namespaces/default/events/e1'), { group: 'events.k8s.io', resource: 'events', verb: 'patch' });
  assert.deepEqual(accessOf('PATCH', '/api/v1/nodes/node-a/status'), { group: '', resource: 'nodes/status', verb: 'patch' });
  assert.deepEqual(accessOf('GET', '/api/v1/watch/namespaces/default/services'), { group: '', resource: 'services', verb: 'watch' });
});

test('the ClusterRole grants every request of a kube source sync, and nothing else but events', async (t) => {
  const api = await FakeApiServer.start();
  const proxy = await recordingProxy(api.url);
  api.apply('services', service('web', { clusterIP: '10.96.0.10' }));
  api.apply('endpointslices', slice('web-abc', 'web', ['10.0.1.5']));
  api.apply('nodes', node('node-a'));
  const src = new KubeSource({
    connection: { server: proxy.url, token: api.token, insecureSkipTLSVerify: true },
    nodeName: 'node-a',
    backoff: { initialMs: 50, maxMs: 400, jitter: 0 },
    log: pino({ level: 'silent' }),
  });
  t.after(async () => {
    await src.stop();
    await proxy.stop();
    await api.stop();
  });
  await src.start();
  // One change per resource through the watches, so the watch requests are on the wire too.
  api.apply('services', service('api', { ns: 'shop', clusterIP: '10.96.0.20' }));
  api.apply('endpointslices', slice('api-1', 'api', ['10.0.2.1'], { ns: 'shop' }));
  api.apply('nodes', node('node-a', '192.168.50.2', { 'xlb.io/enabled': 'true' }));
  await waitFor(() => src.service('shop/api') !== undefined && src.slices('shop/api').length === 1
    && src.node()?.metadata?.labels?.['xlb.io/enabled'] === 'true', 'changes through the watches');

  const used = new Map(proxy.seen.map((r) => {
    const a = accessOf(r.method, r.url);
    return [key(a), a] as const;
  }));
  assert.ok(used.size >= 6, `list and watch of three resources: ${[...used.keys()].join(', ')}`);
  const role = find(baseObjects(), 'ClusterRole');
  const grants = new Set(granted(role).map(key));
  for (const k of used.keys()) assert.ok(grants.has(k), `the ClusterRole must grant ${k}: the kube source uses it`);
  for (const k of grants) assert.ok(used.has(k) || EVENTS.has(k), `the ClusterRole grants ${k}, which no code uses: remove it`);
  assert.ok([...grants].some((k) => EVENTS.has(k)), 'events can be recorded');
  for (const r of role.rules as KObj[]) assert.equal(r.resourceNames, undefined, 'no resourceNames: list/watch cannot be limited by name');
});
