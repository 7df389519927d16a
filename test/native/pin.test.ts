// Pinned maps across loads: the agent restarts and must find its state again, and must
// refuse (or, when asked, replace) a pinned map whose layout changed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { BpfMap, loadObject } from '../../src/datapath/bpf.js';
import { bpffsDir, objPath, u32, u64 } from './util.js';

const dir = bpffsDir('pin');
after(() => dir.cleanup());

test('pinPath pins every map; a second load reuses them and values survive', async () => {
  const pin = `${dir.path}/reuse`;
  const first = await loadObject(objPath('t_maps'), { pinPath: pin });
  assert.deepEqual(first.reused, []);
  first.map('t_array').update(u32(3), u64(1234));
  const id = first.map('t_array').id;
  first.close();
  assert.ok(existsSync(`${pin}/t_array`) && existsSync(`${pin}/t_aom`) && existsSync(`${pin}/t_hom`));

  const second = await loadObject(objPath('t_maps'), { pinPath: pin });
  try {
    assert.deepEqual(second.reused.sort(), ['t_aom', 't_array', 't_hash', 't_hom', 't_lpm', 't_lru', 't_percpu']);
    assert.equal(second.map('t_array').id, id);
    assert.deepEqual(second.map('t_array').lookup(u32(3)), u64(1234));
    assert.deepEqual(BpfMap.openPinned(`${pin}/t_array`).lookup(u32(3)), u64(1234));
  } finally {
    second.close();
  }
});

test('a changed max_entries is EMISMATCH naming the map and both layouts', async () => {
  const pin = `${dir.path}/mismatch`;
  (await loadObject(objPath('t_maps'), { pinPath: pin })).close();
  await assert.rejects(loadObject(objPath('t_maps'), { pinPath: pin, maxEntries: { t_hash: 32 } }), (e: any) => {
    assert.equal(e.code, 'EMISMATCH');
    assert.equal(e.target, 't_hash');
    assert.match(e.message, /t_hash/);
    assert.match(e.message, /max_entries=16/);
    assert.match(e.message, /max_entries=32/);
    return true;
  });
  assert.equal(BpfMap.openPinned(`${pin}/t_hash`).maxEntries, 16, 'the failed load left the old pin alone');
});

test('replaceMismatched swaps the pin and lists the map in replaced', async () => {
  const pin = `${dir.path}/replace`;
  const a = await loadObject(objPath('t_maps'), { pinPath: pin });
  a.map('t_array').update(u32(1), u64(9));
  const oldId = a.map('t_hash').id;
  a.close();
  const b = await loadObject(objPath('t_maps'), { pinPath: pin, maxEntries: { t_hash: 32 }, replaceMismatched: true });
  try {
    assert.deepEqual(b.replaced, ['t_hash']);
    assert.ok(b.reused.includes('t_array'));
    assert.notEqual(b.map('t_hash').id, oldId);
    const pinned = BpfMap.openPinned(`${pin}/t_hash`);
    assert.equal(pinned.maxEntries, 32);
    assert.equal(pinned.id, b.map('t_hash').id);
    assert.deepEqual(b.map('t_array').lookup(u32(1)), u64(9), 'matching maps were still reused');
  } finally {
    b.close();
  }
});
