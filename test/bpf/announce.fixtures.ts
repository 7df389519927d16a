// ARP and IPv6 neighbour solicitations answered by the datapath for announced LoadBalancer
// addresses (bpf/include/announce.h),
// for xlb_xdp and, through asTcDev, xlb_tc_dev. Test runs without a ctx arrive on lo
// (ifindex 1), whose if_macs entry is DEV_MAC.
import assert from 'node:assert/strict';
import { ARP_OP, arpFrame, BROADCAST_MAC, gratuitousArp, parseArp } from '../../src/datapath/arp.js';
import * as C from '../../src/datapath/codecs.js';
import { CLIENT, LB_IP, NODE, type Datapath } from './harness.js';
import { ALL_NODES, ALL_NODES_MAC, NA_FLAG, ND_TYPE, ndFrame, parseNd, unsolicitedNa } from '../../src/datapath/ndp.js';
import { MAC_A } from '../helpers/packet.js';
import type { Row } from './rows.js';
import { asTcDev } from './tcdev.fixtures.js';
import { DEV_MAC, lbLocal, tcp } from './xdp.fixtures.js';

const LO = 1;
/** The client asks who has `tpa`. */
const request = (tpa = LB_IP, o: { op?: number; spa?: string } = {}): Buffer =>
  arpFrame({ dstMac: BROADCAST_MAC, srcMac: MAC_A, op: o.op ?? ARP_OP.request, sha: MAC_A, spa: o.spa ?? CLIENT, tha: '00:00:00:00:00:00', tpa });

function announced(d: Datapath, o: { ifindex?: number; expires?: bigint; mac?: boolean } = {}): void {
  if (o.mac !== false) d.ifMac(LO, DEV_MAC);
  d.announce(LB_IP, o.ifindex ?? LO, o.expires);
}

const counted = (replies: number, expired = 0, ndp = { replies: 0, expired: 0 }) => (_o: unknown, d: Datapath): void => {
  assert.deepEqual(d.announceStats(), { arp_replies: replies, arp_expired: expired, ndp_replies: ndp.replies, ndp_expired: ndp.expired }, 'announce counters');
};

/** The reply: from the device's MAC to the requester, "LB_IP is at DEV_MAC". */
const isReply = (o: unknown, d: Datapath, raw: Buffer): void => {
  assert.deepEqual(parseArp(raw), { dstMac: MAC_A, srcMac: DEV_MAC, op: ARP_OP.reply, sha: DEV_MAC, spa: LB_IP, tha: MAC_A, tpa: CLIENT });
  counted(1)(o, d);
};

export const announceXdpRows: Row[] = [
  {
    name: 'ARP request for an announced LB address: answered in place with the device MAC, counted', prog: 'xdp',
    setup: (d) => announced(d), pkt: request(), verdict: 'TX', check: isReply,
  },
  {
    name: 'ARP request padded to 60 bytes for an announced address: answered, padding kept', prog: 'xdp',
    setup: (d) => announced(d), pkt: Buffer.concat([request(), Buffer.alloc(18)]), verdict: 'TX',
    check: (o, d, raw) => { assert.equal(raw.length, 60); isReply(o, d, raw.subarray(0, 42)); },
  },
  {
    name: 'ARP probe (sender 0.0.0.0) for an announced address: answered, so the prober sees it in use', prog: 'xdp',
    setup: (d) => announced(d), pkt: request(LB_IP, { spa: '0.0.0.0' }), verdict: 'TX',
    check: (_o, _d, raw) => assert.equal(parseArp(raw)?.tpa, '0.0.0.0'),
  },
  {
    name: 'ARP request for an address not announced: passed untouched', prog: 'xdp',
    setup: (d) => announced(d), pkt: request(NODE), verdict: 'PASS', unchanged: true, check: counted(0),
  },
  {
    name: 'ARP request for an announced address whose entry expired: passed untouched, counted', prog: 'xdp',
    setup: (d) => announced(d, { expires: process.hrtime.bigint() - 1_000_000n }), pkt: request(), verdict: 'PASS', unchanged: true, check: counted(0, 1),
  },
  {
    name: 'ARP request for an address announced on another device: passed untouched', prog: 'xdp',
    setup: (d) => announced(d, { ifindex: 77 }), pkt: request(), verdict: 'PASS', unchanged: true, check: counted(0),
  },
  {
    name: 'ARP request for an announced address on a device without if_macs entry: passed untouched', prog: 'xdp',
    setup: (d) => announced(d, { mac: false }), pkt: request(), verdict: 'PASS', unchanged: true, check: counted(0),
  },
  {
    name: 'gratuitous ARP from another host for an announced address: passed untouched', prog: 'xdp',
    setup: (d) => announced(d), pkt: gratuitousArp(MAC_A, LB_IP), verdict: 'PASS', unchanged: true, check: counted(0),
  },
  {
    name: 'ARP reply about an announced address: passed untouched', prog: 'xdp',
    setup: (d) => announced(d), pkt: request(LB_IP, { op: ARP_OP.reply }), verdict: 'PASS', unchanged: true, check: counted(0),
  },
  {
    name: 'announced LB address: its TCP traffic is still load balanced', prog: 'xdp',
    setup: (d) => { announced(d); lbLocal(d); }, pkt: tcp(), verdict: 'PASS', out: { dst: '10.244.1.5', dport: 8080 }, check: counted(0),
  },
];

const LB6 = '2001:db8:51::10';
const CLIENT6 = '2001:db8:113::7';
const OTHER6 = '2001:db8:51::11';
/** ff02::1:ffXX:XXXX for the low 24 bits of addr */
const solicitedNode = (addr: string): string => {
  const b = C.encodeAddr(addr);
  return `ff02::1:ff${b[13].toString(16).padStart(2, '0')}:${b.readUInt16BE(14).toString(16)}`;
};
/** The client solicits `target`; from :: (DAD) it has no address and sends no link-layer option. */
const solicit = (target = LB6, o: { src?: string; hopLimit?: number; code?: number; type?: number } = {}): Buffer => {
  const src = o.src ?? CLIENT6;
  return ndFrame({
    dstMac: '33:33:ff:00:00:10', srcMac: MAC_A, src, dst: solicitedNode(target), hopLimit: o.hopLimit ?? 255,
    type: o.type ?? ND_TYPE.solicitation, code: o.code ?? 0, flags: 0, target, lladdr: src === '::' ? null : MAC_A,
  });
};

function announced6(d: Datapath, o: { ifindex?: number; expires?: bigint } = {}): void {
  d.ifMac(LO, DEV_MAC);
  d.announce(LB6, o.ifindex ?? LO, o.expires, C.ANNOUNCE_FLAG.ndp);
}
const ndpCounted = (replies: number, expired = 0) => counted(0, 0, { replies, expired });

/** The advertisement: "LB6 is at DEV_MAC", from LB6, hop limit 255, checksum right, counted. */
const isAdvert = (to: { mac: string; addr: string; flags: number }) => (o: unknown, d: Datapath, raw: Buffer): void => {
  assert.equal(raw.length, 86, 'Ethernet + IPv6 + NA with one option');
  assert.deepEqual(parseNd(raw), {
    dstMac: to.mac, srcMac: DEV_MAC, src: LB6, dst: to.addr, hopLimit: 255, type: ND_TYPE.advertisement, code: 0,
    flags: to.flags, target: LB6, lladdr: DEV_MAC, checksumOk: true,
  });
  ndpCounted(1)(o, d);
};

export const announceNdpXdpRows: Row[] = [
  {
    name: 'neighbour solicitation for an announced IPv6 LB address: advertised in place (Solicited, Override, device MAC), counted', prog: 'xdp',
    setup: (d) => announced6(d), pkt: solicit(), verdict: 'TX',
    check: isAdvert({ mac: MAC_A, addr: CLIENT6, flags: NA_FLAG.solicited | NA_FLAG.override }),
  },
  {
    name: 'neighbour solicitation from :: (DAD) for an announced IPv6 address: advertised to all nodes, Override only, frame grown by the option', prog: 'xdp',
    setup: (d) => announced6(d), pkt: solicit(LB6, { src: '::' }), verdict: 'TX',
    check: isAdvert({ mac: ALL_NODES_MAC, addr: ALL_NODES, flags: NA_FLAG.override }),
  },
  {
    name: 'neighbour solicitation for an IPv6 address not announced: passed untouched', prog: 'xdp',
    setup: (d) => announced6(d), pkt: solicit(OTHER6), verdict: 'PASS', unchanged: true, check: ndpCounted(0),
  },
  {
    name: 'neighbour solicitation for an announced IPv6 address whose entry expired: passed untouched, counted', prog: 'xdp',
    setup: (d) => announced6(d, { expires: process.hrtime.bigint() - 1_000_000n }), pkt: solicit(), verdict: 'PASS', unchanged: true, check: ndpCounted(0, 1),
  },
  {
    name: 'neighbour solicitation for an IPv6 address announced on another device: passed untouched', prog: 'xdp',
    setup: (d) => announced6(d, { ifindex: 77 }), pkt: solicit(), verdict: 'PASS', unchanged: true, check: ndpCounted(0),
  },
  {
    name: 'neighbour solicitation with hop limit 254 (forwarded, RFC 4861 7.1.1): passed untouched', prog: 'xdp',
    setup: (d) => announced6(d), pkt: solicit(LB6, { hopLimit: 254 }), verdict: 'PASS', unchanged: true, check: ndpCounted(0),
  },
  {
    name: 'neighbour solicitation with ICMPv6 code 1: passed untouched', prog: 'xdp',
    setup: (d) => announced6(d), pkt: solicit(LB6, { code: 1 }), verdict: 'PASS', unchanged: true, check: ndpCounted(0),
  },
  {
    name: 'neighbour advertisement from another host for an announced IPv6 address: passed untouched', prog: 'xdp',
    setup: (d) => announced6(d), pkt: unsolicitedNa(MAC_A, LB6), verdict: 'PASS', unchanged: true, check: ndpCounted(0),
  },
  {
    name: 'ARP request for an address announced for NDP only: passed untouched', prog: 'xdp',
    setup: (d) => { d.ifMac(LO, DEV_MAC); d.announce(LB_IP, LO, undefined, C.ANNOUNCE_FLAG.ndp); }, pkt: request(), verdict: 'PASS', unchanged: true, check: counted(0),
  },
];

export const announceTcDevRows: Row[] = announceXdpRows.map((r) => asTcDev(r));
export const announceNdpTcDevRows: Row[] = announceNdpXdpRows.map((r) => asTcDev(r));
