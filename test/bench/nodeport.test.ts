// The NodePort benchmark works end to end: one short repetition of every case gives a positive
// figure, ratios come out, and the remote case leaves node1 through xlb's device hook (not the stack).
// The performance target is reported by the benchmark, not asserted here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchNodePort, renderNodePort } from './nodeport.js';

test('nodeport bench: every case measured, ratios computed, remote flows forwarded by the device hook', { timeout: 120_000 }, async () => {
  const r = await benchNodePort({ reps: 1, durationS: 1 });
  assert.deepEqual(r.errors, []);
  for (const [name, v] of Object.entries(r.median)) assert.ok(v !== null && v > 0, `${name}: ${v}`);
  assert.ok(r.ratio.local! > 0 && r.ratio.remote! > 0 && r.ratio.remoteVsOneHop! > 0);
  // The remote case leaves node1 through xlb's device hook, not the stack's forwarding.
  assert.match(r.remotePath, /^(XDP_REDIRECT|tc device hook)/);
  assert.match(renderNodePort(r), /np-remote \/ routed-remote/);
});
