// The NodePort benchmark works end to end: one short repetition of every case gives a positive
// figure, ratios come out, and the remote case really leaves node1 through XDP (not the stack).
// The performance target is reported by the benchmark, not asserted here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchNodePort, renderNodePort } from './nodeport.js';

test('nodeport bench: every case measured, ratios computed, remote flows forwarded by XDP', { timeout: 120_000 }, async () => {
  const r = await benchNodePort({ reps: 1, durationS: 1 });
  assert.deepEqual(r.errors, []);
  for (const [name, v] of Object.entries(r.median)) assert.ok(v !== null && v > 0, `${name}: ${v}`);
  assert.ok(r.ratio.local! > 0 && r.ratio.remote! > 0 && r.ratio.remoteVsOneHop! > 0);
  assert.match(r.remotePath, /^XDP_REDIRECT/);
  assert.match(renderNodePort(r), /np-remote \/ routed-remote/);
});
