// tc (ingress of a pod's host-side veth = packets the pod sends; internal scope) fixtures:
// pod -> Service, reverse NAT of local backends' replies, hairpin, rejects back into the pod.
import assert from 'node:assert/strict';
import * as C from '../../src/datapath/codecs.js';
import { buildFragments, buildPacket, buildRawFrame, MAC_A, MAC_B, type PacketSpec } from '../helpers/packet.js';
import { CLIENT, CLUSTER_IP, FIXTURE_CONFIG, HAIRPIN, LB_IP, MAGLEV_M, NODE, NODE2, POD_A, POD_B, REMOTE_POD, type Datapath } from './harness.js';
import type { Row, Step } from './rows.js';
import { CARRYING, DEV_MAC, localReplyRows, tcp as xtcp, vlanTagged } from './xdp.fixtures.js';

const F = C.SVC_FLAG;
const ptcp = (o: Partial<PacketSpec> = {}): Buffer =>
  buildPacket({ src: POD_A, dst: CLUSTER_IP, proto: 'TCP', sport: 40000, dport: 80, flags: 'S', ...o });
const pudp = (o: Partial<PacketSpec> = {}): Buffer =>
  buildPacket({ src: POD_A, dst: CLUSTER_IP, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.from('dns?'), ...o });

/** Pod A's connection to the ClusterIP through xlb, closed by both ends; then the node drains. */
const closedThenDrained = (): Step[] => [
  { pkt: ptcp(), verdict: 'OK' },
  { pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK' },
  { pkt: ptcp({ flags: 'FA', seq: 1001, ack: 5001 }), verdict: 'OK' },
  { pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'FA', seq: 5001, ack: 1002 }), verdict: 'OK' },
  { act: (d) => d.config({ flags: FIXTURE_CONFIG.flags | C.CONFIG_FLAG.drain }) },
];

/** ClusterIP 10.96.0.10:80/TCP internal (svc 10) -> pod B:8080 (backend 1, local). */
function cip(d: Datapath, o: { backends?: number[]; flags?: number; proto?: C.Proto; port?: number; count?: number } = {}): void {
  d.backend(1, POD_B, 8080);
  d.service({ addr: CLUSTER_IP, port: o.port ?? 80, proto: o.proto ?? 'TCP', svcId: 10, backends: o.backends ?? [1], scope: 'internal', flags: o.flags, count: o.count });
}

/** ClusterIP whose only backend is pod A itself (hairpin). */
function self(d: Datapath): void {
  d.backend(1, POD_A, 8080);
  d.service({ addr: CLUSTER_IP, port: 80, svcId: 10, backends: [1], scope: 'internal' });
}

/** The backend pod's 40-byte UDP reply to pod A in two fragments (id 11). */
const replyFrags = (): Buffer[] => buildFragments({ src: POD_B, dst: POD_A, proto: 'UDP', sport: 8080, dport: 40000, payload: Buffer.alloc(40, 6), id: 11 }, 24);

/** ClusterIP :443 (svc 10) whose endpoint is the node's own address :6443 (backend 1, local). */
function hostEp(d: Datapath, proto: C.Proto = 'TCP'): void {
  d.nodeAddr(NODE);
  d.backend(1, NODE, 6443);
  d.service({ addr: CLUSTER_IP, port: 443, proto, svcId: 10, backends: [1], scope: 'internal' });
}

/** The node's 40-byte UDP reply to pod A in two fragments (id 12). */
const hostFrags = (): Buffer[] => buildFragments({ src: NODE, dst: POD_A, proto: 'UDP', sport: 6443, dport: 40000, payload: Buffer.alloc(40, 7), id: 12 }, 24);

const fwd = (o: Partial<C.CtKey> = {}): C.CtKey => ({ saddr: POD_A, daddr: CLUSTER_IP, sport: 40000, dport: 80, proto: 'TCP', ...o });
const podReply = (o: Partial<C.CtKey> = {}): C.CtKey => ({ saddr: POD_B, daddr: POD_A, sport: 8080, dport: 40000, proto: 'TCP', ...o });

/** No XLB_CFG_F_FIXTURE (and no peer redirect): a local backend's flow goes up the stack and is marked so. */
const STACK: Partial<C.XlbConfig> = { flags: 0 };

/** LB IP 198.51.100.10:80/TCP (svc 1, external) -> local pod A:8080 (backend 1). */
function lbPod(d: Datapath): void {
  d.backend(1, POD_A, 8080);
  d.service({ addr: LB_IP, port: 80, svcId: 1, backends: [1] });
}

export const tcRows: Row[] = [
  {
    name: 'pod -> ClusterIP TCP, local backend: DNAT, TC_ACT_OK, CT without SNAT', prog: 'tc', setup: cip, pkt: ptcp(), verdict: 'OK',
    out: { src: POD_A, sport: 40000, dst: POD_B, dport: 8080 },
    ct: [
      { key: fwd(), value: { backendId: 1, svcId: 10, flags: C.CT_FLAG.localBackend } },
      { key: { saddr: POD_B, daddr: POD_A, sport: 8080, dport: 40000, proto: 'TCP' }, value: { natAddr: CLUSTER_IP, natPort: 80, flags: C.CT_FLAG.reply | C.CT_FLAG.localBackend } },
    ],
    stats: { svcId: 10, packets: 1, newFlows: 1 },
  },
  { name: 'pod -> ClusterIP UDP with payload: checksum valid after DNAT', prog: 'tc', setup: (d) => cip(d, { proto: 'UDP', port: 53 }), pkt: pudp(), verdict: 'OK', out: { dst: POD_B, dport: 8080 }, check: (o) => assert.equal(o.payload?.toString(), 'dns?') },
  { name: 'pod UDP without checksum: stays zero (BPF_F_MARK_MANGLED_0)', prog: 'tc', setup: (d) => cip(d, { proto: 'UDP', port: 53 }), pkt: pudp({ udpNoChecksum: true }), verdict: 'OK', out: { dst: POD_B, udpCsum: 0 } },
  {
    name: 'random slots: new flows spread over both backends', prog: 'tc',
    setup: (d) => { d.backend(1, POD_B, 8080); d.backend(2, REMOTE_POD, 8080, { local: false }); d.service({ addr: CLUSTER_IP, port: 80, svcId: 10, backends: [1, 2], scope: 'internal' }); },
    before: Array.from({ length: 31 }, (_, i) => ({ pkt: ptcp({ sport: 41000 + i }), verdict: 'OK' as const })),
    pkt: ptcp({ sport: 42000 }), verdict: 'OK',
    check: (_o, d) => {
      const used = new Set(d.ctEntries().filter(([, v]) => !(v.flags & C.CT_FLAG.reply)).map(([, v]) => v.backendId));
      assert.deepEqual([...used].sort(), [1, 2], 'both backends chosen over 32 flows');
    },
  },
  {
    name: 'internal Maglev: backend = table[flowHash % M]', prog: 'tc',
    setup: (d) => { [1, 2, 3, 4, 5, 6, 7].forEach((i) => d.backend(i, `10.244.1.${10 + i}`, 8080)); d.service({ addr: CLUSTER_IP, port: 80, svcId: 10, backends: [1, 2, 3, 4, 5, 6, 7], scope: 'internal', flags: F.maglev }); },
    pkt: ptcp({ sport: 45678 }), verdict: 'OK',
    check: (o) => {
      const h = C.flowHash({ saddr: POD_A, daddr: CLUSTER_IP, sport: 45678, dport: 80, proto: 'TCP' }, FIXTURE_CONFIG.hashSeed);
      assert.equal(o.ip?.dst, `10.244.1.${10 + (h % MAGLEV_M) + 1}`);
    },
  },
  {
    name: 'reply from the local backend: source back to ClusterIP:80', prog: 'tc', setup: cip, before: [{ pkt: ptcp(), verdict: 'OK' }],
    pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK',
    out: { src: CLUSTER_IP, sport: 80, dst: POD_A, dport: 40000 }, ct: [{ key: fwd(), value: { state: 'syn_recv' } }],
  },
  {
    name: 'pod ACK after the backend SYN-ACK: the pod -> ClusterIP flow is established', prog: 'tc', setup: cip,
    before: [{ pkt: ptcp(), verdict: 'OK' }, { pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK' }],
    pkt: ptcp({ flags: 'A' }), verdict: 'OK', out: { dst: POD_B, dport: 8080 }, ct: [{ key: fwd(), value: { state: 'established' } }],
  },
  {
    name: 'reply of a local backend to an external client (flow made by XDP): source back to the LB IP', prog: 'tc',
    setup: (d) => { d.backend(1, POD_A, 8080); d.service({ addr: LB_IP, port: 80, svcId: 1, backends: [1] }); },
    before: [{ prog: 'xdp', pkt: xtcp(), verdict: 'PASS' }],
    pkt: ptcp({ src: POD_A, dst: CLIENT, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK',
    out: { src: LB_IP, sport: 80, dst: CLIENT, dport: 40000 },
  },
  {
    name: 'NodePort reply: source back to the node address this client used (per flow)', prog: 'tc',
    setup: (d) => { d.nodeAddr(NODE); d.nodeAddr(NODE2); d.backend(1, POD_A, 8080); d.service({ addr: null, port: 30080, svcId: 3, backends: [1], flags: F.nodePort }); },
    before: [{ prog: 'xdp', pkt: xtcp({ dst: NODE2, dport: 30080 }), verdict: 'PASS' }, { prog: 'xdp', pkt: xtcp({ dst: NODE, dport: 30080, sport: 40001 }), verdict: 'PASS' }],
    pkt: ptcp({ src: POD_A, dst: CLIENT, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK',
    out: { src: NODE2, sport: 30080, dst: CLIENT },
  },
  {
    name: 'hairpin: pod reaching itself gets source 169.254.42.1, back into the pod', prog: 'tc', setup: self, pkt: ptcp(), verdict: 'TC_REDIRECT',
    out: { src: HAIRPIN, sport: 40000, dst: POD_A, dport: 8080, srcMac: MAC_B, dstMac: MAC_A },
    ct: [{ key: fwd(), value: { flags: C.CT_FLAG.snat | C.CT_FLAG.hairpin | C.CT_FLAG.localBackend, natAddr: HAIRPIN, natPort: 40000 } }],
  },
  {
    name: 'hairpin reply: source ClusterIP:80, destination the pod again, back into the pod', prog: 'tc', setup: self, before: [{ pkt: ptcp(), verdict: 'TC_REDIRECT' }],
    pkt: ptcp({ src: POD_A, dst: HAIRPIN, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'TC_REDIRECT',
    out: { src: CLUSTER_IP, sport: 80, dst: POD_A, dport: 40000, srcMac: MAC_B, dstMac: MAC_A },
  },
  {
    name: 'hairpin of a frame sent to the broadcast MAC: back into the pod from the veth\'s own MAC', prog: 'tc', setup: (d) => { self(d); d.ifMac(1, DEV_MAC); },
    pkt: ptcp({ dstMac: 'ff:ff:ff:ff:ff:ff' }), verdict: 'TC_REDIRECT', out: { src: HAIRPIN, dst: POD_A, srcMac: DEV_MAC, dstMac: MAC_A },
  },
  {
    name: 'pod -> ClusterIP without endpoints, SYN to a multicast MAC: RST into the pod from the veth\'s own MAC', prog: 'tc', setup: (d) => { cip(d, { backends: [] }); d.ifMac(1, DEV_MAC); },
    pkt: ptcp({ dstMac: '33:33:00:00:00:01' }), verdict: 'TC_REDIRECT', drops: { no_endpoints: 1 }, out: { tcpFlags: 'AR', srcMac: DEV_MAC, dstMac: MAC_A },
  },
  { name: 'hairpin without a configured hairpin address: no_config drop', prog: 'tc', setup: self, config: { hairpinAddr: null }, pkt: ptcp(), verdict: 'SHOT', drops: { no_config: 1 } },
  { name: 'pod -> LB IP (internal entry): DNAT in tc', prog: 'tc', setup: (d) => { d.backend(1, POD_B, 8080); d.service({ addr: LB_IP, port: 80, svcId: 11, backends: [1], scope: 'internal' }); }, pkt: ptcp({ dst: LB_IP }), verdict: 'OK', out: { dst: POD_B, dport: 8080 } },
  { name: 'pod -> NodePort on a node address (internal wildcard): DNAT', prog: 'tc', setup: (d) => { d.nodeAddr(NODE); d.backend(1, POD_B, 8080); d.service({ addr: null, port: 30080, svcId: 12, backends: [1], scope: 'internal' }); }, pkt: ptcp({ dst: NODE, dport: 30080 }), verdict: 'OK', out: { dst: POD_B, dport: 8080 }, ct: [{ key: { saddr: POD_B, daddr: POD_A, sport: 8080, dport: 40000, proto: 'TCP' }, value: { natAddr: NODE, natPort: 30080 } }] },
  { name: 'pod -> external-only frontend: untouched in tc', prog: 'tc', setup: (d) => { d.backend(1, POD_B, 8080); d.service({ addr: LB_IP, port: 80, svcId: 1, backends: [1] }); }, pkt: ptcp({ dst: LB_IP }), verdict: 'OK', unchanged: true },
  { name: 'pod -> LB IP with source ranges excluding pods: dropped', prog: 'tc', setup: (d) => { d.backend(1, POD_B, 8080); d.service({ addr: LB_IP, port: 80, svcId: 11, backends: [1], scope: 'internal', flags: F.srcRanges }); d.srcRange(11, '203.0.113.0/24'); }, pkt: ptcp({ dst: LB_IP }), verdict: 'SHOT', drops: { src_range: 1 } },
  { name: 'pod -> ClusterIP, remote backend: DNAT, no SNAT, TC_ACT_OK', prog: 'tc', setup: (d) => { d.backend(2, REMOTE_POD, 8080, { local: false }); d.service({ addr: CLUSTER_IP, port: 80, svcId: 10, backends: [2], scope: 'internal' }); }, pkt: ptcp(), verdict: 'OK', out: { src: POD_A, dst: REMOTE_POD }, ct: [{ key: fwd(), value: { flags: 0 } }] },
  { name: 'iTP Local without local endpoints: dropped and counted', prog: 'tc', setup: (d) => cip(d, { backends: [], flags: F.local }), pkt: ptcp(), verdict: 'SHOT', drops: { no_local_endpoints: 1 } },
  {
    name: 'pod -> ClusterIP without endpoints, TCP: RST|ACK back into the pod', prog: 'tc', setup: (d) => cip(d, { backends: [] }), pkt: ptcp({ seq: 500 }), verdict: 'TC_REDIRECT',
    drops: { no_endpoints: 1 }, out: { src: CLUSTER_IP, dst: POD_A, sport: 80, dport: 40000, tcpFlags: 'AR', ack: 501, len: 54, dstMac: MAC_A },
  },
  {
    name: 'pod -> ClusterIP without endpoints, UDP: ICMP port unreachable back into the pod', prog: 'tc', setup: (d) => cip(d, { backends: [], proto: 'UDP', port: 53 }), pkt: pudp(), verdict: 'TC_REDIRECT',
    drops: { no_endpoints: 1 }, out: { src: CLUSTER_IP, dst: POD_A, icmpType: 3, icmpCode: 3, len: 70 },
    check: (o) => { assert.equal(o.icmp?.inner?.ip.dst, CLUSTER_IP); assert.equal(o.icmp?.inner?.dport, 53); },
  },
  { name: 'pod -> ClusterIP without endpoints from source 127.0.0.1: bad_source drop, nothing back into the pod', prog: 'tc', setup: (d) => cip(d, { backends: [] }), pkt: ptcp({ src: '127.0.0.1' }), verdict: 'SHOT', drops: { bad_source: 1 } },
  { name: 'pod -> ClusterIP without endpoints, UDP from 255.255.255.255: bad_source drop', prog: 'tc', setup: (d) => cip(d, { backends: [], proto: 'UDP', port: 53 }), pkt: pudp({ src: '255.255.255.255' }), verdict: 'SHOT', drops: { bad_source: 1 } },
  { name: 'pod -> address that is no frontend: untouched', prog: 'tc', setup: cip, pkt: ptcp({ dst: '10.96.0.99' }), verdict: 'OK', unchanged: true },
  { name: '802.1Q-tagged frame from a pod to a ClusterIP: untouched', prog: 'tc', setup: cip, pkt: vlanTagged(ptcp(), [0x8100]), verdict: 'OK', unchanged: true, ct: [{ key: fwd(), value: null }] },
  { name: 'ARP from a pod: untouched', prog: 'tc', setup: cip, pkt: buildRawFrame(0x0806, Buffer.alloc(28, 2)), verdict: 'OK', unchanged: true },
  { name: 'pod TTL 1 to a ClusterIP: ttl drop', prog: 'tc', setup: cip, pkt: ptcp({ ttl: 1 }), verdict: 'SHOT', drops: { ttl: 1 } },
  { name: 'pod packet with IHL 3: bad_ihl drop', prog: 'tc', setup: cip, pkt: ptcp({ ihl: 3 }), verdict: 'SHOT', drops: { bad_ihl: 1 } },
  { name: 'pod TCP header beyond the IP total length: truncated drop', prog: 'tc', setup: cip, pkt: ptcp({ totLen: 30 }), verdict: 'SHOT', drops: { truncated: 1 } },
  { name: 'pod packet with total length beyond the frame: truncated drop', prog: 'tc', setup: cip, pkt: ptcp({ totLen: 1500 }), verdict: 'SHOT', drops: { truncated: 1 } },
  { name: 'pod packet with IP options: translated, checksums valid', prog: 'tc', setup: cip, pkt: ptcp({ options: Buffer.from([0x94, 0x04, 0, 0]) }), verdict: 'OK', out: { dst: POD_B, dport: 8080 }, check: (o) => assert.deepEqual(o.ip?.options, Buffer.from([0x94, 4, 0, 0])) },
  {
    name: 'pod -> ClusterIP: CT hit stays on its backend after the slots change', prog: 'tc', setup: (d) => { cip(d); d.backend(2, REMOTE_POD, 8080, { local: false }); },
    before: [{ pkt: ptcp(), verdict: 'OK' }, { act: (d) => d.service({ addr: CLUSTER_IP, port: 80, svcId: 10, backends: [2], scope: 'internal' }) }],
    pkt: ptcp({ flags: 'A' }), verdict: 'OK', out: { dst: POD_B },
  },
  {
    name: 'pod -> ClusterIP UDP flow whose backend left the Service (draining): next datagram to the remaining one', prog: 'tc',
    setup: (d) => { cip(d, { proto: 'UDP', port: 53 }); d.backend(2, REMOTE_POD, 8080, { local: false }); },
    before: [{ pkt: pudp(), verdict: 'OK' }, { pkt: pudp(), verdict: 'OK' }, { act: (d) => { d.backend(1, POD_B, 8080, { state: 'draining' }); d.service({ addr: CLUSTER_IP, port: 53, proto: 'UDP', svcId: 10, backends: [2], scope: 'internal' }); } }],
    pkt: pudp(), verdict: 'OK', out: { dst: REMOTE_POD, dport: 8080 },
    ct: [{ key: fwd({ dport: 53, proto: 'UDP' }), value: { backendId: 2 } }, { key: { saddr: POD_B, daddr: POD_A, sport: 8080, dport: 40000, proto: 'UDP' }, value: null }],
  },
  {
    name: 'pod UDP fragments: first translated, later one follows it', prog: 'tc', setup: (d) => cip(d, { proto: 'UDP', port: 53 }),
    before: [{ pkt: buildFragments({ src: POD_A, dst: CLUSTER_IP, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.alloc(40, 5), id: 9 }, 24)[0], verdict: 'OK' }],
    pkt: buildFragments({ src: POD_A, dst: CLUSTER_IP, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.alloc(40, 5), id: 9 }, 24)[1], verdict: 'OK',
    out: { dst: POD_B }, check: (o) => assert.equal(o.ip?.fragOffset, 24),
  },
  {
    name: 'reply fragments from the local backend pod: first and later fragment both from the ClusterIP', prog: 'tc', setup: (d) => cip(d, { proto: 'UDP', port: 53 }),
    before: [{ pkt: pudp(), verdict: 'OK' }, { pkt: replyFrags()[0], verdict: 'OK' }],
    pkt: replyFrags()[1], verdict: 'OK', out: { src: CLUSTER_IP, dst: POD_A },
    check: (o) => { assert.equal(o.ip?.fragOffset, 24); assert.deepEqual(o.payload, Buffer.alloc(24, 6)); },
  },
  {
    name: 'pod UDP flow created unfragmented, then a fragmented datagram: the later fragment follows', prog: 'tc', setup: (d) => cip(d, { proto: 'UDP', port: 53 }),
    before: [{ pkt: pudp(), verdict: 'OK' }, { pkt: buildFragments({ src: POD_A, dst: CLUSTER_IP, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.alloc(40, 5), id: 10 }, 24)[0], verdict: 'OK' }],
    pkt: buildFragments({ src: POD_A, dst: CLUSTER_IP, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.alloc(40, 5), id: 10 }, 24)[1], verdict: 'OK',
    out: { dst: POD_B },
  },
  // ---- a Service endpoint in the node's own namespace (hostNetwork pod, API server) ----
  {
    name: 'pod -> ClusterIP whose endpoint is the node itself: DNAT to the node address, up the stack', prog: 'tc', setup: hostEp,
    pkt: ptcp({ dport: 443 }), verdict: 'OK', out: { src: POD_A, dst: NODE, dport: 6443 },
  },
  {
    name: 'the node\'s TCP reply to that pod, at the veth\'s egress: source back to the ClusterIP', prog: 'tchost', setup: hostEp,
    before: [{ prog: 'tc', pkt: ptcp({ dport: 443 }), verdict: 'OK' }],
    pkt: ptcp({ src: NODE, dst: POD_A, sport: 6443, dport: 40000, flags: 'SA' }), verdict: 'OK',
    out: { src: CLUSTER_IP, sport: 443, dst: POD_A, dport: 40000 },
    ct: [{ key: fwd({ dport: 443 }), value: { state: 'syn_recv' } }],
  },
  {
    name: 'the node\'s UDP reply to that pod, fragmented: every fragment from the ClusterIP', prog: 'tchost', setup: (d) => hostEp(d, 'UDP'),
    before: [{ prog: 'tc', pkt: pudp({ dport: 443 }), verdict: 'OK' }, { pkt: hostFrags()[0], verdict: 'OK' }],
    pkt: hostFrags()[1], verdict: 'OK', out: { src: CLUSTER_IP, dst: POD_A },
  },
  {
    name: 'the node\'s own traffic to a pod, no Service flow: untouched at the egress', prog: 'tchost', setup: hostEp,
    pkt: ptcp({ src: NODE, dst: POD_A, sport: 6443, dport: 40001, flags: 'SA' }), verdict: 'OK', unchanged: true,
  },
  {
    name: 'a reply of a pod backend (not a node address) at the egress: untouched (its own veth translated it)', prog: 'tchost', setup: (d) => cip(d, { proto: 'UDP', port: 53 }),
    before: [{ prog: 'tc', pkt: pudp(), verdict: 'OK' }],
    pkt: buildPacket({ src: POD_B, dst: POD_A, proto: 'UDP', sport: 8080, dport: 40000, payload: Buffer.from('x') }), verdict: 'OK', unchanged: true,
  },
  {
    name: 'ICMP port unreachable from the backend pod: appears to come from the ClusterIP, quoted header restored', prog: 'tc', setup: (d) => cip(d, { proto: 'UDP', port: 53 }),
    before: [{ pkt: pudp(), verdict: 'OK' }],
    pkt: buildPacket({ src: POD_B, dst: POD_A, proto: 'ICMP', icmpType: 3, icmpCode: 3, payload: pudp({ dst: POD_B, dport: 8080 }).subarray(14) }), verdict: 'OK',
    out: { src: CLUSTER_IP, dst: POD_A, icmpType: 3, icmpCode: 3 },
    check: (o) => {
      const i = o.icmp?.inner;
      assert.equal(i?.ip.dst, CLUSTER_IP); assert.equal(i?.dport, 53); assert.equal(i?.ip.src, POD_A); assert.equal(i?.sport, 40000);
    },
  },
  {
    name: 'frag needed from a pod about a reply it got from a ClusterIP: goes to the backend', prog: 'tc', setup: cip,
    before: [{ pkt: ptcp(), verdict: 'OK' }],
    pkt: buildPacket({ src: POD_A, dst: CLUSTER_IP, proto: 'ICMP', icmpType: 3, icmpCode: 4, icmpRest: 1200, payload: ptcp({ src: CLUSTER_IP, dst: POD_A, sport: 80, dport: 40000, flags: 'SA' }).subarray(14, 14 + 28) }), verdict: 'OK',
    out: { src: POD_A, dst: POD_B, icmpType: 3, icmpCode: 4 }, check: (o) => { assert.equal(o.icmp?.inner?.ip.src, POD_B); assert.equal(o.icmp?.inner?.sport, 8080); },
  },
  // Hitless switch (bpf/include/nfct.h): draining, and netfilter conntrack asked first.
  {
    name: 'drain: a new flow to a ClusterIP is left to the stack untouched, no CT entry', prog: 'tc', setup: cip,
    config: { flags: FIXTURE_CONFIG.flags | C.CONFIG_FLAG.drain }, pkt: ptcp(), verdict: 'OK',
    out: { src: POD_A, sport: 40000, dst: CLUSTER_IP, dport: 80 },
    check: (_o, d) => assert.equal(d.ctEntries().length, 0, 'no xlb flow while draining'),
  },
  {
    name: 'drain: the reply of a flow xlb already tracks is still reverse-NATed', prog: 'tc', setup: cip,
    before: [{ pkt: ptcp(), verdict: 'OK' }, { act: (d) => d.config({ flags: FIXTURE_CONFIG.flags | C.CONFIG_FLAG.drain }) }],
    pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK',
    out: { src: CLUSTER_IP, sport: 80, dst: POD_A, dport: 40000 },
  },
  {
    name: 'drain: the next packets of a flow xlb already tracks are still DNATed', prog: 'tc', setup: cip,
    before: [{ pkt: ptcp(), verdict: 'OK' }, { act: (d) => d.config({ flags: FIXTURE_CONFIG.flags | C.CONFIG_FLAG.drain }) },
      { pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK' }],
    pkt: ptcp({ flags: 'A', seq: 1001, ack: 5001 }), verdict: 'OK',
    out: { dst: POD_B, dport: 8080 }, ct: [{ key: fwd(), value: { state: 'established' } }],
  },
  // A closed xlb flow's client port reused while draining: the new connection's SYN goes to the
  // stack (kube-proxy), so must its next packets and its backend's answers, not the old flow's
  // translation (the pod's ACK DNATed to the old backend left the handshake hanging).
  {
    name: 'drain: the ACK of a new connection on a closed xlb flow\'s tuple is left to the stack like its SYN', prog: 'tc', setup: cip,
    before: [...closedThenDrained(), { pkt: ptcp(), verdict: 'OK' }],
    pkt: ptcp({ flags: 'A', seq: 1001, ack: 5001 }), verdict: 'OK', unchanged: true,
  },
  {
    name: 'drain: the backend\'s answer on a closed xlb flow\'s tuple reused through the stack is not reverse-NATed', prog: 'tc', setup: cip,
    before: [...closedThenDrained(), { pkt: ptcp(), verdict: 'OK' }],
    pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK', unchanged: true,
  },
  {
    name: 'netfilter lookup on: a flow netfilter conntrack does not track starts an xlb flow', prog: 'tc', setup: cip,
    config: { flags: FIXTURE_CONFIG.flags | C.CONFIG_FLAG.nfct }, pkt: ptcp({ sport: 40123 }), verdict: 'OK',
    out: { dst: POD_B, dport: 8080 }, ct: [{ key: fwd({ sport: 40123 }), value: { backendId: 1 } }],
  },
  // ---- a flow to a local backend delivered up the stack (no peer redirect; fixtures without
  // XLB_CFG_F_FIXTURE): netfilter tracks it in backend form, so its reply goes up the stack
  // untouched and is reverse-translated where it leaves the node's routing, at an egress ----
  {
    name: 'stack delivery: pod -> ClusterIP with a local backend up the stack marks both CT entries stack', prog: 'tc', setup: cip, config: STACK,
    pkt: ptcp(), verdict: 'OK', out: { src: POD_A, dst: POD_B, dport: 8080 },
    ct: [
      { key: fwd(), value: { flags: C.CT_FLAG.localBackend | C.CT_FLAG.stack } },
      { key: podReply(), value: { flags: C.CT_FLAG.reply | C.CT_FLAG.localBackend | C.CT_FLAG.stack } },
    ],
  },
  {
    name: 'stack delivery: the local backend\'s reply at its veth\'s ingress is untouched, for netfilter to match and route', prog: 'tc', setup: cip, config: STACK,
    before: [{ pkt: ptcp(), verdict: 'OK' }],
    pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK', unchanged: true,
    ct: [{ key: fwd(), value: { state: 'syn' } }],
  },
  {
    name: 'stack delivery: that reply at the client pod\'s veth egress, after netfilter: source back to the ClusterIP', prog: 'tchost', setup: cip, config: STACK,
    before: [{ prog: 'tc', pkt: ptcp(), verdict: 'OK' }, { prog: 'tc', pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK' }],
    pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK',
    out: { src: CLUSTER_IP, sport: 80, dst: POD_A, dport: 40000 },
    ct: [{ key: fwd(), value: { state: 'syn_recv' } }],
  },
  {
    name: 'stack delivery: the pod\'s next segments stay on the stack path, DNATed (the flow cache too), the reply untouched at ingress', prog: 'tc', setup: cip, config: STACK,
    before: [
      { pkt: ptcp(), verdict: 'OK' },
      { prog: 'tchost', pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK' },
      { pkt: ptcp({ flags: 'A', seq: 1001, ack: 5001 }), verdict: 'OK' },
      { pkt: ptcp({ flags: 'A', seq: 1001, ack: 5001 }), verdict: 'OK' },
    ],
    pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'A', seq: 5001, ack: 1001 }), verdict: 'OK', unchanged: true,
    ct: [{ key: fwd(), value: { state: 'established', flags: C.CT_FLAG.localBackend | C.CT_FLAG.stack } }],
  },
  {
    name: 'stack delivery: a local backend\'s reply to an external client (request up the stack from XDP) is untouched at the pod\'s veth', prog: 'tc', setup: lbPod, config: STACK,
    before: [{ prog: 'xdp', pkt: xtcp(), verdict: 'PASS' }],
    pkt: ptcp({ src: POD_A, dst: CLIENT, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK', unchanged: true,
  },
  {
    name: 'stack delivery: that reply at the node device\'s egress, after netfilter: source back to the LB IP', prog: 'tchost', setup: lbPod, config: STACK,
    before: [{ prog: 'xdp', pkt: xtcp(), verdict: 'PASS' }, { prog: 'tc', pkt: ptcp({ src: POD_A, dst: CLIENT, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK' }],
    pkt: ptcp({ src: POD_A, dst: CLIENT, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK',
    out: { src: LB_IP, sport: 80, dst: CLIENT, dport: 40000 },
  },
  {
    name: 'stack delivery: the same from the tc device entry (request up the stack from tc ingress): translated at the egress only', prog: 'tchost', setup: lbPod, config: STACK,
    before: [{ prog: 'tcdev', pkt: xtcp(), verdict: 'OK' }, { prog: 'tc', pkt: ptcp({ src: POD_A, dst: CLIENT, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK' }],
    pkt: ptcp({ src: POD_A, dst: CLIENT, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK',
    out: { src: LB_IP, sport: 80, dst: CLIENT, dport: 40000 },
  },
  // ICMP errors from a local backend about a stack flow follow its replies: untouched at the
  // backend's veth (netfilter relates them to the connection it tracks in backend form),
  // translated at the egress; the IPv6 twins are ICMPv6 destination unreachable and Packet Too Big
  {
    name: 'stack delivery: ICMP port unreachable from the local backend about its flow: untouched at the backend\'s veth', prog: 'tc', setup: (d) => cip(d, { proto: 'UDP', port: 53 }), config: STACK,
    before: [{ pkt: pudp(), verdict: 'OK' }],
    pkt: buildPacket({ src: POD_B, dst: POD_A, proto: 'ICMP', icmpType: 3, icmpCode: 3, payload: pudp({ dst: POD_B, dport: 8080 }).subarray(14) }), verdict: 'OK', unchanged: true,
  },
  {
    name: 'stack delivery: that error at the client pod\'s veth egress: from the ClusterIP, quoted header restored', prog: 'tchost', setup: (d) => cip(d, { proto: 'UDP', port: 53 }), config: STACK,
    before: [{ prog: 'tc', pkt: pudp(), verdict: 'OK' }],
    pkt: buildPacket({ src: POD_B, dst: POD_A, proto: 'ICMP', icmpType: 3, icmpCode: 3, payload: pudp({ dst: POD_B, dport: 8080 }).subarray(14) }), verdict: 'OK',
    out: { src: CLUSTER_IP, dst: POD_A, icmpType: 3, icmpCode: 3 },
    check: (o) => {
      const i = o.icmp?.inner;
      assert.equal(i?.ip.dst, CLUSTER_IP); assert.equal(i?.dport, 53); assert.equal(i?.ip.src, POD_A); assert.equal(i?.sport, 40000);
    },
  },
  {
    name: 'stack delivery: fragmentation needed from a local backend about an external client\'s flow (request up the stack from XDP): untouched at its veth', prog: 'tc', setup: lbPod, config: STACK,
    before: [{ prog: 'xdp', pkt: xtcp(), verdict: 'PASS' }],
    pkt: buildPacket({ src: POD_A, dst: CLIENT, proto: 'ICMP', icmpType: 3, icmpCode: 4, icmpRest: 1200, payload: xtcp({ dst: POD_A, dport: 8080 }).subarray(14, 14 + 28) }), verdict: 'OK', unchanged: true,
  },
  {
    name: 'stack delivery: that error at the node device\'s egress: from the LB IP, quoting what the client sent', prog: 'tchost', setup: lbPod, config: STACK,
    before: [{ prog: 'xdp', pkt: xtcp(), verdict: 'PASS' }],
    pkt: buildPacket({ src: POD_A, dst: CLIENT, proto: 'ICMP', icmpType: 3, icmpCode: 4, icmpRest: 1200, payload: xtcp({ dst: POD_A, dport: 8080 }).subarray(14, 14 + 28) }), verdict: 'OK',
    out: { src: LB_IP, dst: CLIENT, icmpType: 3, icmpCode: 4 },
    check: (o) => { const i = o.icmp?.inner; assert.equal(i?.ip.dst, LB_IP); assert.equal(i?.dport, 80); assert.equal(i?.ip.src, CLIENT); assert.equal(i?.sport, 40000); },
  },
  {
    name: 'an ICMP error from a backend pod about a flow not up the stack (its veth translated it) is untouched at the egress', prog: 'tchost', setup: (d) => cip(d, { proto: 'UDP', port: 53 }),
    before: [{ prog: 'tc', pkt: pudp(), verdict: 'OK' }],
    pkt: buildPacket({ src: POD_B, dst: POD_A, proto: 'ICMP', icmpType: 3, icmpCode: 3, payload: pudp({ dst: POD_B, dport: 8080 }).subarray(14) }), verdict: 'OK', unchanged: true,
  },
  {
    name: 'the node\'s port unreachable to a pod about a flow to a Service whose endpoint is the node: from the ClusterIP at the egress', prog: 'tchost', setup: (d) => hostEp(d, 'UDP'),
    before: [{ prog: 'tc', pkt: pudp({ dport: 443 }), verdict: 'OK' }],
    pkt: buildPacket({ src: NODE, dst: POD_A, proto: 'ICMP', icmpType: 3, icmpCode: 3, payload: pudp({ dst: NODE, dport: 6443 }).subarray(14) }), verdict: 'OK',
    out: { src: CLUSTER_IP, dst: POD_A, icmpType: 3, icmpCode: 3 },
    check: (o) => { const i = o.icmp?.inner; assert.equal(i?.ip.dst, CLUSTER_IP); assert.equal(i?.dport, 443); },
  },
  // carry-over across a ct migration (flow_carry_held): a local backend's reply the new ct
  // does not know yet is held at its veth and at the egress, never passed untranslated
  {
    name: 'carry-over: a local backend\'s SYN-ACK without a ct entry, at its veth: held (ct_carry drop)', prog: 'tc', setup: cip, config: CARRYING,
    pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'SHOT', drops: { ct_carry: 1 },
  },
  {
    name: 'carry-over: a pod\'s SYN to the ClusterIP starts its flow as always', prog: 'tc', setup: cip, config: CARRYING,
    pkt: ptcp(), verdict: 'OK', out: { dst: POD_B, dport: 8080 },
  },
  {
    name: 'carry-over: a stack flow\'s reply at the egress, its entry not carried yet: held', prog: 'tchost', setup: (d) => { cip(d); d.stackPorts([8080]); }, config: { ...STACK, ...CARRYING },
    pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'A' }), verdict: 'SHOT', drops: { ct_carry: 1 },
  },
  {
    name: 'carry-over: UDP from that port at the egress passes untouched', prog: 'tchost', setup: (d) => { cip(d, { proto: 'UDP', port: 53 }); d.stackPorts([8080]); }, config: { ...STACK, ...CARRYING },
    pkt: pudp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000 }), verdict: 'OK', unchanged: true,
  },
  // stack_ports: xlb_tc_host looks up ct only for a reply from a port a request went up the
  // stack to, so the node's own traffic at a device's egress costs no hash lookup
  {
    name: 'stack delivery: the request up the stack arms its backend port at the egress (stack_ports), nothing else', prog: 'tc', setup: cip, config: STACK,
    pkt: ptcp(), verdict: 'OK', out: { dst: POD_B, dport: 8080 }, check: (_o, d) => assert.deepEqual(d.stackPortsSet(), [8080]),
  },
  {
    name: 'a pod -> ClusterIP flow to a remote backend arms no port at the egress', prog: 'tc', setup: (d) => { d.backend(1, REMOTE_POD, 8080, { local: false }); d.service({ addr: CLUSTER_IP, port: 80, svcId: 10, backends: [1], scope: 'internal' }); },
    pkt: ptcp(), verdict: 'OK', out: { dst: REMOTE_POD, dport: 8080 }, check: (_o, d) => assert.deepEqual(d.stackPortsSet(), []),
  },
  {
    name: 'a stack flow whose port stack_ports does not hold (made before it: an upgrade): its reply passes the egress untouched', prog: 'tchost', setup: cip, config: STACK,
    before: [{ prog: 'tc', pkt: ptcp(), verdict: 'OK' }, { act: (d) => d.stackPorts([]) }],
    pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK', unchanged: true,
  },
  {
    name: 'that flow\'s next request re-arms its port: its reply is translated at the egress again', prog: 'tchost', setup: cip, config: STACK,
    before: [{ prog: 'tc', pkt: ptcp(), verdict: 'OK' }, { act: (d) => d.stackPorts([]) }, { prog: 'tc', pkt: ptcp({ flags: 'A', seq: 1001, ack: 5001 }), verdict: 'OK' }],
    pkt: ptcp({ src: POD_B, dst: POD_A, sport: 8080, dport: 40000, flags: 'A', seq: 5001, ack: 1001 }), verdict: 'OK',
    out: { src: CLUSTER_IP, sport: 80, dst: POD_A, dport: 40000 },
  },
  {
    name: 'the node\'s own traffic from an armed port, no Service flow: untouched at the egress', prog: 'tchost', setup: cip, config: STACK,
    before: [{ prog: 'tc', pkt: ptcp(), verdict: 'OK' }],
    pkt: ptcp({ src: NODE, dst: CLIENT, sport: 8080, dport: 40000, flags: 'SA' }), verdict: 'OK', unchanged: true,
  },
  ...localReplyRows,
];
