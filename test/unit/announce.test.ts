// Announcing LoadBalancer addresses (src/agent/announce.ts) against a fake source and map, and
// the Lease timing it relies on (src/sources/lease.ts) against the wire-level fake API server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { KubeClient, readKubeconfig } from '../../src/sources/kubeclient.js';
import { Announcer } from '../../src/agent/announce.js';
import * as C from '../../src/datapath/codecs.js';
import { LeaseElector } from '../../src/sources/lease.js';
import { announceLeaseName } from '../../src/sources/kube.js';
import type { AnnounceCampaign, AnnounceHandlers, Source } from '../../src/sources/types.js';
import { EXCLUDE_LB_LABEL } from '../../src/model/announce.js';
import { FakeApiServer } from '../helpers/fake-apiserver.js';
import { waitFor } from '../helpers/manifests.js';

const silent = pino({ level: 'silent' });
const ADDR = '198.18.0.200';
const DEV = { ifindex: 7, name: 'eth0', mac: '02:00:00:00:00:07', cidrs: ['198.18.0.11/24'] };
const readyNode = (name: string, labels: Record<string, string> = {}, ready = 'True'): V1Node =>
  ({ metadata: { name, labels }, status: { conditions: [{ type: 'Ready', status: ready }] } });
const lb = (etp?: 'Local'): V1Service => ({
  metadata: { name: 'web', namespace: 'default' },
  spec: { type: 'LoadBalancer', externalTrafficPolicy: etp, ports: [{ port: 80 }] },
  status: { loadBalancer: { ingress: [{ ip: ADDR }] } },
});

class FakeMap {
  readonly entries = new Map<string, C.AnnounceValue>();
  readonly log: string[] = [];
  update(k: Buffer, v: Buffer): void { this.entries.set(C.decodeAnnounceKey(k), C.decodeAnnounceValue(v)); this.log.push(`update ${C.decodeAnnounceKey(k)}`); }
  delete(k: Buffer): void { this.entries.delete(C.decodeAnnounceKey(k)); this.log.push(`delete ${C.decodeAnnounceKey(k)}`); }
}

class FakeCampaign implements AnnounceCampaign {
  holding = false;
  holder = '';
  stopped: boolean | undefined;
  constructor(readonly h: AnnounceHandlers, private readonly log: string[]) {}
  win(validForMs: number): void { this.h.onRenew(validForMs); this.holding = true; this.h.onChange(true); }
  async stop(release = true): Promise<void> {
    this.log.push(`lease stop release=${release}`);
    this.stopped = release;
    if (this.holding) { this.holding = false; this.h.onChange(false); }
  }
}

function setup(o: { kube?: boolean; node?: V1Node; nodes?: V1Node[]; svc?: V1Service; slices?: V1EndpointSlice[]; dev?: typeof DEV } = {}) {
  const map = new FakeMap();
  const campaigns: FakeCampaign[] = [];
  const garps: string[] = [];
  const state = { enabled: true, node: o.node ?? readyNode('node1'), svc: o.svc ?? lb(), slices: o.slices ?? [] };
  const src = Object.assign(new EventEmitter(), {
    synced: true,
    services: () => [state.svc], service: () => state.svc, slices: () => state.slices, node: () => state.node,
    start: async () => undefined, stop: async () => undefined,
    ...(o.kube ? { announceLease: (_a: string, h: AnnounceHandlers) => { const c = new FakeCampaign(h, map.log); campaigns.push(c); return c; } } : { nodes: () => o.nodes ?? [state.node] }),
  }) as unknown as Source;
  const a = new Announcer({
    node: 'node1', source: src, obj: { map: () => map as never }, enabled: () => state.enabled, enabledByDefault: true,
    devices: () => [o.dev ?? DEV], leaseDurationMs: 3000, log: silent, sendGarp: (ifindex, mac, addr) => garps.push(`${ifindex} ${mac} ${addr}`),
  });
  const settle = async () => { a.sync(); await new Promise((r) => setTimeout(r, 20)); };
  return { a, map, campaigns, garps, state, settle };
}

test('kube: an eligible node campaigns; on winning it writes the entry (device, ARP, expiry from the Lease) and sends gratuitous ARP', async (t) => {
  const s = setup({ kube: true });
  t.after(() => s.a.stop());
  await s.settle();
  assert.equal(s.campaigns.length, 1);
  assert.equal(s.map.entries.size, 0, 'nothing answered before the Lease is won');
  const before = process.hrtime.bigint();
  s.campaigns[0].win(1200);
  const e = s.map.entries.get(ADDR);
  assert.ok(e);
  assert.equal(e.ifindex, 7);
  assert.equal(e.flags, C.ANNOUNCE_FLAG.arp);
  assert.ok(e.expires >= before + 1_200_000_000n && e.expires <= process.hrtime.bigint() + 1_200_000_000n, 'expires when the hold ends');
  assert.deepEqual(s.garps, [`7 ${DEV.mac} ${ADDR}`]);
  const [row] = s.a.list();
  assert.deepEqual({ ...row, since: row.since > 0 }, { addr: ADDR, services: ['default/web'], announcing: true, announcer: 'node1', why: 'eligible: ready, xlb on', device: 'eth0', since: true });
  assert.equal(s.a.takeovers, 1);
  s.campaigns[0].h.onRenew(900);
  assert.ok(s.map.entries.get(ADDR)!.expires < e.expires, 'a renewal rewrites the expiry');
});

test('kube: an IPv6 address is announced for NDP on the device whose IPv6 subnet holds it, with the takeover news sent', async (t) => {
  const addr = '2001:db8:18::200';
  const s = setup({ kube: true, dev: { ...DEV, cidrs: [...DEV.cidrs, '2001:db8:18::11/64'] }, svc: { ...lb(), status: { loadBalancer: { ingress: [{ ip: addr }] } } } });
  t.after(() => s.a.stop());
  await s.settle();
  s.campaigns[0].win(1200);
  const e = s.map.entries.get(addr);
  assert.ok(e, 'entry written');
  assert.equal(e.ifindex, 7);
  assert.equal(e.flags, C.ANNOUNCE_FLAG.ndp);
  assert.deepEqual(s.garps, [`7 ${DEV.mac} ${addr}`]);
  assert.equal(s.a.list()[0].device, 'eth0');
});

test('announce Lease names are DNS-1123 names for IPv4 and IPv6 addresses, distinct per address', () => {
  const names = ['198.18.0.200', '2001:db8::10', '2001:DB8:0::10', '2001:db8::', '2001:db8::0:0', '::ffff:c612:c8'].map(announceLeaseName);
  assert.deepEqual(names, [
    'xlb-announce-198-18-0-200', 'xlb-announce-2001-db8--10', 'xlb-announce-2001-db8--10', 'xlb-announce-2001-db8--0', 'xlb-announce-2001-db8--0', names[5],
  ]);
  for (const n of names) assert.match(n, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, n);
});

for (const [name, change] of [
  ['xlb toggled off', (st: ReturnType<typeof setup>['state']) => { st.enabled = false; }],
  ['Ready False', (st: ReturnType<typeof setup>['state']) => { st.node = readyNode('node1', {}, 'False'); }],
  ['labelled exclude-from-external-load-balancers', (st: ReturnType<typeof setup>['state']) => { st.node = readyNode('node1', { [EXCLUDE_LB_LABEL]: 'true' }); }],
  ['eTP Local and the last local endpoint gone', (st: ReturnType<typeof setup>['state']) => { st.svc = lb('Local'); st.slices = [{ addressType: 'IPv4', endpoints: [{ addresses: ['10.244.2.5'], nodeName: 'node2' }] }]; }],
] as const) {
  test(`kube: the holder becomes ineligible (${name}): entry deleted first, then the Lease released`, async (t) => {
    const s = setup({ kube: true });
    t.after(() => s.a.stop());
    await s.settle();
    s.campaigns[0].win(1200);
    s.map.log.length = 0;
    change(s.state);
    await s.settle();
    assert.deepEqual(s.map.log, [`delete ${ADDR}`, 'lease stop release=true']);
    assert.equal(s.a.list()[0].announcing, false);
    assert.notEqual(s.a.list()[0].why, 'eligible: ready, xlb on');
  });
}

test('kube: losing the Lease deletes the entry; stop deletes entries before releasing Leases', async () => {
  const s = setup({ kube: true });
  await s.settle();
  s.campaigns[0].win(1200);
  s.campaigns[0].holding = false;
  s.campaigns[0].h.onChange(false);
  assert.equal(s.map.entries.size, 0);
  s.campaigns[0].win(1200);
  s.map.log.length = 0;
  await s.a.stop();
  assert.deepEqual(s.map.log, [`delete ${ADDR}`, 'lease stop release=true']);
});

test('an address no device subnet holds is not announced (no campaign), and says why', async (t) => {
  const s = setup({ kube: true, svc: { ...lb(), status: { loadBalancer: { ingress: [{ ip: '203.0.113.9' }] } } } });
  t.after(() => s.a.stop());
  await s.settle();
  assert.equal(s.campaigns.length, 0);
  assert.equal(s.a.list()[0].why, 'no node device\'s subnet holds the address');
});

test('manifests: the first eligible Node of the directory holds the address; a Ready False Node is passed over', async (t) => {
  // node1 and node2 compete: one of them comes first for ADDR in the rendezvous order.
  const { announceOrder } = await import('../../src/model/announce.js');
  const first = announceOrder(ADDR, ['node1', 'node2'])[0];
  const other = first === 'node1' ? 'node2' : 'node1';
  const nodes = [readyNode('node1'), readyNode('node2')];
  const s = setup({ nodes });
  t.after(() => s.a.stop());
  await s.settle();
  assert.equal(s.map.entries.has(ADDR), first === 'node1');
  assert.equal(s.a.list()[0].announcer, first);
  // The first choice turns not Ready: the other one announces (here node1 is "this" node).
  nodes[first === 'node1' ? 0 : 1] = readyNode(first, {}, 'False');
  if (first === 'node1') s.state.node = nodes[0];
  await s.settle();
  assert.equal(s.a.list()[0].announcer, other);
  assert.equal(s.map.entries.has(ADDR), other === 'node1');
  if (other === 'node1') assert.equal(s.garps.length, 1, 'gratuitous ARP on takeover');
});

async function fakeApi(t: { after: (fn: () => Promise<void>) => void }) {
  const api = await FakeApiServer.start();
  const kc = new KubeClient(readKubeconfig(await api.writeKubeconfig()));
  t.after(() => api.stop());
  return kc;
}

test('lease: a crashed holder\'s last hold (onRenew) ends before the other candidate takes over', async (t) => {
  const kc = await fakeApi(t);
  const durationMs = 1000, renewMs = 333;
  const ends = new Map<string, number>();
  const won = new Map<string, number>();
  const els = ['node-a', 'node-b'].map((identity) => new LeaseElector(kc, {
    namespace: 'xlb-system', name: 'xlb-announce-198-18-0-200', identity, durationMs, renewMs, log: silent,
    onRenew: (ms) => ends.set(identity, Date.now() + ms),
    onChange: (l) => { if (l) won.set(identity, Date.now()); },
  }));
  t.after(() => Promise.all(els.map((e) => e.stop(false))).then(() => undefined));
  for (const e of els) e.start();
  await waitFor(() => els.some((e) => e.isLeader), 'a holder');
  const holder = els.find((e) => e.isLeader)!;
  const name = holder === els[0] ? 'node-a' : 'node-b';
  const next = name === 'node-a' ? 'node-b' : 'node-a';
  await new Promise((r) => setTimeout(r, 2 * renewMs));
  assert.ok(ends.get(name)! - Date.now() <= durationMs - renewMs, 'a hold never outlasts duration - renew');
  await holder.stop(false); // a crash: no release
  await waitFor(() => won.has(next), 'takeover', 5000);
  assert.ok(ends.get(name)! < won.get(next)!, `hold ended ${won.get(next)! - ends.get(name)!} ms before the takeover`);
});

test('lease: of two candidates for a free Lease, the one with the shorter acquire delay takes it', async (t) => {
  const kc = await fakeApi(t);
  for (const [i, delays] of [[0, [0, 400]], [1, [400, 0]]] as const) {
    const els = ['node-a', 'node-b'].map((identity, j) => new LeaseElector(kc, {
      namespace: 'xlb-system', name: `xlb-announce-test-${i}`, identity, durationMs: 3000, renewMs: 1000, log: silent,
      acquireDelayMs: delays[j], onChange: () => undefined,
    }));
    for (const e of els) e.start();
    await waitFor(() => els.some((e) => e.isLeader), 'a holder');
    assert.equal(els[0].isLeader, delays[0] === 0, `delays ${delays}`);
    await Promise.all(els.map((e) => e.stop(true)));
  }
});
