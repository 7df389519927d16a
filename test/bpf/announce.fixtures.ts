// ARP answered by the datapath for announced LoadBalancer addresses (bpf/include/announce.h),
// for xlb_xdp and, through asTcDev, xlb_tc_dev. Test runs without a ctx arrive on lo
// (ifindex 1), whose if_macs entry is DEV_MAC.
import assert from 'node:assert/strict';
import { ARP_OP, arpFrame, BROADCAST_MAC, gratuitousArp, parseArp } from '../../src/datapath/arp.js';
import { CLIENT, LB_IP, NODE, type Datapath } from './harness.js';
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

const counted = (replies: number, expired = 0) => (_o: unknown, d: Datapath): void => {
  assert.deepEqual(d.announceStats(), { arp_replies: replies, arp_expired: expired }, 'announce counters');
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

export const announceTcDevRows: Row[] = announceXdpRows.map((r) => asTcDev(r));
