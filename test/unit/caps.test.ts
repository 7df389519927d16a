// The agent's start-up capability check (src/agent/caps.ts): which capabilities a process
// lacks, from /proc/self/status's CapEff, and the one line it fails with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveCaps, missingCaps } from '../../src/agent/caps.js';

const bit = (...n: number[]) => n.reduce((m, b) => m | (1n << BigInt(b)), 0n);
const NET_ADMIN = 12, SYS_ADMIN = 21, PERFMON = 38, BPF = 39;

test('CapEff is read as a hex mask', () => {
  assert.equal(effectiveCaps('Name:\tnode\nCapEff:\t000000c000001000\n'), bit(NET_ADMIN, PERFMON, BPF));
  assert.equal(effectiveCaps('Name:\tnode\n'), 0n);
});

test("the DaemonSet's three capabilities are enough; each one missing is named", () => {
  assert.deepEqual(missingCaps(bit(NET_ADMIN, PERFMON, BPF), 40), []);
  assert.deepEqual(missingCaps(bit(NET_ADMIN, PERFMON), 40), ['BPF']);
  assert.deepEqual(missingCaps(bit(NET_ADMIN, BPF), 40), ['PERFMON']);
  assert.deepEqual(missingCaps(bit(PERFMON, BPF), 40), ['NET_ADMIN']);
  assert.deepEqual(missingCaps(0n, 40), ['BPF', 'PERFMON', 'NET_ADMIN']);
});

test('SYS_ADMIN stands in for BPF and PERFMON, and is what a kernel without CAP_BPF needs', () => {
  assert.deepEqual(missingCaps(bit(NET_ADMIN, SYS_ADMIN), 40), []);
  assert.deepEqual(missingCaps(bit(NET_ADMIN), 37), ['SYS_ADMIN']);
});
