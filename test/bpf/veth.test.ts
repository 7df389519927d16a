// xlb_tc on real pod veths, with real sockets: packets from a pod's TCP/UDP sockets arrive
// CHECKSUM_PARTIAL (veth offloads the checksum), which BPF_PROG_TEST_RUN cannot produce. If
// the L4 checksum updates (bpf_l4_csum_replace with BPF_F_PSEUDO_HDR) were wrong, the backend
// would drop every segment. Their data segments are also non-linear (payload in page frags,
// only headers in the linear part), which parse must accept. Topology: namespaces node, pa,
// pb; pods have a /32 and a default route via 169.254.1.1 (static neighbour = host-side
// veth), as a routed CNI sets them up.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsSet, run, sweepStale, waitForOutput, type Netns } from '../helpers/netns.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = resolve(here, 'veth-child.js');
const PODSERVER = resolve(here, '../helpers/podserver.js');
const NSCLIENT = resolve(here, '../helpers/nsclient.js');
const POD_A = '10.244.1.5';
const POD_B = '10.244.1.6';

async function wirePod(set: NetnsSet, node: Netns, pod: Netns, hostIf: string, addr: string, n: number): Promise<void> {
  const hostMac = `02:00:00:00:0${n}:01`;
  const podMac = `02:00:00:00:0${n}:02`;
  await set.veth(node, hostIf, pod, 'eth0');
  await node.ip('link', 'set', hostIf, 'address', hostMac, 'up');
  await pod.ip('link', 'set', 'eth0', 'address', podMac, 'up');
  await pod.ip('addr', 'add', `${addr}/32`, 'dev', 'eth0');
  await pod.ip('route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link');
  await pod.ip('route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0');
  await pod.ip('neigh', 'add', '169.254.1.1', 'lladdr', hostMac, 'dev', 'eth0', 'nud', 'permanent');
  // No checksum offload toward the pod: the node must finish a CHECKSUM_PARTIAL packet in
  // software (skb_checksum_help), so a stale pseudo-header sum becomes a bad checksum the pod's
  // stack drops. Without this, veth hands PARTIAL packets over unverified.
  await node.exec('ethtool', ['-K', hostIf, 'tx', 'off']);
  await node.ip('route', 'add', `${addr}/32`, 'dev', hostIf);
  await node.ip('neigh', 'add', addr, 'lladdr', podMac, 'dev', hostIf, 'nud', 'permanent');
}

describe('xlb_tc on real pod veths (CHECKSUM_PARTIAL, hairpin)', () => {
  const set = new NetnsSet('tcv');
  let pa: Netns;
  let child: ChildProcess | undefined;
  const curl = (url: string) => pa.exec('curl', ['-sS', '--max-time', '3', url], { timeoutMs: 8000 }).then((r) => r.stdout);

  before(async () => {
    await sweepStale('tcv');
    const node = await set.add('node');
    pa = await set.add('pa');
    const pb = await set.add('pb');
    await wirePod(set, node, pa, 'lxca', POD_A, 1);
    await wirePod(set, node, pb, 'lxcb', POD_B, 2);
    await node.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    for (const [ns, name] of [[pa, 'pa'], [pb, 'pb']] as const) {
      const s = set.track(spawn('ip', ['netns', 'exec', ns.name, process.execPath, PODSERVER, '--name', name, '--max-lifetime', '120'], { stdio: ['pipe', 'pipe', 'pipe'] }));
      await waitForOutput(s, /ready/, `podserver ${name}`);
    }
    const script = 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; exec "$0" "$@"';
    child = set.track(spawn('ip', ['netns', 'exec', node.name, 'sh', '-c', script, process.execPath, CHILD, String(process.pid)], { stdio: ['pipe', 'pipe', 'pipe'] }));
    await waitForOutput(child, /ready/, 'datapath child');
  });
  after(async () => {
    child?.stdin?.end();
    await set.teardown();
  });

  test('pod -> ClusterIP over TCP reaches the backend pod and the reply comes back from the ClusterIP', async () => {
    assert.equal(await curl('http://10.96.0.10/'), 'Hello, pb\n');
    assert.equal(await curl('http://10.96.0.10/ip'), `${POD_A}\n`, 'backend sees the pod address (no SNAT)');
  });

  test('pod -> ClusterIP over UDP', async () => {
    const r = await run('ip', ['netns', 'exec', pa.name, process.execPath, NSCLIENT, 'udp', '10.96.0.10', '53', 'ping', '3000'], { timeoutMs: 8000 });
    assert.equal(r.stdout.trim(), 'pb:ping');
  });

  test('hairpin: a pod reaching itself through its ClusterIP sees 169.254.42.1 as the source', async () => {
    assert.equal(await curl('http://10.96.0.11/'), 'Hello, pa\n');
    assert.equal(await curl('http://10.96.0.11/ip'), '169.254.42.1\n');
  });

  test('no drop was counted and every request was a new flow of its service', async () => {
    child!.stdin!.end();
    const line = await waitForOutput(child!, /\{.*\}\n/, 'datapath child counters');
    const r = JSON.parse(line) as { drops: Record<string, number>; newFlows: Record<string, number> };
    assert.deepEqual(Object.entries(r.drops).filter(([, v]) => v > 0), []);
    assert.deepEqual(r.newFlows, { 10: 2, 11: 2, 12: 1 });
  });
});
