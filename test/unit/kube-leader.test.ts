// Kube mode's single writer: Lease election (coordination.k8s.io/v1), the LoadBalancer status
// writer and the Event recorder, each against the wire-level fake API server with the
// agent's own client (kubeclient.ts). Durations are short here; the production defaults are 15 s / 5 s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { KubeClient, readKubeconfig } from '../../src/sources/kubeclient.js';
import { KubeSource } from '../../src/sources/kube.js';
import { LeaseElector, microTime } from '../../src/sources/lease.js';
import { poolStatusWrites, statusWrites } from '../../src/sources/lbstatus.js';
import { EventRecorder } from '../../src/sources/events.js';
import { noAddressReason } from '../../src/sources/lbpools.js';
import { allocate } from '../../src/model/ipam.js';
import { FakeApiServer } from '../helpers/fake-apiserver.js';
import { ipPool, node, service, waitFor, type KObj } from '../helpers/manifests.js';

const silent = pino({ level: 'silent' });
type T = { after: (fn: () => Promise<void> | void) => void };

async function fake(t: T) {
  const api = await FakeApiServer.start();
  const kc = new KubeClient(readKubeconfig(await api.writeKubeconfig()));
  t.after(() => api.stop());
  return { api, kc };
}

function candidates(kc: KubeClient, names: string[], durationMs: number, renewMs: number) {
  const leading = new Map<string, boolean>();
  let both = 0;
  const els = names.map((identity) => new LeaseElector(kc, {
    namespace: 'xlb-system', name: 'xlb-lb-status', identity, durationMs, renewMs, log: silent,
    onChange: (l) => {
      leading.set(identity, l);
      if ([...leading.values()].filter(Boolean).length > 1) both++;
    },
  }));
  return { els, leading, overlaps: () => both };
}

for (const release of [false, true]) {
  test(`election: one of two candidates leads; when it stops${release ? ' (releasing the Lease)' : ' without releasing (a crash)'} the other takes over within the lease duration`, async (t) => {
    const { api, kc } = await fake(t);
    const durationMs = 1000, renewMs = 200;
    const c = candidates(kc, ['node-a', 'node-b'], durationMs, renewMs);
    t.after(() => Promise.all(c.els.map((e) => e.stop(false))).then(() => undefined));
    for (const e of c.els) e.start();
    await waitFor(() => c.els.some((e) => e.isLeader), 'a leader');
    await new Promise((r) => setTimeout(r, 3 * renewMs));
    assert.equal(c.els.filter((e) => e.isLeader).length, 1, 'exactly one leads');
    const lease = api.get('leases', 'xlb-lb-status', 'xlb-system')!;
    const first = c.els.find((e) => e.isLeader)!;
    const other = c.els.find((e) => e !== first)!;
    assert.equal(lease.spec.holderIdentity, first === c.els[0] ? 'node-a' : 'node-b');
    assert.equal(lease.spec.leaseDurationSeconds, 1);
    assert.match(lease.spec.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'MicroTime');
    const renewsBefore = api.requests.filter((r) => r.resource === 'leases' && r.verb === 'update').length;
    await new Promise((r) => setTimeout(r, 4 * renewMs));
    assert.ok(api.requests.filter((r) => r.resource === 'leases' && r.verb === 'update').length >= renewsBefore + 2, 'the holder renews');
    assert.equal(other.isLeader, false, 'a renewed lease is not taken over');

    const stopped = Date.now();
    await first.stop(release);
    await waitFor(() => other.isLeader, 'the other takes over', 5000);
    const took = Date.now() - stopped;
    // Within the lease duration of the stop (the production promise: 15 s), plus request slack.
    assert.ok(took <= (release ? 2 * renewMs : durationMs) + 150, `took over after ${took} ms`);
    if (!release) assert.ok(took >= durationMs - 2 * renewMs, `not before the lease could have expired (${took} ms)`);
    assert.equal(c.overlaps(), 0, 'never two leaders at once');
    assert.equal(api.get('leases', 'xlb-lb-status', 'xlb-system')!.spec.leaseTransitions, 1);
  });
}

test('election: a leader whose Lease another holder took stops leading at its next renewal', async (t) => {
  const { api, kc } = await fake(t);
  const c = candidates(kc, ['node-a'], 1000, 100);
  t.after(() => c.els[0]!.stop(false));
  c.els[0]!.start();
  await waitFor(() => c.els[0]!.isLeader, 'leading');
  const l = api.get('leases', 'xlb-lb-status', 'xlb-system')!;
  api.apply('leases', { ...l, spec: { ...l.spec, holderIdentity: 'node-z', renewTime: microTime(Date.now()) } });
  await waitFor(() => !c.els[0]!.isLeader, 'no longer leading', 1000);
});

function lb(name: string, created: string, extra: KObj = {}): KObj {
  const s = service(name, { type: 'LoadBalancer', clusterIP: `10.96.1.${name.length}` });
  s.metadata.creationTimestamp = created;
  return { ...s, ...extra };
}

test('statusWrites: only what differs; nothing without pools; foreign classes untouched; a type change releases; pool counts', () => {
  const pools = [ipPool('demo', ['198.18.0.10-198.18.0.11'])];
  const a = lb('a', '2026-01-01T00:00:00Z');
  const held = lb('held', '2026-01-02T00:00:00Z', { status: { loadBalancer: { ingress: [{ ip: '198.18.0.11', ipMode: 'VIP' }] } } });
  const foreign = lb('foreign', '2026-01-03T00:00:00Z', { status: { loadBalancer: { ingress: [{ ip: '203.0.113.1' }] } } });
  foreign.spec.loadBalancerClass = 'example.com/other';
  const was = { ...service('was', { clusterIP: '10.96.1.99' }), status: { loadBalancer: { ingress: [{ ip: '198.18.0.10', ipMode: 'VIP' }] } } };
  const outside = { ...service('outside', { clusterIP: '10.96.1.98' }), status: { loadBalancer: { ingress: [{ ip: '203.0.113.2' }] } } };
  const svcs = ([a, held, foreign, was, outside] as KObj[]).map((s) => ({ ...s, metadata: { ...s.metadata, resourceVersion: '7' } }));
  const alloc = allocate(svcs as never, pools);
  const w = statusWrites(svcs as never, pools, alloc);
  assert.deepEqual(w.map((x) => [x.key, x.ingress.map((i) => `${i.ip}/${i.ipMode}`), x.resourceVersion]), [
    ['default/a', ['198.18.0.10/VIP'], '7'],
    ['default/was', [], '7'],
  ]);
  assert.deepEqual(statusWrites(svcs as never, [], allocate(svcs as never, [])), [], 'no pool: xlb owns no status');
  assert.deepEqual(poolStatusWrites(pools as never, alloc).map((p) => [p.pool, p.status]), [['demo', { used: 2, free: '0', conflicts: [] }]]);
  const current = [{ ...pools[0], status: { used: 2, free: '0', conflicts: [] } }];
  assert.deepEqual(poolStatusWrites(current as never, alloc), [], 'a pool whose status is right is not written');
});

async function leaderSources(t: T, api: FakeApiServer, names: string[]) {
  const kubeconfig = await api.writeKubeconfig();
  const srcs = names.map((n) => new KubeSource({
    connection: { kubeconfig }, nodeName: n, backoff: { initialMs: 50, maxMs: 200, jitter: 0 }, log: silent,
    leaderElection: { namespace: 'xlb-system', durationMs: 1000, renewMs: 100, eventIntervalMs: 100 },
  }));
  t.after(async () => {
    for (const s of srcs) await s.stop();
  });
  await Promise.all(srcs.map((s) => s.start()));
  return srcs;
}

const statusPatches = (api: FakeApiServer) => api.requests.filter((r) => r.resource === 'services' && r.subresource === 'status');

test('status writer: of two agents only the leader writes, once; a no-op change writes nothing; losing the address writes an empty ingress', async (t) => {
  const api = await FakeApiServer.start();
  t.after(() => api.stop());
  api.apply('nodes', node('node-a'));
  api.apply('loadbalancerippools', ipPool('demo', ['198.18.0.10']));
  api.apply('services', lb('web', '2026-01-01T00:00:00Z'));
  const srcs = await leaderSources(t, api, ['node-a', 'node-b']);
  await waitFor(() => api.get('services', 'web')?.status?.loadBalancer?.ingress?.[0]?.ip === '198.18.0.10', 'address written');
  assert.deepEqual(api.get('services', 'web')!.status.loadBalancer.ingress, [{ ip: '198.18.0.10', ipMode: 'VIP' }]);
  await Promise.all(srcs.map((s) => s.settled()));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(statusPatches(api).length, 1, 'written once');
  assert.equal(srcs.filter((s) => s.leading).length, 1);
  assert.deepEqual(srcs.map((s) => s.leaderWork().statusWrites).sort(), [0, 1], 'by the leader only');
  assert.equal(statusPatches(api)[0]!.body?.metadata?.resourceVersion !== undefined, true, 'the write carries its resourceVersion precondition');
  await waitFor(() => api.get('loadbalancerippools', 'demo')?.status?.used === 1, 'pool status written');
  assert.deepEqual(api.get('loadbalancerippools', 'demo')!.status, { used: 1, free: '0', conflicts: [] });
  assert.equal(api.requests.filter((r) => r.resource === 'loadbalancerippools' && r.subresource === 'status').length, 1, 'pool status written once');

  // A label change: same address, nothing written.
  const cur = api.get('services', 'web')!;
  api.apply('services', { ...cur, metadata: { ...cur.metadata, labels: { tier: 'front' } } });
  await waitFor(() => srcs.every((s) => s.service('default/web')?.metadata?.labels?.tier === 'front'), 'label seen');
  await Promise.all(srcs.map((s) => s.settled()));
  assert.equal(statusPatches(api).length, 1, 'no write for a change that keeps the address');

  // The type changes away from LoadBalancer: the address is released.
  const now = api.get('services', 'web')!;
  api.apply('services', { ...now, spec: { ...now.spec, type: 'ClusterIP' } });
  await waitFor(() => (api.get('services', 'web')?.status?.loadBalancer?.ingress ?? []).length === 0, 'address released');
  await Promise.all(srcs.map((s) => s.settled()));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(statusPatches(api).length, 2, 'one release write');
  await waitFor(() => api.get('loadbalancerippools', 'demo')?.status?.used === 0, 'the pool counts the address free again');
});

test('status writer: after the leader stops, the new leader writes only what changed since', async (t) => {
  const api = await FakeApiServer.start();
  t.after(() => api.stop());
  api.apply('nodes', node('node-a'));
  api.apply('loadbalancerippools', ipPool('demo', ['198.18.0.10-198.18.0.11']));
  api.apply('services', lb('one', '2026-01-01T00:00:00Z'));
  const srcs = await leaderSources(t, api, ['node-a', 'node-b']);
  await waitFor(() => api.get('services', 'one')?.status?.loadBalancer?.ingress?.length === 1, 'one written');
  const first = srcs.find((s) => s.leading)!;
  const other = srcs.find((s) => s !== first)!;
  await first.stop();
  await waitFor(() => other.leading, 'the other leads', 3000);
  api.apply('services', lb('two', '2026-01-02T00:00:00Z'));
  await waitFor(() => api.get('services', 'two')?.status?.loadBalancer?.ingress?.[0]?.ip === '198.18.0.11', 'two written by the new leader');
  await other.settled();
  assert.equal(statusPatches(api).length, 2, 'one write per Service, none repeated by the new leader');
  assert.equal(other.leaderWork().statusWrites, 1);
});

test('events: one Event per object, reason and message; repeats raise its count, batched; the rate limit drops the excess', async (t) => {
  const { api, kc } = await fake(t);
  const svc = api.apply('services', service('web', { clusterIP: '10.96.0.10' }));
  const rec = new EventRecorder(kc, { host: 'node-a', log: silent, intervalMs: 150, burst: 4, refillMs: 60_000 });
  t.after(() => rec.stop());
  for (let i = 0; i < 5; i++) rec.record(svc as never, 'Warning', 'ExternalIPRefused', 'externalIP 203.0.113.9 refused: x');
  await rec.flush();
  await waitFor(() => api.all('events')[0]?.count === 5, 'count 5', 2000);
  const writes = api.requests.filter((r) => r.resource === 'events');
  assert.deepEqual(writes.map((r) => r.verb), ['create', 'patch'], 'one create, then one patch for the four repeats');
  const e = api.all('events')[0]!;
  assert.equal(e.type, 'Warning');
  assert.equal(e.reason, 'ExternalIPRefused');
  assert.deepEqual(e.involvedObject, { kind: 'Service', apiVersion: 'v1', namespace: 'default', name: 'web', uid: svc.metadata.uid, resourceVersion: svc.metadata.resourceVersion });
  assert.deepEqual(e.source, { component: 'xlb', host: 'node-a' });
  rec.record(svc as never, 'Warning', 'ExternalIPRefused', 'externalIP 203.0.113.10 refused: x');
  rec.record(svc as never, 'Warning', 'AllocationFailed', 'no free IPv4 address in pool demo');
  rec.record(svc as never, 'Warning', 'AllocationFailed', 'another message');
  await rec.flush();
  assert.equal(api.all('events').length, 3, 'each new message its own Event, until the bucket (4 writes) is empty');
  assert.equal(rec.dropped, 1);
});

test('a LoadBalancer Service that gets no address gets one AllocationFailed Event from the leader, not one per agent or per change', async (t) => {
  const api = await FakeApiServer.start();
  t.after(() => api.stop());
  api.apply('nodes', node('node-a'));
  api.apply('loadbalancerippools', ipPool('demo', ['198.18.0.10']));
  api.apply('services', lb('old', '2026-01-01T00:00:00Z'));
  api.apply('services', lb('new', '2026-01-02T00:00:00Z'));
  const srcs = await leaderSources(t, api, ['node-a', 'node-b']);
  const failed = () => api.all('events').filter((e) => e.reason === 'AllocationFailed');
  await waitFor(() => failed().length === 1, 'an AllocationFailed Event');
  const e = failed()[0]!;
  assert.equal(e.involvedObject.name, 'new');
  assert.equal(e.message, 'no free IPv4 address in pool demo');
  assert.equal(e.type, 'Warning');
  // The same failure through more changes of the Service: still one Event, one write.
  for (let i = 0; i < 3; i++) {
    const cur = api.get('services', 'new')!;
    api.apply('services', { ...cur, metadata: { ...cur.metadata, labels: { round: String(i) } } });
  }
  await waitFor(() => srcs.every((s) => s.service('default/new')?.metadata?.labels?.round === '2'), 'changes seen');
  await Promise.all(srcs.map((s) => s.settled()));
  assert.equal(failed().length, 1);
  assert.equal(api.requests.filter((r) => r.resource === 'events' && r.verb !== 'get').length, 1, 'one Event write in all');
  // xlb services shows the same reason on every agent.
  for (const s of srcs) assert.equal(noAddressReason(s.service('default/new')!), e.message);
});
