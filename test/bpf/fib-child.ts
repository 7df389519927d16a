// Runs inside the fib test's "node" namespace (ip netns exec): XDP and tc-device fixture rows
// that take the real FIB path (config redirect flag, no fixture flag), with ingress_ifindex set so
// bpf_fib_lookup sees the namespace's routes and neighbours. Prints one JSON line per row.
import assert from 'node:assert/strict';
import * as C from '../../src/datapath/codecs.js';
import { ifIndex, Link } from '../../src/datapath/bpf.js';
import { buildPacket } from '../helpers/packet.js';
import { CLIENT, CLUSTER_IP, Datapath, LB_IP, NODE, POD_A } from './harness.js';
import { runRow, type Row } from './rows.js';
import { asTcDev, tcDevName } from './tcdev.fixtures.js';
import { twins } from './twin.js';

export const EXT_MAC = '02:00:00:00:01:0a';
export const EXT_GW_MAC = '02:00:00:00:01:01';
export const INT_MAC = '02:00:00:00:09:01';
export const INT_GW_MAC = '02:00:00:00:09:02';
export const REMOTE = '10.244.2.9';
export const SAME_LINK = '192.168.1.50';
export const UNREACHABLE = '10.99.0.5';
export const NO_NEIGH = '10.0.9.77';

const tcp = (o: Parameters<typeof buildPacket>[0] extends infer T ? Partial<T> : never = {}): Buffer =>
  buildPacket({ src: CLIENT, dst: LB_IP, proto: 'TCP', sport: 40000, dport: 80, flags: 'S', ...o });

function remote(d: Datapath, addr: string): void {
  d.backend(2, addr, 8080, { local: false });
  d.service({ addr: LB_IP, port: 80, svcId: 1, backends: [2] });
}

function snatPort(d: Datapath): number {
  const v = d.ct({ saddr: CLIENT, daddr: LB_IP, sport: 40000, dport: 80, proto: 'TCP' });
  assert.ok(v);
  return v.natPort;
}

function rows(ext: number, int: number): Row[] {
  const cfg = { flags: C.CONFIG_FLAG.redirect };
  return [
    {
      name: 'FIB: remote backend via another device: SNAT, TTL-1, MACs from the FIB, XDP_REDIRECT', prog: 'xdp', config: cfg, ingress: ext,
      setup: (d) => remote(d, REMOTE), pkt: tcp(), verdict: 'REDIRECT',
      out: { src: NODE, dst: REMOTE, dport: 8080, ttl: 63, srcMac: INT_MAC, dstMac: INT_GW_MAC },
    },
    {
      name: 'FIB: reply from the remote backend back out to the client: XDP_REDIRECT with the client gateway MAC', prog: 'xdp', config: cfg, ingress: int,
      setup: (d) => remote(d, REMOTE), before: [{ pkt: tcp(), verdict: 'REDIRECT', ingress: ext }],
      pkt: (d) => tcp({ src: REMOTE, dst: NODE, sport: 8080, dport: snatPort(d), flags: 'SA' }), verdict: 'REDIRECT',
      out: { src: LB_IP, sport: 80, dst: CLIENT, dport: 40000, ttl: 63, srcMac: EXT_MAC, dstMac: EXT_GW_MAC },
    },
    {
      // XDP_TX on a veth strands frames unless the peer runs XDP (see bpf/include/fwd.h).
      name: 'FIB: next hop on the ingress device: redirected back out of it (XDP_REDIRECT, not XDP_TX)', prog: 'xdp', config: cfg, ingress: ext,
      setup: (d) => remote(d, SAME_LINK), pkt: tcp(), verdict: 'REDIRECT', out: { src: NODE, dst: SAME_LINK, ttl: 63, srcMac: EXT_MAC, dstMac: '02:00:00:00:01:50' },
    },
    {
      name: 'FIB: unreachable route: dropped and counted', prog: 'xdp', config: cfg, ingress: ext,
      setup: (d) => remote(d, UNREACHABLE), pkt: tcp(), verdict: 'DROP', drops: { fib: 1 },
    },
    {
      name: 'FIB: no neighbour yet: translated and passed to the stack', prog: 'xdp', config: cfg, ingress: ext,
      setup: (d) => remote(d, NO_NEIGH), pkt: tcp(), verdict: 'PASS', out: { src: NODE, dst: NO_NEIGH, ttl: 64 },
    },
    {
      name: 'FIB: local backend is never redirected into a veth: DNAT then XDP_PASS', prog: 'xdp', config: cfg, ingress: ext,
      setup: (d) => { d.backend(1, POD_A, 8080); d.service({ addr: LB_IP, port: 80, svcId: 1, backends: [1] }); }, pkt: tcp(), verdict: 'PASS', out: { dst: POD_A, ttl: 64 },
    },
  ];
}

const NO_NEIGH_XDP = 'FIB: no neighbour yet: translated and passed to the stack';

/** The same rows through xlb_tc_dev; only a missing neighbour differs: tc resolves it with
 *  bpf_redirect_neigh instead of handing an SNATed packet to the stack. */
function tcRows(ext: number, int: number): Row[] {
  const out = rows(ext, int).filter((r) => r.name !== NO_NEIGH_XDP).map((r) => asTcDev(r, tcDevName));
  out.push({
    name: 'FIB: no neighbour yet: translated, TTL-1, redirected for the kernel to resolve it (bpf_redirect_neigh) [tc device]',
    prog: 'tcdev', config: { flags: C.CONFIG_FLAG.redirect }, ingress: ext,
    setup: (d) => remote(d, NO_NEIGH), pkt: tcp(), verdict: 'TC_REDIRECT', out: { src: NODE, dst: NO_NEIGH, ttl: 63 },
  });
  return out;
}

/** xlb_tc (a pod's veth): a pod's flow to a remote backend leaves by FIB, past netfilter, as its
 *  replies return (fwd_reply_tc); netfilter meeting the request alone would classify the
 *  pod's next segment INVALID, which kube-proxy's rules drop. */
const POD_REMOTE = 'FIB: pod -> ClusterIP, remote backend: DNAT, TTL-1, MACs from the FIB, redirected past netfilter [pod veth]';

function podRows(ext: number): Row[] {
  return [{
    name: POD_REMOTE, prog: 'tc', config: { flags: C.CONFIG_FLAG.redirect }, ingress: ext,
    setup: (d) => {
      d.backend(2, REMOTE, 8080, { local: false });
      d.service({ addr: CLUSTER_IP, port: 80, svcId: 10, backends: [2], scope: 'internal' });
    },
    before: [{ pkt: tcp({ src: POD_A, dst: CLUSTER_IP }), verdict: 'TC_REDIRECT' }],
    pkt: tcp({ src: POD_A, dst: CLUSTER_IP, flags: 'A', payload: Buffer.from('GET /') }), verdict: 'TC_REDIRECT',
    out: { src: POD_A, dst: REMOTE, dport: 8080, ttl: 63, srcMac: INT_MAC, dstMac: INT_GW_MAC },
  }];
}

async function main(): Promise<void> {
  const d = await Datapath.open(`fib-${process.argv[2] ?? 'x'}`);
  const links: Link[] = [];
  try {
    // A veth registers its XDP rx queue info only with an XDP program attached, and test runs
    // with ingress_ifindex need that; no traffic flows through these devices.
    for (const dev of ['ext0', 'int0']) links.push(Link.attachXdp(d.obj.program(C.PROG.xdp), dev, { mode: 'native' }));
    const [ext, int] = [ifIndex('ext0'), ifIndex('int0')];
    const all = [...rows(ext, int), ...tcRows(ext, int), ...podRows(ext)];
    for (const row of [...all, ...twins(all)]) {
      try {
        runRow(d, row);
        console.log(JSON.stringify({ name: row.name, ok: true }));
      } catch (e) {
        console.log(JSON.stringify({ name: row.name, ok: false, error: (e as Error).message }));
      }
    }
  } finally {
    for (const l of links) l.detach();
    d.close();
  }
}

await main();
