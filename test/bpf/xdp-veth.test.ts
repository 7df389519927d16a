// The device hook forwarding on a real veth, the device of the end-to-end topology (and of
// nodes that are containers): everything it sends back out of the ingress device — a flow
// SNATed to a backend behind that device, its replies, and rejects — must reach the peer.
// xlb_xdp: a veth's XDP_TX wakes the peer only when the peer runs an XDP program; here the
// peer has NAPI from GRO alone, as the e2e bridge does, so frames sent with XDP_TX would sit in
// its ring and every connection below would time out. xlb_tc_dev (--device-mode tc): the peer
// keeps its defaults, so its sockets' packets arrive CHECKSUM_PARTIAL (a wrong incremental
// update would make the backend drop every segment), and the backend has no static neighbour
// (the first packet takes bpf_redirect_neigh).
// BPF_PROG_TEST_RUN cannot show any of this: it returns the verdict without sending anything.
//   wire (10.0.7.2 client, 10.0.7.3 backend) <-- veth --> node (10.0.7.1, hook on eth0)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsSet, run, sweepStale, waitForOutput, type Netns } from '../helpers/netns.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = resolve(here, 'xdp-veth-child.js');
const PODSERVER = resolve(here, '../helpers/podserver.js');
const LB = '198.51.100.10';
const WIRE_MAC = '02:00:00:00:07:02';
const NODE_MAC = '02:00:00:00:07:01';

// What a client socket saw: connected / a reply, refused (RST or ICMP port unreachable on a
// connected UDP socket), or nothing. Prints {result, code?, ms}.
const PROBE = `
import net from 'node:net';
import dgram from 'node:dgram';
const [kind, addr, port] = process.argv.slice(1);
const t0 = performance.now();
const done = (r) => { console.log(JSON.stringify({ ...r, ms: Math.round(performance.now() - t0) })); process.exit(0); };
setTimeout(() => done({ result: 'timeout' }), 3000);
if (kind === 'tcp') {
  const s = net.connect({ host: addr, port: Number(port) });
  s.on('connect', () => done({ result: 'connected' }));
  s.on('error', (e) => done({ result: 'error', code: e.code }));
} else {
  const s = dgram.createSocket('udp4');
  s.on('message', () => done({ result: 'reply' }));
  s.on('error', (e) => done({ result: 'error', code: e.code }));
  s.connect(Number(port), addr, () => s.send('x'));
}
`;

type Mode = 'xdp' | 'tc';

async function build(set: NetnsSet, mode: Mode): Promise<{ node: Netns; wire: Netns }> {
  const node = await set.add('node');
  const wire = await set.add('wire');
  await set.veth(node, 'eth0', wire, 'w0');
  await node.ip('link', 'set', 'eth0', 'address', NODE_MAC, 'up');
  await wire.ip('link', 'set', 'w0', 'address', WIRE_MAC, 'up');
  await node.ip('addr', 'add', '10.0.7.1/24', 'dev', 'eth0');
  await wire.ip('addr', 'add', '10.0.7.2/24', 'dev', 'w0');
  await wire.ip('addr', 'add', '10.0.7.3/24', 'dev', 'w0');
  await wire.ip('route', 'add', `${LB}/32`, 'via', '10.0.7.1', 'src', '10.0.7.2');
  // static neighbours: the FIB lookup succeeds from the first packet, so XDP forwards every one
  // (tc resolves the backend itself: bpf_redirect_neigh)
  for (const a of mode === 'xdp' ? ['10.0.7.2', '10.0.7.3'] : ['10.0.7.2']) await node.ip('neigh', 'add', a, 'lladdr', WIRE_MAC, 'dev', 'eth0', 'nud', 'permanent');
  await wire.ip('neigh', 'add', '10.0.7.1', 'lladdr', NODE_MAC, 'dev', 'w0', 'nud', 'permanent');
  await node.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  // Packets the node's stack forwards eth0 -> eth0; the hook's redirects never pass here.
  await node.exec('nft', ['add', 'table', 'inet', 'xlbt']);
  await node.exec('nft', ['add', 'chain', 'inet', 'xlbt', 'hairpins', '{ type filter hook forward priority 0; policy accept; }']);
  await node.exec('nft', ['add', 'rule', 'inet', 'xlbt', 'hairpins', 'iifname', 'eth0', 'oifname', 'eth0', 'counter']);
  if (mode === 'xdp') {
    // The peer gets NAPI from GRO (veth turns it on only when GRO changes to on), no XDP
    // program. It sends complete checksums, as a wire does (see bpf/include/fwd.h).
    await wire.exec('ethtool', ['-K', 'w0', 'gro', 'off']);
    await wire.exec('ethtool', ['-K', 'w0', 'gro', 'on', 'tx', 'off']);
  }
  return { node, wire };
}

async function xdpRedirects(node: Netns): Promise<number> {
  const r = await node.exec('ethtool', ['-S', 'eth0']);
  return Number(/rx_queue_0_xdp_redirect:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
}

async function stackForwards(node: Netns): Promise<number> {
  const r = await node.exec('nft', ['-j', 'list', 'chain', 'inet', 'xlbt', 'hairpins']);
  const rule = (JSON.parse(r.stdout) as { nftables: Array<{ rule?: { expr: Array<{ counter?: { packets: number } }> } }> })
    .nftables.find((x) => x.rule)?.rule;
  return rule?.expr.find((e) => e.counter)?.counter?.packets ?? -1;
}

for (const mode of ['xdp', 'tc'] as const) describe(`${mode === 'xdp' ? 'xlb_xdp' : 'xlb_tc_dev'} sends back out of a veth whose peer runs no XDP program`, () => {
  const set = new NetnsSet(`xveth${mode}`);
  let node: Netns;
  let wire: Netns;
  let child: ChildProcess | undefined;
  const probe = async (kind: 'tcp' | 'udp', port: number) => {
    const r = await run('ip', ['netns', 'exec', wire.name, process.execPath, '--input-type=module', '-e', PROBE, kind, LB, String(port)], { timeoutMs: 10_000 });
    return JSON.parse(r.stdout.trim()) as { result: string; code?: string; ms: number };
  };

  before(async () => {
    await sweepStale(`xveth${mode}`);
    ({ node, wire } = await build(set, mode));
    const srv = set.track(spawn('ip', ['netns', 'exec', wire.name, process.execPath, PODSERVER, '--name', 'backend', '--max-lifetime', '120'], { stdio: ['pipe', 'pipe', 'pipe'] }));
    await waitForOutput(srv, /ready/, 'backend server');
    const script = 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; exec "$0" "$@"';
    child = set.track(spawn('ip', ['netns', 'exec', node.name, 'sh', '-c', script, process.execPath, CHILD, String(process.pid), mode], { stdio: ['pipe', 'pipe', 'pipe'] }));
    await waitForOutput(child, /ready/, 'datapath child');
  });
  after(async () => {
    child?.stdin?.end();
    await set.teardown();
  });

  test('SNATed flow to a backend behind the ingress device: every request answered, all by redirect', async () => {
    const before = [await xdpRedirects(node), await stackForwards(node)];
    for (let i = 0; i < 10; i++) {
      const r = await wire.exec('curl', ['-sS', '--max-time', '2', `http://${LB}/ip`], { timeoutMs: 5000 });
      assert.equal(r.stdout, '10.0.7.1\n', 'the backend sees the node address (SNAT)');
    }
    // each request: SYN, ACK, request, FIN... each way; the node's stack forwarded none of them
    assert.equal((await stackForwards(node)) - before[1], 0, 'the stack forwarded none');
    if (mode === 'xdp') assert.ok((await xdpRedirects(node)) - before[0] >= 10 * 6, 'packets left through XDP_REDIRECT');
  });

  test('no endpoints: the TCP RST and the ICMP port unreachable reach the client at once', async () => {
    for (const [kind, port] of [['tcp', 81], ['udp', 53]] as const) {
      const r = await probe(kind, port);
      assert.deepEqual([r.result, r.code], ['error', 'ECONNREFUSED'], `${kind} :${port}: ${JSON.stringify(r)}`);
      assert.ok(r.ms < 500, `${kind} :${port}: refused after ${r.ms} ms`);
    }
  });

  test('nothing was dropped but the two rejects', async () => {
    child!.stdin!.end();
    const line = await waitForOutput(child!, /\{.*\}\n/, 'datapath child counters');
    const { drops } = JSON.parse(line) as { drops: Record<string, number> };
    assert.deepEqual(Object.entries(drops).filter(([, v]) => v > 0), [['no_endpoints', 2]]);
  });
});
