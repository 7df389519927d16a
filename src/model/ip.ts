// Address parsing for the model, both families: strict IPv4 dotted quads and RFC 4291 IPv6
// text, each with one canonical form (RFC 5952 for IPv6) so that equal addresses compare equal
// as strings everywhere (frontend ids, map keys read back, the API).

export type Family = 4 | 6;
export interface Addr {
  family: Family;
  n: bigint;
}

/**
 * IPv4 dotted quad to an unsigned 32-bit number; null unless canonical (no leading zeros).
 * A loop over char codes: this parses every endpoint of every Service (a regex and a split
 * per address cost a cold start of 10,000 Services x 10 endpoints over a second).
 */
export function ipv4ToNumber(s: string): number | null {
  const len = s.length;
  if (len < 7 || len > 15) return null;
  let n = 0;
  let parts = 0;
  let i = 0;
  while (parts < 4) {
    const start = i;
    let v = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      v = v * 10 + c;
    }
    const digits = i - start;
    if (digits === 0 || digits > 3 || v > 255 || (digits > 1 && s.charCodeAt(start) === 48)) return null;
    n = n * 256 + v;
    parts++;
    if (parts < 4) {
      if (s.charCodeAt(i) !== 46) return null; // '.'
      i++;
    }
  }
  return i === len ? n : null;
}

export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function isIPv4(s: string): boolean {
  return ipv4ToNumber(s) !== null;
}

/** RFC 4291 text form, including an embedded IPv4 tail; no zone ids. */
export function isIPv6(s: string): boolean {
  if (typeof s !== 'string' || !s.includes(':') || s.includes(':::')) return false;
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

/** Parses an IPv4 or IPv6 address to a number; null unless valid. */
export function parseAddr(s: string): Addr | null {
  if (typeof s !== 'string') return null;
  const v4 = ipv4ToNumber(s);
  if (v4 !== null) return { family: 4, n: BigInt(v4) };
  if (!isIPv6(s)) return null;
  let text = s;
  const dot = text.lastIndexOf(':');
  const tail = text.slice(dot + 1);
  if (tail.includes('.')) {
    const n = ipv4ToNumber(tail)!;
    text = `${text.slice(0, dot + 1)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = rest ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return { family: 6, n: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

/** The canonical text form (RFC 5952 for IPv6). */
export function formatAddr(a: Addr): string {
  if (a.family === 4) return numberToIpv4(Number(a.n));
  const g = Array.from({ length: 8 }, (_, i) => Number((a.n >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** 4, 6, or null when s is no address. */
export function ipFamily(s: string): Family | null {
  if (typeof s === 'string' && ipv4ToNumber(s) !== null) return 4;
  return parseAddr(s)?.family ?? null;
}

/** The canonical form of an address (IPv6 compressed, lower case); null when s is no address. */
export function canonicalIP(s: string): string | null {
  // ipv4ToNumber accepts only the canonical dotted quad: such a string is its own form.
  if (typeof s === 'string' && ipv4ToNumber(s) !== null) return s;
  const a = parseAddr(s);
  return a ? formatAddr(a) : null;
}

/** "IPv4" / "IPv6", the names Kubernetes' ipFamilies use. */
export const FAMILY_NAME: Record<Family, 'IPv4' | 'IPv6'> = { 4: 'IPv4', 6: 'IPv6' };

export const familyBits = (f: Family): number => (f === 4 ? 32 : 128);

export type CidrParse = { ok: true; family: Family; cidr: string } | { ok: false };

/**
 * Parses a CIDR like Go's net.ParseCIDR (which kube-proxy uses): host bits may be set and are
 * masked off, surrounding whitespace is trimmed. Comes back normalized ("10.1.2.0/24",
 * "2001:db8::/32").
 */
export function parseCidr(input: string): CidrParse {
  const s = input.trim();
  const slash = s.indexOf('/');
  if (slash < 0) return { ok: false };
  const a = parseAddr(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (!a || !/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return { ok: false };
  const len = Number(lenText);
  const bits = familyBits(a.family);
  if (len > bits) return { ok: false };
  const host = (1n << BigInt(bits - len)) - 1n;
  return { ok: true, family: a.family, cidr: `${formatAddr({ family: a.family, n: a.n & ~host })}/${len}` };
}

/** Whether an address lies inside a CIDR of its family (a malformed one holds nothing). */
export function inCidr(addr: string, cidr: string): boolean {
  return cidrMatcher([cidr])(addr) === 0;
}

/**
 * The CIDRs parsed once; the function returns the index of the first that holds an address,
 * or -1 (also for a malformed address; a malformed CIDR holds nothing). IPv4 without BigInt:
 * every endpoint of every Service is checked against the special ranges.
 */
export function cidrMatcher(cidrs: readonly string[]): (addr: string) => number {
  const ranges = cidrs.map((c) => {
    const p = parseCidr(c);
    if (!p.ok) return null;
    const slash = p.cidr.indexOf('/');
    const len = Number(p.cidr.slice(slash + 1));
    const n = parseAddr(p.cidr.slice(0, slash))!.n;
    const shift = familyBits(p.family) - len;
    // IPv4: the network number divided by 2^shift, compared with the address's the same way.
    return { family: p.family, net: n >> BigInt(shift), shift, net4: Math.floor(Number(n) / 2 ** shift) };
  });
  return (addr) => {
    const v4 = typeof addr === 'string' ? ipv4ToNumber(addr) : null;
    const a = v4 === null ? parseAddr(addr) : null;
    if (v4 === null && a === null) return -1;
    return ranges.findIndex((r) => r !== null && (v4 !== null
      ? r.family === 4 && Math.floor(v4 / 2 ** r.shift) === r.net4
      : r.family === a!.family && a!.n >> BigInt(r.shift) === r.net));
  };
}

/** Orders addresses numerically, IPv4 before IPv6 (string order puts 10.0.0.10 before 10.0.0.9). */
export function compareAddr(a: string, b: string): number {
  // IPv4 without BigInt: this sorts every Service's endpoints.
  const [u, v] = [ipv4ToNumber(a), ipv4ToNumber(b)];
  if (u !== null && v !== null) return u - v;
  const x = parseAddr(a);
  const y = parseAddr(b);
  if (!x || !y) return x ? -1 : y ? 1 : 0;
  if (x.family !== y.family) return x.family - y.family;
  return x.n < y.n ? -1 : x.n > y.n ? 1 : 0;
}

/** An address as it stands before ":port": IPv6 in brackets. */
export function hostPort(addr: string, port: number | string): string {
  return `${addr.includes(':') ? `[${addr}]` : addr}:${port}`;
}

/** A frontend's address:port as shown and keyed: IPv6 in brackets; the NodePort wildcard
 *  (addr null) is "*" for IPv4 and "[::]" for IPv6. */
export function frontendText(addr: string | null, port: number, family: Family = 4): string {
  return addr === null ? (family === 6 ? `[::]:${port}` : `*:${port}`) : hostPort(addr, port);
}
