// IPv6 neighbour discovery frames (RFC 4861) over Ethernet: the unsolicited neighbour
// advertisement the agent sends when it takes an address over (bpf/include/announce.h answers
// solicitations in the datapath), the solicitations tests send, and the parser tests read
// advertisements with.
import { decodeAddr, encodeAddr } from './codecs.js';
import { gratuitousArp, mac, macString } from './arp.js';
import { sendFrame } from './bpf.js';

export const ETH_P_IPV6 = 0x86dd;
export const ND_TYPE = { solicitation: 135, advertisement: 136 } as const;
export const NA_FLAG = { router: 0x80000000, solicited: 0x40000000, override: 0x20000000 } as const;
export const ALL_NODES = 'ff02::1';
export const ALL_NODES_MAC = '33:33:00:00:00:01';
const ICMPV6 = 58;
/** link-layer address option types: source (in a solicitation), target (in an advertisement) */
const OPT_LLADDR = { [ND_TYPE.solicitation]: 1, [ND_TYPE.advertisement]: 2 } as const;
/** Ethernet + IPv6 header */
const ICMP_OFF = 54;

export interface Nd {
  dstMac: string; srcMac: string;
  src: string; dst: string; hopLimit: number;
  type: number; code: number;
  /** the advertisement's R/S/O bits (NA_FLAG); 0 in a solicitation */
  flags: number;
  target: string;
  /** the link-layer address option (source in a solicitation, target in an advertisement), if any */
  lladdr: string | null;
}

/** Internet checksum (RFC 1071) of the ICMPv6 message with its pseudo header. */
function icmp6Sum(src: Buffer, dst: Buffer, msg: Buffer): number {
  const ph = Buffer.alloc(40);
  src.copy(ph, 0);
  dst.copy(ph, 16);
  ph.writeUInt32BE(msg.length, 32);
  ph[39] = ICMPV6;
  let s = 0;
  for (const b of [ph, msg]) for (let i = 0; i < b.length; i += 2) s += (b[i] << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

const v6 = (a: string): Buffer => {
  if (!a.includes(':')) throw new RangeError(`not an IPv6 address: '${a}'`);
  return encodeAddr(a);
};

export function ndFrame(n: Nd): Buffer {
  const msg = Buffer.alloc(24 + (n.lladdr === null ? 0 : 8));
  msg[0] = n.type;
  msg[1] = n.code;
  msg.writeUInt32BE(n.flags >>> 0, 4);
  v6(n.target).copy(msg, 8);
  if (n.lladdr !== null) {
    msg[24] = OPT_LLADDR[n.type as keyof typeof OPT_LLADDR] ?? 1;
    msg[25] = 1;
    mac(n.lladdr).copy(msg, 26);
  }
  const src = v6(n.src);
  const dst = v6(n.dst);
  msg.writeUInt16BE(icmp6Sum(src, dst, msg), 2);
  const b = Buffer.alloc(ICMP_OFF);
  mac(n.dstMac).copy(b, 0);
  mac(n.srcMac).copy(b, 6);
  b.writeUInt16BE(ETH_P_IPV6, 12);
  b[14] = 0x60;
  b.writeUInt16BE(msg.length, 18);
  b[20] = ICMPV6;
  b[21] = n.hopLimit;
  src.copy(b, 22);
  dst.copy(b, 38);
  return Buffer.concat([b, msg]);
}

/** The neighbour solicitation or advertisement in an Ethernet frame (with whether its ICMPv6
 *  checksum holds), or null when it is none. Only the first option is read. */
export function parseNd(b: Buffer): (Nd & { checksumOk: boolean }) | null {
  if (b.length < ICMP_OFF + 24 || b.readUInt16BE(12) !== ETH_P_IPV6 || b[20] !== ICMPV6) return null;
  if (b[ICMP_OFF] !== ND_TYPE.solicitation && b[ICMP_OFF] !== ND_TYPE.advertisement) return null;
  const msg = b.subarray(ICMP_OFF, ICMP_OFF + b.readUInt16BE(18));
  const opt = msg.length >= 32 && msg[25] === 1 ? macString(msg.subarray(26, 32)) : null;
  const sum = Buffer.from(msg);
  sum.writeUInt16BE(0, 2);
  return {
    dstMac: macString(b.subarray(0, 6)), srcMac: macString(b.subarray(6, 12)),
    src: decodeAddr(b.subarray(22, 38)) ?? '::', dst: decodeAddr(b.subarray(38, 54)) ?? '::', hopLimit: b[21],
    type: msg[0], code: msg[1], flags: msg.readUInt32BE(4), target: decodeAddr(msg.subarray(8, 24)) ?? '::', lladdr: opt,
    checksumOk: icmp6Sum(b.subarray(22, 38), b.subarray(38, 54), sum) === msg.readUInt16BE(2),
  };
}

/** An unsolicited neighbour advertisement (RFC 4861 7.2.6): to all nodes, Override set, so
 *  neighbours replace the MAC they cached for the address. */
export function unsolicitedNa(srcMac: string, addr: string): Buffer {
  return ndFrame({
    dstMac: ALL_NODES_MAC, srcMac, src: addr, dst: ALL_NODES, hopLimit: 255,
    type: ND_TYPE.advertisement, code: 0, flags: NA_FLAG.override, target: addr, lladdr: srcMac,
  });
}

/** What neighbours learn a takeover of addr from: a gratuitous ARP (IPv4) or an unsolicited
 *  neighbour advertisement (IPv6). */
export function takeoverFrame(srcMac: string, addr: string): Buffer {
  return addr.includes(':') ? unsolicitedNa(srcMac, addr) : gratuitousArp(srcMac, addr);
}

/** Sends it out of the interface (throws the addon's error: EPERM without CAP_NET_RAW). */
export function sendTakeover(ifindex: number, srcMac: string, addr: string): void {
  sendFrame(ifindex, takeoverFrame(srcMac, addr));
}
