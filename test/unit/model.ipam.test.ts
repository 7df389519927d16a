// LoadBalancer address allocation (src/model/ipam.ts): one rule per test, on the Services
// and pools a user writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Service, V1ServiceSpec } from '@kubernetes/client-node';
import { allocate, formatAddr, parseAddr, parseRange, type LoadBalancerIPPool } from '../../src/model/ipam.js';
import { svc, type SvcOpts } from './model.fixtures.js';

type PoolSpec = NonNullable<LoadBalancerIPPool['spec']>;

function pool(name: string, addresses: string[], spec: Omit<PoolSpec, 'addresses'> = {}): LoadBalancerIPPool {
  return { apiVersion: 'xlb.io/v1alpha1', kind: 'LoadBalancerIPPool', metadata: { name }, spec: { addresses, ...spec } };
}

function lb(name: string, o: SvcOpts & { created?: string; spec?: Partial<V1ServiceSpec> } = {}): V1Service {
  const s = svc({ type: 'LoadBalancer', ...o.spec }, { ...o, name });
  if (o.created) s.metadata!.creationTimestamp = new Date(o.created);
  return s;
}

/** key -> addresses joined, or "- reason" */
function ips(services: V1Service[], pools: LoadBalancerIPPool[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, a] of allocate(services, pools).services) out[k] = a.addresses.join(',') + (a.reason ? ` - ${a.reason}` : '');
  return out;
}

const P = [pool('p', ['192.0.2.10-192.0.2.12'])];
const held = (ip: string) => ({ ingress: [{ ip, ipMode: 'VIP' }] });

test('addresses: CIDRs, ranges, single addresses, IPv6 in canonical form; bad entries are a pool conflict', () => {
  assert.deepEqual(parseRange('192.0.2.77/30'), { family: 4, first: BigInt(0xc000024c), last: BigInt(0xc000024f) });
  assert.deepEqual(parseRange('2001:db8::10 - 2001:db8::1f'), { family: 6, first: parseAddr('2001:db8::10')!.n, last: parseAddr('2001:db8::1f')!.n });
  assert.equal(formatAddr(parseAddr('2001:DB8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1');
  assert.equal(formatAddr(parseAddr('2001:db8:1:2:3:4:5:6')!), '2001:db8:1:2:3:4:5:6');
  for (const bad of ['192.0.2.0/33', '192.0.2.9-192.0.2.1', '192.0.2.1-2001:db8::1', '10.0.0', 'x']) assert.equal(typeof parseRange(bad), 'string', bad);
  const a = allocate([lb('a')], [pool('p', ['nonsense', '192.0.2.10/32'])]);
  assert.deepEqual(a.services.get('default/a')!.addresses, ['192.0.2.10']);
  assert.match(a.pools.get('p')!.conflicts[0]!, /"nonsense" is not a CIDR/);
});

test('the lowest free address, in creation order, then namespace/name; used and free counted', () => {
  const svcs = [lb('c', { created: '2026-01-02T00:00:00Z' }), lb('b', { created: '2026-01-01T00:00:00Z' }), lb('a', { ns: 'z', created: '2026-01-02T00:00:00Z' })];
  assert.deepEqual(ips(svcs, P), { 'default/b': '192.0.2.10', 'default/c': '192.0.2.11', 'z/a': '192.0.2.12' });
  assert.deepEqual(ips([...svcs].reverse(), P), ips(svcs, P), 'input order does not matter');
  assert.deepEqual(allocate(svcs, P).pools.get('p'), { used: 3, free: '0', conflicts: [] });
  assert.deepEqual(allocate(svcs, [pool('v6', ['2001:db8::/64'])]).pools.get('v6')!.free, String(2n ** 64n));
});

test('only type LoadBalancer with no class or xlb.io/lb; released on type change or delete', () => {
  const svcs = [
    lb('other', { spec: { loadBalancerClass: 'metallb.io/metallb' } }),
    lb('ours', { spec: { loadBalancerClass: 'xlb.io/lb' } }),
    svc({ type: 'NodePort' }, { name: 'np', ingress: [{ ip: '192.0.2.10' }] }),
  ];
  assert.deepEqual(ips(svcs, P), { 'default/ours': '192.0.2.10' });
  const a = ips([lb('a'), lb('b')], P);
  assert.deepEqual(a, { 'default/a': '192.0.2.10', 'default/b': '192.0.2.11' });
  // b keeps its address (in its status) when a is deleted; a new Service gets a's.
  assert.deepEqual(ips([lb('b', held('192.0.2.11')), lb('c')], P), { 'default/b': '192.0.2.11', 'default/c': '192.0.2.10' });
});

test('one address per IP family the Service asks for, IPv6 from an IPv6 pool', () => {
  const pools = [pool('v4', ['192.0.2.10/31']), pool('v6', ['2001:db8::a-2001:db8::b'])];
  const dual = lb('dual', { spec: { ipFamilies: ['IPv6', 'IPv4'], ipFamilyPolicy: 'PreferDualStack' } });
  assert.deepEqual(ips([dual], pools), { 'default/dual': '2001:db8::a,192.0.2.10' });
  assert.deepEqual(ips([dual], [pools[0]!]), { 'default/dual': '192.0.2.10 - no IPv6 pool assigns addresses to this Service' });
  assert.deepEqual(ips([lb('v6only', { spec: { ipFamilies: ['IPv6'] } })], pools), { 'default/v6only': '2001:db8::a' });
});

test('a requested address is honoured when a pool holds it and it is free, else a reason', () => {
  const req = (name: string, ips: string, created?: string) => lb(name, { annotations: { 'xlb.io/load-balancer-ips': ips }, created });
  assert.deepEqual(ips([lb('auto'), req('r', '192.0.2.10')], P), { 'default/r': '192.0.2.10', 'default/auto': '192.0.2.11' });
  assert.deepEqual(ips([lb('old', { spec: { loadBalancerIP: '192.0.2.12' } })], P), { 'default/old': '192.0.2.12' }, 'deprecated spec.loadBalancerIP');
  assert.deepEqual(ips([req('out', '198.51.100.1')], P), { 'default/out': ' - requested 198.51.100.1 is in no pool that selects this Service' });
  assert.deepEqual(ips([req('bad', 'nope')], P), { 'default/bad': ' - xlb.io/load-balancer-ips: "nope" is not an IP address' });
  assert.deepEqual(ips([req('v6', '2001:db8::1')], P), { 'default/v6': ' - xlb.io/load-balancer-ips: 2001:db8::1 is IPv6, not one of the Service\'s ipFamilies' });
  // Two Services ask for one address: the older one gets it, whatever the names.
  assert.deepEqual(ips([req('a', '192.0.2.11', '2026-01-02T00:00:00Z'), req('b', '192.0.2.11', '2026-01-01T00:00:00Z')], P), {
    'default/b': '192.0.2.11', 'default/a': ' - requested 192.0.2.11 is in use by default/b',
  });
  // Same creation time: namespace/name decides.
  assert.deepEqual(ips([req('b', '192.0.2.11'), req('a', '192.0.2.11')], P), {
    'default/a': '192.0.2.11', 'default/b': ' - requested 192.0.2.11 is in use by default/a',
  });
});

test('an address a Service holds is kept across restarts, Service updates and pool edits that still include it', () => {
  // Restart: the same inputs give the same answer; what a Service holds stays even when an
  // older Service would get it by order.
  const svcs = [lb('new', { created: '2026-01-02T00:00:00Z', ...held('192.0.2.10') }), lb('older', { created: '2026-01-01T00:00:00Z', ...held('192.0.2.12') })];
  assert.deepEqual(ips(svcs, P), { 'default/older': '192.0.2.12', 'default/new': '192.0.2.10' });
  // Held beats a newer request for the same address, and beats an older request too.
  const want = lb('want', { created: '2025-01-01T00:00:00Z', annotations: { 'xlb.io/load-balancer-ips': '192.0.2.10' } });
  assert.equal(ips([...svcs, want], P)['default/want'], ' - requested 192.0.2.10 is in use by default/new');
  // Service update (ports, labels) keeps it.
  const updated = lb('new', { ...held('192.0.2.10'), labels: { tier: 'web' }, spec: { ports: [{ port: 8443, protocol: 'TCP' }] } });
  assert.equal(ips([updated], P)['default/new'], '192.0.2.10');
  // Pool edit that still includes it: kept; one that drops it: a new address.
  assert.equal(ips([lb('new', held('192.0.2.10'))], [pool('p', ['192.0.2.0/24'])])['default/new'], '192.0.2.10');
  assert.equal(ips([lb('new', held('192.0.2.10'))], [pool('p', ['192.0.2.11-192.0.2.12'])])['default/new'], '192.0.2.11', 'pool shrink');
  // An ingress address from nowhere is not kept.
  assert.equal(ips([lb('x', held('198.51.100.7'))], P)['default/x'], '192.0.2.10');
});

test('a changed request replaces the held address', () => {
  const s = lb('s', { ...held('192.0.2.10'), annotations: { 'xlb.io/load-balancer-ips': '192.0.2.12' } });
  assert.deepEqual(ips([s], P), { 'default/s': '192.0.2.12' });
});

test('sharing key: one address for Services whose ports differ; a clash gets its own address', () => {
  const share = (name: string, port: number, protocol = 'TCP') => lb(name, { annotations: { 'xlb.io/sharing-key': 'k' }, spec: { ports: [{ port, protocol }] } });
  assert.deepEqual(ips([share('a', 80), share('b', 443), share('c', 80, 'UDP')], P), { 'default/a': '192.0.2.10', 'default/b': '192.0.2.10', 'default/c': '192.0.2.10' });
  assert.deepEqual(ips([share('a', 80), share('b', 80)], P), { 'default/a': '192.0.2.10', 'default/b': '192.0.2.11' });
  assert.deepEqual(ips([share('a', 80), lb('other', { spec: { ports: [{ port: 443, protocol: 'TCP' }] } })], P), { 'default/a': '192.0.2.10', 'default/other': '192.0.2.11' }, 'no key, no sharing');
  const reqShared = lb('r', { annotations: { 'xlb.io/sharing-key': 'k', 'xlb.io/load-balancer-ips': '192.0.2.10' } });
  const holder = lb('a', { ...held('192.0.2.10'), annotations: { 'xlb.io/sharing-key': 'k' } });
  assert.deepEqual(ips([holder, reqShared], P), { 'default/a': '192.0.2.10', 'default/r': ' - requested 192.0.2.10 is shared with default/a, which uses port TCP/80 too' });
  // A request comes before automatic assignment: the Service without one moves on.
  assert.deepEqual(ips([share('a', 80), reqShared], P), { 'default/a': '192.0.2.11', 'default/r': '192.0.2.10' });
  assert.deepEqual(allocate([share('a', 80), share('b', 443)], P).pools.get('p')!.used, 1);
});

test('serviceSelector and namespaces pick the pool; no matching pool is a reason', () => {
  const pools = [
    pool('a-web', ['192.0.2.10/32'], { serviceSelector: { matchLabels: { tier: 'web' } } }),
    pool('b-expr', ['192.0.2.20/32'], { serviceSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['db'] }, { key: 'legacy', operator: 'DoesNotExist' }] } }),
    pool('c-team', ['192.0.2.30/32'], { namespaces: ['team'] }),
  ];
  assert.deepEqual(ips([
    lb('web', { labels: { tier: 'web' } }), lb('db', { labels: { tier: 'db' } }), lb('legacy', { labels: { tier: 'db', legacy: 'y' } }),
    lb('t', { ns: 'team' }), lb('none'),
  ], pools), {
    'default/web': '192.0.2.10', 'default/db': '192.0.2.20', 'team/t': '192.0.2.30',
    'default/legacy': ' - no IPv4 pool assigns addresses to this Service',
    'default/none': ' - no IPv4 pool assigns addresses to this Service',
  });
  assert.equal(ips([lb('x'), lb('y')], [pool('one', ['192.0.2.10/32'])])['default/y'], ' - no free IPv4 address in pool one');
});

test('disabled: no new addresses, held ones kept; autoAssign false: only on request', () => {
  const off = [pool('p', ['192.0.2.10/30'], { disabled: true })];
  assert.deepEqual(ips([lb('new'), lb('held', held('192.0.2.11'))], off), {
    'default/held': '192.0.2.11', 'default/new': ' - no IPv4 pool assigns addresses to this Service',
  });
  assert.match(ips([lb('r', { spec: { loadBalancerIP: '192.0.2.10' } })], off)['default/r']!, /pool p assigns no new addresses \(disabled\)/);
  const manual = [pool('manual', ['192.0.2.10/30'], { autoAssign: false })];
  assert.deepEqual(ips([lb('auto'), lb('r', { spec: { loadBalancerIP: '192.0.2.11' } })], manual), {
    'default/auto': ' - no IPv4 pool assigns addresses to this Service', 'default/r': '192.0.2.11',
  });
});

test('avoidBuggyIPs skips .0 and .255 and counts them out of free', () => {
  const pools = [pool('p', ['192.0.2.255-192.0.3.1'], { avoidBuggyIPs: true })];
  assert.deepEqual(ips([lb('a'), lb('b')], pools), { 'default/a': '192.0.3.1', 'default/b': ' - no free IPv4 address in pool p' });
  assert.equal(allocate([], [pool('q', ['10.0.0.0/16'], { avoidBuggyIPs: true })]).pools.get('q')!.free, String(65536 - 512));
  assert.equal(allocate([], [pool('q', ['10.0.0.0/16'])]).pools.get('q')!.free, '65536');
  assert.match(ips([lb('r', { spec: { loadBalancerIP: '192.0.3.0' } })], pools)['default/r']!, /avoids \.0 and \.255/);
});

test('overlapping pools: the later one by name is a conflict and assigns nothing new', () => {
  const a = allocate([lb('s'), lb('t')], [pool('b', ['192.0.2.10/31']), pool('a', ['192.0.2.11/32'])]);
  assert.deepEqual(a.pools.get('b')!.conflicts, ['overlaps pool a: assigns no new addresses']);
  assert.deepEqual(a.pools.get('a')!.conflicts, ['pool b overlaps this one']);
  assert.deepEqual([...a.services.values()].map((x) => x.addresses.join() || x.reason), ['192.0.2.11', 'no free IPv4 address in pool a']);
});

test('many Services: each gets the next free address around held ones, across ranges, in one pass', () => {
  const pools = [pool('p', ['10.0.1.0/30', '10.0.0.0/24'], { avoidBuggyIPs: true })];
  const svcs = Array.from({ length: 300 }, (_, i) => lb(`s${String(i).padStart(3, '0')}`, i === 299 ? held('10.0.0.2') : {}));
  const a = allocate(svcs, pools);
  const got = [...a.services.values()].map((x) => x.addresses[0] ?? '-');
  assert.equal(a.services.get('default/s299')!.addresses[0], '10.0.0.2', 'held');
  const expected = [
    ...Array.from({ length: 254 }, (_, i) => `10.0.0.${i + 1}`).filter((x) => x !== '10.0.0.2'),
    '10.0.1.1', '10.0.1.2', '10.0.1.3',
  ];
  assert.deepEqual(got.slice(0, 256), expected, 'lowest free around the held one, .0/.255 skipped, then the next range');
  assert.deepEqual(got.slice(256, 299), Array(43).fill('-'));
  assert.equal(a.pools.get('p')!.free, '0');
});
