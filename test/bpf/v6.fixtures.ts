// IPv6 rows of their own (the IPv4 rows' twins, twin.ts, cover what both families share):
// extension headers, the fragment header, neighbour discovery and other ICMPv6 that is not
// ours, hop limit, the IPv6 header's own damage, UDP without a checksum, checksum folding,
// sources never answered, family mismatches, the IPv6 SNAT and hairpin addresses, rejects
// with extension headers, Packet Too Big. Addresses as a real dual-stack cluster has them.
import assert from 'node:assert/strict';
import * as C from '../../src/datapath/codecs.js';
import { buildFragments, buildPacket, checksum, ipBytes, onesSum, pseudoSum, type PacketSpec } from '../helpers/packet.js';
import { DEV_MAC } from './xdp.fixtures.js';
import type { Datapath } from './harness.js';
import type { Row } from './rows.js';

const CLIENT6 = '2001:db8:c::7';
const LB6 = '2001:db8:1b::10';
const NODE6 = '2001:db8:a::10';
const POD6 = 'fd00:10:244:1::5';
const POD6B = 'fd00:10:244:1::6';
const REMOTE6 = 'fd00:10:244:2::9';
const CIP6 = 'fd00:10:96::a';
const HAIRPIN6 = C.DEFAULT_CONFIG.hairpinAddr6;
const SNAT6 = { snatAddr6: NODE6 };

const tcp6 = (o: Partial<PacketSpec> = {}): Buffer =>
  buildPacket({ src: CLIENT6, dst: LB6, proto: 'TCP', sport: 40000, dport: 80, flags: 'S', seq: 1000, ...o });
const udp6 = (o: Partial<PacketSpec> = {}): Buffer =>
  buildPacket({ src: CLIENT6, dst: LB6, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.from('query-bytes'), ...o });
const icmp6 = (type: number, o: Partial<PacketSpec> = {}): Buffer =>
  buildPacket({ src: 'fe80::1', dst: LB6, proto: 'ICMP', icmpType: type, ttl: 255, payload: Buffer.alloc(16, 1), ...o });
const fwdKey = (o: Partial<C.CtKey> = {}): C.CtKey => ({ saddr: CLIENT6, daddr: LB6, sport: 40000, dport: 80, proto: 'TCP', ...o });

/** LB6:80/TCP (svc 1) -> local pod POD6:8080 (backend 1); also :53/UDP (svc 2). */
function lb6(d: Datapath, o: { flags?: number; backends?: number[] } = {}): void {
  d.backend(1, POD6, 8080);
  d.service({ addr: LB6, port: 80, svcId: 1, backends: o.backends ?? [1], flags: o.flags });
  d.service({ addr: LB6, port: 53, proto: 'UDP', svcId: 2, backends: o.backends ?? [1], flags: o.flags });
}

/** The same frontend with a remote backend: SNAT to config.snat_addr6. */
function lb6Remote(d: Datapath): void {
  d.backend(2, REMOTE6, 8080, { local: false });
  d.service({ addr: LB6, port: 80, svcId: 1, backends: [2] });
}

/** A UDP datagram to LB6:53 whose translated checksum (to POD6:8080) computes to zero, which
 *  UDP sends as 0xffff: two payload bytes chosen to make it so. */
function udpFoldingToZero(): Buffer {
  const payload = Buffer.alloc(12, 0x5a);
  const out = (p: Buffer) => buildPacket({ src: CLIENT6, dst: POD6, proto: 'UDP', sport: 40000, dport: 8080, payload: p });
  payload.writeUInt16BE(0, 10);
  const seg = out(payload).subarray(14 + 40);
  const withoutX = Buffer.from(seg);
  withoutX.writeUInt16BE(0, 6);
  const s = onesSum(withoutX, pseudoSum(ipBytes(CLIENT6), ipBytes(POD6), 17, seg.length));
  payload.writeUInt16BE((0xffff - s) & 0xffff, 10); // total ones' sum 0xffff: the checksum computes to 0
  const check = out(payload).subarray(14 + 40);
  assert.equal(check.readUInt16BE(6), 0xffff, 'crafted: computed checksum 0 sent as 0xffff');
  return udp6({ payload });
}

/** Flow B differs from flow A only in one 8-byte half of one address (the source, or the
 *  frontend: LB6 and LB6B both lead to POD6); one flow cache slot. A's entry is cached, B's
 *  conntrack entry retargeted to POD6B: B reaching POD6 would be A's entry serving it. */
function cacheHalfRows(): Row[] {
  const LB6B = '2001:db8:1c::10';
  const cases: Array<[string, Partial<PacketSpec>]> = [
    ['first half of its source address', { src: '2001:db8:d::7' }],
    ['second half of its source address', { src: '2001:db8:c::8' }],
    ['first half of its destination address', { dst: LB6B }],
    ['second half of its destination address', { dst: '2001:db8:1b::11' }],
  ];
  return cases.map(([what, b]): Row => ({
    name: `IPv6: flow cache: a flow that differs from the cached one only in the ${what} is not served its entry`,
    prog: 'xdp', config: { flowCacheMask: 0 },
    setup: (d) => {
      lb6(d);
      d.backend(2, POD6B, 8080);
      d.service({ addr: LB6B, port: 53, proto: 'UDP', svcId: 3, backends: [1] });
      d.service({ addr: '2001:db8:1b::11', port: 53, proto: 'UDP', svcId: 4, backends: [1] });
    },
    before: [
      { pkt: udp6(), verdict: 'PASS' },
      { pkt: udp6(b), verdict: 'PASS' },
      { act: (d) => d.ctSet({ saddr: b.src ?? CLIENT6, daddr: b.dst ?? LB6, sport: 40000, dport: 53, proto: 'UDP' }, { backendId: 2 }) },
      { pkt: udp6(), verdict: 'PASS' },
    ],
    pkt: udp6(b), verdict: 'PASS', out: { src: b.src ?? CLIENT6, dst: POD6B, dport: 8080 },
  }));
}

/** Packet Too Big (MTU 1280) from a router, quoting the SNATed packet we sent toward REMOTE6. */
function ptbAboutSnat(d: Datapath): Buffer {
  const v = d.ct(fwdKey());
  assert.ok(v, 'forward CT entry');
  const sent = tcp6({ src: NODE6, dst: REMOTE6, sport: v.natPort, dport: 8080, flags: 'A', payload: Buffer.alloc(1400, 1) });
  return buildPacket({ src: '2001:db8:ffff::1', dst: NODE6, proto: 'ICMP', icmpType: 2, icmpCode: 0, icmpRest: 1280, payload: sent.subarray(14, 14 + 40 + 8) });
}

const NDP: Array<[string, number]> = [['router solicitation', 133], ['router advertisement', 134], ['neighbour solicitation', 135], ['neighbour advertisement', 136], ['redirect', 137]];

export const v6Rows: Row[] = [
  // ---- not ours: untouched ----
  ...NDP.map(([what, type]): Row => ({ name: `IPv6: NDP ${what} to a frontend address passes untouched`, prog: 'xdp', setup: lb6, pkt: icmp6(type), verdict: 'PASS', unchanged: true })),
  { name: 'IPv6: NDP neighbour solicitation from a pod passes untouched (tc)', prog: 'tc', setup: lb6, pkt: icmp6(135, { src: POD6, dst: 'ff02::1:ff00:10' }), verdict: 'OK', unchanged: true },
  { name: 'IPv6: ICMPv6 echo request to the LB address passes untouched', prog: 'xdp', setup: lb6, pkt: icmp6(128, { src: CLIENT6, ttl: 64 }), verdict: 'PASS', unchanged: true },
  { name: 'IPv6: TCP to an address that is no frontend passes untouched, no CT', prog: 'xdp', setup: lb6, pkt: tcp6({ dst: '2001:db8:1b::99' }), verdict: 'PASS', unchanged: true, ct: [{ key: fwdKey({ daddr: '2001:db8:1b::99' }), value: null }] },
  { name: 'IPv6: hop limit 1 to an address that is not ours passes untouched', prog: 'xdp', setup: lb6, pkt: tcp6({ dst: '2001:db8:1b::99', ttl: 1 }), verdict: 'PASS', unchanged: true },
  { name: 'IPv6: ESP (no upper-layer header to read) to the LB address passes untouched', prog: 'xdp', setup: lb6, pkt: buildPacket({ src: CLIENT6, dst: LB6, proto: 50, payload: Buffer.alloc(24, 7) }), verdict: 'PASS', unchanged: true },

  // ---- the IPv6 header: counted drops ----
  { name: 'IPv6: header cut short: truncated drop', prog: 'xdp', setup: lb6, pkt: tcp6().subarray(0, 14 + 30), verdict: 'DROP', drops: { truncated: 1 } },
  { name: 'IPv6: version 4 inside an IPv6 ethertype: bad_ihl drop', prog: 'xdp', setup: lb6, pkt: tcp6({ version: 4 }), verdict: 'DROP', drops: { bad_ihl: 1 } },
  { name: 'IPv6: payload length beyond the frame: truncated drop', prog: 'xdp', setup: lb6, pkt: tcp6({ totLen: 400 }), verdict: 'DROP', drops: { truncated: 1 } },
  { name: 'IPv6: TCP header beyond the payload length: truncated drop, no flow', prog: 'xdp', setup: lb6, pkt: tcp6({ totLen: 40 + 8 }), verdict: 'DROP', drops: { truncated: 1 }, ct: [{ key: fwdKey(), value: null }] },
  { name: 'IPv6: hop limit 1 to a frontend: ttl drop, no flow', prog: 'xdp', setup: lb6, pkt: tcp6({ ttl: 1 }), verdict: 'DROP', drops: { ttl: 1 }, ct: [{ key: fwdKey(), value: null }] },
  { name: 'IPv6: hop limit 1 from a pod to a ClusterIP: ttl drop (tc)', prog: 'tc', setup: (d) => { d.backend(1, POD6B, 8080); d.service({ addr: CIP6, port: 80, svcId: 3, backends: [1], scope: 'internal' }); }, pkt: tcp6({ src: POD6, dst: CIP6, ttl: 1 }), verdict: 'SHOT', drops: { ttl: 1 } },

  // ---- extension headers (parse.h: up to 3 walked) ----
  ...([['hop-by-hop', 0], ['destination options', 60], ['routing (no segments left)', 43]] as const).map(([what, type]): Row => ({
    name: `IPv6: ${what} header before TCP: translated, the header kept`, prog: 'xdp', setup: lb6, pkt: tcp6({ ext: [{ type, len8: 1 }] }), verdict: 'PASS',
    out: { src: CLIENT6, dst: POD6, sport: 40000, dport: 8080 }, check: (o) => assert.equal(o.ip?.ihl, 40 + 16),
    ct: [{ key: fwdKey(), value: { backendId: 1, svcId: 1 } }],
  })),
  {
    name: 'IPv6: three extension headers chained (hop-by-hop, destination options, routing): translated', prog: 'xdp', setup: lb6,
    pkt: tcp6({ ext: [{ type: 0 }, { type: 60, len8: 2 }, { type: 43 }] }), verdict: 'PASS', out: { dst: POD6, dport: 8080 },
    check: (o) => assert.equal(o.ip?.ihl, 40 + 8 + 24 + 8),
  },
  {
    name: 'IPv6: four extension headers (more than the walk takes): passed untouched, no flow', prog: 'xdp', setup: lb6,
    pkt: tcp6({ ext: [{ type: 0 }, { type: 60 }, { type: 43 }, { type: 60 }] }), verdict: 'PASS', unchanged: true, ct: [{ key: fwdKey(), value: null }],
  },
  {
    name: 'IPv6: routing header with segments left (the destination is a waypoint): passed untouched, no flow', prog: 'xdp', setup: lb6,
    pkt: tcp6({ ext: [{ type: 43, len8: 2, segLeft: 1 }] }), verdict: 'PASS', unchanged: true, ct: [{ key: fwdKey(), value: null }],
  },
  {
    name: 'IPv6: extension header longer than the payload: truncated drop', prog: 'xdp', setup: lb6,
    pkt: (() => { const b = tcp6({ ext: [{ type: 60, len8: 8 }] }); return b.subarray(0, 14 + 40 + 24); })(), verdict: 'DROP', drops: { truncated: 1 },
  },
  {
    name: 'IPv6: extension headers on a pod packet (tc): translated', prog: 'tc',
    setup: (d) => { d.backend(1, POD6B, 8080); d.service({ addr: CIP6, port: 80, svcId: 3, backends: [1], scope: 'internal' }); },
    pkt: tcp6({ src: POD6, dst: CIP6, ext: [{ type: 0 }, { type: 60 }] }), verdict: 'OK', out: { src: POD6, dst: POD6B, dport: 8080 },
  },

  // ---- the fragment header ----
  {
    name: 'IPv6: first fragment (fragment header, offset 0): translated, ports recorded for later fragments', prog: 'xdp', setup: lb6,
    pkt: buildFragments({ src: CLIENT6, dst: LB6, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.alloc(64, 9), id: 0x10077 }, 32)[0], verdict: 'PASS',
    out: { dst: POD6, dport: 8080 }, check: (_o, d) => assert.ok(d.frag({ saddr: CLIENT6, daddr: LB6, id: 0x10077, proto: 'UDP' })),
  },
  {
    name: 'IPv6: later fragment after its first: address translated, payload untouched', prog: 'xdp', setup: lb6,
    before: [{ pkt: buildFragments({ src: CLIENT6, dst: LB6, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.alloc(64, 9), id: 0x10077 }, 32)[0], verdict: 'PASS' }],
    pkt: buildFragments({ src: CLIENT6, dst: LB6, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.alloc(64, 9), id: 0x10077 }, 32)[1], verdict: 'PASS',
    out: { src: CLIENT6, dst: POD6 }, check: (o) => { assert.equal(o.ip?.fragOffset, 32); assert.deepEqual(o.payload, Buffer.alloc(32, 9)); },
    stats: { svcId: 2, packets: 2 },
  },
  {
    name: 'IPv6: later fragment without its first: passed untouched, counted', prog: 'xdp', setup: lb6,
    pkt: buildFragments({ src: CLIENT6, dst: LB6, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.alloc(64, 9), id: 0x20077 }, 32)[1], verdict: 'PASS',
    unchanged: true, drops: { frag_untracked: 1 },
  },
  {
    name: 'IPv6: another datagram\'s later fragment (other fragment id) does not follow the first', prog: 'xdp', setup: lb6,
    before: [{ pkt: buildFragments({ src: CLIENT6, dst: LB6, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.alloc(64, 9), id: 0x10077 }, 32)[0], verdict: 'PASS' }],
    pkt: buildFragments({ src: CLIENT6, dst: LB6, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.alloc(64, 9), id: 0x20077 }, 32)[1], verdict: 'PASS',
    unchanged: true, drops: { frag_untracked: 1 },
  },

  {
    // its data begins like a destination options header leading to TCP: read as headers, it
    // would follow the tracked first fragment of the same id
    name: 'IPv6: later fragment: the walk ends at its fragment header (what follows is data, never headers)', prog: 'xdp', setup: lb6,
    before: [{ pkt: buildFragments({ src: CLIENT6, dst: LB6, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.alloc(64, 9), id: 0x777 }, 32)[0], verdict: 'PASS' }],
    pkt: (() => {
      const b = Buffer.from(buildFragments({ src: CLIENT6, dst: LB6, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.alloc(64, 9), id: 0x777 }, 32)[1]);
      b[14 + 40] = 60;            // fragment header: next header "destination options"
      b[14 + 48] = 17;            // data: "next header UDP, length 0"
      b[14 + 49] = 0;
      return b;
    })(),
    verdict: 'PASS', unchanged: true, drops: { frag_untracked: 1 },
  },

  // ---- checksums ----
  { name: 'IPv6: UDP with checksum zero to a frontend: bad_csum drop, no flow', prog: 'xdp', setup: lb6, pkt: udp6({ udpNoChecksum: true }), verdict: 'DROP', drops: { bad_csum: 1 }, ct: [{ key: fwdKey({ dport: 53, proto: 'UDP' }), value: null }] },
  {
    name: 'IPv6: UDP with checksum zero on an established flow: bad_csum drop', prog: 'xdp', setup: lb6,
    before: [{ pkt: udp6(), verdict: 'PASS' }], pkt: udp6({ udpNoChecksum: true }), verdict: 'DROP', drops: { bad_csum: 1 },
  },
  { name: 'IPv6: UDP with checksum zero to an address that is not ours: passed untouched', prog: 'xdp', setup: lb6, pkt: udp6({ dst: '2001:db8:1b::99', udpNoChecksum: true }), verdict: 'PASS', unchanged: true },
  { name: 'IPv6: UDP with checksum zero from a pod to a ClusterIP: bad_csum drop (tc)', prog: 'tc', setup: (d) => { d.backend(1, POD6B, 8080); d.service({ addr: CIP6, port: 53, proto: 'UDP', svcId: 3, backends: [1], scope: 'internal' }); }, pkt: udp6({ src: POD6, dst: CIP6, udpNoChecksum: true }), verdict: 'SHOT', drops: { bad_csum: 1 } },
  { name: 'IPv6: UDP whose translated checksum computes to zero is sent as 0xffff (XDP)', prog: 'xdp', setup: lb6, pkt: udpFoldingToZero(), verdict: 'PASS', out: { dst: POD6, dport: 8080, udpCsum: 0xffff } },
  { name: 'IPv6: UDP whose translated checksum computes to zero is sent as 0xffff (tc device)', prog: 'tcdev', setup: lb6, pkt: udpFoldingToZero(), verdict: 'OK', out: { dst: POD6, dport: 8080, udpCsum: 0xffff } },
  {
    name: 'IPv6: TCP checksum over the IPv6 pseudo header after DNAT and SNAT', prog: 'xdp', config: SNAT6, setup: lb6Remote, pkt: tcp6({ flags: 'S', payload: Buffer.alloc(33, 0xee) }), verdict: 'PASS',
    out: { src: NODE6, dst: REMOTE6, dport: 8080 }, check: (o, _d, raw) => assert.equal(checksum(raw.subarray(14 + 40), pseudoSum(ipBytes(NODE6), ipBytes(REMOTE6), 6, raw.length - 54)), 0),
  },

  // ---- sources never answered ----
  ...['::', '::1', 'ff02::1', '::ffff:203.0.113.7'].map((src): Row => ({
    name: `IPv6: no endpoints, TCP SYN from ${src}: bad_source drop, no RST`, prog: 'xdp', setup: (d) => lb6(d, { backends: [] }), pkt: tcp6({ src }), verdict: 'DROP', drops: { bad_source: 1 },
  })),

  // ---- families, SNAT, hairpin ----
  {
    // both families' NodePort wildcards share the services map: IPv4's is all zero, IPv6's all ones
    name: 'IPv6: dual-stack NodePort: a packet to a node IPv6 address takes the IPv6 wildcard and its backend, not the IPv4 one', prog: 'xdp',
    setup: (d) => {
      d.nodeAddr(NODE6);
      d.backend(1, '10.244.1.5', 8080);
      d.backend(2, POD6, 8080);
      d.service({ addr: null, port: 30080, svcId: 3, backends: [1], flags: C.SVC_FLAG.nodePort });
      d.service({ addr: null, family: 6, port: 30080, svcId: 4, backends: [2], flags: C.SVC_FLAG.nodePort });
    },
    pkt: tcp6({ dst: NODE6, dport: 30080 }), verdict: 'PASS', out: { dst: POD6, dport: 8080 },
  },
  { name: 'IPv6: frontend whose backend is IPv4 (no NAT46): no_backend drop', prog: 'xdp', setup: (d) => { d.backend(1, '10.244.1.5', 8080); d.service({ addr: LB6, port: 80, svcId: 1, backends: [1] }); }, pkt: tcp6(), verdict: 'DROP', drops: { no_backend: 1 } },
  { name: 'IPv6: remote backend without an IPv6 SNAT address: no_config drop', prog: 'xdp', setup: lb6Remote, pkt: tcp6(), verdict: 'DROP', drops: { no_config: 1 } },
  {
    name: 'IPv6: remote backend: SNAT to config.snat_addr6, reply back to the client from the LB address', prog: 'xdp', config: SNAT6, setup: lb6Remote,
    before: [{ pkt: tcp6(), verdict: 'PASS' }],
    pkt: (d) => tcp6({ src: REMOTE6, dst: NODE6, sport: 8080, dport: d.ct(fwdKey())!.natPort, flags: 'SA', seq: 5000, ack: 1001 }), verdict: 'PASS',
    out: { src: LB6, sport: 80, dst: CLIENT6, dport: 40000, tcpFlags: 'SA' }, ct: [{ key: fwdKey(), value: { state: 'syn_recv', natAddr: NODE6 } }],
  },
  {
    name: 'IPv6: an SNAT address whose last 32 bits are zero (2001:db8:a:1::) is an address', prog: 'xdp', config: { snatAddr6: '2001:db8:a:1::' }, setup: lb6Remote,
    pkt: tcp6(), verdict: 'PASS', out: { src: '2001:db8:a:1::', dst: REMOTE6, dport: 8080 },
  },
  {
    name: 'IPv6: hairpin: a pod reaching itself gets source config.hairpin_addr6 (100::42:1), back into the pod', prog: 'tc',
    setup: (d) => { d.backend(1, POD6, 8080); d.service({ addr: CIP6, port: 80, svcId: 3, backends: [1], scope: 'internal' }); },
    pkt: tcp6({ src: POD6, dst: CIP6 }), verdict: 'TC_REDIRECT', out: { src: HAIRPIN6!, dst: POD6, sport: 40000, dport: 8080 },
  },
  {
    name: 'IPv6: source ranges: a client inside the /64 is served, the range as an LPM key of 32 + 64 bits', prog: 'xdp',
    setup: (d) => { lb6(d, { flags: C.SVC_FLAG.srcRanges }); d.srcRange(1, '2001:db8:c::/64'); }, pkt: tcp6(), verdict: 'PASS', out: { dst: POD6 },
  },
  {
    name: 'IPv6: source ranges: a client outside the /64: src_range drop', prog: 'xdp',
    setup: (d) => { lb6(d, { flags: C.SVC_FLAG.srcRanges }); d.srcRange(1, '2001:db8:c::/64'); }, pkt: tcp6({ src: '2001:db8:d::7' }), verdict: 'DROP', drops: { src_range: 1 },
  },

  {
    // fcache.h: an IPv4 packet matches an entry by the last address words and the v4-mapped
    // prefix; one slot (mask 0) holds an IPv6 flow whose addresses end in the IPv4 flow's
    name: 'IPv6: flow cache: an IPv6 entry whose addresses end in an IPv4 flow\'s (one slot) is not that flow\'s', prog: 'xdp', config: { flowCacheMask: 0 },
    setup: (d) => {
      d.backend(1, '10.244.1.5', 8080);
      d.backend(2, POD6, 8080);
      d.service({ addr: '198.51.100.10', port: 53, proto: 'UDP', svcId: 1, backends: [1] });
      d.service({ addr: '2001:db8:1b::c633:640a', port: 53, proto: 'UDP', svcId: 2, backends: [2] });
    },
    before: [0, 1].map(() => ({ pkt: udp6({ src: '2001:db8:c::cb00:7107', dst: '2001:db8:1b::c633:640a' }), verdict: 'PASS' as const })),
    pkt: buildPacket({ src: '203.0.113.7', dst: '198.51.100.10', proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.from('query-bytes') }),
    verdict: 'PASS', out: { src: '203.0.113.7', dst: '10.244.1.5', dport: 8080 },
  },
  // fcache.h: an IPv6 hit compares the header's addresses with the entry's in 8-byte halves;
  // flows that differ from the cached one in one half only, in either address, on one slot
  ...cacheHalfRows(),
  // ---- rejects ----
  {
    name: 'IPv6: no endpoints, TCP SYN: RST|ACK back to the client, TCP checksum over the IPv6 pseudo header', prog: 'xdp', setup: (d) => { lb6(d, { backends: [] }); d.ifMac(1, DEV_MAC); }, pkt: tcp6(), verdict: 'REDIRECT',
    out: { src: LB6, dst: CLIENT6, sport: 80, dport: 40000, tcpFlags: 'AR', ack: 1001, len: 14 + 40 + 20 }, drops: { no_endpoints: 1 },
  },
  {
    name: 'IPv6: no endpoints, UDP: ICMPv6 port unreachable quoting the datagram', prog: 'xdp', setup: (d) => { lb6(d, { backends: [] }); d.ifMac(1, DEV_MAC); }, pkt: udp6(), verdict: 'REDIRECT',
    out: { src: LB6, dst: CLIENT6, icmpType: 1, icmpCode: 4, len: 14 + 40 + 8 + 40 + 8 }, drops: { no_endpoints: 1 },
    check: (o) => { assert.equal(o.icmp?.inner?.ip.dst, LB6); assert.equal(o.icmp?.inner?.dport, 53); },
  },
  {
    name: 'IPv6: no endpoints, SYN with an extension header: reject_failed drop (the quote would need it)', prog: 'xdp', setup: (d) => { lb6(d, { backends: [] }); d.ifMac(1, DEV_MAC); },
    pkt: tcp6({ ext: [{ type: 60 }] }), verdict: 'DROP', drops: { reject_failed: 1 },
  },

  // ---- ICMPv6 errors ----
  {
    name: 'IPv6: Packet Too Big about a SNATed packet: to the client, quote back to client -> LB address:80, MTU kept', prog: 'xdp', config: SNAT6, setup: lb6Remote,
    before: [{ pkt: tcp6(), verdict: 'PASS' }], pkt: ptbAboutSnat, verdict: 'PASS',
    out: { dst: CLIENT6, icmpType: 2, icmpCode: 0 },
    check: (o) => {
      assert.equal(o.icmp?.rest, 1280);
      assert.equal(o.icmp?.inner?.ip.src, CLIENT6);
      assert.equal(o.icmp?.inner?.ip.dst, LB6);
      assert.equal(o.icmp?.inner?.sport, 40000);
      assert.equal(o.icmp?.inner?.dport, 80);
    },
  },
  {
    name: 'IPv6: Packet Too Big about no flow of ours: untouched', prog: 'xdp', config: SNAT6, setup: lb6Remote,
    pkt: buildPacket({ src: '2001:db8:ffff::1', dst: NODE6, proto: 'ICMP', icmpType: 2, icmpRest: 1280, payload: tcp6({ src: NODE6, dst: REMOTE6, sport: 61000, dport: 8080 }).subarray(14, 14 + 48) }),
    verdict: 'PASS', unchanged: true,
  },
];
