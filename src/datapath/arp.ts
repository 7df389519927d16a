// ARP frames for IPv4 over Ethernet: the gratuitous ARP the agent sends when it takes an
// IPv4 address over (ndp.ts sendTakeover) (bpf/include/announce.h answers requests in the datapath), and the parser
// tests read replies with.
import { encodeAddr } from './codecs.js';

export const ETH_P_ARP = 0x0806;
export const ARP_OP = { request: 1, reply: 2 } as const;
export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
const ZERO_MAC = '00:00:00:00:00:00';
/** Ethernet header + ARP for IPv4 */
export const ARP_FRAME_LEN = 42;

export interface Arp {
  dstMac: string; srcMac: string;
  op: number;
  /** sender / target hardware and protocol addresses */
  sha: string; spa: string; tha: string; tpa: string;
}

export function mac(m: string): Buffer {
  const parts = m.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-f]{2}$/i.test(p))) throw new RangeError(`not a MAC address: '${m}'`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}
export const macString = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
const v4 = (a: string): Buffer => encodeAddr(a).subarray(12, 16);
const v4String = (b: Buffer): string => [...b].join('.');

export function arpFrame(a: Arp): Buffer {
  const b = Buffer.alloc(ARP_FRAME_LEN);
  mac(a.dstMac).copy(b, 0);
  mac(a.srcMac).copy(b, 6);
  b.writeUInt16BE(ETH_P_ARP, 12);
  b.writeUInt16BE(1, 14); // Ethernet
  b.writeUInt16BE(0x0800, 16); // IPv4
  b[18] = 6;
  b[19] = 4;
  b.writeUInt16BE(a.op, 20);
  mac(a.sha).copy(b, 22);
  v4(a.spa).copy(b, 28);
  mac(a.tha).copy(b, 32);
  v4(a.tpa).copy(b, 38);
  return b;
}

/** The ARP packet in an Ethernet frame, or null when it is none (or not IPv4 over Ethernet). */
export function parseArp(b: Buffer): Arp | null {
  if (b.length < ARP_FRAME_LEN || b.readUInt16BE(12) !== ETH_P_ARP || b.readUInt16BE(14) !== 1 || b.readUInt16BE(16) !== 0x0800) return null;
  return {
    dstMac: macString(b.subarray(0, 6)), srcMac: macString(b.subarray(6, 12)), op: b.readUInt16BE(20),
    sha: macString(b.subarray(22, 28)), spa: v4String(b.subarray(28, 32)), tha: macString(b.subarray(32, 38)), tpa: v4String(b.subarray(38, 42)),
  };
}

/** A gratuitous ARP (a broadcast request whose sender and target are the address), as
 *  neighbours update an existing cache entry from it whatever their arp_accept says. */
export function gratuitousArp(srcMac: string, addr: string): Buffer {
  return arpFrame({ dstMac: BROADCAST_MAC, srcMac, op: ARP_OP.request, sha: srcMac, spa: addr, tha: ZERO_MAC, tpa: addr });
}
