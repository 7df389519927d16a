// Dual-stack Services (issue 15): spec.ipFamilies, spec.ipFamilyPolicy and spec.clusterIPs with
// the API server's rules, and each family served the way kube-proxy's per-family proxiers serve
// it: a family's frontends exist only if the Service has a ClusterIP of that family, and take
// only that family's EndpointSlices, external addresses and source ranges.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { translate } from '../../src/model/translate.js';
import { familiesProblem, serviceFamilies } from '../../src/model/families.js';
import { validateService } from '../../src/model/validate.js';
import { allocate } from '../../src/model/ipam.js';
import { nodeInfo } from '../../src/model/node.js';
import { svc, ep, slice, run, ok, fe, picks, node, NODE } from './model.fixtures.js';

const DUAL = {
  type: 'LoadBalancer' as const,
  clusterIP: '10.96.0.10',
  clusterIPs: ['10.96.0.10', 'fd00:10:96::a'],
  ipFamilies: ['IPv4', 'IPv6'],
  ipFamilyPolicy: 'PreferDualStack',
  ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }],
};
const slice4 = (...e: ReturnType<typeof ep>[]) => slice('web-v4', [{ name: 'http', port: 8080 }], e);
const slice6 = (...e: ReturnType<typeof ep>[]) => slice('web-v6', [{ name: 'http', port: 8080 }], e, { addressType: 'IPv6' });

// ServiceSpec.ipFamilies / ipFamilyPolicy / clusterIPs: the rules of the API server's
// ValidateServiceClusterIPsRelatedFields and of its family defaulting.
describe('ipFamilies, ipFamilyPolicy, clusterIPs: validation', () => {
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown policy', { ipFamilyPolicy: 'DualStack' }, /spec.ipFamilyPolicy "DualStack" is not one of SingleStack, PreferDualStack, RequireDualStack/],
    ['an unknown family', { ipFamilies: ['IPv5'] }, /spec.ipFamilies\[0\] "IPv5" is not IPv4 or IPv6/],
    ['a family twice', { ipFamilies: ['IPv4', 'IPv4'] }, /spec.ipFamilies\[1\] IPv4 is listed twice/],
    ['clusterIPs[0] differs from clusterIP', { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.11'] }, /clusterIPs\[0\] "10.96.0.11" must match spec.clusterIP/],
    ['three clusterIPs', { clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.1', 'fd00::1', '10.96.0.2'] }, /at most 2/],
    ['two clusterIPs of one family', { clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.1', '10.96.0.2'], ipFamilyPolicy: 'RequireDualStack' }, /no more than one address of each IP family/],
    ['a clusterIP of the other family than ipFamilies says', { clusterIP: 'fd00::1', clusterIPs: ['fd00::1'], ipFamilies: ['IPv4'] }, /clusterIPs\[0\] fd00::1 is IPv6, but spec.ipFamilies\[0\] is IPv4/],
    ['SingleStack with two families', { ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'SingleStack' }, /must be RequireDualStack or PreferDualStack when spec.ipFamilies lists two/],
    ['SingleStack with two clusterIPs', { clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.1', 'fd00::1'], ipFamilyPolicy: 'SingleStack' }, /when spec.clusterIPs holds two/],
    ['None beside an address', { clusterIP: 'None', clusterIPs: ['None', 'fd00::1'] }, /'None' must be the first and only value/],
  ];
  for (const [name, spec, want] of bad) {
    test(`${name} is invalid, with the reason`, () => {
      assert.match(familiesProblem(spec) ?? 'valid', want);
      const r = run(svc(spec));
      assert.ok(!r.ok && r.invalid && want.test(r.skipped), r.ok ? 'programmed' : r.skipped);
    });
  }

  test('valid combinations pass', () => {
    for (const spec of [
      {}, { ipFamilies: ['IPv6'], clusterIP: 'fd00::1', clusterIPs: ['fd00::1'] }, DUAL,
      { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv6', 'IPv4'], clusterIP: 'fd00::1', clusterIPs: ['fd00::1', '10.96.0.1'] },
      { ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv4'] },
    ]) assert.equal(validateService(svc(spec as never)), null, JSON.stringify(spec));
  });

  test('headless: clusterIP None alone is skipped, not invalid', () => {
    const r = run(svc({ clusterIP: 'None', clusterIPs: ['None'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'PreferDualStack' }));
    assert.ok(!r.ok && !r.invalid && /headless/.test(r.skipped));
  });
});

describe('the families a Service is served in', () => {
  test('as listed; else from the clusterIPs; else IPv4; dual-stack policies add the other family where no API server filled it in', () => {
    assert.deepEqual(serviceFamilies({}), [4]);
    assert.deepEqual(serviceFamilies({ clusterIPs: ['fd00::1'] }), [6]);
    assert.deepEqual(serviceFamilies({ ipFamilies: ['IPv6', 'IPv4'] }), [6, 4]);
    assert.deepEqual(serviceFamilies({ ipFamilyPolicy: 'PreferDualStack' }), [4, 6]);
    assert.deepEqual(serviceFamilies({ ipFamilyPolicy: 'PreferDualStack', ipFamilies: ['IPv6'] }), [6], 'the API server found a single-stack cluster');
    assert.deepEqual(serviceFamilies({ ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv6'] }), [6, 4]);
    assert.deepEqual(serviceFamilies({ ipFamilyPolicy: 'SingleStack', clusterIPs: ['fd00::1'] }), [6]);
  });

  test('a RequireDualStack Service with one ClusterIP is served in that family, the other reported', () => {
    const s = ok(svc({ ipFamilyPolicy: 'RequireDualStack' }), [slice4(ep('10.244.1.5'))]);
    assert.deepEqual([...new Set(s.frontends.map((f) => f.family))], [4]);
    assert.deepEqual(s.warnings, ['ipFamilyPolicy RequireDualStack, but no IPv6 ClusterIP: not served over IPv6']);
  });

  test('a single-stack IPv4 Service gets no IPv6 frontend and no IPv6 backend', () => {
    const s = ok(svc({ type: 'NodePort', ports: DUAL.ports }), [slice4(ep('10.244.1.5')), slice6(ep('fd00:244::5'))]);
    assert.ok(s.frontends.every((f) => f.family === 4 && f.backends.every((b) => b.addr === '10.244.1.5')));
  });

  test('IPv6 addresses are kept in canonical form (RFC 5952), as the maps read back', () => {
    const s = ok(svc({ clusterIP: 'FD00:10:96:0:0::A', clusterIPs: ['FD00:10:96:0:0::A'] }), [slice6(ep('FD00:244:0::5'))]);
    assert.equal(fe(s, 'ClusterIP', 'internal').addr, 'fd00:10:96::a');
    assert.deepEqual(picks(fe(s, 'ClusterIP', 'internal')), ['fd00:244::5']);
  });

  test('IPv6 backends are ordered numerically, as IPv4 ones', () => {
    const s = ok(svc({ clusterIP: 'fd00::a', clusterIPs: ['fd00::a'] }), [slice6(ep('fd00:244::10'), ep('fd00:244::9'), ep('fd00:243::ffff'))]);
    assert.deepEqual(picks(fe(s, 'ClusterIP', 'internal')), ['fd00:243::ffff', 'fd00:244::9', 'fd00:244::10']);
  });
});

describe('a dual-stack LoadBalancer Service', () => {
  const spec = {
    ...DUAL,
    externalIPs: ['198.51.100.1', '2001:db8:e::1'],
    loadBalancerSourceRanges: ['192.0.2.0/24', '2001:db8:c::/48'],
  };
  const ingress = [{ ip: '203.0.113.7', ipMode: 'VIP' }, { ip: '2001:db8:1b::7', ipMode: 'VIP' }];
  const s = ok(svc(spec as never, { ingress }), [slice4(ep('10.244.1.5', { node: NODE })), slice6(ep('fd00:244::5', { node: NODE }), ep('fd00:244::6'))]);

  test('every frontend in both families: ClusterIP, NodePort, LoadBalancer, externalIP', () => {
    const external = s.frontends.filter((f) => f.scope === 'external').map((f) => f.id.split('|').slice(3, 5).join(' '));
    assert.deepEqual(external, [
      'ClusterIP 10.96.0.10:80', 'NodePort *:30080', 'LoadBalancer 203.0.113.7:80', 'ExternalIP 198.51.100.1:80',
      'ClusterIP [fd00:10:96::a]:80', 'NodePort [::]:30080', 'LoadBalancer [2001:db8:1b::7]:80', 'ExternalIP [2001:db8:e::1]:80',
    ]);
    assert.deepEqual(s.warnings, []);
  });

  test('each family takes only its own EndpointSlices (kube-proxy)', () => {
    for (const f of s.frontends) {
      const want = f.family === 6 ? ['fd00:244::5', 'fd00:244::6'] : ['10.244.1.5'];
      assert.deepEqual(f.backends.map((b) => b.addr), want, f.id);
    }
    assert.equal(s.localReadyEndpoints, 1, 'one local pod, listed in each family\'s slice, counts once');
  });

  test('the NodePort of each family is the wildcard of that family', () => {
    const nps = s.frontends.filter((f) => f.type === 'NodePort' && f.scope === 'external');
    assert.deepEqual(nps.map((f) => [f.addr, f.family, f.port]), [[null, 4, 30080], [null, 6, 30080]]);
  });

  test('loadBalancerSourceRanges guard each family with that family\'s ranges', () => {
    for (const f of s.frontends.filter((x) => x.type === 'LoadBalancer' || x.type === 'NodePort')) {
      assert.deepEqual(f.sourceRanges, f.family === 6 ? ['2001:db8:c::/48'] : ['192.0.2.0/24'], f.id);
    }
  });

  test('ranges of one family only: the other family is reported unrestricted', () => {
    const t = ok(svc({ ...DUAL, loadBalancerSourceRanges: ['192.0.2.0/24'] } as never, { ingress }));
    assert.deepEqual(fe(t, 'LoadBalancer', 'external', '2001:db8:1b::7').sourceRanges, []);
    assert.deepEqual(t.warnings, ['no usable IPv6 loadBalancerSourceRanges: IPv6 load balancer traffic is not restricted']);
  });

  test('--external-ip-cidrs takes IPv6 CIDRs', () => {
    const r = translate(svc(spec as never, { ingress }), [], nodeInfo(node()), { nodeName: NODE, externalIPCidrs: ['2001:db8:e::/48'] });
    assert.ok(r.ok);
    assert.deepEqual(r.service.frontends.filter((f) => f.type === 'ExternalIP').map((f) => f.addr), ['2001:db8:e::1', '2001:db8:e::1']);
    assert.ok(r.service.warnings.some((w) => w.startsWith('externalIP 198.51.100.1 refused')));
  });
});

describe('endpoints and topology per family', () => {
  test('IPv6 endpoint addresses no pod can hold are refused, each named', () => {
    const s = ok(svc({ clusterIP: 'fd00::a', clusterIPs: ['fd00::a'] }), [slice6(ep('fe80::1'), ep('::1'), ep('::ffff:10.0.0.1'), ep('10.0.0.1'), ep('fd00:244::5'))]);
    assert.deepEqual(picks(fe(s, 'ClusterIP', 'internal')), ['fd00:244::5']);
    assert.deepEqual(s.warnings, [
      'EndpointSlice web-v6: endpoint fe80::1 refused: it is link-local (fe80::/10); no pod holds such an address',
      'EndpointSlice web-v6: endpoint ::1 refused: it is loopback (::1/128); no pod holds such an address',
      'EndpointSlice web-v6: endpoint ::ffff:a00:1 refused: it is IPv4-mapped (::ffff:0:0/96); no pod holds such an address',
      'EndpointSlice web-v6: endpoint address "10.0.0.1" is not an IPv6 address',
    ]);
  });

  // kube-proxy decides topology per family: each proxier sees only its family's endpoints.
  test('topology hints are decided per family', () => {
    const zoned = nodeInfo(node({ zone: 'zone-a' }));
    const s = ok(svc({ ...DUAL, type: 'ClusterIP', ports: [DUAL.ports[0]!] } as never, { annotations: { 'service.kubernetes.io/topology-mode': 'Auto' } }), [
      slice4(ep('10.244.1.5', { hints: ['zone-a'] }), ep('10.244.2.5', { hints: ['zone-b'] })),
      slice6(ep('fd00:244::5', { hints: ['zone-a'] }), ep('fd00:244::6')),
    ], zoned);
    assert.deepEqual(picks(fe(s, 'ClusterIP', 'internal', '10.96.0.10')), ['10.244.1.5'], 'IPv4: every endpoint hinted');
    assert.deepEqual(picks(fe(s, 'ClusterIP', 'internal', 'fd00:10:96::a')), ['fd00:244::5', 'fd00:244::6'], 'IPv6: one unhinted, hints ignored');
  });
});

describe('LoadBalancer addresses per family', () => {
  const pools = [{ metadata: { name: 'p' }, spec: { addresses: ['203.0.113.0/28', '2001:db8:1b::/120'] } }];
  test('a dual-stack Service gets one address per family; a manifest\'s PreferDualStack without ipFamilies counts as both', () => {
    const a = allocate([svc(DUAL as never), svc({ type: 'LoadBalancer', ipFamilyPolicy: 'PreferDualStack' }, { name: 'pref' }), svc({ type: 'LoadBalancer' }, { name: 'one' })], pools);
    // In key order (no creation times): one, pref, web.
    assert.deepEqual(a.services.get('default/one')?.addresses, ['203.0.113.0']);
    assert.deepEqual(a.services.get('default/pref')?.addresses, ['203.0.113.1', '2001:db8:1b::']);
    assert.deepEqual(a.services.get('default/web')?.addresses, ['203.0.113.2', '2001:db8:1b::1']);
  });
});
