// decode() stands in for the Kubernetes client's ObjectSerializer (which the manifests source
// must not load): the same objects, minus the fields that are unset and managedFields, and
// without loading the client at all in manifests mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { decode, type KindName } from '../../src/sources/decode.js';
import { FakeApiServer } from '../helpers/fake-apiserver.js';
import { node as nodeObj, service as svcObj } from '../helpers/manifests.js';

const here = fileURLToPath(import.meta.url);

const service = {
  apiVersion: 'v1', kind: 'Service',
  metadata: {
    namespace: 'ns', name: 'web', creationTimestamp: '2026-01-02T03:04:05Z', labels: { app: 'web' }, annotations: { a: 'b' },
    managedFields: [{ manager: 'kubectl', operation: 'Apply', time: '2026-01-02T03:04:05Z', fieldsType: 'FieldsV1', fieldsV1: { f: {} } }],
  },
  spec: {
    type: 'LoadBalancer', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv4'], externalTrafficPolicy: 'Local',
    healthCheckNodePort: 32000, sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
    ports: [{ name: 'http', port: 80, targetPort: 'web', protocol: 'TCP', nodePort: 30080 }], loadBalancerSourceRanges: ['10.0.0.0/8'],
  },
  status: { loadBalancer: { ingress: [{ ip: '192.0.2.1', ipMode: 'VIP', ports: [{ port: 80, protocol: 'TCP' }] }] },
    conditions: [{ type: 'x', status: 'True', lastTransitionTime: '2026-01-02T03:04:05Z', reason: 'r', message: 'm' }] },
};
const slice = {
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
  metadata: { namespace: 'ns', name: 'web-1', labels: { 'kubernetes.io/service-name': 'web' }, creationTimestamp: '2026-01-02T03:04:05Z' },
  ports: [{ name: 'http', port: 8080, protocol: 'TCP', appProtocol: 'http' }],
  endpoints: [{ addresses: ['10.244.1.2'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-a', zone: 'z1',
    hints: { forZones: [{ name: 'z1' }] }, targetRef: { kind: 'Pod', namespace: 'ns', name: 'web-0', uid: 'u' } }],
};
const node = {
  apiVersion: 'v1', kind: 'Node',
  metadata: { name: 'node-a', labels: { 'topology.kubernetes.io/zone': 'z1' }, deletionTimestamp: '2026-01-03T00:00:00Z' },
  spec: { podCIDR: '10.244.1.0/24', taints: [{ key: 'k', effect: 'NoSchedule', timeAdded: '2026-01-02T03:04:05Z' }] },
  status: { addresses: [{ type: 'InternalIP', address: '192.0.2.10' }],
    conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: '2026-01-02T03:04:05Z', lastTransitionTime: '2026-01-02T03:04:05Z' }] },
};

/** The serializer's model objects as plain data: unset fields gone, managedFields and a targetRef's uid gone (decode drops them). */
function serialized(kind: string, raw: unknown): unknown {
  const typed = ObjectSerializer.deserialize(structuredClone(raw), `V1${kind}`, '') as { metadata?: { managedFields?: unknown }; endpoints?: { targetRef?: { uid?: string } }[] };
  delete typed.metadata?.managedFields;
  for (const ep of typed.endpoints ?? []) delete ep.targetRef?.uid;
  const plain = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object' || v instanceof Date) return v;
    if (Array.isArray(v)) return v.map(plain);
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, plain(x)]));
  };
  return plain(typed);
}

for (const [kind, raw] of [['Service', service], ['EndpointSlice', slice], ['Node', node]] as const) {
  test(`decode ${kind}: the client serializer's object (Dates as Date), from JSON and from a typed list object`, () => {
    const want = serialized(kind, raw);
    assert.deepEqual(decode(kind as KindName, structuredClone(raw)), want);
    const typed = ObjectSerializer.deserialize(structuredClone(raw), `V1${kind}`, '');
    assert.deepEqual(decode(kind as KindName, typed), want);
  });
}

test('decode drops managedFields and shares repeated values between objects', () => {
  const a = decode('Service', structuredClone(service));
  assert.equal(a.metadata?.managedFields, undefined);
  assert.ok(a.metadata?.creationTimestamp instanceof Date);
  const b = decode('EndpointSlice', JSON.parse(JSON.stringify(slice)));
  const c = decode('EndpointSlice', JSON.parse(JSON.stringify(slice)));
  assert.equal(b.endpoints[0]!.nodeName, c.endpoints[0]!.nodeName);
  // an endpoint's targetRef keeps the pod's kind, namespace and name, in place or copied
  for (const owned of [false, true]) {
    const d = decode('EndpointSlice', JSON.parse(JSON.stringify(slice)), owned);
    assert.deepEqual(d.endpoints[0]!.targetRef, { kind: 'Pod', namespace: 'ns', name: 'web-0' });
  }
});

test('decode shares one frozen conditions object between endpoints with the same conditions, copied or in place', () => {
  for (const owned of [false, true]) {
    const b = decode('EndpointSlice', structuredClone(slice), owned);
    const c = decode('EndpointSlice', structuredClone(slice), owned);
    assert.equal(b.endpoints[0]!.conditions, c.endpoints[0]!.conditions);
    assert.ok(Object.isFrozen(b.endpoints[0]!.conditions));
    assert.deepEqual(b.endpoints[0]!.conditions, slice.endpoints[0]!.conditions);
    const notReady = structuredClone(slice);
    notReady.endpoints[0]!.conditions.ready = false;
    assert.equal(decode('EndpointSlice', notReady, owned).endpoints[0]!.conditions?.ready, false);
    // A Node's conditions are a list of objects with timestamps: converted, never shared.
    const n = decode('Node', structuredClone(node), owned);
    assert.ok(n.status?.conditions?.[0]?.lastHeartbeatTime instanceof Date);
  }
});

/**
 * A script that fails on loading any module of @kubernetes/client-node (a resolve hook), then
 * loads the agent's module graph and runs `body` with createSource in scope.
 */
function withoutClientLibrary(body: string): string {
  const hook = `export async function resolve(s, c, next) { const r = await next(s, c);
    if (r.url.includes('/@kubernetes/client-node/')) throw new Error('client-node loaded: ' + s); return r; }`;
  return `
    import { register } from 'node:module';
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
    const { Agent } = await import(${JSON.stringify(resolve(here, '../../../src/agent/run.js'))});
    const { createSource } = await import(${JSON.stringify(resolve(here, '../../../src/sources/index.js'))});
    ${body}`;
}

test('the manifests source runs without loading the Kubernetes client', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-noclient-'));
  try {
    writeFileSync(join(dir, 'svc.yaml'), JSON.stringify(service));
    const script = withoutClientLibrary(`
      const src = await createSource({ kind: 'manifests', nodeName: 'node-a', dir: ${JSON.stringify(dir)} });
      await src.start();
      const n = src.services().length;
      await src.stop();
      console.log(typeof Agent, n);`);
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'function 1');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The library's module graph cost the agent ~45 MB of RSS in kube mode; the agent's own client
// (kubeclient.ts) does its lists, watches, Leases and status writes.
test('the kube source lists, watches and leads without loading the Kubernetes client library', async (t) => {
  const api = await FakeApiServer.start();
  t.after(() => api.stop());
  api.apply('services', svcObj('web', { clusterIP: '10.96.0.10' }));
  api.apply('nodes', nodeObj('node-a'));
  const script = withoutClientLibrary(`
    const src = await createSource({ kind: 'kube', nodeName: 'node-a', connection: { kubeconfig: ${JSON.stringify(await api.writeKubeconfig())} },
      leaderElection: { namespace: 'xlb-system', durationMs: 1000, renewMs: 100 } });
    await src.start();
    const listed = src.services().length;
    while (!src.leading) await new Promise((r) => setTimeout(r, 20));
    console.log('ready');
    while (src.services().length < 2) await new Promise((r) => setTimeout(r, 20));
    await src.stop();
    console.log(typeof Agent, listed, src.services().length);`);
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    if (out.includes('ready') && api.all('services').length === 1) api.apply('services', svcObj('db', { clusterIP: '10.96.0.11' }));
  });
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise((r) => child.on('exit', r));
  clearTimeout(timer);
  assert.equal(code, 0, err);
  assert.equal(out.trim().split('\n').pop(), 'function 1 2', 'listed one Service, then watched the second');
  assert.equal(api.all('leases').length, 1, 'the Lease was written');
});

test('decode of a parser\'s own objects converts them in place, to the same result as a copy', () => {
  for (const [kind, raw] of [['Service', service], ['EndpointSlice', slice], ['Node', node]] as const) {
    const mine = JSON.parse(JSON.stringify(raw)) as unknown;
    const out = decode(kind as KindName, mine, true);
    assert.equal(out, mine, 'no copy');
    assert.deepEqual(out, decode(kind as KindName, structuredClone(raw)));
  }
});
