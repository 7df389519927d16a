// translate(): one test group per Service rule. Each group cites the API field documentation
// (k8s.io/api core/v1 and discovery/v1, as shipped in @kubernetes/client-node 1.4.0) or the
// kube-proxy behaviour it reproduces.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { translate } from '../../src/model/translate.js';
import { svc, ep, slice, httpSlice, run, ok, fe, picks, NODE, NODE_A } from './model.fixtures.js';

const ids = (s: { frontends: { id: string }[] }): string[] => s.frontends.map((f) => f.id).sort();

// ServiceSpec.type: "ClusterIP allocates a cluster-internal IP address for load-balancing to endpoints."
describe('ClusterIP', () => {
  test('one port gives an internal (tc) and an external (XDP) frontend with stable ids', () => {
    const s = ok(svc({}), [httpSlice(ep('10.244.1.5', { node: NODE, pod: 'web-1' }), ep('10.244.2.7', { node: 'node-b' }))]);
    assert.equal(s.key, 'default/web');
    assert.equal(s.type, 'ClusterIP');
    assert.deepEqual(ids(s), [
      'default/web|http|TCP|ClusterIP|10.96.0.10:80|external',
      'default/web|http|TCP|ClusterIP|10.96.0.10:80|internal',
    ]);
    const internal = fe(s, 'ClusterIP', 'internal');
    assert.equal(internal.maglev, false);
    assert.equal(fe(s, 'ClusterIP', 'external').maglev, false, 'a ClusterIP has no upstream balancer: random slots');
    assert.equal(internal.localOnly, false);
    assert.equal(internal.affinityTimeoutSec, 0);
    assert.deepEqual(internal.sourceRanges, []);
    assert.deepEqual(internal.backends, [
      { addr: '10.244.1.5', port: 8080, state: 'active', selectable: true, local: true, weight: 1, nodeName: NODE, target: 'web-1' },
      { addr: '10.244.2.7', port: 8080, state: 'active', selectable: true, local: false, weight: 1, nodeName: 'node-b' },
    ]);
    assert.deepEqual(s.warnings, []);
  });

  test('backends are ordered numerically by address', () => {
    const s = ok(svc({}), [httpSlice(ep('10.244.1.10'), ep('10.244.1.9'), ep('10.244.0.200'))]);
    assert.deepEqual(picks(fe(s, 'ClusterIP', 'internal')), ['10.244.0.200', '10.244.1.9', '10.244.1.10']);
  });

  // clusterIPs: "If this field is not specified, it will be initialized from the clusterIP field."
  test('clusterIP is used when clusterIPs is absent', () => {
    const s = ok(svc({ clusterIPs: undefined, clusterIP: '10.96.5.5' }));
    assert.equal(fe(s, 'ClusterIP', 'internal').addr, '10.96.5.5');
    assert.equal(fe(ok(svc({ clusterIPs: [], clusterIP: '10.96.5.6' })), 'ClusterIP', 'internal').addr, '10.96.5.6');
  });

  // clusterIPs: "This field may hold a maximum of two entries (dual-stack IPs, in either order)."
  test('dual-stack: both ClusterIPs are programmed, primary family first', () => {
    const s = ok(svc({ clusterIP: 'fd00:10:96::a', clusterIPs: ['fd00:10:96::a', '10.96.0.10'], ipFamilies: ['IPv6', 'IPv4'], ipFamilyPolicy: 'RequireDualStack' }));
    assert.deepEqual(s.frontends.map((f) => [f.addr, f.family]), [['fd00:10:96::a', 6], ['fd00:10:96::a', 6], ['10.96.0.10', 4], ['10.96.0.10', 4]]);
    assert.deepEqual(s.warnings, []);
  });

  test('an IPv6-only Service is programmed in IPv6 alone', () => {
    const s = ok(svc({ clusterIP: 'fd00:10:96::a', clusterIPs: ['fd00:10:96::a'], ipFamilies: ['IPv6'] }));
    assert.deepEqual(s.frontends.map((f) => f.id), ['default/web|http|TCP|ClusterIP|[fd00:10:96::a]:80|internal', 'default/web|http|TCP|ClusterIP|[fd00:10:96::a]:80|external']);
  });

  test('a Service without endpoints still has frontends (so the datapath can reject)', () => {
    const s = ok(svc({}), []);
    assert.equal(s.frontends.length, 2);
    assert.deepEqual(fe(s, 'ClusterIP', 'internal').backends, []);
  });
});

// ServicePort.nodePort: "The port on each node on which this service is exposed when type is
// NodePort or LoadBalancer."
describe('NodePort', () => {
  test('NodePort adds a wildcard-address frontend on the node port', () => {
    const s = ok(svc({ type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30080, targetPort: 8080 }] }), [httpSlice(ep('10.244.1.5'))]);
    assert.deepEqual(ids(s), [
      'default/web|http|TCP|ClusterIP|10.96.0.10:80|external',
      'default/web|http|TCP|ClusterIP|10.96.0.10:80|internal',
      'default/web|http|TCP|NodePort|*:30080|external',
      'default/web|http|TCP|NodePort|*:30080|internal',
    ]);
    const np = fe(s, 'NodePort', 'external');
    assert.equal(np.addr, null);
    assert.equal(np.port, 30080);
    assert.deepEqual(picks(np), ['10.244.1.5']);
  });

  test('a NodePort Service port without nodePort is reported', () => {
    const s = ok(svc({ type: 'NodePort' }));
    assert.equal(s.frontends.some((f) => f.type === 'NodePort'), false);
    assert.deepEqual(s.warnings, ['port http: no nodePort allocated; NodePort not programmed']);
  });

  // allocateLoadBalancerNodePorts: "It may be set to "false" if the cluster load-balancer does
  // not rely on NodePorts. If the caller requests specific NodePorts (by specifying a value),
  // those requests will be respected, regardless of this field."
  test('LoadBalancer with allocateLoadBalancerNodePorts=false has no NodePort unless one is given', () => {
    const ports = [
      { name: 'http', port: 80, targetPort: 8080 },
      { name: 'admin', port: 81, nodePort: 30081, targetPort: 9090 },
    ];
    const s = ok(svc({ type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, ports }, { ingress: [{ ip: '203.0.113.7' }] }));
    assert.deepEqual(s.frontends.filter((f) => f.type === 'NodePort').map((f) => `${f.portName}:${f.port}`), ['admin:30081', 'admin:30081']);
    assert.deepEqual(s.warnings, []);
  });
});

// LoadBalancerIngress.ip: "IP is set for load-balancer ingress points that are IP based";
// hostname: "set for load-balancer ingress points that are DNS based"; ipMode "Proxy": traffic
// is delivered "with the destination set to the node's IP and node port or the pod's IP".
describe('LoadBalancer', () => {
  const lb = (ingress: { ip?: string; hostname?: string; ipMode?: string }[]) =>
    svc({ type: 'LoadBalancer', ports: [{ name: 'http', port: 80, nodePort: 30080, targetPort: 8080 }] }, { ingress });

  test('each ingress IP becomes LoadBalancer frontends on the service port', () => {
    const s = ok(lb([{ ip: '203.0.113.7' }, { ip: '203.0.113.8', ipMode: 'VIP' }]));
    assert.deepEqual(s.frontends.filter((f) => f.type === 'LoadBalancer').map((f) => f.id), [
      'default/web|http|TCP|LoadBalancer|203.0.113.7:80|internal',
      'default/web|http|TCP|LoadBalancer|203.0.113.7:80|external',
      'default/web|http|TCP|LoadBalancer|203.0.113.8:80|internal',
      'default/web|http|TCP|LoadBalancer|203.0.113.8:80|external',
    ]);
    assert.equal(s.type, 'LoadBalancer');
    assert.equal(s.frontends.filter((f) => f.type === 'NodePort').length, 2);
  });

  test('hostname-only ingress is a warning; ipMode Proxy is not captured', () => {
    const s = ok(lb([{ hostname: 'lb.example.com' }, { ip: '203.0.113.9', ipMode: 'Proxy' }]));
    assert.equal(s.frontends.some((f) => f.type === 'LoadBalancer'), false);
    assert.deepEqual(s.warnings, ['load balancer ingress lb.example.com has no IP (hostname-only ingress is not programmed)']);
  });

  test('status ingress on a non-LoadBalancer Service is ignored', () => {
    const s = ok(svc({}, { ingress: [{ ip: '203.0.113.7' }] }));
    assert.equal(s.frontends.some((f) => f.type === 'LoadBalancer'), false);
  });
});

// externalIPs: "a list of IP addresses for which nodes in the cluster will also accept traffic
// for this service."
describe('externalIPs', () => {
  test('every externalIP of a family the Service is served in gets frontends on the service port, for any Service type', () => {
    const s = ok(svc({ externalIPs: ['198.51.100.1', '2001:db8::1'] }), [httpSlice(ep('10.244.1.5'))]);
    assert.deepEqual(picks(fe(s, 'ExternalIP', 'external', '198.51.100.1')), ['10.244.1.5']);
    assert.equal(fe(s, 'ExternalIP', 'external').port, 80);
    assert.deepEqual(s.warnings, ['externalIP 2001:db8::1 is IPv6, a family this Service has no ClusterIP of; ignored']);
  });

  // CVE-2020-8554: spec.externalIPs is served only inside the operator's --external-ip-cidrs.
  test('the externalIPs guard serves only addresses inside the allowed CIDRs, and names each refused one', () => {
    const s2 = svc({ externalIPs: ['198.51.100.1', '203.0.113.9'] });
    const guarded = (cidrs: string[]) => {
      const r = translate(s2, [httpSlice(ep('10.244.1.5'))], NODE_A, { nodeName: NODE, externalIPCidrs: cidrs });
      assert.ok(r.ok);
      return r.service;
    };
    const none = guarded([]);
    assert.deepEqual(none.frontends.filter((f) => f.type === 'ExternalIP'), []);
    assert.equal(none.frontends.length, 2, 'the ClusterIP frontends stay');
    assert.deepEqual(none.warnings, [
      'externalIP 198.51.100.1 refused: not inside --external-ip-cidrs (empty: no externalIPs allowed)',
      'externalIP 203.0.113.9 refused: not inside --external-ip-cidrs (empty: no externalIPs allowed)',
    ]);
    const one = guarded(['198.51.100.0/24', '2001:db8::/32']);
    assert.deepEqual(one.frontends.filter((f) => f.type === 'ExternalIP').map((f) => f.addr), ['198.51.100.1', '198.51.100.1']);
    assert.deepEqual(one.warnings, ['externalIP 203.0.113.9 refused: not inside --external-ip-cidrs (198.51.100.0/24,2001:db8::/32)']);
    assert.deepEqual(guarded(['0.0.0.0/0']).warnings, [], '0.0.0.0/0 allows every IPv4 address');
  });

  test('an externalIP equal to the ClusterIP is dropped with a warning (one map key each)', () => {
    const s = ok(svc({ externalIPs: ['10.96.0.10'] }));
    assert.equal(s.frontends.length, 2);
    assert.deepEqual(s.warnings, ['ExternalIP 10.96.0.10:80/TCP repeats an address:port of this Service; ignored']);
  });
});

// ServicePort.name: "When considering the endpoints for a Service, this must match the 'name'
// field in the EndpointPort." EndpointPort.port: "this must be set to the service's target port."
describe('ports and target ports', () => {
  test('several ports, each resolved through the slice port of the same name', () => {
    const s = ok(
      svc({ ports: [{ name: 'http', port: 80, targetPort: 'web' }, { name: 'metrics', port: 9100, targetPort: 9100 }] }),
      [slice('web-1', [{ name: 'http', port: 8080 }, { name: 'metrics', port: 9100 }], [ep('10.244.1.5')])],
    );
    assert.deepEqual(fe(s, 'ClusterIP', 'internal', '10.96.0.10').backends.map((b) => b.port), [8080]);
    const metrics = s.frontends.find((f) => f.portName === 'metrics' && f.scope === 'internal')!;
    assert.equal(metrics.port, 9100);
    assert.deepEqual(metrics.backends.map((b) => `${b.addr}:${b.port}`), ['10.244.1.5:9100']);
  });

  test('named targetPort: pods may use different numbers; each slice carries its own', () => {
    const s = ok(svc({ ports: [{ name: 'http', port: 80, targetPort: 'web' }] }), [
      slice('web-1', [{ name: 'http', port: 8080 }], [ep('10.244.1.5')]),
      slice('web-2', [{ name: 'http', port: 8443 }], [ep('10.244.2.7')]),
    ]);
    assert.deepEqual(fe(s, 'ClusterIP', 'internal').backends.map((b) => `${b.addr}:${b.port}`), ['10.244.1.5:8080', '10.244.2.7:8443']);
  });

  test('endpoints of a slice that lacks the port do not serve it', () => {
    const s = ok(svc({ ports: [{ name: 'http', port: 80 }, { name: 'grpc', port: 9000 }] }), [
      slice('web-1', [{ name: 'http', port: 8080 }, { name: 'grpc', port: 9000 }], [ep('10.244.1.5')]),
      slice('web-2', [{ name: 'http', port: 8080 }], [ep('10.244.2.7')]),
    ]);
    const grpc = s.frontends.find((f) => f.portName === 'grpc' && f.scope === 'internal')!;
    assert.deepEqual(grpc.backends.map((b) => b.addr), ['10.244.1.5']);
    assert.deepEqual(fe(s, 'ClusterIP', 'internal').backends.map((b) => b.addr), ['10.244.1.5', '10.244.2.7']);
  });

  test('unnamed single port matches the slice port with the empty name', () => {
    const s = ok(svc({ ports: [{ port: 53, protocol: 'UDP', targetPort: 5353 }] }), [slice('dns-1', [{ port: 5353, protocol: 'UDP' }], [ep('10.244.1.5')])]);
    const f = fe(s, 'ClusterIP', 'internal');
    assert.equal(f.id, 'default/web||UDP|ClusterIP|10.96.0.10:53|internal');
    assert.deepEqual(f.backends.map((b) => b.port), [5353]);
  });

  test('a slice port with no port number contributes nothing and is reported', () => {
    const s = ok(svc({}), [slice('web-1', [{ name: 'http' }], [ep('10.244.1.5')])]);
    assert.deepEqual(fe(s, 'ClusterIP', 'internal').backends, []);
    assert.deepEqual(s.warnings, ['EndpointSlice web-1: port "http" has no valid port number']);
  });
});

// ServicePort.protocol: 'Supports "TCP", "UDP", and "SCTP". Default is TCP.'
describe('protocols', () => {
  test('TCP and UDP ports of the same number are separate frontends matched by protocol', () => {
    const s = ok(svc({ ports: [{ name: 'dns-tcp', port: 53, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }] }), [
      slice('dns-1', [{ name: 'dns-tcp', port: 53, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }], [ep('10.244.1.5')]),
    ]);
    assert.deepEqual(s.frontends.filter((f) => f.scope === 'internal').map((f) => `${f.proto}:${f.backends.length}`), ['TCP:1', 'UDP:1']);
  });

  test('a slice port with the right name but another protocol does not match', () => {
    const s = ok(svc({ ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }), [slice('dns-1', [{ name: 'dns', port: 53, protocol: 'TCP' }], [ep('10.244.1.5')])]);
    assert.deepEqual(fe(s, 'ClusterIP', 'internal').backends, []);
  });

  test('SCTP ports are skipped with a warning; the other ports still work', () => {
    const s = ok(svc({ ports: [{ name: 'http', port: 80 }, { name: 'sig', port: 3868, protocol: 'SCTP' }] }), [httpSlice(ep('10.244.1.5'))]);
    assert.deepEqual(s.frontends.map((f) => f.portName), ['http', 'http']);
    assert.deepEqual(s.warnings, ['port sig: SCTP unsupported; port skipped']);
  });
});

// EndpointConditions: ready "A nil value should be interpreted as "true""; serving "A nil value
// should be interpreted as "true""; terminating "A nil value should be interpreted as "false"".
// KEP-1669: serving+terminating endpoints are used only when no ready endpoint exists.
describe('endpoint conditions', () => {
  const states = (...eps: ReturnType<typeof ep>[]) => fe(ok(svc({}), [httpSlice(...eps)]), 'ClusterIP', 'internal').backends;

  test('nil conditions mean ready, serving, not terminating', () => {
    assert.deepEqual(states(ep('10.244.1.5')).map((b) => [b.state, b.selectable]), [['active', true]]);
  });

  test('not ready (serving nil) and not terminating: listed as draining, never picked', () => {
    const b = states(ep('10.244.1.5', { ready: false }), ep('10.244.1.6'));
    assert.deepEqual(b.map((x) => [x.addr, x.state, x.selectable]), [['10.244.1.5', 'draining', false], ['10.244.1.6', 'active', true]]);
  });

  test('serving+terminating endpoints wait while a ready one exists', () => {
    const b = states(ep('10.244.1.5', { ready: false, serving: true, terminating: true }), ep('10.244.1.6'));
    assert.deepEqual(b.map((x) => [x.state, x.selectable]), [['terminating', false], ['active', true]]);
  });

  test('with no ready endpoint, serving+terminating ones take new flows (fallback)', () => {
    const b = states(
      ep('10.244.1.5', { ready: false, serving: true, terminating: true }),
      ep('10.244.1.6', { ready: false, terminating: true }),
      ep('10.244.1.7', { ready: false, serving: false, terminating: true }),
      ep('10.244.1.8', { ready: false, serving: false }),
    );
    assert.deepEqual(b.map((x) => [x.addr, x.state, x.selectable]), [
      ['10.244.1.5', 'terminating', true],
      ['10.244.1.6', 'terminating', true], // serving nil = true
      ['10.244.1.7', 'draining', false],
      ['10.244.1.8', 'draining', false],
    ]);
  });

  // publishNotReadyAddresses: "all endpoints are considered "ready" even if the Pods themselves are not."
  test('publishNotReadyAddresses makes every endpoint ready', () => {
    const s = ok(svc({ publishNotReadyAddresses: true }), [httpSlice(ep('10.244.1.5', { ready: false, serving: false }), ep('10.244.1.6', { ready: false, terminating: true }))]);
    assert.deepEqual(fe(s, 'ClusterIP', 'internal').backends.map((b) => [b.state, b.selectable]), [['active', true], ['active', true]]);
  });

  // Endpoint.addresses: "No semantics are defined for additional addresses beyond the first,
  // and kube-proxy does not look at them." EndpointSlice.addressType: only IPv4/IPv6 are processed.
  test('only the first address counts; IPv6 slices do not feed IPv4 frontends, FQDN slices are not programmed', () => {
    const s = ok(svc({}), [
      slice('web-1', [{ name: 'http', port: 8080 }], [{ addresses: ['10.244.1.5', '10.244.1.99'] }]),
      slice('web-6', [{ name: 'http', port: 8080 }], [ep('fd00::5')], { addressType: 'IPv6' }),
      slice('web-f', [{ name: 'http', port: 8080 }], [ep('web.example.com')], { addressType: 'FQDN' }),
    ]);
    assert.deepEqual(fe(s, 'ClusterIP', 'internal').backends.map((b) => b.addr), ['10.244.1.5']);
    assert.deepEqual(s.warnings, ['EndpointSlice web-f: addressType "FQDN" ignored']);
  });

  test('a malformed endpoint address is skipped and reported', () => {
    const s = ok(svc({}), [httpSlice(ep('10.244.1.300'), ep('10.244.1.5'))]);
    assert.deepEqual(fe(s, 'ClusterIP', 'internal').backends.map((b) => b.addr), ['10.244.1.5']);
    assert.deepEqual(s.warnings, ['EndpointSlice web-abc: endpoint address "10.244.1.300" is not an IPv4 address']);
  });
});

// EndpointSlice.endpoints: "a list of unique endpoints in this slice" - uniqueness is per slice,
// so an endpoint moving between slices (or a reused pod IP) appears twice across slices.
describe('duplicate endpoints across slices', () => {
  test('the same address:port is one backend; a non-terminating copy wins', () => {
    const s = ok(svc({}), [
      slice('web-a', [{ name: 'http', port: 8080 }], [ep('10.244.1.5', { ready: false, serving: true, terminating: true, pod: 'old' })]),
      slice('web-b', [{ name: 'http', port: 8080 }], [ep('10.244.1.5', { pod: 'new' })]),
    ]);
    assert.deepEqual(fe(s, 'ClusterIP', 'internal').backends.map((b) => [b.addr, b.state, b.target]), [['10.244.1.5', 'active', 'new']]);
  });

  test('a terminating copy does not replace a running one, whatever the slice order', () => {
    const s = ok(svc({}), [
      slice('web-b', [{ name: 'http', port: 8080 }], [ep('10.244.1.5', { ready: false, serving: true, terminating: true })]),
      slice('web-a', [{ name: 'http', port: 8080 }], [ep('10.244.1.5')]),
    ]);
    assert.deepEqual(fe(s, 'ClusterIP', 'internal').backends.map((b) => b.state), ['active']);
  });

  test('slices labelled for another Service or namespace are ignored', () => {
    const s = ok(svc({}), [
      httpSlice(ep('10.244.1.5')),
      slice('other-1', [{ name: 'http', port: 8080 }], [ep('10.244.9.9')], { service: 'other' }),
      slice('web-x', [{ name: 'http', port: 8080 }], [ep('10.244.8.8')], { ns: 'kube-system' }),
    ]);
    assert.deepEqual(fe(s, 'ClusterIP', 'internal').backends.map((b) => b.addr), ['10.244.1.5']);
  });
});

// internalTrafficPolicy: 'If set to "Local", the proxy will assume that pods only want to talk
// to endpoints of the service on the same node as the pod, dropping the traffic if there are
// no local endpoints.'
describe('internalTrafficPolicy', () => {
  const eps = [ep('10.244.1.5', { node: NODE }), ep('10.244.2.7', { node: 'node-b' })];

  test('Local: ClusterIP (both scopes) picks only this node\'s endpoints and keeps the client source', () => {
    const s = ok(svc({ internalTrafficPolicy: 'Local' }), [httpSlice(...eps)]);
    for (const scope of ['internal', 'external'] as const) {
      const f = fe(s, 'ClusterIP', scope);
      assert.equal(f.localOnly, true);
      assert.deepEqual(picks(f), ['10.244.1.5']);
      assert.equal(f.backends.length, 2, 'remote endpoints stay listed for established flows');
    }
  });

  test('Local with no local endpoint: nothing selectable (traffic is dropped, not sent remote)', () => {
    const s = ok(svc({ internalTrafficPolicy: 'Local' }), [httpSlice(ep('10.244.2.7', { node: 'node-b' }))]);
    assert.deepEqual(picks(fe(s, 'ClusterIP', 'internal')), []);
  });

  test('Local falls back to local serving+terminating endpoints, not to remote ready ones', () => {
    const s = ok(svc({ internalTrafficPolicy: 'Local' }), [
      httpSlice(ep('10.244.1.5', { node: NODE, ready: false, serving: true, terminating: true }), ep('10.244.2.7', { node: 'node-b' })),
    ]);
    assert.deepEqual(picks(fe(s, 'ClusterIP', 'internal')), ['10.244.1.5']);
  });

  test('Local does not affect NodePort frontends', () => {
    const s = ok(svc({ type: 'NodePort', internalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }), [httpSlice(...eps)]);
    assert.deepEqual(picks(fe(s, 'NodePort', 'internal')), ['10.244.1.5', '10.244.2.7']);
    assert.deepEqual(picks(fe(s, 'NodePort', 'external')), ['10.244.1.5', '10.244.2.7']);
  });

  test('an endpoint is local only when its nodeName is this node', () => {
    const s = translate(svc({ internalTrafficPolicy: 'Local' }), [httpSlice(...eps)], undefined, { nodeName: 'node-b' });
    assert.ok(s.ok);
    assert.deepEqual(picks(fe(s.service, 'ClusterIP', 'internal')), ['10.244.2.7']);
  });
});

// externalTrafficPolicy: 'If set to "Local", ... each node will deliver traffic only to the
// node-local endpoints of the service, without masquerading the client source IP.' It applies
// to "NodePorts, ExternalIPs, and LoadBalancer IPs"; kube-proxy sends pod traffic to those
// addresses to all endpoints (the cluster chain) even with Local.
describe('externalTrafficPolicy', () => {
  const eps = [ep('10.244.1.5', { node: NODE }), ep('10.244.2.7', { node: 'node-b' })];
  const lbSvc = (extra = {}) =>
    svc(
      { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, externalIPs: ['198.51.100.1'], ports: [{ name: 'http', port: 80, nodePort: 30080 }], ...extra },
      { ingress: [{ ip: '203.0.113.7' }] },
    );

  test('Local: external scope of NodePort, LoadBalancer and externalIP frontends is local-only', () => {
    const s = ok(lbSvc(), [httpSlice(...eps)]);
    for (const type of ['NodePort', 'LoadBalancer', 'ExternalIP'] as const) {
      const f = fe(s, type, 'external');
      assert.equal(f.localOnly, true, type);
      assert.deepEqual(picks(f), ['10.244.1.5'], type);
    }
  });

  test('Local: pods on this node reaching those addresses use every endpoint', () => {
    const s = ok(lbSvc(), [httpSlice(...eps)]);
    for (const type of ['NodePort', 'LoadBalancer', 'ExternalIP'] as const) {
      const f = fe(s, type, 'internal');
      assert.equal(f.localOnly, false, type);
      assert.deepEqual(picks(f), ['10.244.1.5', '10.244.2.7'], type);
    }
  });

  test('externalTrafficPolicy does not apply to the ClusterIP', () => {
    const s = ok(lbSvc(), [httpSlice(...eps)]);
    assert.deepEqual(picks(fe(s, 'ClusterIP', 'external')), ['10.244.1.5', '10.244.2.7']);
  });

  test('Cluster (default): every scope uses every endpoint', () => {
    const s = ok(lbSvc({ externalTrafficPolicy: 'Cluster', healthCheckNodePort: undefined }), [httpSlice(...eps)]);
    assert.ok(s.frontends.every((f) => !f.localOnly && picks(f).length === 2));
  });

  // healthCheckNodePort: "This only applies when type is set to LoadBalancer and
  // externalTrafficPolicy is set to Local."
  test('healthCheckNodePort and the number of local ready endpoints', () => {
    const s = ok(lbSvc(), [
      httpSlice(ep('10.244.1.5', { node: NODE }), ep('10.244.1.6', { node: NODE, ready: false, serving: true, terminating: true }), ep('10.244.2.7', { node: 'node-b' })),
    ]);
    assert.equal(s.healthCheckNodePort, 32000);
    assert.equal(s.localReadyEndpoints, 1);
    const cluster = ok(lbSvc({ externalTrafficPolicy: 'Cluster' }), [httpSlice(...eps)]);
    assert.equal(cluster.healthCheckNodePort, undefined);
  });

  test('an endpoint serving two ports counts once as a local ready endpoint', () => {
    const s = ok(svc({ ports: [{ name: 'http', port: 80 }, { name: 'admin', port: 81 }] }), [
      slice('web-1', [{ name: 'http', port: 8080 }, { name: 'admin', port: 8081 }], [ep('10.244.1.5', { node: NODE }), ep('10.244.1.6', { node: NODE, ready: false })]),
    ]);
    assert.equal(s.localReadyEndpoints, 1);
  });
});

// Topology aware routing: annotation service.kubernetes.io/topology-mode: Auto (legacy
// topology-aware-hints: auto) or spec.trafficDistribution: PreferClose. kube-proxy uses
// hints.forZones only if every ready endpoint has hints and one names this node's zone.
describe('topology hints', () => {
  const auto = { annotations: { 'service.kubernetes.io/topology-mode': 'Auto' } };
  const hinted = [
    ep('10.244.1.5', { zone: 'zone-a', hints: ['zone-a'] }),
    ep('10.244.2.7', { zone: 'zone-b', hints: ['zone-b'] }),
    ep('10.244.3.9', { zone: 'zone-c', hints: ['zone-c', 'zone-a'] }),
  ];
  const internalPicks = (s: ReturnType<typeof svc>, eps = hinted, n = NODE_A) => picks(fe(ok(s, [httpSlice(...eps)], n), 'ClusterIP', 'internal'));

  test('Auto: only endpoints hinted for this node\'s zone take new flows', () => {
    assert.deepEqual(internalPicks(svc({}, auto)), ['10.244.1.5', '10.244.3.9']);
    const f = fe(ok(svc({}, auto), [httpSlice(...hinted)]), 'ClusterIP', 'external');
    assert.deepEqual(picks(f), ['10.244.1.5', '10.244.3.9']);
    assert.equal(f.backends.length, 3);
  });

  test('legacy topology-aware-hints=auto and trafficDistribution PreferClose also enable hints', () => {
    assert.deepEqual(internalPicks(svc({}, { annotations: { 'service.kubernetes.io/topology-aware-hints': 'auto' } })), ['10.244.1.5', '10.244.3.9']);
    assert.deepEqual(internalPicks(svc({ trafficDistribution: 'PreferClose' })), ['10.244.1.5', '10.244.3.9']);
  });

  test('hints are ignored when the Service does not ask for them', () => {
    assert.deepEqual(internalPicks(svc({})), ['10.244.1.5', '10.244.2.7', '10.244.3.9']);
    const disabled = { annotations: { 'service.kubernetes.io/topology-mode': 'Disabled', 'service.kubernetes.io/topology-aware-hints': 'auto' } };
    assert.deepEqual(internalPicks(svc({}, disabled)), ['10.244.1.5', '10.244.2.7', '10.244.3.9']);
  });

  test('one ready endpoint without hints: all endpoints are used', () => {
    assert.deepEqual(internalPicks(svc({}, auto), [...hinted, ep('10.244.4.4')]), ['10.244.1.5', '10.244.2.7', '10.244.3.9', '10.244.4.4']);
  });

  test('a not-ready endpoint without hints does not disable hints', () => {
    assert.deepEqual(internalPicks(svc({}, auto), [...hinted, ep('10.244.4.4', { ready: false })]), ['10.244.1.5', '10.244.3.9']);
  });

  test('no endpoint hinted for this zone, or node without zone: all endpoints are used', () => {
    const other = [ep('10.244.2.7', { hints: ['zone-b'] }), ep('10.244.3.9', { hints: ['zone-c'] })];
    assert.deepEqual(internalPicks(svc({}, auto), other), ['10.244.2.7', '10.244.3.9']);
    assert.deepEqual(internalPicks(svc({}, auto), hinted, { ...NODE_A, zone: undefined }), ['10.244.1.5', '10.244.2.7', '10.244.3.9']);
    const unknownNode = translate(svc({}, auto), [httpSlice(...hinted)], undefined, { nodeName: NODE });
    assert.ok(unknownNode.ok);
    assert.deepEqual(picks(fe(unknownNode.service, 'ClusterIP', 'internal')), ['10.244.1.5', '10.244.2.7', '10.244.3.9']);
  });

  test('hints do not apply to Local policy', () => {
    const eps = [ep('10.244.1.5', { node: NODE, hints: ['zone-b'] }), ep('10.244.2.7', { node: 'node-b', hints: ['zone-a'] })];
    assert.deepEqual(internalPicks(svc({ internalTrafficPolicy: 'Local' }, auto), eps), ['10.244.1.5']);
  });

  test('the terminating fallback ignores hints', () => {
    const eps = [
      ep('10.244.1.5', { ready: false, serving: true, terminating: true, hints: ['zone-a'] }),
      ep('10.244.2.7', { ready: false, serving: true, terminating: true, hints: ['zone-b'] }),
    ];
    assert.deepEqual(internalPicks(svc({}, auto), eps), ['10.244.1.5', '10.244.2.7']);
  });
});

// EndpointSlice validation refuses endpoint addresses no pod can hold (unspecified, loopback,
// link-local, multicast, broadcast); a slice that did not come through the API server may
// still carry them. Each such endpoint is refused on its own, with a reason; the rest serve.
describe('endpoint addresses the API server refuses', () => {
  const refused: Array<[string, RegExp]> = [
    ['0.0.0.0', /unspecified/],
    ['127.0.0.1', /loopback/],
    ['127.9.9.9', /loopback/],
    ['169.254.10.1', /link-local/],
    ['224.0.0.1', /multicast/],
    ['239.255.0.7', /multicast/],
    ['255.255.255.255', /broadcast/],
  ];
  for (const [addr, why] of refused) {
    test(`${addr} is refused with a reason; the Service's other endpoint still serves`, () => {
      const s = ok(svc({}), [httpSlice(ep('10.244.1.5'), ep(addr))]);
      const f = fe(s, 'ClusterIP', 'internal');
      assert.deepEqual(f.backends.map((b) => b.addr), ['10.244.1.5']);
      assert.deepEqual(picks(f), ['10.244.1.5']);
      const w = s.warnings.find((x) => x.includes(addr));
      assert.ok(w, `a warning names ${addr}: ${JSON.stringify(s.warnings)}`);
      assert.match(w, new RegExp(`^EndpointSlice web-abc: endpoint ${addr.replace(/\./g, '\\.')} refused: it is `));
      assert.match(w, why);
    });
  }

  test('addresses next to the refused ranges are backends', () => {
    const near = ['1.0.0.1', '126.255.255.255', '128.0.0.1', '169.253.255.255', '169.255.0.1', '223.255.255.255', '240.0.0.1', '255.255.255.254'];
    const s = ok(svc({}), [httpSlice(...near.map((a) => ep(a)))]);
    assert.deepEqual(s.warnings, []);
    assert.equal(fe(s, 'ClusterIP', 'internal').backends.length, near.length);
  });

  test('a Service whose only endpoint is refused has no backend (new flows rejected), not an error', () => {
    const s = ok(svc({}), [httpSlice(ep('127.0.0.1'))]);
    assert.deepEqual(fe(s, 'ClusterIP', 'internal').backends, []);
    assert.equal(s.warnings.length, 1);
  });
});

// trafficDistribution: PreferSameNode (Kubernetes 1.34+): the EndpointSlice controller puts
// hints.forNodes (and forZones) on each endpoint. kube-proxy (pkg/proxy/topology.go) prefers
// this node's endpoints, else this zone's, else all; a kind of hint is ignored as soon as one
// ready endpoint lacks it, or when none names this node (zone).
describe('node hints (PreferSameNode)', () => {
  const sameNode = svc({ trafficDistribution: 'PreferSameNode' });
  const both = [
    ep('10.244.1.5', { node: NODE, zone: 'zone-a', hints: ['zone-a'], nodeHints: [NODE] }),
    ep('10.244.1.6', { node: NODE, zone: 'zone-a', hints: ['zone-a'], nodeHints: [NODE] }),
    ep('10.244.2.7', { node: 'node-b', zone: 'zone-a', hints: ['zone-a'], nodeHints: ['node-b'] }),
    ep('10.244.3.9', { node: 'node-c', zone: 'zone-c', hints: ['zone-c'], nodeHints: ['node-c'] }),
  ];
  const internalPicks = (s: ReturnType<typeof svc>, eps: ReturnType<typeof ep>[], n = NODE_A) =>
    picks(fe(ok(s, [httpSlice(...eps)], n), 'ClusterIP', 'internal'));

  test('only endpoints hinted for this node take new flows; the others stay backends', () => {
    assert.deepEqual(internalPicks(sameNode, both), ['10.244.1.5', '10.244.1.6']);
    const f = fe(ok(sameNode, [httpSlice(...both)]), 'ClusterIP', 'external');
    assert.deepEqual(picks(f), ['10.244.1.5', '10.244.1.6']);
    assert.equal(f.backends.length, 4);
  });

  test('node hints name no endpoint for this node: the zone hints decide', () => {
    const elsewhere = both.filter((e) => e.nodeName !== NODE);
    assert.deepEqual(internalPicks(sameNode, elsewhere), ['10.244.2.7']);
  });

  test('one ready endpoint without a node hint: node hints are ignored, zone hints still apply', () => {
    const missing = [...both, ep('10.244.4.4', { node: 'node-d', zone: 'zone-a', hints: ['zone-a'] })];
    assert.deepEqual(internalPicks(sameNode, missing), ['10.244.1.5', '10.244.1.6', '10.244.2.7', '10.244.4.4']);
  });

  test('hints missing altogether: every endpoint', () => {
    const bare = both.map((e) => ({ ...e, hints: undefined }));
    assert.deepEqual(internalPicks(sameNode, bare), ['10.244.1.5', '10.244.1.6', '10.244.2.7', '10.244.3.9']);
  });

  test('a not-ready endpoint without a node hint does not disable node hints', () => {
    assert.deepEqual(internalPicks(sameNode, [...both, ep('10.244.4.4', { ready: false })]), ['10.244.1.5', '10.244.1.6']);
  });

  test('PreferClose and topology-mode Auto follow node hints too, as kube-proxy does', () => {
    assert.deepEqual(internalPicks(svc({ trafficDistribution: 'PreferClose' }), both), ['10.244.1.5', '10.244.1.6']);
    assert.deepEqual(internalPicks(svc({}, { annotations: { 'service.kubernetes.io/topology-mode': 'Auto' } }), both), ['10.244.1.5', '10.244.1.6']);
  });

  test('a Service that asks for no topology ignores node hints', () => {
    assert.deepEqual(internalPicks(svc({}), both), ['10.244.1.5', '10.244.1.6', '10.244.2.7', '10.244.3.9']);
  });

  test('node hints do not apply to Local policy; the terminating fallback ignores them', () => {
    const crossed = [ep('10.244.1.5', { node: NODE, nodeHints: ['node-b'] }), ep('10.244.2.7', { node: 'node-b', nodeHints: [NODE] })];
    assert.deepEqual(internalPicks(svc({ trafficDistribution: 'PreferSameNode', internalTrafficPolicy: 'Local' }), crossed), ['10.244.1.5']);
    const terminating = [
      ep('10.244.2.7', { ready: false, serving: true, terminating: true, nodeHints: ['node-b'] }),
      ep('10.244.3.9', { ready: false, serving: true, terminating: true, nodeHints: [NODE] }),
    ];
    assert.deepEqual(internalPicks(sameNode, terminating), ['10.244.2.7', '10.244.3.9']);
  });
});

// sessionAffinity: 'Supports "ClientIP" and "None"'; ClientIPConfig.timeoutSeconds: "The value
// must be >0 && <=86400(for 1 day) if ServiceAffinity == "ClientIP". Default value is 10800(for 3 hours)."
describe('session affinity', () => {
  test('ClientIP without a timeout uses 10800 s on every frontend', () => {
    const s = ok(svc({ type: 'NodePort', sessionAffinity: 'ClientIP', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }));
    assert.deepEqual([...new Set(s.frontends.map((f) => f.affinityTimeoutSec))], [10800]);
  });

  test('an explicit timeout is used; None means 0', () => {
    assert.equal(fe(ok(svc({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } })), 'ClusterIP', 'internal').affinityTimeoutSec, 60);
    assert.equal(fe(ok(svc({ sessionAffinity: 'None', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } })), 'ClusterIP', 'internal').affinityTimeoutSec, 0);
  });
});

// loadBalancerSourceRanges: "this will restrict traffic through the cloud-provider load-balancer
// will be restricted to the specified client IPs." kube-proxy ignores entries it cannot parse.
describe('loadBalancerSourceRanges', () => {
  const lb = (ranges: string[]) =>
    svc({ type: 'LoadBalancer', loadBalancerSourceRanges: ranges, ports: [{ name: 'http', port: 80, nodePort: 30080 }] }, { ingress: [{ ip: '203.0.113.7' }] });

  test('valid CIDRs (host bits masked, whitespace trimmed) restrict the LoadBalancer and NodePort frontends (issue 3: NodePort alike), not the ClusterIP', () => {
    const s = ok(lb(['192.0.2.0/24', ' 198.51.100.7/16 ', '192.0.2.0/24']));
    assert.deepEqual(fe(s, 'LoadBalancer', 'external').sourceRanges, ['192.0.2.0/24', '198.51.0.0/16']);
    assert.deepEqual(fe(s, 'LoadBalancer', 'internal').sourceRanges, ['192.0.2.0/24', '198.51.0.0/16']);
    assert.deepEqual(fe(s, 'NodePort', 'external').sourceRanges, ['192.0.2.0/24', '198.51.0.0/16']);
    assert.deepEqual(fe(s, 'ClusterIP', 'external').sourceRanges, []);
  });

  test('invalid entries are ignored with a warning; those of a family the Service is not served in, silently (kube-proxy)', () => {
    const s = ok(lb(['192.0.2.0/24', '10.0.0.0/33', 'nonsense', '2001:db8::/32']));
    assert.deepEqual(fe(s, 'LoadBalancer', 'external').sourceRanges, ['192.0.2.0/24']);
    assert.deepEqual(s.warnings, [
      'loadBalancerSourceRanges entry "10.0.0.0/33" is not a CIDR; ignored',
      'loadBalancerSourceRanges entry "nonsense" is not a CIDR; ignored',
    ]);
  });

  test('ranges given but none usable: a warning says traffic is not restricted', () => {
    const s = ok(lb(['bogus']));
    assert.deepEqual(fe(s, 'LoadBalancer', 'external').sourceRanges, []);
    assert.ok(s.warnings.includes('no usable IPv4 loadBalancerSourceRanges: IPv4 load balancer traffic is not restricted'));
  });
});

// Services kube-proxy does not proxy: type ExternalName ("No proxying will be involved"),
// clusterIP "None" ("headless service"), and its informer's label selectors exclude
// service.kubernetes.io/service-proxy-name and service.kubernetes.io/headless.
describe('skipped Services', () => {
  const cases: [string, ReturnType<typeof svc>, RegExp][] = [
    ['headless', svc({ clusterIP: 'None', clusterIPs: ['None'] }), /headless Service \(clusterIP None\)/],
    ['ExternalName', svc({ type: 'ExternalName', externalName: 'db.example.com', clusterIP: undefined, clusterIPs: undefined, ports: undefined }), /ExternalName/],
    ['service-proxy-name', svc({}, { labels: { 'service.kubernetes.io/service-proxy-name': 'other-proxy' } }), /service-proxy-name=other-proxy: another proxy owns/],
    ['headless label', svc({}, { labels: { 'service.kubernetes.io/headless': '' } }), /label service.kubernetes.io\/headless/],
    ['no ClusterIP allocated', svc({ clusterIP: '', clusterIPs: [] }), /no ClusterIP allocated/],
  ];
  for (const [name, s, reason] of cases) {
    test(name, () => {
      const r = run(s, [httpSlice(ep('10.244.1.5'))]);
      assert.equal(r.ok, false);
      assert.ok(!r.ok && reason.test(r.skipped), !r.ok ? r.skipped : '');
      assert.ok(!r.ok && !r.invalid);
    });
  }
});

describe('invalid objects: ok:false with the reason, never a throw', () => {
  const base = svc({});
  const cases: [string, unknown, string][] = [
    ['missing name', { ...base, metadata: { namespace: 'default' } }, 'metadata.name is missing'],
    ['no spec', { metadata: { name: 'x' } }, 'spec is missing'],
    ['unknown type', svc({ type: 'Balancer' }), 'spec.type "Balancer" is not one of ClusterIP, NodePort, LoadBalancer, ExternalName'],
    ['no ports', svc({ ports: [] }), 'spec.ports is empty'],
    ['port out of range', svc({ ports: [{ name: 'http', port: 70000 }] }), 'spec.ports[0].port 70000 is not a port number (1-65535)'],
    ['port not a number', svc({ ports: [{ name: 'http', port: '80' as never }] }), 'spec.ports[0].port "80" is not a port number (1-65535)'],
    ['nodePort out of range', svc({ type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 65536 }] }), 'spec.ports[0].nodePort 65536 is not a port number (1-65535)'],
    ['bad targetPort name', svc({ ports: [{ name: 'http', port: 80, targetPort: 'Not_A_Name' }] }), 'spec.ports[0].targetPort "Not_A_Name" is neither a port number (1-65535) nor a port name'],
    ['bad protocol', svc({ ports: [{ name: 'http', port: 80, protocol: 'ICMP' }] }), 'spec.ports[0].protocol "ICMP" is not TCP, UDP or SCTP'],
    ['duplicate port names', svc({ ports: [{ name: 'a', port: 80 }, { name: 'a', port: 81 }] }), 'spec.ports: name "a" is used twice'],
    ['unnamed ports', svc({ ports: [{ port: 80 }, { port: 81 }] }), 'spec.ports: several ports need a name each'],
    ['same port twice', svc({ ports: [{ name: 'a', port: 80 }, { name: 'b', port: 80 }] }), 'spec.ports: 80/TCP is listed twice'],
    ['bad clusterIP', svc({ clusterIPs: ['10.96.0.300'] }), 'spec.clusterIPs[0] "10.96.0.300" is not an IP address'],
    ['bad externalIP', svc({ externalIPs: ['example.com'] }), 'spec.externalIPs[0] "example.com" is not an IP address'],
    ['bad policy', svc({ externalTrafficPolicy: 'Nearby' }), 'spec.externalTrafficPolicy "Nearby" is not Cluster or Local'],
    ['bad affinity', svc({ sessionAffinity: 'Cookie' }), 'spec.sessionAffinity "Cookie" is not None or ClientIP'],
    ['bad affinity timeout', svc({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } } }), 'spec.sessionAffinityConfig.clientIP.timeoutSeconds 0 is not between 1 and 86400'],
  ];
  for (const [name, s, reason] of cases) {
    test(name, () => {
      const r = translate(s as never, [], NODE_A, { nodeName: NODE });
      assert.deepEqual(r, { ok: false, skipped: `invalid Service: ${reason}`, invalid: true });
    });
  }

  test('garbage in is a reason, not an exception', () => {
    for (const s of [null, undefined, 42, 'svc', {}, { metadata: {} }, { metadata: { name: 'x' }, spec: { ports: [null] } }]) {
      const r = translate(s as never, [], NODE_A, { nodeName: NODE });
      assert.equal(r.ok, false);
      assert.ok(!r.ok && r.invalid && r.skipped.startsWith('invalid Service: '));
    }
  });

  test('a Service without namespace is taken as namespace "default"', () => {
    const s = svc({});
    delete s.metadata!.namespace;
    assert.equal(ok(s, [httpSlice(ep('10.244.1.5'))]).key, 'default/web');
  });
});

describe('frontend identity', () => {
  test('ids are unique within a Service and identical across runs', () => {
    const s = svc(
      { type: 'LoadBalancer', externalIPs: ['198.51.100.1'], ports: [{ name: 'http', port: 80, nodePort: 30080 }, { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }] },
      { ingress: [{ ip: '203.0.113.7' }] },
    );
    const a = ok(s);
    assert.equal(new Set(ids(a)).size, a.frontends.length);
    assert.equal(a.frontends.length, 2 /* ports */ * 4 /* ClusterIP, NodePort, LB, externalIP */ * 2 /* scopes */);
    assert.deepEqual(ids(ok(s)), ids(a));
    assert.ok(a.frontends.every((f) => f.service === 'default/web'));
  });
});
