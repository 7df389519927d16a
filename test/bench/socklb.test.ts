// The socket LB benchmark works end to end: a short run gives a positive figure for every case
// (clients inside the run's child cgroup) and the ratios come out. Targets are reported by the
// benchmark, not asserted here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchSockLb, renderSockLb } from './socklb.js';

test('socklb bench: every case measured, ratios computed', { timeout: 240_000 }, async () => {
  const r = await benchSockLb({ reps: 2, durationS: 1 });
  for (const [k, v] of [...Object.entries(r.connrate), ...Object.entries(r.bulkGbps)]) assert.ok(v !== null && v! > 0, `${k}: ${v} (${r.errors.join('; ')})`);
  assert.ok(r.ratio.podConnrate! > 0 && r.ratio.podBulk! > 0 && r.ratio.nodeConnrate! > 0);
  assert.match(renderSockLb(r), /node-sock \/ node-direct/);
});
