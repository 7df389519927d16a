// Which node announces a LoadBalancer address (src/model/announce.ts): one test per rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import {
  announceOrder, announcedAddresses, deviceFor, eligibility, EXCLUDE_LB_LABEL, nodeReady, servicesByAddress, type AnnounceNode,
} from '../../src/model/announce.js';

const node = (name: string, o: { ready?: 'True' | 'False' | 'Unknown'; labels?: Record<string, string> } = {}): V1Node => ({
  metadata: { name, labels: o.labels },
  status: o.ready ? { conditions: [{ type: 'Ready', status: o.ready }] } : undefined,
});
const svc = (name: string, o: { ips?: string[]; etp?: 'Local' | 'Cluster'; cls?: string; type?: string } = {}): V1Service => ({
  metadata: { name, namespace: 'default' },
  spec: { type: o.type ?? 'LoadBalancer', externalTrafficPolicy: o.etp, loadBalancerClass: o.cls, ports: [{ port: 80 }] },
  status: { loadBalancer: { ingress: (o.ips ?? ['192.0.2.10']).map((ip) => ({ ip })) } },
});
const slice = (nodes: Array<[string, boolean]>): V1EndpointSlice => ({
  addressType: 'IPv4',
  endpoints: nodes.map(([nodeName, ready], i) => ({ addresses: [`10.244.0.${i + 1}`], nodeName, conditions: { ready } })),
});
const n = (name: string, o: Partial<AnnounceNode> & { v1?: V1Node } = {}): AnnounceNode => ({ name, enabled: o.enabled ?? true, node: o.v1 ?? node(name, { ready: 'True' }) });

test('eligible: a Ready node with xlb on and no exclusion label', () => {
  assert.deepEqual(eligibility(n('a'), [{ svc: svc('web'), slices: [] }]), { ok: true, why: 'eligible: ready, xlb on' });
});

test('not eligible: Ready condition False or Unknown; a Node without conditions counts as Ready (manifests)', () => {
  assert.equal(eligibility(n('a', { v1: node('a', { ready: 'False' }) }), []).ok, false);
  assert.equal(eligibility(n('a', { v1: node('a', { ready: 'Unknown' }) }), []).why, 'node not Ready');
  assert.equal(nodeReady(node('a')), true);
  assert.deepEqual(eligibility({ name: 'a', enabled: true, node: undefined }, []), { ok: false, why: 'no Node object' });
});

test('not eligible: xlb off on the node', () => {
  assert.deepEqual(eligibility(n('a', { enabled: false }), []), { ok: false, why: 'xlb off on this node' });
});

test('not eligible: labelled node.kubernetes.io/exclude-from-external-load-balancers (any value)', () => {
  const r = eligibility(n('a', { v1: node('a', { ready: 'True', labels: { [EXCLUDE_LB_LABEL]: '' } }) }), []);
  assert.deepEqual(r, { ok: false, why: `node labelled ${EXCLUDE_LB_LABEL}` });
});

test('externalTrafficPolicy Local: eligible only with a ready local endpoint of every Local Service on the address', () => {
  const local = svc('web', { etp: 'Local' });
  assert.equal(eligibility(n('a'), [{ svc: local, slices: [slice([['a', true]])] }]).ok, true);
  assert.equal(eligibility(n('a'), [{ svc: local, slices: [slice([['a', false], ['b', true]])] }]).ok, false);
  assert.match(eligibility(n('a'), [{ svc: local, slices: [slice([['b', true]])] }]).why, /no ready endpoint of default\/web here/);
  // shared address: a Cluster Service beside it does not lift the Local one's rule
  assert.equal(eligibility(n('a'), [{ svc: svc('other'), slices: [] }, { svc: local, slices: [] }]).ok, false);
  assert.equal(eligibility(n('a'), [{ svc: svc('web', { etp: 'Cluster' }), slices: [] }]).ok, true);
});

test('order: deterministic, independent of input order, each address its own first choice; leaving moves only its addresses', () => {
  const nodes = ['n1', 'n2', 'n3', 'n4'];
  const addrs = Array.from({ length: 40 }, (_, i) => `192.0.2.${i + 1}`);
  const first = new Map(addrs.map((a) => [a, announceOrder(a, nodes)[0]]));
  for (const a of addrs) assert.equal(announceOrder(a, [...nodes].reverse())[0], first.get(a));
  assert.ok(new Set(first.values()).size > 1, 'addresses spread over nodes');
  const without = nodes.filter((x) => x !== 'n2');
  for (const a of addrs) {
    const now = announceOrder(a, without);
    if (first.get(a) !== 'n2') assert.equal(now[0], first.get(a), `${a} stays`);
    else assert.equal(now[0], announceOrder(a, nodes)[1], `${a} goes to its second choice`);
  }
  assert.deepEqual(announceOrder('192.0.2.1', []), []);
});

test('addresses: IPv4 and IPv6 (canonical) ingress of xlb LoadBalancers only; shared addresses list every Service', () => {
  assert.deepEqual(announcedAddresses(svc('a', { ips: ['192.0.2.1', '2001:DB8:0::1', 'not-an-ip'] })), ['192.0.2.1', '2001:db8::1']);
  assert.deepEqual(announcedAddresses(svc('b', { cls: 'other.io/lb' })), []);
  assert.deepEqual(announcedAddresses(svc('c', { type: 'ClusterIP' })), []);
  const m = servicesByAddress([svc('a', { ips: ['192.0.2.1'] }), svc('b', { ips: ['192.0.2.1'] }), svc('c', { ips: ['192.0.2.2'] })]);
  assert.deepEqual([...m].map(([a, s]) => [a, s.map((x) => x.metadata?.name)]), [['192.0.2.1', ['a', 'b']], ['192.0.2.2', ['c']]]);
});

test('device: the one whose subnet holds the address, longest prefix; none outside every subnet', () => {
  const devs = [
    { ifindex: 2, name: 'eth0', mac: '02:00:00:00:00:01', cidrs: ['198.18.0.11/24'] },
    { ifindex: 3, name: 'eth1', mac: '02:00:00:00:00:02', cidrs: ['198.18.0.129/25', '10.0.0.1/32'] },
  ];
  assert.equal(deviceFor('198.18.0.200', devs)?.name, 'eth1');
  assert.equal(deviceFor('198.18.0.20', devs)?.name, 'eth0');
  assert.equal(deviceFor('10.0.0.1', devs), undefined);
  assert.equal(deviceFor('203.0.113.1', devs), undefined);
});

test('device: IPv6 addresses by the devices\' IPv6 subnets, longest prefix; not the own address, not a /128', () => {
  const devs = [
    { ifindex: 2, name: 'eth0', mac: '02:00:00:00:00:01', cidrs: ['198.18.0.11/24', '2001:db8:18::11/64'] },
    { ifindex: 3, name: 'eth1', mac: '02:00:00:00:00:02', cidrs: ['2001:db8:18::1:1/112', '2001:db8:99::1/128'] },
  ];
  assert.equal(deviceFor('2001:db8:18::200', devs)?.name, 'eth0');
  assert.equal(deviceFor('2001:db8:18::1:200', devs)?.name, 'eth1');
  assert.equal(deviceFor('2001:db8:18::11', devs), undefined);
  assert.equal(deviceFor('2001:db8:99::1', devs), undefined);
  assert.equal(deviceFor('2001:db8:77::1', devs), undefined);
});
