// The bench's IPv6-vs-IPv4 report: each IPv6 row's ratio to direct against its IPv4 twin's,
// met when within 5%, per mode; direct itself and modes without both figures are left out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { familyTwins, renderTable, config, type BenchResult } from './run.js';

function result(rows: Record<string, Record<string, number | null>>): BenchResult {
  return {
    config: config(true), startedAt: 'now', durationS: 1, extra: {}, notes: [],
    modes: { direct: { available: true }, iptables: { available: true }, xlb: { available: true } },
    rows: Object.entries(rows).map(([id, median]) => ({ id, label: id, unit: 'x', better: 'higher' as const, samples: {}, errors: {}, median })),
  };
}

test('family twins: IPv6 ratio to direct within 5% of the IPv4 one is met, beyond is not', () => {
  const res = result({
    tcp_nodeport: { direct: 10, iptables: 8, xlb: 9 },
    tcp_nodeport6: { direct: 5, iptables: 4.1, xlb: 4.0 }, // iptables 0.82 vs 0.80 (+2.5%), xlb 0.80 vs 0.90 (-11%)
    connrate_big: { direct: 100, iptables: 50, xlb: null },
    connrate_big6: { direct: 100, iptables: 50, xlb: 90 },
  });
  const t = familyTwins(res);
  assert.deepEqual(t.map((x) => [x.row, x.mode, x.met]), [
    ['tcp_nodeport6', 'iptables', true], ['tcp_nodeport6', 'xlb', false], ['connrate_big6', 'iptables', true]]);
  assert.ok(Math.abs(t[1].ratio4 - 0.9) < 1e-9 && Math.abs(t[1].ratio6 - 0.8) < 1e-9);
  assert.match(renderTable(res), /^tcp_nodeport6 xlb +IPv4 +0\.90 +IPv6 +0\.80 +-11\.1% +NOT met$/m);
});
