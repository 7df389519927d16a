// The bench's IPv6-vs-IPv4 report: each IPv6 row's ratio to direct against its IPv4 twin's,
// met when within 5%, per mode; direct itself and modes without both figures are left out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connClient, familyOrder, familyTwins, renderTable, config, type BenchResult } from './run.js';

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

test('conn/s samples: the families alternate ABBA, each as often first as second, direct from its own client pod', () => {
  assert.deepEqual(familyOrder(4), [4, 6, 6, 4, 4, 6, 6, 4]);
  assert.deepEqual(familyOrder(1), [4, 6]);
  for (const reps of [1, 2, 3, 4]) {
    const o = familyOrder(reps);
    assert.equal(o.filter((f) => f === 4).length, reps);
    // after a sample of one family, the next is as often the other family as the same one
    const follows6 = o.slice(1).filter((f, i) => f === 4 && o[i] === 6).length;
    const follows4 = o.slice(1).filter((f, i) => f === 6 && o[i] === 4).length;
    assert.ok(Math.abs(follows6 - follows4) <= 1, `${o.join(' ')}`);
  }
  const pods = ['iptables', 'nftables', 'xlb', 'xlb-peer'].map(connClient);
  assert.ok(!pods.includes(connClient('direct')), 'direct shares a client pod with a Service mode');
  assert.equal(new Set(pods).size, 1);
});
