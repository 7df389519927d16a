// Address parsing for the model: strict IPv4 (what the datapath programs today) and just
// enough IPv6 recognition to tell "valid but not supported yet" from "invalid".

/** IPv4 dotted quad to an unsigned 32-bit number; null unless canonical (no leading zeros). */
export function ipv4ToNumber(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n;
}

export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function isIPv4(s: string): boolean {
  return ipv4ToNumber(s) !== null;
}

/** RFC 4291 text form, including an embedded IPv4 tail; no zone ids. */
export function isIPv6(s: string): boolean {
  if (!s.includes(':') || s.includes(':::')) return false;
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const groups = (h: string): string[] | null => {
    if (h === '') return [];
    const g = h.split(':');
    const last = g[g.length - 1];
    if (last.includes('.')) {
      if (!isIPv4(last)) return null;
      g.splice(g.length - 1, 1, '0', '0');
    }
    return g.every((x) => /^[0-9a-fA-F]{1,4}$/.test(x)) ? g : null;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return false;
  const n = head.length + tail.length;
  return halves.length === 2 ? n <= 7 : n === 8;
}

export type CidrParse =
  | { ok: true; family: 4; cidr: string }
  | { ok: true; family: 6 }
  | { ok: false };

/**
 * Parses a CIDR like Go's net.ParseCIDR (which kube-proxy uses): host bits may be set and are
 * masked off, surrounding whitespace is trimmed. IPv4 comes back normalized ("10.1.2.0/24").
 */
export function parseCidr(input: string): CidrParse {
  const s = input.trim();
  const slash = s.indexOf('/');
  if (slash < 0) return { ok: false };
  const addr = s.slice(0, slash);
  const lenText = s.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return { ok: false };
  const len = Number(lenText);
  const n = ipv4ToNumber(addr);
  if (n !== null) {
    if (len > 32) return { ok: false };
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    return { ok: true, family: 4, cidr: `${numberToIpv4((n & mask) >>> 0)}/${len}` };
  }
  if (isIPv6(addr) && len <= 128) return { ok: true, family: 6 };
  return { ok: false };
}

export interface Ipv4Net { net: number; mask: number }

/** An IPv4 CIDR as a network number and mask; null unless parseCidr reads it as IPv4. */
export function ipv4Net(cidr: string): Ipv4Net | null {
  const p = parseCidr(cidr);
  if (!p.ok || p.family !== 4) return null;
  const [net, len] = p.cidr.split('/');
  const bits = Number(len);
  return { net: ipv4ToNumber(net)!, mask: bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0 };
}

/** The IPv4 address (as a number) lies inside the network. */
export function inIpv4Net(addr: number, n: Ipv4Net): boolean {
  return ((addr & n.mask) >>> 0) === n.net;
}

/** Whether an IPv4 address lies inside a CIDR (an IPv6 or malformed CIDR holds no IPv4 address). */
export function inCidr4(addr: string, cidr: string): boolean {
  const net = ipv4Net(cidr);
  const n = ipv4ToNumber(addr);
  return net !== null && n !== null && inIpv4Net(n, net);
}

/** Orders IPv4 addresses numerically (string order puts 10.0.0.10 before 10.0.0.9). */
export function compareIpv4(a: string, b: string): number {
  return (ipv4ToNumber(a) ?? 0) - (ipv4ToNumber(b) ?? 0);
}
