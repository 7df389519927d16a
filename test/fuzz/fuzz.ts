// Datapath fuzzer: generated packets through xlb_xdp, xlb_tc_dev, xlb_tc and xlb_tc_host by
// BPF_PROG_TEST_RUN against one fixed Service world, with invariants checked after every
// packet. Generated: valid Service traffic in both directions (new flows, established flows,
// replies, SNAT replies, hairpin, rejects, fragments, ICMP errors quoting translated and
// unrelated flows, VLAN tags, spoofed sources), structure-aware mutations of it (every header
// field, lengths, options, flags, truncation, ethertypes) and random bytes.
//
//   npm run fuzz -- [--packets N] [--seed S] [--quiet]
//
// Invariants, after every packet:
//   verdict:   one the program may return (never XDP_ABORTED or an unknown tc code);
//   addresses: a changed destination is a backend, the packet's own sender or destination,
//              or the original client a conntrack entry of this tuple names;
//   checksums: a rewritten IPv4 packet whose input checksums were valid has valid IP and L4
//              checksums (fragments: IP only; UDP without checksum stays without);
//   maps:      the conntrack entries of the packet's tuples name a backend that exists
//              (and, every CHECK_EVERY packets and at the end, every entry does);
//   drops:     a drop verdict, or a packet replaced by a reject reply, is counted under
//              exactly one reason; no reason but frag_untracked (a counted pass) moves
//              otherwise.
// A failure names the seed, the packet index, the program and the packet in hex; the same
// seed replays the same inputs.
//
// --ipv6 runs the same generation in IPv6 (test/bpf/twin.ts): the world's addresses are
// their IPv6 twins, each generated frame is converted to IPv6 before the run (frames with no
// twin, e.g. IPv4 options or a damaged IPv4 header, are skipped and counted) and the output
// back to IPv4, on which the same invariants are checked; an output address that is no twin
// of a world address fails the run.
import { fileURLToPath } from 'node:url';
import * as C from '../../src/datapath/codecs.js';
import { buildFragments, buildPacket, checksum, parsePacket, type PacketSpec, type Parsed } from '../helpers/packet.js';
import {
  CLIENT, CLIENT2, CLUSTER_IP, Datapath, EXT_IP, HAIRPIN, LB_IP, MAGLEV_M, NODE, NODE2, POD_A, POD_B, REMOTE_POD, TC, XDP,
} from '../bpf/harness.js';
import { frame4to6, frame6to4 } from '../bpf/twin.js';

type Prog = 'xdp' | 'tcdev' | 'tc' | 'tchost';
const PROGS: Prog[] = ['xdp', 'tcdev', 'tc', 'tchost'];
const ALLOWED: Record<Prog, number[]> = {
  xdp: [XDP.DROP, XDP.PASS, XDP.TX, XDP.REDIRECT],
  tcdev: [TC.OK, TC.SHOT, TC.REDIRECT],
  tc: [TC.OK, TC.SHOT, TC.REDIRECT],
  tchost: [TC.OK, TC.SHOT],
};
const DROP_CODE: Record<Prog, number> = { xdp: XDP.DROP, tcdev: TC.SHOT, tc: TC.SHOT, tchost: TC.SHOT };
const CHECK_EVERY = 5000;
const CT_RESET_EVERY = 2000;

// ---- the world: Services as fixtures set them up (FIXTURE config: forwards become PASS) ----

const BACKENDS: Array<{ id: number; addr: string; port: number; local: boolean }> = [
  { id: 1, addr: POD_A, port: 8080, local: true },
  { id: 2, addr: POD_B, port: 8080, local: true },
  { id: 3, addr: REMOTE_POD, port: 8080, local: false },
  { id: 4, addr: POD_A, port: 5353, local: true },
  { id: 5, addr: REMOTE_POD, port: 5353, local: false },
  { id: 6, addr: POD_B, port: 5353, local: true },
];
const BACKEND_ADDRS = new Set(BACKENDS.map((b) => b.addr));

interface Front { addr: string; port: number; proto: 'TCP' | 'UDP'; scope: 'external' | 'internal' }
/** Frontends the device programs reach (external scope) and pods reach (internal). */
const EXTERNAL: Front[] = [
  { addr: LB_IP, port: 80, proto: 'TCP', scope: 'external' },
  { addr: LB_IP, port: 53, proto: 'UDP', scope: 'external' },
  { addr: NODE, port: 30080, proto: 'TCP', scope: 'external' },
  { addr: NODE2, port: 30080, proto: 'TCP', scope: 'external' },
  { addr: EXT_IP, port: 443, proto: 'TCP', scope: 'external' },
  { addr: EXT_IP, port: 80, proto: 'TCP', scope: 'external' },
  { addr: LB_IP, port: 8443, proto: 'TCP', scope: 'external' },
  { addr: CLUSTER_IP, port: 80, proto: 'TCP', scope: 'external' },
  { addr: '198.51.100.99', port: 80, proto: 'TCP', scope: 'external' }, // no frontend
];
const INTERNAL: Front[] = [
  { addr: CLUSTER_IP, port: 80, proto: 'TCP', scope: 'internal' },
  { addr: CLUSTER_IP, port: 53, proto: 'UDP', scope: 'internal' },
  { addr: CLUSTER_IP, port: 81, proto: 'TCP', scope: 'internal' },
  { addr: LB_IP, port: 80, proto: 'TCP', scope: 'internal' },
  { addr: NODE, port: 30080, proto: 'TCP', scope: 'internal' },
];

function setupWorld(d: Datapath): void {
  d.reset();
  d.nodeAddr(NODE);
  d.nodeAddr(NODE2);
  for (const b of BACKENDS) d.backend(b.id, b.addr, b.port, { local: b.local });
  const F = C.SVC_FLAG;
  d.service({ addr: LB_IP, port: 80, svcId: 1, backends: [1, 3], flags: F.maglev });
  d.service({ addr: LB_IP, port: 53, proto: 'UDP', svcId: 2, backends: [4, 5], flags: F.maglev });
  d.service({ addr: null, port: 30080, svcId: 3, backends: [1, 3], flags: F.maglev | F.nodePort });
  d.service({ addr: CLUSTER_IP, port: 80, svcId: 4, backends: [1, 2], scope: 'internal' });
  d.service({ addr: CLUSTER_IP, port: 53, proto: 'UDP', svcId: 5, backends: [4, 6], scope: 'internal' });
  d.service({ addr: EXT_IP, port: 443, svcId: 6, backends: [], count: 0 });
  d.service({ addr: CLUSTER_IP, port: 81, svcId: 7, backends: [], count: 0, scope: 'internal' });
  d.service({ addr: LB_IP, port: 8443, svcId: 8, backends: [3], flags: F.local | F.maglev, table: Array(MAGLEV_M).fill(0), count: 0 });
  d.service({ addr: EXT_IP, port: 80, svcId: 9, backends: [2], flags: F.srcRanges | F.maglev });
  d.srcRange(9, '203.0.113.0/28');
  d.service({ addr: CLUSTER_IP, port: 80, svcId: 10, backends: [1, 3], flags: F.maglev });
  d.service({ addr: LB_IP, port: 80, svcId: 11, backends: [1, 2], scope: 'internal' });
  d.service({ addr: null, port: 30080, svcId: 12, backends: [1], flags: F.nodePort, scope: 'internal' });
}

// ---- seeded randomness ----

export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0 || 0x9e3779b9; }
  /** xorshift32 */
  u32(): number {
    let x = this.s;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.s = x;
    return x;
  }
  int(n: number): number { return this.u32() % n; }
  chance(p: number): boolean { return this.u32() / 0x100000000 < p; }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]; }
  bytes(n: number): Buffer { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff; return b; }
}

// ---- generation ----

const SPECIAL_SOURCES = ['0.0.0.0', '255.255.255.255', '224.0.0.1', '127.0.0.1', '203.0.113.255', '240.0.0.1'];
const FLAGS = ['S', 'S', 'A', 'PA', 'FA', 'R', 'SA', 'RA', 'SF', ''];
const SPORTS = [40000, 40001, 40002, 40003, 50000, 61000, 65535, 1024];

interface Gen { prog: Prog; pkt: Buffer; kind: string }

function clientAddr(r: Rng): string {
  if (r.chance(0.08)) return r.pick(SPECIAL_SOURCES);
  if (r.chance(0.5)) return r.pick([CLIENT, CLIENT2]);
  return `203.0.113.${r.int(64)}`;
}

function payload(r: Rng): Buffer {
  return r.chance(0.5) ? Buffer.alloc(0) : r.bytes(r.int(64));
}

function l4Spec(r: Rng, src: string, dst: string, proto: 'TCP' | 'UDP', sport: number, dport: number): PacketSpec {
  const s: PacketSpec = { src, dst, proto, sport, dport, ttl: r.chance(0.05) ? r.pick([0, 1, 2]) : 64, id: r.int(0x10000), payload: payload(r) };
  if (proto === 'TCP') { s.flags = r.pick(FLAGS); s.seq = r.u32(); s.ack = r.u32(); }
  else if (r.chance(0.1)) s.udpNoChecksum = true;
  if (r.chance(0.05)) s.options = Buffer.from([1, 1, 1, 0]);
  if (r.chance(0.1)) s.dstMac = r.pick(['ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01']);
  return s;
}

/** SNAT ports the datapath handed out (seen in outputs), so replies can hit them. */
const snatPorts: number[] = [];

function generateValid(r: Rng): Gen {
  switch (r.int(8)) {
    case 0: case 1: { // client -> external frontend, on a device
      const f = r.pick(EXTERNAL);
      return { prog: r.pick(['xdp', 'tcdev'] as Prog[]), kind: 'client->frontend', pkt: buildPacket(l4Spec(r, clientAddr(r), f.addr, f.proto, r.pick(SPORTS), f.port)) };
    }
    case 2: { // pod -> frontend
      const f = r.pick(INTERNAL);
      return { prog: 'tc', kind: 'pod->frontend', pkt: buildPacket(l4Spec(r, r.pick([POD_A, POD_B]), f.addr, f.proto, r.pick(SPORTS), f.port)) };
    }
    case 3: { // reply of a local backend, from its veth
      const b = r.pick(BACKENDS.filter((x) => x.local));
      const proto = b.port === 5353 ? 'UDP' : 'TCP';
      const dst = r.chance(0.7) ? clientAddr(r) : r.pick([POD_A, POD_B, HAIRPIN]);
      // at its veth's ingress, or at an egress (xlb_tc_host) as the stack routed it
      return { prog: r.chance(0.3) ? 'tchost' : 'tc', kind: 'local reply', pkt: buildPacket(l4Spec(r, b.addr, dst, proto, b.port, r.pick(SPORTS))) };
    }
    case 4: { // reply of a remote backend to a SNAT port, on a device
      const b = r.pick(BACKENDS.filter((x) => !x.local));
      const port = snatPorts.length && r.chance(0.8) ? r.pick(snatPorts) : 61000 + r.int(4536);
      const proto = b.port === 5353 ? 'UDP' : 'TCP';
      return { prog: r.pick(['xdp', 'tcdev'] as Prog[]), kind: 'SNAT reply', pkt: buildPacket(l4Spec(r, b.addr, r.pick([NODE, NODE2]), proto, b.port, port)) };
    }
    case 5: { // fragments of a UDP datagram to a frontend (some, in any order) or from a backend
      const toFront = r.chance(0.6);
      const spec: PacketSpec = toFront
        ? { src: clientAddr(r), dst: r.pick([LB_IP, CLUSTER_IP]), proto: 'UDP', sport: r.pick(SPORTS), dport: 53, id: r.int(0x10000), payload: r.bytes(64 + r.int(200)) }
        : { src: r.pick([POD_A, POD_B]), dst: clientAddr(r), proto: 'UDP', sport: 5353, dport: r.pick(SPORTS), id: r.int(0x10000), payload: r.bytes(64 + r.int(200)) };
      const frags = buildFragments(spec, 8 * (1 + r.int(8)));
      const prog: Prog = toFront ? (spec.dst === CLUSTER_IP && r.chance(0.5) ? 'tc' : r.pick(['xdp', 'tcdev'] as Prog[])) : 'tc';
      return { prog, kind: 'fragment', pkt: r.pick(frags) };
    }
    case 6: { // an ICMP error quoting a translated or an unrelated flow
      const inner = r.chance(0.5)
        ? buildPacket(l4Spec(r, r.pick([NODE, LB_IP, CLUSTER_IP]), r.pick([REMOTE_POD, CLIENT, POD_A]), r.pick(['TCP', 'UDP']), r.pick([61000 + r.int(4536), 80, 53, ...snatPorts.slice(0, 4)]), r.pick([8080, 5353, 40000])))
        : buildPacket(l4Spec(r, clientAddr(r), r.pick([LB_IP, EXT_IP]), 'TCP', r.pick(SPORTS), 80));
      const quoted = inner.subarray(14, 14 + r.pick([28, 20, 24, 40, inner.length - 14]));
      const from = r.pick([REMOTE_POD, CLIENT, '192.0.2.1', POD_A, NODE]);
      const to = r.pick([NODE, LB_IP, CLUSTER_IP, CLIENT]);
      const pkt = buildPacket({ src: from, dst: to, proto: 'ICMP', icmpType: r.pick([3, 3, 11, 8, 0]), icmpCode: r.pick([3, 4, 1, 0]), icmpRest: r.pick([0, 1400]), payload: Buffer.from(quoted) });
      const prog: Prog = from === NODE ? 'tchost' : from === POD_A ? r.pick(['tc', 'tchost'] as Prog[]) : r.pick(['xdp', 'tcdev'] as Prog[]);
      return { prog, kind: 'ICMP error', pkt };
    }
    default: { // VLAN-tagged client traffic
      const f = r.pick(EXTERNAL);
      const p = buildPacket(l4Spec(r, clientAddr(r), f.addr, f.proto, r.pick(SPORTS), f.port));
      const tag = Buffer.alloc(4);
      tag.writeUInt16BE(r.pick([0x8100, 0x8100, 0x88a8]), 0);
      tag.writeUInt16BE(r.int(4096), 2);
      return { prog: r.pick(['xdp', 'tcdev'] as Prog[]), kind: 'VLAN', pkt: Buffer.concat([p.subarray(0, 12), tag, p.subarray(12)]) };
    }
  }
}

function fixIpChecksum(b: Buffer): void {
  if (b.length < 34 || b.readUInt16BE(12) !== 0x0800) return;
  const ihl = (b[14] & 0x0f) * 4;
  if (ihl < 20 || 14 + ihl > b.length) return;
  b.writeUInt16BE(0, 24);
  b.writeUInt16BE(checksum(b.subarray(14, 14 + ihl)), 24);
}

/** One to three structure-aware damages to a valid frame. */
function mutate(r: Rng, pkt: Buffer): Buffer {
  let b = Buffer.from(pkt);
  for (let n = 1 + r.int(3); n > 0; n--) {
    const ihl = b.length > 14 ? (b[14] & 0x0f) * 4 : 20;
    switch (r.int(10)) {
      case 0: if (b.length > 15) b[14 + r.int(Math.min(ihl, b.length - 14))] ^= 1 << r.int(8); break; // an IP header bit
      case 1: if (b.length >= 18) b.writeUInt16BE(r.pick([0, 20, 28, b.length - 14, b.length - 13, r.int(0x10000)]) & 0xffff, 16); break; // total length
      case 2: if (b.length > 14) b[14] = (r.pick([4, 4, 6, r.int(16)]) << 4) | r.int(16); break; // version/IHL
      case 3: if (b.length >= 22) b.writeUInt16BE(r.pick([0x2000, 0x0001, 0x2001, 0x4000, r.int(0x10000)]), 20); break; // fragment field
      case 4: if (b.length > 23) b[23] = r.pick([6, 17, 1, 47, r.int(256)]); break; // protocol
      case 5: b = b.subarray(0, r.int(b.length + 1)); break; // truncation
      case 6: b = Buffer.concat([b, r.bytes(1 + r.int(40))]); break; // trailing bytes
      case 7: { const o = 14 + ihl + r.int(20); if (o < b.length) b[o] = r.u32() & 0xff; break; } // an L4 header byte
      case 8: if (b.length > 14 + ihl + 12) b[14 + ihl + 12] = (r.int(16) << 4) | (b[14 + ihl + 12] & 0x0f); break; // TCP data offset
      default: if (b.length >= 14) b.writeUInt16BE(r.pick([0x0800, 0x86dd, 0x8100, 0x0806, r.int(0x10000)]), 12); break; // ethertype
    }
  }
  if (r.chance(0.6)) fixIpChecksum(b);
  return b;
}

function generate(r: Rng): Gen {
  const x = r.int(100);
  if (x < 55) return generateValid(r);
  if (x < 90) { const g = generateValid(r); return { ...g, kind: `mutated ${g.kind}`, pkt: mutate(r, g.pkt) }; }
  const b = r.bytes(r.int(160));
  if (b.length >= 15 && r.chance(0.6)) { b.writeUInt16BE(0x0800, 12); b[14] = 0x45; }
  return { prog: r.pick(PROGS), kind: 'random bytes', pkt: b };
}

// ---- invariants ----

export interface Failure { seed: number; index: number; prog: Prog; kind: string; problem: string; hex: string }

function l4Of(p: Parsed) { return p.tcp ?? p.udp; }

function ctTuple(p: Parsed): C.CtKey | null {
  const l4 = l4Of(p);
  if (!p.ip || !l4) return null;
  return { saddr: p.ip.src, daddr: p.ip.dst, sport: l4.sport, dport: l4.dport, proto: p.tcp ? 'TCP' : 'UDP' };
}

/** For an ICMP error: the tuple of the reply direction of the flow its quoted packet belongs to. */
function quotedReplyTuple(p: Parsed): C.CtKey | null {
  const q = p.icmp?.inner;
  if (!q || q.sport === undefined || q.dport === undefined || (q.ip.proto !== 6 && q.ip.proto !== 17)) return null;
  return { saddr: q.ip.dst, daddr: q.ip.src, sport: q.dport, dport: q.sport, proto: q.ip.proto === 6 ? 'TCP' : 'UDP' };
}

function backendExists(d: Datapath, id: number): boolean {
  const v = d.map(C.MAP.backends).lookup(C.encodeBackendKey(id));
  return !!v && C.decodeBackendValue(v) !== null;
}

/**
 * What is wrong with one packet's outcome, or null. Exported so a test can show each rule
 * fires on a bad outcome.
 */
export function checkOutcome(prog: Prog, i: Parsed, retval: number, o: Parsed, same: boolean,
  ctx: { ctOrig?: () => string | null; dropDelta?: number; backendOk?: (id: number) => boolean; ctBackends?: () => number[] }): string | null {
  if (!ALLOWED[prog].includes(retval)) return `verdict ${retval} is not one ${prog} may return`;
  const consumed = retval === DROP_CODE[prog] || isReject(i, o, same);
  if (consumed && ctx.dropDelta !== undefined && ctx.dropDelta !== 1) return `a dropped or rejected packet counted ${ctx.dropDelta} times`;
  if (!consumed && ctx.dropDelta !== undefined && ctx.dropDelta !== 0) return `${ctx.dropDelta} drop(s) counted for a packet that went on`;
  if (retval === DROP_CODE[prog] || same || !o.ip || !i.ip) return null;
  // Only a translated packet makes or uses conntrack entries: check the ones of its tuples.
  for (const id of ctx.ctBackends?.() ?? []) if (id && ctx.backendOk && !ctx.backendOk(id)) return `conntrack names backend ${id}, which does not exist`;
  const dstOk = BACKEND_ADDRS.has(o.ip.dst) || o.ip.dst === i.ip.src || o.ip.dst === i.ip.dst || o.ip.dst === ctx.ctOrig?.();
  if (!dstOk) return `rewritten destination ${o.ip.dst} is neither a backend nor the sender ${i.ip.src} nor the flow's client`;
  if (i.ip.csumOk && !o.ip.csumOk) return 'IP checksum broken by the rewrite';
  const il4 = l4Of(i), ol4 = l4Of(o);
  if (il4?.csumOk === true && ol4 && ol4.csumOk === false) return 'L4 checksum broken by the rewrite';
  if (i.udp && o.udp && i.udp.csum === 0 && o.udp.csum !== 0 && o.ip.fragOffset === 0 && !o.ip.mf && i.ip.proto === 17) return 'UDP "no checksum" turned into a wrong one';
  if (i.icmp?.csumOk && o.icmp && !o.icmp.csumOk) return 'ICMP checksum broken by the rewrite';
  return null;
}

/** The output is a reject reply to the input's sender (TCP RST or ICMP unreachable). */
export function isReject(i: Parsed, o: Parsed, same: boolean): boolean {
  if (same || !i.ip || !o.ip || o.ip.dst !== i.ip.src) return false;
  return (!!o.tcp && o.tcp.flags!.includes('R') && !i.tcp?.flags?.includes('R')) || (o.icmp?.type === 3 && i.ip.proto !== 1);
}

function dropTotal(d: Datapath): { counted: number; drops: Record<string, number> } {
  const drops = d.drops();
  const total = Object.values(drops).reduce((a, b) => a + b, 0);
  return { counted: total - drops.frag_untracked, drops };
}

function fullScan(d: Datapath): string | null {
  for (const [k, v] of d.ctEntries()) {
    if (v.backendId && !backendExists(d, v.backendId)) return `conntrack entry ${JSON.stringify(k)} names backend ${v.backendId}, which does not exist`;
  }
  for (const [, v] of d.map(C.MAP.affinity).entries()) {
    const a = C.decodeAffinityValue(v);
    if (a.backendId && !backendExists(d, a.backendId)) return `affinity entry names backend ${a.backendId}, which does not exist`;
  }
  return null;
}

export interface FuzzResult { packets: number; seconds: number; failures: Failure[]; verdicts: Record<string, number>; kinds: Record<string, number> }

export async function runFuzz(o: { packets: number; seed: number; ipv6?: boolean; maxFailures?: number; progress?: (n: number) => void }): Promise<FuzzResult> {
  const d = await Datapath.open('fuzz');
  const r = new Rng(o.seed);
  const failures: Failure[] = [];
  const verdicts: Record<string, number> = {};
  const kinds: Record<string, number> = {};
  snatPorts.length = 0;
  const t0 = performance.now();
  let dropVerdicts = 0;
  let base = 0;
  let lastDrops: Record<string, number> = {};
  let ran = 0;
  try {
    d.v6 = !!o.ipv6;
    setupWorld(d);
    const progs = { xdp: d.obj.program(C.PROG.xdp), tcdev: d.obj.program(C.PROG.tcDev), tc: d.obj.program(C.PROG.tc), tchost: d.obj.program(C.PROG.tcHost) };
    const fail = (index: number, g: Gen, problem: string) => failures.push({ seed: o.seed, index, prog: g.prog, kind: g.kind, problem, hex: g.pkt.toString('hex') });
    for (let i = 0; i < o.packets && failures.length < (o.maxFailures ?? 10); i++) {
      if (i % CT_RESET_EVERY === 0 && i) {
        // As the agent's sweep would: flows go, admission is credited (keeps new flows admitted).
        const ct = d.map(C.MAP.ct);
        for (const k of ct.keys()) ct.delete(k);
        d.ctFill(0n, 0n);
        d.config(); // a new flow cache generation: no cached rewrite outlives its flow

      }
      const g = generate(r);
      kinds[g.kind.replace(/^mutated .*/, 'mutated')] = (kinds[g.kind.replace(/^mutated .*/, 'mutated')] ?? 0) + 1;
      let res: { retval: number; data: Buffer };
      let data = g.pkt;
      if (o.ipv6) {
        try {
          data = frame4to6(g.pkt);
        } catch {
          kinds['no IPv6 twin'] = (kinds['no IPv6 twin'] ?? 0) + 1;
          continue;
        }
      }
      try {
        res = progs[g.prog].testRun({ data, dataOutSize: 2048 });
      } catch {
        // The kernel refuses some frames (shorter than an Ethernet header; for skb programs an
        // IPv4 ethertype without a whole IPv4 header) before any program runs.
        kinds['refused by the kernel'] = (kinds['refused by the kernel'] ?? 0) + 1;
        continue;
      }
      if (o.ipv6) {
        try {
          res = { retval: res.retval, data: res.data.equals(data) ? g.pkt : frame6to4(res.data) };
        } catch (e) {
          fail(i, g, `IPv6 output: ${(e as Error).message}`);
          continue;
        }
      }
      verdicts[`${g.prog}:${res.retval}`] = (verdicts[`${g.prog}:${res.retval}`] ?? 0) + 1;
      // Counters are read per packet only for consumed ones (a read is 16 per-CPU lookups);
      // every CHECK_EVERY packets the totals must equal the consumed count exactly.
      const same = res.data.equals(g.pkt);
      const input = parsePacket(g.pkt);
      const out = same ? input : parsePacket(res.data);
      let dropDelta: number | undefined;
      let moved = '';
      if (res.retval === DROP_CODE[g.prog] || isReject(input, out, same)) {
        dropVerdicts++;
        const now = dropTotal(d);
        dropDelta = now.counted - base;
        base = now.counted;
        moved = Object.keys(now.drops).filter((k) => now.drops[k] !== (lastDrops[k] ?? 0)).join(',');
        lastDrops = now.drops;
      }
      if (out.ip && out.ip.src === NODE && (out.tcp || out.udp) && snatPorts.length < 64) {
        const sp = (out.tcp ?? out.udp)!.sport;
        if (sp >= 61000 && !snatPorts.includes(sp)) snatPorts.push(sp);
      }
      let entries: Array<C.CtValue | null> | undefined;
      const ct = () => (entries ??= [ctTuple(input), ctTuple(out), quotedReplyTuple(input)].filter((t): t is C.CtKey => !!t).map((t) => d.ct(t)));
      const problem = checkOutcome(g.prog, input, res.retval, out, same, {
        dropDelta,
        ctOrig: () => ct().find((e) => e?.origAddr)?.origAddr ?? null,
        ctBackends: () => ct().map((e) => e?.backendId ?? 0),
        backendOk: (id) => backendExists(d, id),
      });
      if (problem) fail(i, g, moved ? `${problem} (reasons: ${moved})` : problem);
      ran = i + 1;
      if ((i + 1) % CHECK_EVERY === 0) {
        const now = dropTotal(d);
        if (now.counted !== dropVerdicts) fail(i, g, `drop counters (${now.counted}) != dropped or rejected packets (${dropVerdicts}) up to here`);
        base = now.counted;
        dropVerdicts = now.counted;
        lastDrops = now.drops;
        const scan = fullScan(d);
        if (scan) fail(i, g, scan);
        o.progress?.(i + 1);
      }
    }
    const scan = fullScan(d);
    if (scan) failures.push({ seed: o.seed, index: o.packets, prog: 'xdp', kind: 'final scan', problem: scan, hex: '' });
  } finally {
    d.close();
  }
  return { packets: ran, seconds: (performance.now() - t0) / 1000, failures, verdicts, kinds };
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) {
    console.error(`fuzz: --${name} takes a whole number, not ${process.argv[i + 1]}`);
    process.exit(2);
  }
  return v;
}

async function main(): Promise<void> {
  const packets = arg('packets', 100_000);
  const seed = arg('seed', Date.now() % 0x7fffffff);
  const quiet = process.argv.includes('--quiet');
  const ipv6 = process.argv.includes('--ipv6');
  console.log(`fuzz: ${packets} ${ipv6 ? 'IPv6 ' : ''}packets, seed ${seed} (replay: npm run fuzz -- --packets ${packets} --seed ${seed}${ipv6 ? ' --ipv6' : ''})`);
  let last = performance.now();
  const res = await runFuzz({
    packets, seed, ipv6, progress: (n) => {
      if (quiet || performance.now() - last < 2000) return;
      last = performance.now();
      console.log(`fuzz: ${n} / ${packets}`);
    },
  });
  console.log(`fuzz: ${res.packets} packets in ${res.seconds.toFixed(1)} s = ${Math.round(res.packets / res.seconds)} packets/s`);
  console.log(`fuzz: kinds ${JSON.stringify(res.kinds)}`);
  console.log(`fuzz: verdicts ${JSON.stringify(res.verdicts)}`);
  for (const f of res.failures) console.log(`FAIL seed ${f.seed} packet ${f.index} ${f.prog} (${f.kind}): ${f.problem}\n  ${f.hex}`);
  console.log(`fuzz: ${res.failures.length ? `${res.failures.length} failure(s)` : 'no invariant broken'}`);
  process.exitCode = res.failures.length ? 1 : 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
