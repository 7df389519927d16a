// The control-plane bench's --quick variant runs end to end and reports every figure.
// Its targets are not asserted here: they are measured on a shared machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run, table, TARGETS } from './agent.js';

test('agent bench --quick: cold programming, change latency, RSS and iptables-restore, one run', { timeout: 300_000 }, async () => {
  const f = await run({ quick: true });
  assert.equal(f.services, 500);
  assert.equal(f.endpointsPerService, 10);
  assert.equal(f.frontends, 1000, 'a ClusterIP Service is one internal and one external frontend');
  assert.equal(f.changes, 100);
  assert.equal(f.failed, 0);
  for (const k of ['coldMs', 'iptablesRestoreMs', 'changeP50Ms', 'changeP99Ms', 'changeMaxMs', 'rssMb', 'peakRssMb'] as const) {
    assert.ok(Number.isFinite(f[k]) && f[k] > 0, `${k} = ${f[k]}`);
  }
  assert.ok(f.changeP50Ms <= f.changeP99Ms && f.changeP99Ms <= f.changeMaxMs);
  assert.ok(f.rssMb <= f.peakRssMb);
  assert.equal(f.coldRatio, Math.round((f.coldMs / f.iptablesRestoreMs) * 1000) / 1000);
  assert.deepEqual(f.targets, {
    coldRatio: f.coldRatio <= TARGETS.coldRatioMax,
    changeP99: f.changeP99Ms <= TARGETS.changeP99MsMax,
    rss: f.rssMb <= TARGETS.rssMbMax,
  });
  const cs = f.coldStart;
  assert.equal(cs.services, 500);
  for (const k of ['startMs', 'rssMb', 'nftMs', 'statusPolls'] as const) assert.ok(Number.isFinite(cs[k]) && cs[k] > 0, `coldStart.${k} = ${cs[k]}`);
  for (const k of ['startMs', 'rssMb', 'changeP50Ms', 'changeP99Ms'] as const) assert.ok(Number.isFinite(cs.kube![k]) && cs.kube![k] > 0, `coldStart.kube.${k} = ${cs.kube![k]}`);
  assert.equal(cs.kube!.changes, 100);
  const text = table(f);
  assert.match(text, /xlb agent start -> 500 Services x 10 programmed \(manifests source/);
  assert.match(text, /\/ nft -f, same Services/);
  assert.match(text, /through the kube source/);
  assert.match(text, /EndpointSlice change on the API server -> map write, p50 \/ p99 \(100 changes, API polled\)/);
  assert.match(text, /cold: 500 Services x 10 endpoints \(1000 frontends\)/);
  assert.match(text, /iptables-restore/);
  assert.match(text, /p99/);
});
