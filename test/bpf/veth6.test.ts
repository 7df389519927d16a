// xlb_tc on real pod veths in IPv6, with real sockets: segments from a pod's sockets arrive
// CHECKSUM_PARTIAL (veth offloads the checksum), which BPF_PROG_TEST_RUN cannot produce; the
// IPv6 address rewrites move only the L4 checksum (pseudo header, BPF_F_IPV6), so a wrong
// update shows as a backend that drops every segment. Pods have a /128 and a default route via
// fe80::1 (static neighbour = the host-side veth), as a routed IPv6 CNI sets them up; the node
// routes each pod's /128 to its veth. Small servers and clients run inline in the pods.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsSet, run, sweepStale, waitForOutput, type Netns } from '../helpers/netns.js';
import * as C from '../../src/datapath/codecs.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = resolve(here, 'veth6-child.js');
const POD6_A = 'fd00:10:244:1::5';
const POD6_B = 'fd00:10:244:1::6';

// TCP :8080 answers the peer's address; UDP :9000 answers "<name>:<datagram>"; both on ::.
const SERVER = `const [name] = process.argv.slice(1);
require('net').createServer((s) => s.once('data', () => s.end(s.remoteAddress + '\\n'))).listen(8080, '::', () => {
  const u = require('dgram').createSocket('udp6');
  u.on('message', (m, r) => u.send(name + ':' + m, r.port, r.address));
  u.bind(9000, '::', () => console.log('ready'));
});
setTimeout(() => process.exit(0), 120000);`;
// tcp|udp <addr> <port>: one request, prints the reply (nothing after 3 s)
const CLIENT = `const [kind, addr, port] = process.argv.slice(1);
setTimeout(() => process.exit(1), 3000);
if (kind === 'tcp') {
  const s = require('net').connect({ host: addr, port: Number(port) }, () => s.write('hi'));
  s.on('data', (d) => process.stdout.write(d)); s.on('end', () => process.exit(0));
} else {
  const u = require('dgram').createSocket('udp6');
  u.on('message', (m) => { process.stdout.write(m + '\\n'); process.exit(0); });
  u.send('ping', Number(port), addr);
}`;

async function wirePod6(set: NetnsSet, node: Netns, pod: Netns, hostIf: string, addr: string, n: number): Promise<void> {
  const hostMac = `02:00:00:00:0${n}:01`;
  const podMac = `02:00:00:00:0${n}:02`;
  await set.veth(node, hostIf, pod, 'eth0');
  await node.ip('link', 'set', hostIf, 'address', hostMac, 'up');
  await pod.ip('link', 'set', 'eth0', 'address', podMac, 'up');
  await pod.ip('-6', 'addr', 'add', `${addr}/128`, 'dev', 'eth0', 'nodad');
  await pod.ip('-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'eth0');
  await pod.ip('-6', 'neigh', 'add', 'fe80::1', 'lladdr', hostMac, 'dev', 'eth0', 'nud', 'permanent');
  // no checksum offload toward the pod: a stale pseudo-header sum becomes a bad checksum there
  await node.exec('ethtool', ['-K', hostIf, 'tx', 'off']);
  await node.ip('-6', 'route', 'add', `${addr}/128`, 'dev', hostIf);
  await node.ip('-6', 'neigh', 'add', addr, 'lladdr', podMac, 'dev', hostIf, 'nud', 'permanent');
}

describe('xlb_tc on real pod veths in IPv6 (CHECKSUM_PARTIAL, hairpin)', () => {
  const set = new NetnsSet('tcv6');
  let pa: Netns;
  let child: ChildProcess | undefined;
  const client = async (kind: 'tcp' | 'udp', addr: string, port: number) =>
    (await run('ip', ['netns', 'exec', pa.name, process.execPath, '-e', CLIENT, kind, addr, String(port)], { timeoutMs: 8000 })).stdout;

  before(async () => {
    await sweepStale('tcv6');
    const node = await set.add('node');
    pa = await set.add('pa');
    const pb = await set.add('pb');
    await node.exec('sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
    await wirePod6(set, node, pa, 'lxca', POD6_A, 1);
    await wirePod6(set, node, pb, 'lxcb', POD6_B, 2);
    for (const [ns, name] of [[pa, 'pa'], [pb, 'pb']] as const) {
      const s = set.track(spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', SERVER, name], { stdio: ['pipe', 'pipe', 'pipe'] }));
      await waitForOutput(s, /ready/, `server ${name}`);
    }
    const script = 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; exec "$0" "$@"';
    child = set.track(spawn('ip', ['netns', 'exec', node.name, 'sh', '-c', script, process.execPath, CHILD, String(process.pid)], { stdio: ['pipe', 'pipe', 'pipe'] }));
    await waitForOutput(child, /ready/, 'datapath child');
  });
  after(async () => {
    child?.stdin?.end();
    await set.teardown();
  });

  test('pod -> IPv6 ClusterIP over TCP reaches the backend pod, which sees the pod address', async () => {
    assert.equal(await client('tcp', 'fd00:10:96::a', 80), `${POD6_A}\n`);
  });

  test('pod -> IPv6 ClusterIP over UDP', async () => {
    assert.equal((await client('udp', 'fd00:10:96::a', 53)).trim(), 'pb:ping');
  });

  test(`hairpin: a pod reaching itself through its IPv6 ClusterIP sees ${C.DEFAULT_CONFIG.hairpinAddr6} as the source`, async () => {
    assert.equal(await client('tcp', 'fd00:10:96::b', 80), `${C.DEFAULT_CONFIG.hairpinAddr6}\n`);
  });

  test('no drop was counted and every request was a new flow of its service', async () => {
    child!.stdin!.end();
    const line = await waitForOutput(child!, /\{.*\}\n/, 'datapath child counters');
    const r = JSON.parse(line) as { drops: Record<string, number>; newFlows: Record<string, number> };
    assert.deepEqual(Object.entries(r.drops).filter(([, v]) => v > 0), []);
    assert.deepEqual(r.newFlows, { 10: 1, 11: 1, 12: 1 });
  });
});
