// nodeInfo(), nodePortAddresses() and the address parsing the model relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeChange, nodeInfo, nodePortAddresses } from '../../src/model/node.js';
import { isIPv4, isIPv6, parseCidr } from '../../src/model/ip.js';
import { node } from './model.fixtures.js';

// NodeStatus.addresses: "List of addresses reachable to the node." Only InternalIP and
// ExternalIP are packet destinations; Hostname/InternalDNS are names.
test('nodeInfo keeps InternalIP/ExternalIP addresses of both families (canonical), the zone label and all labels', () => {
  const n = nodeInfo(node({
    zone: 'zone-a',
    addrs: [
      { type: 'InternalIP', address: '192.168.1.10' },
      { type: 'InternalIP', address: 'FD00:0::10' },
      { type: 'ExternalIP', address: '203.0.113.10' },
      { type: 'Hostname', address: 'node-a' },
      { type: 'InternalDNS', address: 'node-a.internal' },
      { type: 'ExternalIP', address: '192.168.1.10' },
    ],
  }));
  assert.deepEqual(n, {
    name: 'node-a',
    addresses: ['192.168.1.10', 'fd00::10', '203.0.113.10'],
    zone: 'zone-a',
    labels: { 'kubernetes.io/hostname': 'node-a', 'topology.kubernetes.io/zone': 'zone-a' },
  });
});

test('nodeInfo of a Node without zone or status', () => {
  assert.deepEqual(nodeInfo({ metadata: { name: 'bare' } }), { name: 'bare', addresses: [], labels: {} });
});

// kube-proxy --nodeport-addresses: "the set of IP ranges on which NodePort services are
// accepted"; empty means every node address.
test('nodePortAddresses: all node addresses, or those inside the configured CIDRs', () => {
  const n = nodeInfo(node({ addrs: [{ type: 'InternalIP', address: '192.168.1.10' }, { type: 'ExternalIP', address: '203.0.113.10' }] }));
  assert.deepEqual(nodePortAddresses(n), ['192.168.1.10', '203.0.113.10']);
  assert.deepEqual(nodePortAddresses(n, ['192.168.0.0/16']), ['192.168.1.10']);
  assert.deepEqual(nodePortAddresses(n, ['0.0.0.0/0']), ['192.168.1.10', '203.0.113.10']);
  assert.deepEqual(nodePortAddresses(n, ['10.0.0.0/8']), []);
  assert.throws(() => nodePortAddresses(n, ['192.168.0.0/40']), /"192.168.0.0\/40" is not a CIDR/);
  const dual = nodeInfo(node({ addrs: [{ type: 'InternalIP', address: '192.168.1.10' }, { type: 'InternalIP', address: 'fd00:1::10' }] }));
  assert.deepEqual(nodePortAddresses(dual, ['fd00::/16']), ['fd00:1::10']);
  assert.deepEqual(nodePortAddresses(dual, ['fd00::/16', '192.168.0.0/16']), ['192.168.1.10', 'fd00:1::10']);
});

test('IPv4 parsing is strict: four decimal octets, no leading zeros', () => {
  for (const a of ['0.0.0.0', '10.96.0.10', '255.255.255.255']) assert.equal(isIPv4(a), true, a);
  for (const a of ['10.96.0', '10.96.0.256', '010.96.0.1', '10.96.0.1 ', '1.2.3.4.5', '', 'a.b.c.d', '1e1.0.0.1']) assert.equal(isIPv4(a), false, a);
});

test('IPv6 recognition', () => {
  for (const a of ['::', '::1', 'fd00:10:96::a', '2001:db8:0:0:0:0:0:1', '::ffff:10.0.0.1']) assert.equal(isIPv6(a), true, a);
  for (const a of ['1:2:3:4:5:6:7:8:9', ':::', '1::2::3', 'fd00::g', '10.0.0.1', 'fe80::1%eth0']) assert.equal(isIPv6(a), false, a);
});

test('parseCidr masks host bits like Go net.ParseCIDR and rejects bad lengths', () => {
  assert.deepEqual(parseCidr('10.1.2.3/8'), { ok: true, family: 4, cidr: '10.0.0.0/8' });
  assert.deepEqual(parseCidr('0.0.0.0/0'), { ok: true, family: 4, cidr: '0.0.0.0/0' });
  assert.deepEqual(parseCidr('203.0.113.7/32'), { ok: true, family: 4, cidr: '203.0.113.7/32' });
  assert.deepEqual(parseCidr('2001:db8::/32'), { ok: true, family: 6, cidr: '2001:db8::/32' });
  assert.deepEqual(parseCidr(' 2001:DB8:0:0:ff::1/64 '), { ok: true, family: 6, cidr: '2001:db8::/64' });
  assert.deepEqual(parseCidr('::/0'), { ok: true, family: 6, cidr: '::/0' });
  for (const bad of ['10.0.0.0', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/08', '10.0.0/8', '/8', '2001:db8::/129']) {
    assert.deepEqual(parseCidr(bad), { ok: false }, bad);
  }
});

// A kubelet status write (conditions, heartbeats, images) must not look like a change to xlb.
test('nodeChange: only addresses, zone/region and the enabled label count', () => {
  const base = (over: { addr?: string; zone?: string; labels?: Record<string, string>; ready?: string } = {}) => {
    const n = node({ zone: over.zone ?? 'zone-a', addrs: [{ type: 'InternalIP', address: over.addr ?? '192.168.1.10' }] });
    n.metadata!.labels = { ...n.metadata!.labels, ...(over.labels ?? {}) };
    n.status!.conditions = [{ type: 'Ready', status: over.ready ?? 'True', lastHeartbeatTime: new Date(over.ready ? 2 : 1) } as never];
    return nodeInfo(n);
  };
  const none = { addresses: false, topology: false, enabled: false };
  assert.deepEqual(nodeChange(base(), base({ ready: 'True', labels: { 'kubernetes.io/os': 'linux' } })), none);
  assert.deepEqual(nodeChange(base(), base({ addr: '192.168.1.11' })), { ...none, addresses: true });
  assert.deepEqual(nodeChange(base(), base({ zone: 'zone-b' })), { ...none, topology: true });
  assert.deepEqual(nodeChange(base(), base({ labels: { 'topology.kubernetes.io/region': 'r2' } })), { ...none, topology: true });
  assert.deepEqual(nodeChange(base(), base({ labels: { 'xlb.io/enabled': 'false' } })), { ...none, enabled: true });
  assert.deepEqual(nodeChange(undefined, base()), { addresses: true, topology: true, enabled: false }, 'the Node appearing');
  assert.deepEqual(nodeChange(undefined, undefined), none);
});
