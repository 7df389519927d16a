// xlb_tc on real pod veths, with real sockets, in IPv4 and in IPv6: packets from a pod's
// TCP/UDP sockets arrive CHECKSUM_PARTIAL (veth offloads the checksum), which
// BPF_PROG_TEST_RUN cannot produce. If the L4 checksum updates (bpf_l4_csum_replace with
// BPF_F_PSEUDO_HDR; IPv6 moves only the L4 checksum) were wrong, the backend would drop every
// segment. Their data segments are also non-linear (payload in page frags,
// only headers in the linear part), which parse must accept. Topology: namespaces node, pa,
// pb; pods have a /32 (/128) and a default route via 169.254.1.1 (fe80::1), a static
// neighbour = the host-side veth, as a routed CNI sets them up.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsSet, run, sweepStale, waitForOutput, type Netns } from '../helpers/netns.js';
import * as C from '../../src/datapath/codecs.js';
import { WORLD } from './veth-child.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = resolve(here, 'veth-child.js');
const PODSERVER = resolve(here, '../helpers/podserver.js');
const NSCLIENT = resolve(here, '../helpers/nsclient.js');

// IPv6 pods: TCP :8080 answers the peer's address, UDP :9000 answers "<name>:<datagram>", on ::
// (the pod server listens on IPv4 only).
const SERVER6 = `const [name] = process.argv.slice(1);
require('net').createServer((s) => s.once('data', () => s.end(s.remoteAddress + '\\n'))).listen(8080, '::', () => {
  const u = require('dgram').createSocket('udp6');
  u.on('message', (m, r) => u.send(name + ':' + m, r.port, r.address));
  u.bind(9000, '::', () => console.log('ready'));
});
setTimeout(() => process.exit(0), 120000);`;
// tcp|udp <addr> <port>: one IPv6 request, prints the reply (nothing after 3 s)
const CLIENT6 = `const [kind, addr, port] = process.argv.slice(1);
setTimeout(() => process.exit(1), 3000);
if (kind === 'tcp') {
  const s = require('net').connect({ host: addr, port: Number(port) }, () => s.write('GET /ip'));
  s.on('data', (d) => process.stdout.write(d)); s.on('end', () => process.exit(0));
} else {
  const u = require('dgram').createSocket('udp6');
  u.on('message', (m) => { process.stdout.write(m + '\\n'); process.exit(0); });
  u.send('ping', Number(port), addr);
}`;

/** A pod as a routed CNI wires it: its address alone (/32, /128), a default route via a
 *  link-local gateway whose static neighbour is the host-side veth. */
async function wirePod(set: NetnsSet, node: Netns, pod: Netns, hostIf: string, addr: string, n: number, v6: boolean): Promise<void> {
  const hostMac = `02:00:00:00:0${n}:01`;
  const podMac = `02:00:00:00:0${n}:02`;
  const [fam, len, gw] = v6 ? ['-6', 128, 'fe80::1'] : ['-4', 32, '169.254.1.1'];
  await set.veth(node, hostIf, pod, 'eth0');
  await node.ip('link', 'set', hostIf, 'address', hostMac, 'up');
  await pod.ip('link', 'set', 'eth0', 'address', podMac, 'up');
  await pod.ip(fam, 'addr', 'add', `${addr}/${len}`, 'dev', 'eth0', ...(v6 ? ['nodad'] : []));
  if (!v6) await pod.ip('route', 'add', gw, 'dev', 'eth0', 'scope', 'link');
  await pod.ip(fam, 'route', 'add', 'default', 'via', gw, 'dev', 'eth0');
  await pod.ip(fam, 'neigh', 'add', gw, 'lladdr', hostMac, 'dev', 'eth0', 'nud', 'permanent');
  // No checksum offload toward the pod: the node must finish a CHECKSUM_PARTIAL packet in
  // software (skb_checksum_help), so a stale pseudo-header sum becomes a bad checksum the pod's
  // stack drops. Without this, veth hands PARTIAL packets over unverified.
  await node.exec('ethtool', ['-K', hostIf, 'tx', 'off']);
  await node.ip(fam, 'route', 'add', `${addr}/${len}`, 'dev', hostIf);
  await node.ip(fam, 'neigh', 'add', addr, 'lladdr', podMac, 'dev', hostIf, 'nud', 'permanent');
}

for (const fam of ['ipv4', 'ipv6'] as const) {
  const v6 = fam === 'ipv6';
  const w = WORLD[fam];
  const hairpin = v6 ? C.DEFAULT_CONFIG.hairpinAddr6 : C.DEFAULT_CONFIG.hairpinAddr;
  describe(`xlb_tc on real pod veths, ${fam} (CHECKSUM_PARTIAL, hairpin)`, () => {
    const tag = v6 ? 'tcv6' : 'tcv';
    const set = new NetnsSet(tag);
    let pa: Netns;
    let child: ChildProcess | undefined;
    const inPa = (args: string[]) => run('ip', ['netns', 'exec', pa.name, ...args], { timeoutMs: 8000 }).then((r) => r.stdout);
    /** The backend's answer to GET / (its name) and GET /ip (the peer address it saw). */
    const http = (addr: string, path: '/' | '/ip') => (v6
      ? inPa([process.execPath, '-e', CLIENT6, 'tcp', addr, '80'])
      : inPa(['curl', '-sS', '--max-time', '3', `http://${addr}${path}`]));
    const udp = (addr: string) => (v6
      ? inPa([process.execPath, '-e', CLIENT6, 'udp', addr, '53'])
      : inPa([process.execPath, NSCLIENT, 'udp', addr, '53', 'ping', '3000']));

    before(async () => {
      await sweepStale(tag);
      const node = await set.add('node');
      pa = await set.add('pa');
      const pb = await set.add('pb');
      await wirePod(set, node, pa, 'lxca', w.podA, 1, v6);
      await wirePod(set, node, pb, 'lxcb', w.podB, 2, v6);
      await node.exec('sysctl', ['-qw', v6 ? 'net.ipv6.conf.all.forwarding=1' : 'net.ipv4.ip_forward=1']);
      for (const [ns, name] of [[pa, 'pa'], [pb, 'pb']] as const) {
        const server = v6 ? ['-e', SERVER6, name] : [PODSERVER, '--name', name, '--max-lifetime', '120'];
        const s = set.track(spawn('ip', ['netns', 'exec', ns.name, process.execPath, ...server], { stdio: ['pipe', 'pipe', 'pipe'] }));
        await waitForOutput(s, /ready/, `pod server ${name}`);
      }
      const script = 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; exec "$0" "$@"';
      child = set.track(spawn('ip', ['netns', 'exec', node.name, 'sh', '-c', script, process.execPath, CHILD, String(process.pid), fam], { stdio: ['pipe', 'pipe', 'pipe'] }));
      await waitForOutput(child, /ready/, 'datapath child');
    });
    after(async () => {
      child?.stdin?.end();
      await set.teardown();
    });

    test('pod -> ClusterIP over TCP reaches the backend pod and the reply comes back from the ClusterIP', async () => {
      if (!v6) assert.equal(await http(w.cipB, '/'), 'Hello, pb\n');
      assert.equal(await http(w.cipB, '/ip'), `${w.podA}\n`, 'backend sees the pod address (no SNAT)');
    });

    test('pod -> ClusterIP over UDP', async () => {
      assert.equal((await udp(w.cipB)).trim(), 'pb:ping');
    });

    test(`hairpin: a pod reaching itself through its ClusterIP sees ${hairpin} as the source`, async () => {
      if (!v6) assert.equal(await http(w.cipA, '/'), 'Hello, pa\n');
      assert.equal(await http(w.cipA, '/ip'), `${hairpin}\n`);
    });

    test('no drop was counted and every request was a new flow of its service', async () => {
      child!.stdin!.end();
      const line = await waitForOutput(child!, /\{.*\}\n/, 'datapath child counters');
      const r = JSON.parse(line) as { drops: Record<string, number>; newFlows: Record<string, number> };
      assert.deepEqual(Object.entries(r.drops).filter(([, v]) => v > 0), []);
      assert.deepEqual(r.newFlows, v6 ? { 10: 1, 11: 1, 12: 1 } : { 10: 2, 11: 2, 12: 1 });
    });
  });
}
