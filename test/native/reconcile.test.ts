// The reconciler against the real kernel: Services from Kubernetes objects (through
// translate()) programmed into xlb.o's pinned maps, asserted on the decoded map contents and
// on the order of the writes (DESIGN §3: no packet may see a half-built Service).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { BpfMap, loadObject, possibleCpus, type BpfObject, type LoadOptions } from '../../src/datapath/bpf.js';
import * as C from '../../src/datapath/codecs.js';
import { Reconciler, mapsOf, type ReconcilerMaps } from '../../src/datapath/reconcile.js';
import { sweepConntrack } from '../../src/datapath/ctgc.js';
import { translate } from '../../src/model/translate.js';
import { maglevTable } from '../../src/model/maglev.js';
import type { FrontendSpec, ServiceSpec } from '../../src/model/types.js';
import { NODE, ep, slice, svc } from '../unit/model.fixtures.js';
import { bpffsDir, objPath } from './util.js';

const M = 251; // a small prime keeps Maglev tables cheap to read back
const NODE_INFO = { name: NODE, addresses: ['192.0.2.10'], labels: {} };
// The backends ARRAY is read whole on adoption; a small one keeps restarts fast here.
const SIZES: LoadOptions['maxEntries'] = { backends: 4096, ct: 4096 };

let seq = 0;
async function open(t: TestContext, sizes: LoadOptions['maxEntries'] = SIZES): Promise<{ obj: BpfObject; pin: string; reload: () => Promise<BpfObject> }> {
  const dir = bpffsDir(`rec${seq++}`);
  const objs: BpfObject[] = [];
  const load = async (): Promise<BpfObject> => {
    const o = await loadObject(objPath('xlb'), { pinPath: dir.path, maxEntries: sizes });
    objs.push(o);
    return o;
  };
  t.after(() => {
    for (const o of objs) o.close();
    dir.cleanup();
  });
  return { obj: await load(), pin: dir.path, reload: load };
}

function reconciler(maps: ReconcilerMaps): Reconciler {
  return new Reconciler(maps, { maglevM: M, cpus: possibleCpus() });
}

function specOf(service: V1Service, slices: V1EndpointSlice[]): ServiceSpec {
  const r = translate(service, slices, NODE_INFO, { nodeName: NODE });
  assert.ok(r.ok, `translate: ${r.ok ? '' : r.skipped}`);
  return r.service;
}

const http = [{ name: 'http', port: 8080, protocol: 'TCP' }];

function lbService(name: string, ips: string[]): { svc: V1Service; slices: (addrs: string[]) => V1EndpointSlice[] } {
  return {
    svc: svc({
      type: 'LoadBalancer', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'],
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }],
      loadBalancerSourceRanges: ['198.51.100.0/24'],
    }, { name, ingress: [{ ip: ips[0] }] }),
    slices: (addrs) => [slice(`${name}-1`, http, addrs.map((a, i) => ep(a, { ready: true, node: i === 0 ? NODE : 'node-b' })), { service: name })],
  };
}

function clusterService(name: string, ip: string, addrs: string[]): { svc: V1Service; slices: V1EndpointSlice[] } {
  return {
    svc: svc({ clusterIP: ip, clusterIPs: [ip] }, { name }),
    slices: [slice(`${name}-1`, http, addrs.map((a) => ep(a, { ready: true, node: 'node-b' })), { service: name })],
  };
}

// ---- reading the maps back ----

const feText = (k: C.SvcKey): string => `${k.addr ?? '*'}|${k.port}|${k.proto}|${k.scope}`;

function servicesOf(obj: BpfObject): Map<string, C.SvcValue> {
  const out = new Map<string, C.SvcValue>();
  for (const [k, v] of obj.map(C.MAP.services).entries()) out.set(feText(C.decodeSvcKey(k)), C.decodeSvcValue(v));
  return out;
}

function backendsOf(obj: BpfObject): Map<number, C.BackendValue> {
  const out = new Map<number, C.BackendValue>();
  for (const [k, v] of obj.map(C.MAP.backends).entries()) {
    const b = C.decodeBackendValue(v);
    if (b) out.set(C.decodeBackendKey(k), b);
  }
  return out;
}

function idOfBackend(obj: BpfObject, addr: string, port: number): number {
  for (const [id, b] of backendsOf(obj)) if (b.addr === addr && b.port === port) return id;
  assert.fail(`no backend ${addr}:${port}`);
}

function slotsOf(obj: BpfObject, svcId: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const [k, v] of obj.map(C.MAP.slots).entries()) {
    const key = C.decodeSlotKey(k);
    if (key.svcId === svcId) out.set(key.slot, C.decodeSlotValue(v));
  }
  return out;
}

async function maglevOf(obj: BpfObject, svcId: number): Promise<Uint32Array | null> {
  const id = obj.map(C.MAP.maglev).innerId(C.encodeMaglevKey(svcId));
  if (id === null) return null;
  const inner = BpfMap.fromId(id);
  try {
    const { keys, values, count } = await inner.lookupBatch();
    const table = new Uint32Array(count);
    for (let i = 0; i < count; i++) table[keys.readUInt32LE(i * 4)] = values.readUInt32LE(i * 4);
    return table;
  } finally {
    inner.close();
  }
}

function srcRangesOf(obj: BpfObject): string[] {
  return obj.map(C.MAP.srcRanges).keys().map((k) => { const r = C.decodeSrcRangeKey(k); return `${r.svcId} ${r.cidr}`; }).sort();
}

const feOf = (f: FrontendSpec): string => feText({ addr: f.addr, port: f.port, proto: f.proto, scope: f.scope });

// ---- a recording view of the maps ----

interface Op { map: keyof ReconcilerMaps; op: string; key?: Buffer; value?: Buffer }

// Writes by the element op they perform: the async variants as their synchronous op, a
// map-in-map batch as one setInner/delete per key; updateBatch keeps its name but is also
// logged per key (each key is its own write to a packet reading the map).
const RECORDED: Record<string, string> = {
  update: 'update', delete: 'delete', deleteAsync: 'delete', updateBatch: 'updateBatch', deleteBatch: 'delete',
  setInner: 'setInner', setInnerAsync: 'setInner', setInnerBatch: 'setInner',
};
const BATCHED = new Set(['updateBatch', 'deleteBatch', 'setInnerBatch']);

function opsOf(map: keyof ReconcilerMaps, m: BpfMap, op: string, args: unknown[]): Op[] {
  if (!BATCHED.has(op)) return [{ map, op: RECORDED[op], key: args[0] as Buffer, value: args[1] as Buffer }];
  const keys = args[0] as Buffer;
  const ks = m.keySize, vs = m.valueBytes;
  return Array.from({ length: keys.length / ks }, (_, i) => ({
    map, op: RECORDED[op], key: keys.subarray(i * ks, (i + 1) * ks),
    value: op === 'updateBatch' ? (args[1] as Buffer).subarray(i * vs, (i + 1) * vs) : undefined,
  }));
}

function recording(maps: ReconcilerMaps): { maps: ReconcilerMaps; log: Op[]; calls: string[] } {
  const log: Op[] = [];
  /** every write call as made, e.g. 'maglev.setInnerBatch' */
  const calls: string[] = [];
  const wrap = (name: keyof ReconcilerMaps, m: BpfMap): BpfMap => new Proxy(m, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (String(prop) in RECORDED) {
          calls.push(`${name}.${String(prop)}`);
          log.push(...opsOf(name, target, String(prop), args));
        }
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const out = {} as ReconcilerMaps;
  for (const [k, m] of Object.entries(maps) as [keyof ReconcilerMaps, BpfMap][]) out[k] = wrap(k, m);
  return { maps: out, log, calls };
}

const PHASE: Partial<Record<keyof ReconcilerMaps, number>> = { backends: 1, slots: 2, maglev: 2, revnat: 3, srcRanges: 4, services: 5 };

/** svc_id an op is about (slots/maglev/revnat/src_ranges keys, services values), if any. */
function svcIdOfOp(o: Op): number | undefined {
  if (o.map === 'slots' && o.op === 'updateBatch') return o.key!.readUInt32LE(0);
  if (o.map === 'slots' || o.map === 'maglev' || o.map === 'revnat') return o.key!.readUInt32LE(0);
  if (o.map === 'srcRanges') return o.key!.readUInt32LE(4);
  if (o.map === 'services' && o.op === 'update') return C.decodeSvcValue(o.value!).svcId;
  return undefined;
}

// ---- tests ----

test('a LoadBalancer Service: both scopes, selectable slots, Maglev tables, revnat, source ranges, backend states', async (t) => {
  const { obj } = await open(t);
  const rec = reconciler(mapsOf(obj));
  const lb = lbService('web', ['203.0.113.7']);
  const slices = [slice('web-1', http, [
    ep('10.244.1.5', { ready: true, node: NODE }),
    ep('10.244.2.6', { ready: true, node: 'node-b' }),
    ep('10.244.2.7', { ready: false, node: 'node-b' }),
  ])];
  const spec = specOf(lb.svc, slices);
  const res = await rec.apply(spec.key, spec);
  assert.deepEqual(res.errors, []);
  assert.equal(res.ok, true);
  assert.equal(res.frontends, 6, 'ClusterIP, NodePort and LB IP, each internal and external');

  const backends = backendsOf(obj);
  assert.deepEqual(
    [...backends.values()].map((b) => `${b.addr}:${b.port} ${b.state} ${b.local ? 'local' : 'remote'}`).sort(),
    ['10.244.1.5:8080 active local', '10.244.2.6:8080 active remote', '10.244.2.7:8080 draining remote'],
  );

  const services = servicesOf(obj);
  assert.deepEqual([...services.keys()].sort(), [
    '*|30080|TCP|external', '*|30080|TCP|internal',
    '10.96.0.10|80|TCP|external', '10.96.0.10|80|TCP|internal',
    '203.0.113.7|80|TCP|external', '203.0.113.7|80|TCP|internal',
  ]);
  const ids = new Set([...services.values()].map((v) => v.svcId));
  assert.equal(ids.size, 6, 'every frontend has its own svc_id');

  const wantRanges: string[] = [];
  for (const f of spec.frontends) {
    const v = services.get(feOf(f))!;
    const selectable = f.backends.filter((b) => b.selectable);
    assert.equal(selectable.length, 2, 'the not-ready endpoint is never selectable');
    assert.equal(v.count, 2, `${feOf(f)} count`);
    assert.equal(!!(v.flags & C.SVC_FLAG.maglev), f.scope === 'external' && f.type !== 'ClusterIP', `${feOf(f)} maglev flag`);
    assert.equal(!!(v.flags & C.SVC_FLAG.nodePort), f.addr === null, `${feOf(f)} nodePort flag`);
    assert.equal(!!(v.flags & C.SVC_FLAG.srcRanges), f.type !== 'ClusterIP', `${feOf(f)} src_ranges flag`);
    const selIds = selectable.map((b) => idOfBackend(obj, b.addr, b.port));
    if (!f.maglev) {
      const slots = slotsOf(obj, v.svcId);
      assert.deepEqual([...slots.keys()].sort(), [0, 1], 'slots 0..count-1 only');
      assert.deepEqual([...slots.values()].sort(), [...selIds].sort(), 'slots hold exactly the selectable backends');
      assert.equal(await maglevOf(obj, v.svcId), null);
    } else {
      assert.equal(slotsOf(obj, v.svcId).size, 0);
      const want = maglevTable(selectable.map((b, i) => ({ id: selIds[i], key: `${b.addr}:${b.port}`, weight: b.weight })), M);
      assert.deepEqual(await maglevOf(obj, v.svcId), want, `${feOf(f)} Maglev table`);
    }
    const rv = obj.map(C.MAP.revnat).lookup(C.encodeRevnatKey(v.svcId));
    assert.deepEqual(rv && C.decodeRevnatValue(rv), { addr: f.addr, port: f.port });
    if (f.type !== 'ClusterIP') wantRanges.push(`${v.svcId} 198.51.100.0/24`);
  }
  assert.deepEqual(srcRangesOf(obj), wantRanges.sort(), 'source ranges guard the LB IP and the NodePort, both scopes');
  assert.deepEqual(rec.entryCounts(), entriesIn(obj), 'the counts `xlb status` shows are what the maps hold');
});

test('write order: backends, tables, revnat, src_ranges, then the services entry; shrink writes count first; removal deletes the entry first', async (t) => {
  const { obj } = await open(t);
  const { maps, log } = recording(mapsOf(obj));
  const rec = reconciler(maps);
  const lb = lbService('web', ['203.0.113.7']);

  const spec = specOf(lb.svc, lb.slices(['10.244.1.5', '10.244.2.6', '10.244.2.7']));
  assert.equal((await rec.apply(spec.key, spec)).ok, true);
  const writes = log.filter((o) => PHASE[o.map] !== undefined);
  assert.equal(writes.filter((o) => o.map === 'backends').length, 3);
  assert.ok(writes.slice(0, 3).every((o) => o.map === 'backends'), 'new backends come first');
  // Each frontend is one run of non-decreasing phases that ends with its services entry.
  let last = 0;
  let entries = 0;
  for (const o of writes) {
    const p = PHASE[o.map]!;
    assert.ok(p >= last, `${o.map}.${o.op} after a phase-${last} write`);
    last = p === 5 ? 0 : p;
    if (p === 5) {
      entries++;
      assert.equal(o.op, 'update');
      const id = C.decodeSvcValue(o.value!).svcId;
      const before = writes.slice(0, writes.indexOf(o));
      assert.ok(before.some((b) => b.map === 'revnat' && svcIdOfOp(b) === id), 'revnat before the entry');
      assert.ok(before.some((b) => (b.map === 'slots' || b.map === 'maglev') && svcIdOfOp(b) === id), 'table before the entry');
    }
  }
  assert.equal(entries, 6);
  assert.equal(last, 0, 'nothing is written after the last services entry');

  // Shrink: 3 -> 2 endpoints.
  log.length = 0;
  const internal = servicesOf(obj).get('10.96.0.10|80|TCP|internal')!;
  const external = servicesOf(obj).get('203.0.113.7|80|TCP|external')!;
  const gone = idOfBackend(obj, '10.244.2.7', 8080);
  const small = specOf(lb.svc, lb.slices(['10.244.1.5', '10.244.2.6']));
  assert.equal((await rec.apply(small.key, small)).ok, true);
  const countAt = log.findIndex((o) => o.map === 'services' && o.op === 'update' && C.decodeSvcValue(o.value!).svcId === internal.svcId);
  const slotDel = log.findIndex((o) => o.map === 'slots' && o.op === 'delete' && C.decodeSlotKey(o.key!).svcId === internal.svcId);
  assert.ok(countAt >= 0 && slotDel >= 0, 'count rewritten and the extra slot deleted');
  assert.equal(C.decodeSvcValue(log[countAt].value!).count, 2);
  assert.equal(C.decodeSlotKey(log[slotDel].key!).slot, 2);
  assert.ok(countAt < slotDel, 'count shrinks before the slot it no longer covers goes');
  const swap = log.findIndex((o) => o.map === 'maglev' && o.op === 'setInner' && svcIdOfOp(o) === external.svcId);
  const extCount = log.findIndex((o) => o.map === 'services' && o.op === 'update' && C.decodeSvcValue(o.value!).svcId === external.svcId);
  assert.ok(swap >= 0 && swap < extCount, 'the new Maglev table is in place before the count changes');
  const retire = log.findIndex((o) => o.map === 'backends' && o.key!.readUInt32LE(0) === gone);
  assert.ok(retire > countAt, 'the removed backend is marked draining only after no slot names it');
  assert.equal(backendsOf(obj).get(gone)?.state, 'draining');
  assert.equal(slotsOf(obj, internal.svcId).size, 2);

  // No endpoints left: count 0 (the datapath rejects) before the table goes.
  log.length = 0;
  const none = specOf(lb.svc, lb.slices([]));
  assert.equal((await rec.apply(none.key, none)).ok, true);
  const zeroAt = log.findIndex((o) => o.map === 'services' && o.op === 'update' && C.decodeSvcValue(o.value!).svcId === external.svcId);
  const dropAt = log.findIndex((o) => o.map === 'maglev' && o.op === 'delete' && svcIdOfOp(o) === external.svcId);
  assert.equal(C.decodeSvcValue(log[zeroAt].value!).count, 0);
  assert.ok(zeroAt >= 0 && dropAt > zeroAt, 'count 0 is written before the Maglev table is removed');
  assert.equal(await maglevOf(obj, external.svcId), null);
  assert.equal(slotsOf(obj, internal.svcId).size, 0);
  assert.ok([...backendsOf(obj).values()].every((b) => b.state === 'draining'));

  // Removal: every frontend's entry goes before its parts.
  await rec.apply(small.key, small);
  log.length = 0;
  const before = servicesOf(obj);
  assert.equal((await rec.apply(spec.key, undefined)).ok, true);
  assert.equal(servicesOf(obj).size, 0);
  for (const v of before.values()) {
    const entry = log.findIndex((o) => o.map === 'services' && o.op === 'delete' && svcIdOfOpDeleted(o, before) === v.svcId);
    const parts = log.findIndex((o) => o.map !== 'services' && o.map !== 'backends' && svcIdOfOp(o) === v.svcId);
    assert.ok(entry >= 0 && parts > entry, `svc_id ${v.svcId}: entry deleted first`);
  }
  assert.equal(log[0].map, 'services');
  assert.equal(obj.map(C.MAP.slots).keys().length + obj.map(C.MAP.revnat).keys().length + obj.map(C.MAP.srcRanges).keys().length, 0);
  assert.equal(obj.map(C.MAP.maglev).keys().length, 0);
});

function svcIdOfOpDeleted(o: Op, before: Map<string, C.SvcValue>): number | undefined {
  return before.get(feText(C.decodeSvcKey(o.key!)))?.svcId;
}

test('ids are stable across a restart: adopted state needs no writes, and prune() removes what no Service claims', async (t) => {
  const { obj, reload } = await open(t);
  const lb = lbService('web', ['203.0.113.7']);
  const specs = [
    specOf(lb.svc, lb.slices(['10.244.1.5', '10.244.2.6'])),
    (() => { const c = clusterService('api', '10.96.0.20', ['10.244.3.1', '10.244.3.2', '10.244.3.3']); return specOf(c.svc, c.slices); })(),
  ];
  const old = clusterService('old', '10.96.0.30', ['10.244.4.1']);
  const oldSpec = specOf(old.svc, old.slices);
  const first = reconciler(mapsOf(obj));
  for (const s of [...specs, oldSpec]) assert.equal((await first.apply(s.key, s)).ok, true);
  const servicesBefore = servicesOf(obj);
  const backendsBefore = backendsOf(obj);
  const oldBackend = idOfBackend(obj, '10.244.4.1', 8080);
  obj.close();

  const obj2 = await reload();
  assert.ok(obj2.reused.includes(C.MAP.services) && obj2.reused.includes(C.MAP.backends));
  const { maps, log } = recording(mapsOf(obj2));
  const rec = reconciler(maps);
  assert.deepEqual(await rec.adoptPinned(), { frontends: 10, backends: 6 });
  for (const s of specs) {
    const r = await rec.apply(s.key, s);
    assert.equal(r.ok, true);
    assert.equal(r.frontends, s.frontends.length);
  }
  assert.deepEqual(log.map((o) => `${o.map}.${o.op}`), [], 'unchanged Services cause no map writes');
  for (const s of specs) {
    for (const f of s.frontends) assert.equal(rec.svcIdOf(f), servicesBefore.get(feOf(f))!.svcId, `${feOf(f)} keeps its svc_id`);
  }
  assert.deepEqual(backendsOf(obj2), backendsBefore, 'backend ids and values unchanged');

  assert.equal(rec.prune(), 2, 'the old ClusterIP Service had two frontends');
  const after = servicesOf(obj2);
  assert.deepEqual([...after.keys()].filter((k) => k.startsWith('10.96.0.30')), []);
  assert.equal(after.size, 8);
  for (const s of specs) for (const f of s.frontends) assert.ok(after.has(feOf(f)));
  assert.equal(backendsOf(obj2).get(oldBackend)?.state, 'draining', 'its backend drains until conntrack forgets it');
  assert.equal(rec.reapRetired(new Set()), 1);
  assert.equal(backendsOf(obj2).get(oldBackend), undefined);

  // A changed endpoint after adoption touches only what changed.
  log.length = 0;
  const c = clusterService('api', '10.96.0.20', ['10.244.3.1', '10.244.3.2', '10.244.3.9']);
  const r = await rec.apply('default/api', specOf(c.svc, c.slices));
  assert.equal(r.ok, true);
  const slotWrites = log.filter((o) => o.map === 'slots' && o.op === 'update');
  assert.deepEqual(slotWrites.map((w) => w.key!.readUInt32LE(4)), [2, 2], 'both frontends of the ClusterIP use slots: one slot rewritten each');
  assert.equal(log.filter((o) => o.map === 'services').length, 0, 'same count and flags: the entry stays as it is');
  assert.deepEqual(rec.entryCounts(), entriesIn(obj2), 'adopted, pruned and changed: the counts are what the maps hold');
});

function entriesIn(obj: BpfObject): ReturnType<Reconciler['entryCounts']> {
  const n = (name: string) => obj.map(name).keys().length;
  return { services: n(C.MAP.services), slots: n(C.MAP.slots), maglev: n(C.MAP.maglev), srcRanges: n(C.MAP.srcRanges) };
}

test('a Service that does not fit fails alone; it is programmed once there is room', async (t) => {
  const { obj } = await open(t, { ...SIZES, services: 4 });
  const rec = reconciler(mapsOf(obj));
  const mk = (n: string, ip: string, addr: string) => { const c = clusterService(n, ip, [addr]); return specOf(c.svc, c.slices); };
  const a = mk('a', '10.96.1.1', '10.244.5.1');
  const b = mk('b', '10.96.1.2', '10.244.5.2');
  const c = mk('c', '10.96.1.3', '10.244.5.3');
  assert.equal((await rec.apply(a.key, a)).ok, true);
  const rc = await rec.apply(c.key, c);
  // c took the last two places; b finds the map full.
  assert.equal(rc.ok, true);
  const rb = await rec.apply(b.key, b);
  assert.equal(rb.ok, false);
  assert.equal(rb.frontends, 0);
  assert.equal(rb.errors.length, 2);
  for (const e of rb.errors) assert.match(e, /E2BIG|ENOSPC/);
  const keys = [...servicesOf(obj).keys()].sort();
  assert.deepEqual(keys, ['10.96.1.1|80|TCP|external', '10.96.1.1|80|TCP|internal', '10.96.1.3|80|TCP|external', '10.96.1.3|80|TCP|internal']);

  assert.equal((await rec.apply(a.key, undefined)).ok, true);
  const again = await rec.apply(b.key, b);
  assert.deepEqual(again.errors, []);
  assert.equal(again.frontends, 2);
  const v = servicesOf(obj).get('10.96.1.2|80|TCP|internal');
  assert.equal(v?.count, 1, 'the retried Service is complete');
  assert.equal(slotsOf(obj, v.svcId).get(0), idOfBackend(obj, '10.244.5.2', 8080));
});

test('retired backends drain while conntrack names them, come back with their id, and are reaped after', async (t) => {
  const { obj } = await open(t);
  const rec = reconciler(mapsOf(obj));
  const cfg = { ...C.DEFAULT_CONFIG };
  const ct = obj.map(C.MAP.ct);
  const ctFill = obj.map(C.MAP.ctFill);
  const both = clusterService('web', '10.96.0.10', ['10.244.1.5', '10.244.1.6']);
  const one = clusterService('web', '10.96.0.10', ['10.244.1.5']);
  const specBoth = specOf(both.svc, both.slices);
  const specOne = specOf(one.svc, one.slices);
  await rec.apply(specBoth.key, specBoth);
  const id = idOfBackend(obj, '10.244.1.6', 8080);
  const svcId = servicesOf(obj).get('10.96.0.10|80|TCP|internal')!.svcId;

  const now = process.hrtime.bigint();
  const key = C.encodeCtKey({ saddr: '10.244.9.9', daddr: '10.96.0.10', sport: 40000, dport: 80, proto: 'TCP' });
  const flow = (lastSeen: bigint): Buffer => C.encodeCtValue({
    natAddr: '10.244.1.6', origAddr: '10.96.0.10', natPort: 8080, origPort: 80, backendId: id, svcId,
    state: 'established', flags: 0, lastSeen, created: lastSeen,
  });
  ct.update(key, flow(now));

  await rec.apply(specOne.key, specOne);
  assert.equal(backendsOf(obj).get(id)?.state, 'draining');
  assert.deepEqual([...slotsOf(obj, svcId).values()], [idOfBackend(obj, '10.244.1.5', 8080)]);
  let sweep = await sweepConntrack(ct, ctFill, cfg, now);
  assert.ok(sweep.liveBackends.has(id));
  assert.equal(rec.reapRetired(sweep.liveBackends), 0, 'a live flow keeps its backend');
  assert.equal(backendsOf(obj).get(id)?.addr, '10.244.1.6');

  await rec.apply(specBoth.key, specBoth);
  assert.equal(idOfBackend(obj, '10.244.1.6', 8080), id, 're-added endpoint gets its old id');
  assert.equal(backendsOf(obj).get(id)?.state, 'active');
  assert.equal(rec.retiredCount(), 0);

  await rec.apply(specOne.key, specOne);
  assert.equal(rec.retiredCount(), 1);
  const later = now + BigInt(cfg.tcpEstTimeout + 1) * 1_000_000_000n;
  sweep = await sweepConntrack(ct, ctFill, cfg, later);
  assert.equal(sweep.expired, 1);
  assert.ok(!sweep.liveBackends.has(id));
  assert.equal(rec.reapRetired(sweep.liveBackends), 1);
  assert.equal(backendsOf(obj).has(id), false, 'reaped: the entry reads as no backend');
  assert.equal(rec.retiredCount(), 0);
  assert.equal(rec.reapRetired(new Set()), 0);
});

test('sweepConntrack deletes idle flows (both entries), credits ct_fill[1], reports live backends', async (t) => {
  const { obj } = await open(t);
  const ct = obj.map(C.MAP.ct);
  const ctFill = obj.map(C.MAP.ctFill);
  const cfg = { ...C.DEFAULT_CONFIG, udpTimeout: 30 };
  const now = 1_000_000_000_000n;
  const stale = now - 31n * 1_000_000_000n;
  const fresh = now - 1_000_000_000n;
  // client 10.0.0.N:5000+N -> frontend 10.96.0.10:53 -> backend 10.244.1.N:53 (UDP)
  const put = (n: number, fwd: bigint | null, rep: bigint | null): void => {
    const client = `10.0.0.${n}`, backend = `10.244.1.${n}`;
    const base = { svcId: 1, backendId: 100 + n, state: 'udp' as const, created: stale };
    if (fwd !== null) {
      ct.update(C.encodeCtKey({ saddr: client, daddr: '10.96.0.10', sport: 5000 + n, dport: 53, proto: 'UDP' }),
        C.encodeCtValue({ ...base, natAddr: backend, origAddr: '10.96.0.10', natPort: 53, origPort: 53, flags: 0, lastSeen: fwd }));
    }
    if (rep !== null) {
      ct.update(C.encodeCtKey({ saddr: backend, daddr: client, sport: 53, dport: 5000 + n, proto: 'UDP' }),
        C.encodeCtValue({ ...base, natAddr: '10.96.0.10', origAddr: client, natPort: 53, origPort: 5000 + n, flags: C.CT_FLAG.reply, lastSeen: rep }));
    }
  };
  put(1, stale, stale); // idle: both go
  put(2, fresh, fresh); // live
  put(3, stale, fresh); // one-way stream from the backend: still a live flow
  put(4, null, stale); // forward half evicted by LRU: the rest goes, one flow released
  put(5, fresh, null); // reply half evicted, forward live
  ctFill.update(C.encodeCtFillKey(0), C.encodeCtFillValue(20n));
  ctFill.update(C.encodeCtFillKey(1), C.encodeCtFillValue(5n));

  const r = await sweepConntrack(ct, ctFill, cfg, now);
  assert.equal(r.scanned, 8);
  assert.equal(r.expired, 3);
  assert.equal(r.entries, 5);
  assert.deepEqual([...r.liveBackends].sort(), [102, 103, 105]);
  assert.equal(ct.keys().length, 5);
  const left = ct.keys().map((k) => C.decodeCtKey(k)).map((k) => `${k.saddr}>${k.daddr}`).sort();
  assert.deepEqual(left, ['10.0.0.2>10.96.0.10', '10.0.0.3>10.96.0.10', '10.0.0.5>10.96.0.10', '10.244.1.2>10.0.0.2', '10.244.1.3>10.0.0.3']);
  assert.equal(C.decodeCtFillValue(ctFill.lookup(C.encodeCtFillKey(1))!), 7n, 'two flows released');

  // Never credits past what the datapath admitted (LRU evictions are not reported).
  put(6, stale, stale);
  put(7, stale, stale);
  ctFill.update(C.encodeCtFillKey(0), C.encodeCtFillValue(8n));
  await sweepConntrack(ct, ctFill, cfg, now);
  assert.equal(C.decodeCtFillValue(ctFill.lookup(C.encodeCtFillKey(1))!), 8n);
});

// ---- many Services at once ----

function lbNamed(name: string, i: number, addrs: string[], ports = [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30100 + i }]): ServiceSpec {
  const s = svc({ type: 'LoadBalancer', clusterIP: `10.96.1.${i}`, clusterIPs: [`10.96.1.${i}`], ports },
    { name, ingress: [{ ip: `203.0.113.${i}` }] });
  const epPorts = ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: 'TCP' }));
  return specOf(s, [slice(`${name}-1`, epPorts, addrs.map((a, j) => ep(a, { ready: true, node: j % 2 ? 'node-b' : NODE })), { service: name })]);
}

function clusterNamed(name: string, ip: string, addrs: string[]): ServiceSpec {
  const c = clusterService(name, ip, addrs);
  return specOf(c.svc, c.slices);
}

/** Every map the reconciler writes, decoded; Maglev tables by content (inner ids differ between runs). */
async function snapshot(obj: BpfObject): Promise<Record<string, unknown>> {
  const services = [...servicesOf(obj)].sort();
  const tables: Array<[number, number[]]> = [];
  for (const k of obj.map(C.MAP.maglev).keys()) tables.push([k.readUInt32LE(0), [...(await maglevOf(obj, k.readUInt32LE(0)))!]]);
  const all = (name: string): string[] => obj.map(name).entries().map(([k, v]) => `${k.toString('hex')}=${v.toString('hex')}`).sort();
  return {
    services, backends: [...backendsOf(obj)].sort((a, b) => a[0] - b[0]),
    slots: all(C.MAP.slots), revnat: all(C.MAP.revnat), srcRanges: srcRangesOf(obj), maglev: tables.sort((a, b) => a[0] - b[0]),
  };
}

/** No packet can find an entry without its table, and no table or slot outlives its entry. */
function assertConsistent(obj: BpfObject): void {
  const bySvcId = new Map([...servicesOf(obj).values()].map((v) => [v.svcId, v]));
  for (const v of bySvcId.values()) {
    const hasTable = obj.map(C.MAP.maglev).innerId(C.encodeMaglevKey(v.svcId)) !== null;
    if (v.flags & C.SVC_FLAG.maglev) assert.equal(hasTable, v.count > 0, `svc_id ${v.svcId}: a table exactly when count > 0`);
    else assert.equal(slotsOf(obj, v.svcId).size, v.count, `svc_id ${v.svcId}: slots 0..count-1`);
  }
  for (const k of obj.map(C.MAP.maglev).keys()) assert.ok(bySvcId.has(k.readUInt32LE(0)), `table of svc_id ${k.readUInt32LE(0)} has an entry`);
  for (const k of obj.map(C.MAP.slots).keys()) assert.ok(bySvcId.has(C.decodeSlotKey(k).svcId), 'every slot has an entry');
}

test('applyMany: the same maps as apply() one by one; new tables in one setInnerBatch, old ones in one delete batch, each after its entries', async (t) => {
  const one = await open(t);
  const many = await open(t);
  const seq = reconciler(mapsOf(one.obj));
  const { maps, log, calls } = recording(mapsOf(many.obj));
  const rec = reconciler(maps);
  const steps: Array<Array<[string, ServiceSpec | undefined]>> = [
    [
      ['default/a', lbNamed('a', 1, ['10.244.1.1', '10.244.1.2', '10.244.1.3'])],
      ['default/b', lbNamed('b', 2, ['10.244.2.1', '10.244.2.2'])],
      ['default/c', clusterNamed('c', '10.96.0.30', ['10.244.3.1', '10.244.1.1'])],
      ['default/d', clusterNamed('d', '10.96.0.40', ['10.244.4.1'])],
    ],
    [['default/d', undefined], ['default/a', lbNamed('a', 1, ['10.244.1.1', '10.244.1.2'])]],
    [['default/a', undefined], ['default/b', undefined], ['default/e', clusterNamed('e', '10.96.0.50', ['10.244.5.1'])]],
  ];
  for (const [n, step] of steps.entries()) {
    for (const [k, s] of step) assert.equal((await seq.apply(k, s)).ok, true);
    log.length = 0;
    calls.length = 0;
    const res = await rec.applyMany(step);
    assert.deepEqual(res.map((r) => [r.service, r.ok, r.errors]), step.map(([k]) => [k, true, []]), `step ${n}`);
    assert.deepEqual(await snapshot(many.obj), await snapshot(one.obj), `step ${n}: same maps as one apply() after another`);
    assertConsistent(many.obj);

    const entries = log.map((o, i) => ({ o, i })).filter(({ o }) => o.map === 'services');
    const firstEntry = entries[0]?.i ?? log.length;
    const lastEntry = entries[entries.length - 1]?.i ?? -1;
    const installs = log.map((o, i) => ({ o, i })).filter(({ o }) => o.map === 'maglev' && o.op === 'setInner');
    const drops = log.map((o, i) => ({ o, i })).filter(({ o }) => o.map === 'maglev' && o.op === 'delete');
    const mg = calls.filter((c) => c.startsWith('maglev.'));
    if (n === 0) {
      assert.deepEqual(mg, ['maglev.setInnerBatch'], 'four new tables, one kernel wait');
      assert.equal(installs.length, 4, 'NodePort and LB IP external frontends of a and b');
      assert.ok(installs.every(({ i }) => i < firstEntry), 'every table is in place before the first services entry');
      const backendWrites = log.map((o, i) => ({ o, i })).filter(({ o }) => o.map === 'backends');
      assert.ok(backendWrites.every(({ i }) => i < installs[0].i), 'backends before the tables that name them');
      for (const { o, i } of entries) {
        const id = C.decodeSvcValue(o.value!).svcId;
        assert.ok(log.slice(0, i).some((b) => b.map === 'revnat' && svcIdOfOp(b) === id), `svc_id ${id}: revnat before its entry`);
      }
    }
    if (n === 1) {
      assert.deepEqual(mg, ['maglev.setInnerBatch'], "a's two external frontends get their new table with one kernel wait");
      assert.equal(installs.length, 2);
    }
    if (n === 2) {
      assert.deepEqual(mg, ['maglev.deleteBatch'], 'four tables dropped with one kernel wait');
      assert.equal(drops.length, 4);
      assert.ok(drops.every(({ i }) => i > lastEntry), 'tables go after every services entry is deleted');
      assert.equal(many.obj.map(C.MAP.maglev).keys().length, 0);
    }
  }
});

test('applyMany: a chunk\'s backend and stats entries go in one batch each, before any slot or table names them; a one-Service change writes in place', async (t) => {
  const one = await open(t);
  const many = await open(t);
  const seq = reconciler(mapsOf(one.obj));
  const { maps, log, calls } = recording(mapsOf(many.obj));
  const rec = reconciler(maps);
  const addrs = (i: number): string[] => Array.from({ length: 10 }, (_, j) => `10.244.${i}.${j + 1}`);
  const step: Array<[string, ServiceSpec]> = Array.from({ length: 10 }, (_, i) => [`default/s${i}`, clusterNamed(`s${i}`, `10.96.2.${i}`, addrs(i))]);
  for (const [k, s] of step) assert.equal((await seq.apply(k, s)).ok, true);
  const res = await rec.applyMany(step);
  assert.ok(res.every((r) => r.ok), JSON.stringify(res.map((r) => r.errors)));
  assert.deepEqual(await snapshot(many.obj), await snapshot(one.obj), 'same maps as one apply() after another');
  assert.deepEqual(calls.filter((c) => c.startsWith('backends.') || c.startsWith('stats.')), ['backends.updateBatch', 'stats.updateBatch'],
    '100 backends and 20 fresh stats entries: one batch each, no syscall per entry');
  const firstTable = log.findIndex((o) => o.map === 'slots' || o.map === 'maglev');
  const lastBackend = log.map((o) => o.map).lastIndexOf('backends');
  assert.ok(lastBackend >= 0 && lastBackend < firstTable, 'every backend is written before the first slot');
  assert.equal(log.filter((o) => o.map === 'backends').length, 100);

  // One endpoint turns not ready: one backend entry, written in place (no thread-pool round trip).
  calls.length = 0;
  const changed = clusterNamed('s1', '10.96.2.1', addrs(1).slice(0, 9));
  assert.equal((await rec.apply('default/s1', changed)).ok, true);
  assert.ok(!calls.includes('backends.updateBatch') && !calls.includes('stats.updateBatch') && !calls.includes('slots.updateBatch'), calls.join());
});

test('a one-Service change is written in the turn it starts in: work the event loop holds (an API call, a connection) does not go first', async (t) => {
  const { obj } = await open(t);
  const rec = reconciler(mapsOf(obj));
  const addrs = Array.from({ length: 10 }, (_, j) => `10.244.7.${j + 1}`);
  assert.equal((await rec.apply('default/s7', clusterNamed('s7', '10.96.2.7', addrs))).ok, true);
  for (let n = 0; n < 3; n++) {
    // Idle longer than the reconciler's yield interval, as between two EndpointSlice changes.
    await new Promise((r) => setTimeout(r, 30));
    const order: string[] = [];
    const other = new Promise<void>((r) => setImmediate(() => { order.push('other work'); r(); }));
    const applied = rec.apply('default/s7', clusterNamed('s7', '10.96.2.7', n % 2 ? addrs : addrs.slice(0, 9))).then((res) => {
      order.push('change written');
      assert.equal(res.ok, true);
    });
    await Promise.all([other, applied]);
    assert.deepEqual(order, ['change written', 'other work']);
  }
});

test('frontends with the same selectable backends share one Maglev table; different ports do not', async (t) => {
  const { obj } = await open(t);
  const rec = reconciler(mapsOf(obj));
  const ports = [
    { name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30200 },
    { name: 'https', port: 443, protocol: 'TCP', targetPort: 8443, nodePort: 30201 },
  ];
  const inner = (addr: string | null, port: number): number | null => {
    const v = servicesOf(obj).get(`${addr ?? '*'}|${port}|TCP|external`)!;
    return obj.map(C.MAP.maglev).innerId(C.encodeMaglevKey(v.svcId));
  };
  const spec = lbNamed('web', 7, ['10.244.7.1', '10.244.7.2'], ports);
  assert.equal((await rec.apply(spec.key, spec)).ok, true);
  assert.ok(inner(null, 30200) !== null);
  assert.equal(inner(null, 30200), inner('203.0.113.7', 80), 'NodePort and LB IP of port 80 share a table');
  assert.equal(inner(null, 30201), inner('203.0.113.7', 443), 'so do those of port 443');
  assert.notEqual(inner(null, 30200), inner(null, 30201), 'ports 80 and 443 reach different backends');
  assert.notEqual(await maglevOf(obj, servicesOf(obj).get('*|30200|TCP|external')!.svcId), null);

  // A changed endpoint: a new shared table per port replaces the old one under both svc_ids.
  const before = inner(null, 30200);
  const changed = lbNamed('web', 7, ['10.244.7.1', '10.244.7.3'], ports);
  assert.equal((await rec.apply(changed.key, changed)).ok, true);
  assert.notEqual(inner(null, 30200), before);
  assert.equal(inner(null, 30200), inner('203.0.113.7', 80));
  const svcId = servicesOf(obj).get('203.0.113.7|80|TCP|external')!.svcId;
  const selIds = ['10.244.7.1', '10.244.7.3'].map((a) => idOfBackend(obj, a, 8080));
  const want = maglevTable(selIds.map((id, i) => ({ id, key: `${['10.244.7.1', '10.244.7.3'][i]}:8080`, weight: 1 })), M);
  assert.deepEqual(await maglevOf(obj, svcId), want, 'the shared table is the one this frontend would have alone');
  assertConsistent(obj);
});

test('apply() calls for one Service never interleave; calls for different Services may', async (t) => {
  const { obj } = await open(t);
  const rec = reconciler(mapsOf(obj));
  const v1 = lbNamed('web', 3, ['10.244.3.1', '10.244.3.2', '10.244.3.3']);
  const v2 = lbNamed('web', 3, ['10.244.3.1', '10.244.3.2']);
  const api = lbNamed('api', 4, ['10.244.4.1', '10.244.3.1']);
  const res = await Promise.all([rec.apply(v1.key, v1), rec.apply(api.key, api), rec.apply(v2.key, v2), rec.apply(v1.key, v2)]);
  assert.ok(res.every((r) => r.ok), JSON.stringify(res.map((r) => r.errors)));
  for (const f of v2.frontends) assert.equal(servicesOf(obj).get(feOf(f))?.count, 2, `${feOf(f)}: the last call wins`);
  assert.equal(backendsOf(obj).get(idOfBackend(obj, '10.244.3.3', 8080))?.state, 'draining');
  assertConsistent(obj);
  // Every reference was counted once: removing both Services retires every backend.
  const gone = await Promise.all([rec.apply(v1.key, undefined), rec.apply(api.key, undefined)]);
  assert.ok(gone.every((r) => r.ok));
  assert.equal(servicesOf(obj).size, 0);
  assert.ok([...backendsOf(obj).values()].every((b) => b.state === 'draining'), 'no backend left with a stray reference');
  assert.equal(rec.retiredCount(), 4);
  assert.equal(obj.map(C.MAP.maglev).keys().length, 0);
});

test('applyMany: a frontend two Services claim goes to the first; one an earlier Service gives up is handed over', async (t) => {
  const { obj } = await open(t);
  const rec = reconciler(mapsOf(obj));
  const a = clusterNamed('a', '10.96.0.60', ['10.244.6.1']);
  const b = clusterNamed('b', '10.96.0.60', ['10.244.6.2']);
  const [ra, rb] = await rec.applyMany([[a.key, a], [b.key, b]]);
  assert.equal(ra.ok, true);
  assert.equal(rb.ok, false);
  assert.equal(rb.frontends, 0);
  assert.match(rb.errors.join('\n'), /already programmed for default\/a/);
  const v = servicesOf(obj).get('10.96.0.60|80|TCP|internal')!;
  assert.deepEqual([...slotsOf(obj, v.svcId).values()], [idOfBackend(obj, '10.244.6.1', 8080)]);

  // Claimed before its owner lets go: refused, as apply() in that order would.
  const [rb2, ra2] = await rec.applyMany([[b.key, b], [a.key, undefined]]);
  assert.equal(rb2.ok, false);
  assert.equal(ra2.ok, true);
  assert.equal(servicesOf(obj).size, 0);
  // Let go first, then claimed: b gets it in the same call.
  await rec.apply(a.key, a);
  const [ra3, rb3] = await rec.applyMany([[a.key, undefined], [b.key, b]]);
  assert.deepEqual([ra3.ok, rb3.ok, ra3.frontends, rb3.frontends], [true, true, 0, 2]);
  const w = servicesOf(obj).get('10.96.0.60|80|TCP|internal')!;
  assert.equal(w.count, 1);
  assert.deepEqual([...slotsOf(obj, w.svcId).values()], [idOfBackend(obj, '10.244.6.2', 8080)]);
  assert.deepEqual(rec.services(), [b.key]);
  assert.equal(rec.svcIds().get(w.svcId)?.service, b.key);
  assert.equal(backendsOf(obj).get(idOfBackend(obj, '10.244.6.1', 8080))?.state, 'draining', "a's backend is released");
  assertConsistent(obj);
  assert.equal((await rec.apply(b.key, undefined)).ok, true);
  assert.equal(servicesOf(obj).size, 0);
  assert.equal(obj.map(C.MAP.revnat).keys().length, 0);
});

/** A deterministic PRNG, so a failing sequence can be replayed. */
function prng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s % n;
  };
}

/** One of a few shapes: ClusterIP (slots), LoadBalancer with source ranges (Maglev tables, src_ranges), some endpoints not ready. */
function randomSpec(name: string, i: number, pick: (n: number) => number): ServiceSpec {
  const addrs = Array.from({ length: pick(5) }, (_, j) => `10.244.${20 + i}.${1 + pick(6) + 10 * j}`);
  if (pick(2) === 0) return clusterNamed(name, `10.96.3.${i}`, addrs);
  const ranges = [['198.51.100.0/24'], ['198.51.100.0/24', '192.0.2.0/28'], []][pick(3)]!;
  const s = svc({
    type: 'LoadBalancer', clusterIP: `10.96.4.${i}`, clusterIPs: [`10.96.4.${i}`], loadBalancerSourceRanges: ranges,
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30200 + i }],
  }, { name, ingress: [{ ip: `203.0.113.${100 + i}` }] });
  return specOf(s, [slice(`${name}-1`, http, addrs.map((a, j) => ep(a, { ready: pick(4) > 0, node: j % 2 ? 'node-b' : NODE })), { service: name })]);
}

test('entryCounts() is kept as frontends change: it equals a full walk after any sequence of apply, delete and failure, and the maps while nothing failed', async (t) => {
  for (const [label, sizes] of [['roomy maps', SIZES], ['tight maps: services and slots fill up', { ...SIZES, services: 10, slots: 24 }]] as const) {
    const { obj } = await open(t, sizes);
    const rec = reconciler(mapsOf(obj));
    const pick = prng(label.length);
    let failures = 0;
    for (let step = 0; step < 60; step++) {
      const batch: Array<[string, ServiceSpec | undefined]> = [];
      for (let j = pick(3) + 1; j > 0; j--) {
        const i = pick(6);
        batch.push([`default/r${i}`, pick(4) === 0 ? undefined : randomSpec(`r${i}`, i, pick)]);
      }
      const res = await rec.applyMany(batch);
      if (res.some((r) => !r.ok)) failures++;
      assert.deepEqual(rec.entryCounts(), rec.entryCountsByWalk(), `${label}, step ${step}`);
      if (failures === 0) assert.deepEqual(rec.entryCounts(), entriesIn(obj), `${label}, step ${step}: what the maps hold`);
    }
    if (sizes === SIZES) assert.equal(failures, 0, `${label}: nothing fails`);
    else assert.ok(failures > 0, `${label}: some Services did not fit`);
    for (let i = 0; i < 6; i++) await rec.apply(`default/r${i}`, undefined);
    assert.deepEqual(rec.entryCounts(), { services: 0, slots: 0, maglev: 0, srcRanges: 0 }, `${label}: all removed`);
    // Failed writes included: nothing written before a failure is left behind.
    assert.deepEqual(entriesIn(obj), { services: 0, slots: 0, maglev: 0, srcRanges: 0 }, `${label}: all removed, the maps are empty`);
  }
});

test('one address serving several ports: a backend each, retired, reaped and added back one port at a time', async (t) => {
  const { obj } = await open(t);
  const rec = reconciler(mapsOf(obj));
  const ports = [{ name: 'http', port: 8080 }, { name: 'metrics', port: 9090 }];
  const eps = ['10.244.1.5', '10.244.1.6'].map((a) => ep(a, { ready: true, node: 'node-b' }));
  const both = specOf(
    svc({ ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }, { name: 'metrics', port: 9090, protocol: 'TCP', targetPort: 9090 }] }),
    [slice('web-1', ports, eps)],
  );
  const httpOnly = specOf(svc({}), [slice('web-1', ports, eps)]);
  await rec.apply(both.key, both);
  const ids = (port: number): number[] => ['10.244.1.5', '10.244.1.6'].map((a) => idOfBackend(obj, a, port));
  const http = ids(8080);
  const metrics = ids(9090);
  assert.equal(new Set([...http, ...metrics]).size, 4, 'one backend per address:port');
  assert.equal(rec.backendCount(), 4);

  await rec.apply(httpOnly.key, httpOnly);
  assert.deepEqual(ids(8080), http, 'the remaining port keeps its ids');
  for (const id of metrics) assert.equal(backendsOf(obj).get(id)?.state, 'draining');
  for (const id of http) assert.equal(backendsOf(obj).get(id)?.state, 'active');
  assert.equal(rec.retiredCount(), 2);
  assert.equal(rec.reapRetired(new Set([metrics[1]!])), 1, 'a backend conntrack still names stays');
  assert.equal(rec.backendCount(), 3);
  assert.equal(backendsOf(obj).has(metrics[0]!), false);
  assert.equal(backendsOf(obj).get(metrics[1]!)?.addr, '10.244.1.6');

  await rec.apply(both.key, both);
  assert.deepEqual(ids(8080), http);
  assert.equal(idOfBackend(obj, '10.244.1.6', 9090), metrics[1], 'a retired backend comes back with its id');
  assert.notEqual(idOfBackend(obj, '10.244.1.5', 9090), metrics[0], 'a reaped one gets a new id');
  assert.equal(rec.backendCount(), 4);
  assert.equal(rec.retiredCount(), 0);
  for (const id of [...ids(8080), ...ids(9090)]) assert.equal(backendsOf(obj).get(id)?.state, 'active');
});
