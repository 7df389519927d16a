// Pinned maps of another layout migrated into the new one (src/datapath/migrate.ts through
// the addon's map BTF and the loader's replacedPinSuffix): a populated LRU conntrack-like map
// into a bigger and a smaller one, and into a changed struct (a field added, one moved, one
// removed) matched by name through the OLD map's own BTF; an incompatible field type or a map
// without BTF leaves the new map empty with the reason.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfMap, loadObject } from '../../src/datapath/bpf.js';
import { migrateMap, planMigration } from '../../src/datapath/migrate.js';
import { run } from '../helpers/netns.js';
import { bpffsDir, objPath } from './util.js';

const dir = bpffsDir('migrate');
const work = mkdtempSync(join(tmpdir(), 'xlb-migrate-'));
after(() => {
  dir.cleanup();
  rmSync(work, { recursive: true, force: true });
});

/** One LRU map `ct` {u32 a; u32 b} -> value, one ARRAY `fill`, a trivial program. */
function source(value: string): string {
  return `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct k { __u32 a; __u32 b; };
struct v { ${value} };
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __type(key, struct k); __type(value, struct v); __uint(max_entries, 4096); } ct SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u64); __uint(max_entries, 2); } fill SEC(".maps");
SEC("xdp") int prog(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
`;
}

const V1 = '__u32 backend_id; __u32 svc_id; __u64 last_seen;';
/** svc_id moved to the end, last_seen first, a field added (extra), none lost */
const V2 = '__u64 last_seen; __u32 backend_id; __u32 extra; __u64 created; __u32 svc_id; __u32 pad;';
/** backend_id changed type (u64): not migratable */
const V3 = '__u64 backend_id; __u32 svc_id; __u32 pad; __u64 last_seen;';
/** svc_id removed, created added (another size: a same-size change is not a layout change) */
const V4 = '__u32 backend_id; __u32 pad; __u64 last_seen; __u64 created;';

/** V1's fields swapped: the same sizes, another layout */
const V5 = '__u32 svc_id; __u32 backend_id; __u64 last_seen;';

const objs: Record<string, string> = {};
before(async () => {
  const inc = `/usr/include/${(await run('uname', ['-m'])).stdout.trim()}-linux-gnu`;
  await Promise.all(Object.entries({ V1, V2, V3, V4, V5 }).map(async ([name, v]) => {
    const c = join(work, `${name}.c`);
    writeFileSync(c, source(v));
    objs[name] = join(work, `${name}.o`);
    await run('clang', ['-O2', '-g', '-target', 'bpf', `-I${inc}`, '-c', c, '-o', objs[name]], { timeoutMs: 120_000 });
  }));
});

const key = (i: number): Buffer => { const b = Buffer.alloc(8); b.writeUInt32LE(i, 0); b.writeUInt32LE(i * 7, 4); return b; };

/** A V1 pin with n entries: backend_id i, svc_id 1000+i, last_seen i. */
async function populated(pin: string, n: number): Promise<void> {
  const o = await loadObject(objs.V1, { pinPath: pin });
  const ct = o.map('ct');
  const keys = Buffer.concat(Array.from({ length: n }, (_, i) => key(i + 1)));
  const vals = Buffer.concat(Array.from({ length: n }, (_, i) => { const b = Buffer.alloc(16); b.writeUInt32LE(i + 1, 0); b.writeUInt32LE(1000 + i + 1, 4); b.writeBigUInt64LE(BigInt(i + 1), 8); return b; }));
  assert.equal(await ct.updateBatch(keys, vals, n), n);
  o.map('fill').update(Buffer.from([0, 0, 0, 0]), Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]));
  o.close();
}

test('a bigger conntrack: every entry copied, values intact; the new pin waits beside the old one', async () => {
  const pin = `${dir.path}/bigger`;
  await populated(pin, 1000);
  const old = BpfMap.openPinned(`${pin}/ct`);
  const o = await loadObject(objs.V1, { pinPath: pin, replaceMismatched: true, replacedPinSuffix: '~new', maxEntries: { ct: 8192 } });
  try {
    assert.deepEqual(o.replaced, ['ct']);
    assert.ok(existsSync(`${pin}/ct~new`), 'new map pinned beside');
    assert.equal(BpfMap.openPinned(`${pin}/ct`).maxEntries, 4096, 'old pin untouched until the caller renames');
    const r = await migrateMap('ct', old, o.map('ct'));
    assert.deepEqual([r.outcome, r.found, r.copied, r.dropped], ['migrated', 1000, 1000, 0]);
    assert.match(r.reason, /max_entries 4096 -> 8192/);
    const v = o.map('ct').lookup(key(17))!;
    assert.deepEqual([v.readUInt32LE(0), v.readUInt32LE(4), v.readBigUInt64LE(8)], [17, 1017, 17n]);
    renameSync(`${pin}/ct~new`, `${pin}/ct`);
    assert.equal(BpfMap.openPinned(`${pin}/ct`).maxEntries, 8192);
  } finally {
    old.close();
    o.close();
  }
});

test('a smaller conntrack: what fits (reserve kept free), most recent first; the rest counted, never a failure', async () => {
  const pin = `${dir.path}/smaller`;
  await populated(pin, 3000);
  const old = BpfMap.openPinned(`${pin}/ct`);
  const o = await loadObject(objs.V1, { pinPath: pin, replaceMismatched: true, replacedPinSuffix: '~new', maxEntries: { ct: 1024 } });
  try {
    const r = await migrateMap('ct', old, o.map('ct'), { reserve: 24 });
    assert.deepEqual([r.outcome, r.found, r.copied, r.dropped], ['migrated', 3000, 1000, 2000]);
    assert.equal((await o.map('ct').lookupBatch()).count, 1000);
    assert.ok(o.map('ct').lookup(key(3000)), 'the most recently seen entry kept');
    assert.equal(o.map('ct').lookup(key(1)), null, 'the least recently seen entry dropped');
  } finally {
    old.close();
    o.close();
  }
});

test('a changed struct: fields matched by name through the old map BTF; moved ones follow, an added one is zero', async () => {
  const pin = `${dir.path}/struct`;
  await populated(pin, 500);
  const old = BpfMap.openPinned(`${pin}/ct`);
  const btf = old.btf();
  assert.deepEqual(btf?.value.members.map((m) => [m.name, m.offset, m.type]), [['backend_id', 0, 'u32'], ['svc_id', 4, 'u32'], ['last_seen', 8, 'u64']]);
  const o = await loadObject(objs.V2, { pinPath: pin, replaceMismatched: true, replacedPinSuffix: '~new' });
  try {
    assert.deepEqual(o.replaced, ['ct']);
    const r = await migrateMap('ct', old, o.map('ct'));
    assert.deepEqual([r.outcome, r.copied, r.dropped], ['migrated', 500, 0]);
    assert.deepEqual(r.fieldsAdded, ['extra', 'created']);
    assert.deepEqual(r.fieldsDropped, []);
    const v = o.map('ct').lookup(key(42))!;
    assert.equal(v.length, 32);
    // V2: last_seen@0 u64, backend_id@8, extra@12, created@16, svc_id@24
    assert.deepEqual([v.readBigUInt64LE(0), v.readUInt32LE(8), v.readUInt32LE(12), v.readBigUInt64LE(16), v.readUInt32LE(24)], [42n, 42, 0, 0n, 1042]);
  } finally {
    old.close();
    o.close();
  }
});

test('a removed field is dropped and named; a field whose type changed leaves the map empty, with the reason', async () => {
  const pin4 = `${dir.path}/removed`;
  await populated(pin4, 10);
  const old4 = BpfMap.openPinned(`${pin4}/ct`);
  const o4 = await loadObject(objs.V4, { pinPath: pin4, replaceMismatched: true, replacedPinSuffix: '~new' });
  try {
    const plan = planMigration(old4, o4.map('ct'));
    assert.ok(typeof plan !== 'string');
    assert.deepEqual(plan.fieldsDropped, ['svc_id']);
  } finally {
    old4.close();
    o4.close();
  }
  const pin = `${dir.path}/typechange`;
  await populated(pin, 10);
  const old = BpfMap.openPinned(`${pin}/ct`);
  const o = await loadObject(objs.V3, { pinPath: pin, replaceMismatched: true, replacedPinSuffix: '~new' });
  try {
    const r = await migrateMap('ct', old, o.map('ct'));
    assert.deepEqual([r.outcome, r.found, r.copied, r.dropped], ['emptied', 10, 0, 10]);
    assert.match(r.reason, /backend_id changed type \(u32 -> u64\)/);
    assert.equal((await o.map('ct').lookupBatch()).count, 0);
  } finally {
    old.close();
    o.close();
  }
});

test('a map created without BTF and a changed value size: emptied, the reason says no BTF', async () => {
  const a = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 16 });
  const b = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 16, maxEntries: 16 });
  try {
    a.update(Buffer.alloc(4), Buffer.alloc(8, 1));
    assert.equal(a.btf(), null);
    const r = await migrateMap('x', a, b);
    assert.deepEqual([r.outcome, r.found], ['emptied', 1]);
    assert.match(r.reason, /no BTF/);
    const c = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 32 });
    const r2 = await migrateMap('x', a, c);
    assert.deepEqual([r2.outcome, r2.copied], ['migrated', 1], 'same sizes: copied without BTF');
    c.close();
  } finally {
    a.close();
    b.close();
  }
});

test('the same sizes, fields swapped: the loader tells by BTF (replaced, not reused) and the entries follow their names', async () => {
  const pin = `${dir.path}/swapped`;
  await populated(pin, 50);
  await assert.rejects(loadObject(objs.V5, { pinPath: pin }), (e: any) => e.code === 'EMISMATCH' && /BTF key\/value struct differs/.test(e.message));
  const old = BpfMap.openPinned(`${pin}/ct`);
  const o = await loadObject(objs.V5, { pinPath: pin, replaceMismatched: true, replacedPinSuffix: '~new' });
  try {
    assert.deepEqual(o.replaced, ['ct']);
    assert.deepEqual(o.reused, ['fill'], 'an unchanged map is still reused');
    const r = await migrateMap('ct', old, o.map('ct'));
    assert.deepEqual([r.outcome, r.copied], ['migrated', 50]);
    const v = o.map('ct').lookup(key(9))!;
    assert.deepEqual([v.readUInt32LE(0), v.readUInt32LE(4), v.readBigUInt64LE(8)], [1009, 9, 9n]);
  } finally {
    old.close();
    o.close();
  }
});

test('the agent side (PinMigration) on xlb.o: a --conntrack-size change carries ct and names its result; catch-ups copy the flows the old programs made since, never over the new ones; pins renamed at finish; a stale ~new removed', { timeout: 120_000 }, async () => {
  const pin = `${dir.path}/agent`;
  const C = await import('../../src/datapath/codecs.js');
  const { PinMigration } = await import('../../src/agent/pinmigrate.js');
  const { child } = await import('../../src/log.js');
  const first = await loadObject(objPath('xlb'), { pinPath: pin, maxEntries: { ct: 2048 } });
  const ctKey = (i: number) => C.encodeCtKey({ saddr: '192.0.2.1', daddr: '198.51.100.1', sport: 1000 + i, dport: 80, proto: 'TCP' });
  for (let i = 0; i < 300; i++) {
    first.map('ct').update(ctKey(i), C.encodeCtValue({ natAddr: '10.0.0.1', origAddr: '198.51.100.1', natPort: 8080, origPort: 80, backendId: 7, svcId: 3, state: 'established', flags: 0, lastSeen: BigInt(i), created: 1n }));
  }
  first.close();
  const stale = await loadObject(objs.V1, {});
  stale.map('fill').pin(`${pin}/ct~new`);
  stale.close();
  const mig = new PinMigration(pin, child('test'), 2);
  mig.openPinned();
  assert.ok(!existsSync(`${pin}/ct~new`), 'the stale new pin of an unfinished start removed');
  const o = await loadObject(objPath('xlb'), { pinPath: pin, replaceMismatched: true, replacedPinSuffix: '~new', maxEntries: { ct: 4096 } });
  try {
    assert.deepEqual(o.replaced, ['ct']);
    await mig.migrate(o);
    assert.deepEqual(mig.results.map((r) => [r.map, r.outcome, r.found, r.copied, r.dropped]), [['ct', 'migrated', 300, 300, 0]]);
    const oldCt = BpfMap.openPinned(`${pin}/ct`);
    assert.equal(oldCt.maxEntries, 2048, 'the old pin stays until finish');
    assert.ok(mig.carrying(), 'a migrated ct is caught up around the link switch');
    // The old programs go on making flows after the first copy (created: now), and change an
    // old one (created long ago: the first copy has it; a catch-up leaves the new map's copy).
    const flow = (i: number, backendId: number, created: bigint) => C.encodeCtValue({ natAddr: '10.0.0.1', origAddr: '198.51.100.1', natPort: 8080, origPort: 80, backendId, svcId: 3, state: 'established', flags: 0, lastSeen: created, created });
    const now = () => process.hrtime.bigint();
    for (let i = 300; i < 310; i++) oldCt.update(ctKey(i), flow(i, 8, now()));
    oldCt.update(ctKey(5), flow(5, 99, 1n));
    // the new programs made a flow of one of those tuples themselves: theirs is kept
    o.map('ct').update(ctKey(309), flow(309, 42, now()));
    assert.equal(await mig.catchUp(o, 'before the link switch'), 9);
    const neu = o.map('ct');
    assert.equal(C.decodeCtValue(neu.lookup(ctKey(300))!).backendId, 8);
    assert.equal(C.decodeCtValue(neu.lookup(ctKey(309))!).backendId, 42, 'an entry the new programs made is never overwritten');
    assert.equal(C.decodeCtValue(neu.lookup(ctKey(5))!).backendId, 7, 'an entry of the first copy is not copied again');
    // after the switch: only what the old programs made since
    for (let i = 310; i < 314; i++) oldCt.update(ctKey(i), flow(i, 9, now()));
    oldCt.close();
    await mig.finish(o);
    assert.ok(!mig.carrying());
    const ct = BpfMap.openPinned(`${pin}/ct`);
    assert.equal(ct.maxEntries, 4096);
    assert.equal((await ct.lookupBatch()).count, 314);
    assert.equal(C.decodeCtValue(ct.lookup(ctKey(123))!).backendId, 7);
    assert.equal(C.decodeCtValue(ct.lookup(ctKey(313))!).backendId, 9);
    assert.ok(!existsSync(`${pin}/ct~new`));
    ct.close();
    const check = mig.checks().find((c) => c.name === 'map migration ct');
    assert.deepEqual([check?.ok, check?.detail], [true, 'migrated 313/313 entries (max_entries 2048 -> 4096)']);
  } finally {
    o.close();
  }
});
