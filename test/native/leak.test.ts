// Long loops must not leak: the agent updates maps for weeks and reloads objects on upgrades.
// Each loop runs in a child with --expose-gc so RSS is measured after real collections.
//
// Bounds, from measurements on this machine (Node 20, 2 CPUs): 1,000,000 updates grow RSS
// by ~0.1 MB; 10,000 load/close cycles by 6-14 MB with the JS heap flat. An idle Node
// process already grows ~6 MB over 10,000 event-loop turns, and V8 enlarges its heap
// reservation under allocation churn, hence the allowance. What a leak would cost instead:
// one 32-byte malloc chunk per update = 32 MB; one libbpf object per load (it holds the
// 13 KB ELF image, BTF and program copies) > 130 MB; one fd per op shows in the fd count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../helpers/netns.js';

const child = resolve(dirname(fileURLToPath(import.meta.url)), 'leak-child.js');
const MB = 1 << 20;

interface Snap { rss: number; heapUsed: number; fds: number }
interface Probe { phase: string; n: number; before: Snap; after: Snap; ms: number }

async function probe(phase: string, n: number): Promise<Probe> {
  const r = await run(process.execPath, ['--expose-gc', child, phase, String(n)], { timeoutMs: 60_000 });
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Probe;
}

test('1,000,000 map updates keep RSS within 8 MB and leak no fds', { timeout: 70_000 }, async () => {
  const p = await probe('updates', 1_000_000);
  const grew = p.after.rss - p.before.rss;
  assert.ok(grew < 8 * MB, `RSS grew ${(grew / MB).toFixed(1)} MB`);
  assert.equal(p.after.fds, p.before.fds);
});

test('10,000 loadObject/close cycles keep RSS within 48 MB, the JS heap flat, and leak no fds', { timeout: 70_000 }, async () => {
  const p = await probe('loads', 10_000);
  const grew = p.after.rss - p.before.rss;
  assert.ok(grew < 48 * MB, `RSS grew ${(grew / MB).toFixed(1)} MB`);
  assert.ok(p.after.heapUsed - p.before.heapUsed < 4 * MB, `JS heap grew ${((p.after.heapUsed - p.before.heapUsed) / MB).toFixed(1)} MB`);
  assert.equal(p.after.fds, p.before.fds, 'every map/program fd was closed');
});
