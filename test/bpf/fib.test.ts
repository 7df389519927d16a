// Fixture rows that take the real FIB path (bpf_fib_lookup + redirect) inside a namespace
// built here: "node" has ext0 (to the client side, 192.168.1.10/24) and int0 (toward the
// other node, 10.0.9.1/24), static neighbours, an unreachable route and forwarding on; the
// same in IPv6 (twin.ts addresses) for each row's IPv6 twin (AF_INET6 FIB lookups).
// The rows run in a child process started with `ip netns exec`, since test runs with
// ingress_ifindex resolve the device in the caller's namespace.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsSet, run, sweepStale, type Netns } from '../helpers/netns.js';
import { tcDevName } from './tcdev.fixtures.js';
import { to6 } from './twin.js';

const child = resolve(dirname(fileURLToPath(import.meta.url)), 'fib-child.js');

async function build(set: NetnsSet): Promise<Netns> {
  const node = await set.add('node');
  const cl = await set.add('cl');
  const peer = await set.add('peer');
  await set.veth(node, 'ext0', cl, 'cl0');
  await set.veth(node, 'int0', peer, 'pe0');
  const ip = (...a: string[]) => node.ip(...a);
  await ip('link', 'set', 'ext0', 'address', '02:00:00:00:01:0a');
  await ip('link', 'set', 'int0', 'address', '02:00:00:00:09:01');
  await ip('addr', 'add', '192.168.1.10/24', 'dev', 'ext0');
  await ip('addr', 'add', '10.0.9.1/24', 'dev', 'int0');
  for (const [ns, dev] of [[node, 'ext0'], [node, 'int0'], [cl, 'cl0'], [peer, 'pe0']] as const) await ns.ip('link', 'set', dev, 'up');
  await ip('route', 'add', '203.0.113.0/24', 'via', '192.168.1.1', 'dev', 'ext0');
  await ip('route', 'add', '10.244.2.0/24', 'via', '10.0.9.2', 'dev', 'int0');
  await ip('route', 'add', 'unreachable', '10.99.0.0/16');
  await ip('neigh', 'add', '192.168.1.1', 'lladdr', '02:00:00:00:01:01', 'dev', 'ext0', 'nud', 'permanent');
  await ip('neigh', 'add', '192.168.1.50', 'lladdr', '02:00:00:00:01:50', 'dev', 'ext0', 'nud', 'permanent');
  await ip('neigh', 'add', '10.0.9.2', 'lladdr', '02:00:00:00:09:02', 'dev', 'int0', 'nud', 'permanent');
  await node.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  // the IPv6 twins of all of it (twin.ts): /24 -> /120, /16 -> /112
  await node.exec('sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
  await ip('-6', 'addr', 'add', `${to6('192.168.1.10')}/120`, 'dev', 'ext0', 'nodad');
  await ip('-6', 'addr', 'add', `${to6('10.0.9.1')}/120`, 'dev', 'int0', 'nodad');
  await ip('-6', 'route', 'add', `${to6('203.0.113.0')}/120`, 'via', to6('192.168.1.1'), 'dev', 'ext0');
  await ip('-6', 'route', 'add', `${to6('10.244.2.0')}/120`, 'via', to6('10.0.9.2'), 'dev', 'int0');
  await ip('-6', 'route', 'add', 'unreachable', `${to6('10.99.0.0')}/112`);
  await ip('-6', 'neigh', 'add', to6('192.168.1.1'), 'lladdr', '02:00:00:00:01:01', 'dev', 'ext0', 'nud', 'permanent');
  await ip('-6', 'neigh', 'add', to6('192.168.1.50'), 'lladdr', '02:00:00:00:01:50', 'dev', 'ext0', 'nud', 'permanent');
  await ip('-6', 'neigh', 'add', to6('10.0.9.2'), 'lladdr', '02:00:00:00:09:02', 'dev', 'int0', 'nud', 'permanent');
  return node;
}

describe('datapath fixtures on the real FIB path (namespace)', () => {
  const set = new NetnsSet('fib');
  let results: Array<{ name: string; ok: boolean; error?: string }> = [];
  before(async () => {
    await sweepStale('fib');
    const node = await build(set);
    // `ip netns exec` mounts a fresh /sys in a private mount namespace: give the child its
    // own bpffs there (private to that mount namespace, gone when the child exits).
    const script = 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; exec "$0" "$@"';
    const r = await run('ip', ['netns', 'exec', node.name, 'sh', '-c', script, process.execPath, child, String(process.pid)], { timeoutMs: 60_000 });
    results = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  });
  after(() => set.teardown());

  test('every FIB row ran', () => assert.ok(results.length >= 26, `${results.length} rows reported`));
  const xdpNames = [
    'FIB: remote backend via another device: SNAT, TTL-1, MACs from the FIB, XDP_REDIRECT',
    'FIB: reply from the remote backend back out to the client: XDP_REDIRECT with the client gateway MAC',
    'FIB: next hop on the ingress device: redirected back out of it (XDP_REDIRECT, not XDP_TX)',
    'FIB: unreachable route: dropped and counted',
    'FIB: no neighbour yet: translated and passed to the stack',
    'FIB: local backend is never redirected into a veth: DNAT then XDP_PASS',
  ];
  const tcNames = [
    ...xdpNames.filter((n) => !n.startsWith('FIB: no neighbour')).map(tcDevName),
    'FIB: no neighbour yet: translated, TTL-1, redirected for the kernel to resolve it (bpf_redirect_neigh) [tc device]',
  ];
  const podNames = ['FIB: pod -> ClusterIP, remote backend: DNAT, TTL-1, MACs from the FIB, redirected past netfilter [pod veth]'];
  for (const name of [...xdpNames, ...tcNames, ...podNames].flatMap((n) => [n, `${n} [IPv6]`])) {
    test(name, () => {
      const r = results.find((x) => x.name === name);
      assert.ok(r, 'row reported');
      assert.ok(r.ok, r.error);
    });
  }
});
