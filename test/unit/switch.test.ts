// The hitless switch's agent side (src/agent/switch.ts): what the start-time probe says, and
// the drain deadline a restarted agent finds again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DrainStore, drainDone, drainProgress, probeNfct } from '../../src/agent/switch.js';

test('netfilter lookup probe: yes only with the kfuncs and nf_conntrack loaded, else no and why', () => {
  const yes = { kfunc: () => true, loaded: () => true };
  assert.equal(probeNfct('auto', yes).ok, true);
  assert.match(probeNfct('auto', yes).detail, /^yes: /);
  const noKfunc = probeNfct('auto', { kfunc: () => false, loaded: () => true });
  assert.deepEqual([noKfunc.ok, /bpf_skb_ct_lookup/.test(noKfunc.detail)], [false, true]);
  const notLoaded = probeNfct('auto', { kfunc: () => true, loaded: () => false });
  assert.deepEqual([notLoaded.ok, /nf_conntrack is not loaded/.test(notLoaded.detail)], [false, true]);
  const off = probeNfct('off', yes);
  assert.deepEqual([off.ok, /--netfilter-lookup off/.test(off.detail)], [false, true]);
});

test('drain store: a restarted agent reads the deadline its predecessor wrote; one entry per pin path; cleared at the end', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-drain-'));
  try {
    const a = new DrainStore({ apiSocket: join(dir, 'xlb.sock'), pinPath: '/sys/fs/bpf/a' });
    const b = new DrainStore({ apiSocket: join(dir, 'xlb.sock'), pinPath: '/sys/fs/bpf/b' });
    assert.equal(a.read(), undefined);
    a.write({ started: 1000, deadline: 601_000 });
    b.write({ started: 2000, deadline: 32_000 });
    assert.deepEqual(new DrainStore({ apiSocket: join(dir, 'xlb.sock'), pinPath: '/sys/fs/bpf/a' }).read(), { started: 1000, deadline: 601_000 });
    a.write(undefined);
    assert.equal(a.read(), undefined);
    assert.deepEqual(b.read(), { started: 2000, deadline: 32_000 });
    b.write(undefined);
    assert.equal(existsSync(join(dir, 'drain.json')), false, 'no file once no drain is left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('drain progress and end: flows left, whole seconds to the deadline; over at no flow or at the deadline', () => {
  const d = { started: 0, deadline: 600_000 };
  assert.deepEqual(drainProgress(d, 12, 168_500), { flows: 12, secondsLeft: 432 });
  assert.deepEqual(drainProgress(d, -1, 700_000), { flows: 0, secondsLeft: 0 });
  assert.equal(drainDone(d, 3, 599_999), false);
  assert.equal(drainDone(d, 0, 10), true);
  assert.equal(drainDone(d, 3, 600_000), true);
});
