// BpfMap against the real kernel: every map type in bpf/test/t_maps.c, every element and
// batch op, iteration, per-CPU values, map-in-map, BTF layout, pins, and each error path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { BpfMap, loadObject, possibleCpus, type BpfObject } from '../../src/datapath/bpf.js';
import { bpffsDir, objPath, u32, u64 } from './util.js';

let obj: BpfObject;
const ncpu = possibleCpus();

before(async () => {
  obj = await loadObject(objPath('t_maps'));
});
after(() => obj?.close());

function val16(n: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt(n), 0);
  b.writeUInt32LE(n, 8);
  return b;
}

/** Asserts fn throws an addon error with this code whose message and target name `target`. */
function throwsCode(fn: () => unknown, code: string, target: string, msg?: RegExp): void {
  assert.throws(fn, (e: any) => {
    assert.equal(e.code, code, e.message);
    assert.equal(e.target, target);
    assert.match(e.message, new RegExp(target));
    if (msg) assert.match(e.message, msg);
    return true;
  });
}

test('object lists its maps and programs; map metadata comes from the kernel', () => {
  assert.deepEqual(obj.mapNames().sort(), ['t_aom', 't_array', 't_hash', 't_hom', 't_lpm', 't_lru', 't_percpu']);
  assert.deepEqual(obj.programNames(), ['t_touch']);
  const h = obj.map('t_hash');
  assert.equal(h, obj.map('t_hash'), 'map(name) returns the same object');
  assert.equal(h.type, 'hash');
  assert.equal(h.keySize, 4);
  assert.equal(h.valueSize, 16);
  assert.equal(h.maxEntries, 16);
  assert.ok(h.id > 0);
  assert.equal(h.percpu, false);
  assert.equal(obj.map('t_lru').type, 'lru_hash');
  assert.equal(obj.map('t_lpm').type, 'lpm_trie');
  assert.equal(obj.map('t_aom').type, 'array_of_maps');
  assert.equal(obj.map('t_hom').type, 'hash_of_maps');
  assert.equal(obj.program('t_touch').type, 'xdp');
});

test('hash: update flags any/noexist/exist, lookup, delete', () => {
  const h = obj.map('t_hash');
  assert.equal(h.lookup(u32(1)), null);
  throwsCode(() => h.update(u32(1), val16(1), 'exist'), 'ENOENT', 't_hash');
  h.update(u32(1), val16(1), 'noexist');
  throwsCode(() => h.update(u32(1), val16(2), 'noexist'), 'EEXIST', 't_hash');
  h.update(u32(1), val16(3), 'exist');
  assert.deepEqual(h.lookup(u32(1)), val16(3));
  h.update(u32(1), val16(4));
  assert.deepEqual(h.lookup(u32(1)), val16(4));
  assert.equal(h.delete(u32(1)), true);
  assert.equal(h.delete(u32(1)), false);
  assert.equal(h.lookup(u32(1)), null);
});

test('hash: full map rejects a new key with E2BIG', () => {
  const h = obj.map('t_hash');
  for (let i = 0; i < h.maxEntries; i++) h.update(u32(100 + i), val16(i));
  throwsCode(() => h.update(u32(999), val16(0)), 'E2BIG', 't_hash');
  for (let i = 0; i < h.maxEntries; i++) assert.equal(h.delete(u32(100 + i)), true);
});

test('array: every index exists, out of range is an error', () => {
  const a = obj.map('t_array');
  assert.deepEqual(a.lookup(u32(7)), u64(0));
  a.update(u32(7), u64(42));
  assert.deepEqual(a.lookup(u32(7)), u64(42));
  assert.equal(a.lookup(u32(8)), null);
  throwsCode(() => a.update(u32(8), u64(1)), 'E2BIG', 't_array');
  throwsCode(() => a.update(u32(1), u64(1), 'noexist'), 'EEXIST', 't_array');
  assert.equal(a.keys().length, 8);
});

test('lru_hash: inserting past max_entries evicts instead of failing', () => {
  const l = obj.map('t_lru');
  for (let i = 0; i < 1000; i++) l.update(u64(i), u32(i));
  const n = l.keys().length;
  assert.ok(n > 0 && n <= l.maxEntries, `lru holds ${n}`);
  assert.deepEqual(l.lookup(u64(999)), u32(999), 'the newest entry survives');
});

test('lpm_trie: lookup returns the longest matching prefix', () => {
  const m = obj.map('t_lpm');
  const key = (len: number, a: number[]) => Buffer.concat([u32(len), Buffer.from(a)]);
  m.update(key(8, [10, 0, 0, 0]), u32(8));
  m.update(key(24, [10, 1, 2, 0]), u32(24));
  assert.deepEqual(m.lookup(key(32, [10, 1, 2, 3])), u32(24));
  assert.deepEqual(m.lookup(key(32, [10, 9, 9, 9])), u32(8));
  assert.equal(m.lookup(key(32, [11, 0, 0, 1])), null);
  assert.equal(m.keys().length, 2);
  assert.equal(m.delete(key(24, [10, 1, 2, 0])), true);
  assert.deepEqual(m.lookup(key(32, [10, 1, 2, 3])), u32(8));
});

test('percpu_array: values carry one 8-byte slot per possible CPU', () => {
  const p = obj.map('t_percpu');
  assert.equal(p.percpu, true);
  assert.equal(p.possibleCpus, ncpu);
  const v = Buffer.alloc(ncpu * 8);
  for (let c = 0; c < ncpu; c++) v.writeBigUInt64LE(BigInt(c + 10), c * 8);
  p.update(u32(2), v);
  const got = p.lookup(u32(2));
  assert.ok(got);
  assert.equal(got.length, ncpu * 8);
  for (let c = 0; c < ncpu; c++) assert.equal(got.readBigUInt64LE(c * 8), BigInt(c + 10));
  throwsCode(() => p.update(u32(2), u64(1)), 'EINVAL', 't_percpu', new RegExp(`value is 8 bytes.*expects ${ncpu * 8}`));
});

test('batch: updateBatch, lookupBatch, deleteBatch (absent keys skipped) on a hash', async () => {
  const h = obj.map('t_hash');
  const n = 10;
  const keys = Buffer.concat(Array.from({ length: n }, (_, i) => u32(i + 1)));
  const vals = Buffer.concat(Array.from({ length: n }, (_, i) => val16(i + 1)));
  assert.equal(await h.updateBatch(keys, vals, n), n);
  const all = await h.lookupBatch();
  assert.equal(all.count, n);
  const seen = new Map<number, Buffer>();
  for (let i = 0; i < all.count; i++) seen.set(all.keys.readUInt32LE(i * 4), all.values.subarray(i * 16, i * 16 + 16));
  for (let i = 1; i <= n; i++) assert.deepEqual(seen.get(i), val16(i));
  await assert.rejects(h.updateBatch(keys.subarray(0, 4), vals.subarray(0, 16), 1, 'noexist'), { code: 'EEXIST', target: 't_hash' });
  const fresh = Buffer.concat([u32(11), u32(12)]);
  assert.equal(await h.updateBatch(fresh, vals.subarray(0, 32), 2, 'noexist'), 2);
  await assert.rejects(h.updateBatch(u32(13), vals.subarray(0, 16), 1, 'exist'), { code: 'ENOENT' });
  assert.equal(await h.deleteBatch(fresh, 2), 2);
  assert.equal(await h.updateBatch(keys, vals, n, 'exist'), n);
  const del = Buffer.concat([u32(1), u32(555), u32(2)]);
  assert.equal(await h.deleteBatch(del, 3), 2, 'the absent key 555 is not counted');
  assert.equal(await h.deleteBatch(keys, n), n - 2);
  assert.equal((await h.lookupBatch()).count, 0);
});

test('batch: map types without batch ops fall back to element loops (lpm_trie, percpu)', async () => {
  const m = obj.map('t_lpm');
  const keys = Buffer.concat([Buffer.from([16, 0, 0, 0, 172, 16, 0, 0]), Buffer.from([12, 0, 0, 0, 172, 16, 0, 0])]);
  assert.equal(await m.updateBatch(keys, Buffer.concat([u32(16), u32(12)]), 2), 2);
  const all = await m.lookupBatch();
  assert.ok(all.count >= 2);
  assert.equal(await m.deleteBatch(keys, 2), 2);
  const p = obj.map('t_percpu');
  const pv = Buffer.alloc(2 * ncpu * 8, 1);
  assert.equal(await p.updateBatch(Buffer.concat([u32(0), u32(1)]), pv, 2), 2);
  const pall = await p.lookupBatch();
  assert.equal(pall.count, 4);
  assert.equal(pall.values.length, 4 * ncpu * 8);
});

test('iteration: keys() and entries() see every element', () => {
  const h = obj.map('t_hash');
  for (let i = 0; i < 5; i++) h.update(u32(50 + i), val16(i));
  const keys = h.keys().map((k) => k.readUInt32LE(0)).sort((a, b) => a - b);
  assert.deepEqual(keys, [50, 51, 52, 53, 54]);
  const entries = h.entries();
  assert.equal(entries.length, 5);
  for (const [k, v] of entries) assert.deepEqual(v, val16(k.readUInt32LE(0) - 50));
  for (let i = 0; i < 5; i++) h.delete(u32(50 + i));
});

test('map-in-map: setInner, innerId, fromId on array_of_maps and hash_of_maps', () => {
  for (const outerName of ['t_aom', 't_hom']) {
    const outer = obj.map(outerName);
    const inner = BpfMap.create({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 4, name: 'inner_test' });
    try {
      assert.equal(outer.innerId(u32(1)), null);
      outer.setInner(u32(1), inner);
      assert.equal(outer.innerId(u32(1)), inner.id);
      const again = BpfMap.fromId(inner.id);
      again.update(u32(3), u64(77));
      assert.deepEqual(inner.lookup(u32(3)), u64(77), 'fromId reaches the same kernel map');
      again.close();
      // The kernel checks inner maps against the template (array, 4-byte key, 8-byte value).
      const wrong = BpfMap.create({ type: 'array', keySize: 4, valueSize: 16, maxEntries: 4 });
      assert.throws(() => outer.setInner(u32(2), wrong), { code: 'EINVAL' });
      wrong.close();
      assert.equal(outer.delete(u32(1)), true);
      assert.equal(outer.innerId(u32(1)), null);
    } finally {
      inner.close();
    }
  }
});

/** Asserts a promise rejects with an addon error carrying this code, op and target. */
async function rejectsCode(p: Promise<unknown>, code: string, op: string, target: string, msg?: RegExp): Promise<any> {
  let got: any;
  await assert.rejects(p, (e: any) => {
    assert.equal(e.code, code, e.message);
    assert.equal(e.op, op);
    assert.equal(e.target, target);
    assert.ok(e.message.includes(target), e.message);
    if (msg) assert.match(e.message, msg);
    got = e;
    return true;
  });
  return got;
}

const innerMap = (name: string): BpfMap => BpfMap.create({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 4, name });

test('map-in-map async: setInnerAsync and deleteAsync store and remove inner maps off the JS thread', async () => {
  for (const outerName of ['t_aom', 't_hom']) {
    const outer = obj.map(outerName);
    const inner = innerMap('inner_async');
    const pending = outer.setInnerAsync(u32(2), inner);
    // The worker holds its own reference: closing the caller's fd at once is safe.
    inner.close();
    assert.equal(await pending, undefined);
    const id = outer.innerId(u32(2));
    assert.ok(id !== null && id > 0, `${outerName}: an inner map is stored`);
    const again = BpfMap.fromId(id);
    assert.equal(again.maxEntries, 4);
    again.update(u32(1), u64(9));
    assert.deepEqual(again.lookup(u32(1)), u64(9));
    again.close();
    assert.equal(await outer.deleteAsync(u32(2)), true);
    assert.equal(outer.innerId(u32(2)), null);
    assert.equal(await outer.deleteAsync(u32(2)), false, `${outerName}: nothing left to delete`);
  }
  const h = obj.map('t_hash');
  h.update(u32(5), val16(5));
  assert.equal(await h.deleteAsync(u32(5)), true, 'deleteAsync works on any map');
  assert.equal(await h.deleteAsync(u32(5)), false);
});

test('map-in-map batch: setInnerBatch stores every inner (one may serve several keys) in one call', async () => {
  for (const outerName of ['t_aom', 't_hom']) {
    const outer = obj.map(outerName);
    const a = innerMap('inner_a');
    const b = innerMap('inner_b');
    try {
      const keys = Buffer.concat([u32(0), u32(1), u32(3)]);
      assert.equal(await outer.setInnerBatch(keys, [a, b, a]), 3);
      assert.deepEqual([outer.innerId(u32(0)), outer.innerId(u32(1)), outer.innerId(u32(3))], [a.id, b.id, a.id]);
      const viaOuter = BpfMap.fromId(outer.innerId(u32(3))!);
      viaOuter.update(u32(0), u64(123));
      viaOuter.close();
      assert.deepEqual(a.lookup(u32(0)), u64(123), 'both keys reach the one shared map');
      assert.equal(await outer.setInnerBatch(Buffer.alloc(0), []), 0, 'an empty batch is a no-op');
      // Replacing in a batch: the old inner goes, the new one is in place.
      assert.equal(await outer.setInnerBatch(u32(0), [b]), 1);
      assert.equal(outer.innerId(u32(0)), b.id);
      for (const k of [0, 1, 3]) await outer.deleteAsync(u32(k));
    } finally {
      a.close();
      b.close();
    }
  }
});

test('map-in-map async errors carry code, op and target; a failed batch says how far it got', async () => {
  const hom = obj.map('t_hom');
  const wrong = BpfMap.create({ type: 'array', keySize: 4, valueSize: 16, maxEntries: 4, name: 'wrong_inner' });
  const ok = innerMap('ok_inner');
  try {
    // The kernel checks every inner map against the template (array, 4-byte key, 8-byte value).
    await rejectsCode(hom.setInnerAsync(u32(1), wrong), 'EINVAL', 'bpf_map_update_elem', 't_hom[wrong_inner]');
    assert.equal(hom.innerId(u32(1)), null);
    await rejectsCode(obj.map('t_hash').setInnerAsync(u32(1), ok), 'EINVAL', 'bpf_map_update_elem', 't_hash', /needs an array_of_maps or hash_of_maps/);
    await rejectsCode(hom.setInnerBatch(Buffer.alloc(3), [ok]), 'EINVAL', 'bpf_map_update_batch', 't_hom', /keys is 3 bytes, map 't_hom' expects 4/);
    await assert.rejects(hom.setInnerAsync(u32(1), {} as BpfMap), TypeError);

    // Full (max_entries 4): the first four keys are stored, the fifth fails with E2BIG.
    const keys = Buffer.concat([10, 11, 12, 13, 14, 15].map(u32));
    const inners = [ok, ok, ok, ok, ok, ok];
    const e = await rejectsCode(hom.setInnerBatch(keys, inners), 'E2BIG', 'bpf_map_update_batch', 't_hom[ok_inner]', /after 4 of 6/);
    assert.equal(e.done, 4);
    for (const k of [10, 11, 12, 13]) assert.equal(hom.innerId(u32(k)), ok.id, `key ${k} stored before the failure`);
    assert.equal(await hom.deleteBatch(keys, 6), 4);
    // A bad inner in the middle: the entries before it are stored, the error names it.
    const e2 = await rejectsCode(hom.setInnerBatch(Buffer.concat([u32(20), u32(21), u32(22)]), [ok, wrong, ok]),
      'EINVAL', 'bpf_map_update_batch', 't_hom[wrong_inner]');
    assert.equal(e2.done, 1);
    assert.equal(hom.innerId(u32(20)), ok.id);
    assert.equal(hom.innerId(u32(22)), null);
    assert.equal(await hom.deleteAsync(u32(20)), true);

    const closed = innerMap('closed_inner');
    closed.close();
    await rejectsCode(hom.setInnerBatch(u32(1), [closed]), 'EBADF', 'bpf_map_update_batch', 'closed_inner');
    await rejectsCode(hom.setInnerAsync(u32(1), closed), 'EBADF', 'bpf_map_update_elem', 'closed_inner');
    const gone = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 2, name: 'gone_hash' });
    gone.close();
    await rejectsCode(gone.deleteAsync(u32(1)), 'EBADF', 'bpf_map_delete_elem', 'gone_hash');
  } finally {
    wrong.close();
    ok.close();
  }
});

test('btfStruct gives size and member offsets from the object BTF', () => {
  const s = obj.btfStruct('t_val');
  assert.equal(s.size, 16);
  assert.deepEqual(s.members, [
    { name: 'packets', offset: 0, size: 8 },
    { name: 'backend_id', offset: 8, size: 4 },
    { name: 'port', offset: 12, size: 2 },
    { name: 'flags', offset: 14, size: 1 },
    { name: 'pad', offset: 15, size: 1 },
  ]);
});

test('create, pin, openPinned, unpin', () => {
  const dir = bpffsDir('maps');
  try {
    const m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 8, name: 'created_map' });
    assert.equal(m.name, 'created_map');
    m.update(u32(1), u64(5));
    m.pin(`${dir.path}/created`);
    const p = BpfMap.openPinned(`${dir.path}/created`);
    assert.equal(p.id, m.id);
    assert.deepEqual(p.lookup(u32(1)), u64(5));
    p.unpin(`${dir.path}/created`);
    assert.equal(existsSync(`${dir.path}/created`), false);
    p.close();
    m.close();
  } finally {
    dir.cleanup();
  }
});

test('error: wrong key or value length is EINVAL naming the map and both sizes', async () => {
  const h = obj.map('t_hash');
  throwsCode(() => h.lookup(Buffer.alloc(3)), 'EINVAL', 't_hash', /key is 3 bytes, map 't_hash' expects 4/);
  throwsCode(() => h.update(u32(1), Buffer.alloc(15)), 'EINVAL', 't_hash', /value is 15 bytes, map 't_hash' expects 16/);
  throwsCode(() => h.delete(Buffer.alloc(8)), 'EINVAL', 't_hash', /key is 8 bytes/);
  throwsCode(() => h.update(u32(1), val16(1), 'sometimes' as never), 'EINVAL', 't_hash', /update flag/);
  await assert.rejects(h.updateBatch(Buffer.alloc(8), Buffer.alloc(16), 2), { code: 'EINVAL', target: 't_hash' });
});

test('error: a closed map throws EBADF naming the map', async () => {
  const m = BpfMap.create({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 2, name: 'closing' });
  m.close();
  assert.equal(m.closed, true);
  throwsCode(() => m.lookup(u32(0)), 'EBADF', 'closing');
  throwsCode(() => m.update(u32(0), u64(0)), 'EBADF', 'closing');
  throwsCode(() => m.keys(), 'EBADF', 'closing');
  await assert.rejects(m.lookupBatch(), { code: 'EBADF', target: 'closing' });
});

test('error: maps of a closed object are closed too', async () => {
  const o = await loadObject(objPath('t_maps'));
  const a = o.map('t_array');
  o.close();
  throwsCode(() => a.lookup(u32(0)), 'EBADF', 't_array');
  assert.throws(() => o.map('t_array'), { code: 'EBADF' });
});

test('error: unknown map, program, struct and id are ENOENT', () => {
  throwsCode(() => obj.map('no_such_map'), 'ENOENT', 'no_such_map');
  throwsCode(() => obj.program('no_such_prog'), 'ENOENT', 'no_such_prog');
  throwsCode(() => obj.btfStruct('no_such_struct'), 'ENOENT', 'no_such_struct');
  assert.throws(() => BpfMap.fromId(0x7ffffff0), { code: 'ENOENT' });
  assert.throws(() => BpfMap.openPinned('/sys/fs/bpf/xlbt-definitely-missing'), { code: 'ENOENT' });
});

test('error: loading a missing file is ENOENT naming it', async () => {
  await assert.rejects(loadObject('/nonexistent/x.o'), (e: any) => e.code === 'ENOENT' && e.target === '/nonexistent/x.o');
});

test('error: a verifier rejection carries the verifier log', async () => {
  await assert.rejects(loadObject(objPath('t_bad_verifier')), (e: any) => {
    assert.equal(e.code, 'EACCES');
    assert.equal(e.op, 'bpf_object__load');
    assert.match(e.message, /invalid access to packet/);
    return true;
  });
});

test('loadObject maxEntries overrides a map size; an unknown name is ENOENT', async () => {
  const o = await loadObject(objPath('t_maps'), { maxEntries: { t_hash: 64 } });
  try {
    assert.equal(o.map('t_hash').maxEntries, 64);
  } finally {
    o.close();
  }
  await assert.rejects(loadObject(objPath('t_maps'), { maxEntries: { nope: 1 } }), { code: 'ENOENT', target: 'nope' });
});
