// The kube-proxy rule generators render each family of the same dual-stack Services: IPv4 rules
// hold only IPv4 addresses, IPv6 rules only IPv6 ones (ip6tables syntax, nft's ip6 table), and
// the kernel's own tools accept them inside a namespace of the test's (ip6tables-restore --test,
// nft -c -f), then load them for real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsSet, sweepStale } from '../helpers/netns.js';
import { applyBaseline, familiesOf, flushBaseline, listRuleset, renderIptables, renderNftables, type Baseline } from './kubeproxy.js';
import { fillerServices, specsFor, type SimpleService } from './services.js';

const services: SimpleService[] = [
  { namespace: 'bench', name: 'web', clusterIP: '10.96.0.10', clusterIP6: 'fd00:96::a', externalLocal: true,
    lbIPs: ['198.18.100.10', 'fd00:18:100::10'],
    endpoints: [{ addr: '10.244.1.11', addr6: 'fd00:244:1::b', node: 'node1', target: 'web-1' },
      { addr: '10.244.2.11', addr6: 'fd00:244:2::b', node: 'node2', target: 'web-2' }],
    ports: [{ name: 'http', port: 80, targetPort: 8080, proto: 'TCP', nodePort: 30080 },
      { name: 'dns', port: 53, targetPort: 5353, proto: 'UDP', nodePort: 30053 }] },
  { namespace: 'bench', name: 'empty', clusterIP: '10.96.0.20', clusterIP6: 'fd00:96::14', endpoints: [],
    ports: [{ name: 'http', port: 80, targetPort: 8080, proto: 'TCP', nodePort: 30081 }] },
  { namespace: 'bench', name: 'v4only', clusterIP: '10.96.0.30', endpoints: [{ addr: '10.244.1.12', node: 'node1', target: 'v4-1' }],
    ports: [{ name: 'http', port: 80, targetPort: 8080, proto: 'TCP' }] },
  ...fillerServices(50, undefined, 8080, { dualStack: true }),
];
const specs = specsFor(services, 'node1');
const IPV4 = /\b\d{1,3}(\.\d{1,3}){3}\b/;
const IPV6 = /\bfd00:[0-9a-f:]*/;

test('kube-proxy rules: each family holds only its own addresses', () => {
  assert.deepEqual(familiesOf(specs), [4, 6]);
  assert.deepEqual(familiesOf(specsFor(services.filter((s) => !s.clusterIP6), 'node1')), [4]);
  const ipt6 = renderIptables(specs, 6);
  assert.doesNotMatch(ipt6, IPV4);
  assert.match(ipt6, /-d fd00:96::a\/128 -p tcp -m tcp --dport 80 /);
  assert.match(ipt6, /DNAT --to-destination \[fd00:244:1::b\]:8080/);
  assert.match(ipt6, /! -s fd00:244::\/48 /);
  assert.match(ipt6, /-d fd00:18:100::10\/128 .* -j KUBE-EXT-/);
  assert.match(ipt6, /-d fd00:96::14\/128 .*has no endpoints" -j REJECT/);
  assert.doesNotMatch(ipt6, /v4only/);
  const ipt4 = renderIptables(specs, 4);
  assert.doesNotMatch(ipt4, IPV6);
  assert.match(ipt4, /v4only/);
  const nft6 = renderNftables(specs, 6);
  assert.doesNotMatch(nft6.replace(/^table[^]*?\n}\n/m, ''), IPV4);
  assert.doesNotMatch(nft6, /\bip kube-proxy|ipv4_addr|ip daddr|ip saddr/);
  assert.match(nft6, /^add table ip6 kube-proxy$/m);
  assert.match(nft6, /dnat to \[fd00:244:2::b\]:8080/);
  assert.match(nft6, /fd00:96::a \. tcp \. 80 : goto service-/);
  assert.doesNotMatch(renderNftables(specs, 4), IPV6);
});

test("kube-proxy rules: the INVALID drop it installs without conntrackTCPBeLiberal, only when asked", () => {
  assert.match(renderIptables(specs, 4, { invalidDrop: true }), /^-A FORWARD .*-j KUBE-FORWARD\n-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP$/m);
  assert.match(renderIptables(specs, 4, { invalidDrop: true }), /^:KUBE-FORWARD - \[0:0\]$/m);
  assert.doesNotMatch(renderIptables(specs, 4), /INVALID|KUBE-FORWARD/);
  assert.match(renderNftables(specs, 6, { invalidDrop: true }), /chain filter-forward \{ type filter hook forward priority -110 ; ct state invalid drop ; \}/);
  assert.doesNotMatch(renderNftables(specs, 6), /invalid|filter-forward/);
});

for (const kind of ['iptables', 'nftables'] as Baseline[]) {
  test(`kube-proxy ${kind} rules of both families load in a namespace`, { timeout: 60_000 }, async (t) => {
    await sweepStale(`kp${kind[0]}`);
    const set = new NetnsSet(`kp${kind[0]}`);
    t.after(() => set.teardown());
    const ns = await set.add('node');
    await applyBaseline(kind, ns, specs, { check: true }); // ip6tables-restore --test / nft -c -f
    await applyBaseline(kind, ns, specs, { check: true, invalidDrop: true }); // the INVALID drop in both families
    assert.doesNotMatch(await listRuleset(ns), /kube-proxy|KUBE-/, 'a check loads nothing');
    await applyBaseline(kind, ns, specs);
    const rules = await listRuleset(ns);
    if (kind === 'nftables') {
      assert.match(rules, /table ip6 kube-proxy/);
      assert.match(rules, /fd00:96::a \. tcp \. 80 : goto/);
    } else {
      // iptables-nft: ip6tables-restore's rules live in nft's ip6 nat table.
      assert.match(rules, /table ip6 nat[^]*fd00:96::a/);
      assert.match(rules, /table ip nat[^]*10\.96\.0\.10/);
    }
    await flushBaseline(ns);
    assert.doesNotMatch(await listRuleset(ns), /kube-proxy|KUBE-/);
  });
}
