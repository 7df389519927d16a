// LoadBalancer address allocation (issue 17): pools + Services -> one address per IP family
// for each Service of type LoadBalancer that xlb serves. A pure function of its inputs, so
// every agent computes the same answer; stability across restarts comes from the inputs too:
// an address already in a Service's status.loadBalancer.ingress is a request to keep it.
//
// Order of claims, each step in Service order (creation time, then namespace/name):
//   1. addresses a Service holds now (its ingress; a requested address that is also held);
//   2. requested addresses (xlb.io/load-balancer-ips, else spec.loadBalancerIP);
//   3. everything else, the lowest free address of the first matching pool (by pool name).
// So a Service holding an address never loses it to a newer request, and a held address
// that is no longer valid (pool shrunk, selector changed) is simply re-assigned.
import type { V1Service } from '@kubernetes/client-node';
import { serviceFamilies } from './families.js';
import { FAMILY_NAME, formatAddr, parseAddr, type Addr, type Family } from './ip.js';

export { formatAddr, parseAddr };

export const LB_CLASS = 'xlb.io/lb';
export const ANNOTATION_LB_IPS = 'xlb.io/load-balancer-ips';
export const ANNOTATION_SHARING_KEY = 'xlb.io/sharing-key';
export const POOL_API_VERSION = 'xlb.io/v1alpha1';
export const POOL_KIND = 'LoadBalancerIPPool';

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

/** A LoadBalancerIPPool object as stored (plain JSON). */
export interface LoadBalancerIPPool {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; creationTimestamp?: unknown; resourceVersion?: string };
  spec?: {
    addresses?: string[];
    serviceSelector?: LabelSelector;
    namespaces?: string[];
    autoAssign?: boolean;
    avoidBuggyIPs?: boolean;
    disabled?: boolean;
  };
  status?: PoolStatus;
}

export interface PoolStatus {
  used: number;
  /** decimal: an IPv6 pool holds more than a number can count */
  free: string;
  conflicts: string[];
}

export interface Assignment {
  /** one per IP family the Service asks for and got, in ipFamilies order */
  addresses: string[];
  /** pool per address */
  pools: string[];
  /** why a family got no address; absent when every family got one */
  reason?: string;
}

export interface Allocation {
  /** key namespace/name; only Services of type LoadBalancer with xlb's class (or none) */
  services: Map<string, Assignment>;
  /** key pool name */
  pools: Map<string, PoolStatus>;
}

interface Range {
  family: Family;
  first: bigint;
  last: bigint;
}
interface Pool {
  name: string;
  ranges: Range[];
  selector?: LabelSelector;
  namespaces?: string[];
  autoAssign: boolean;
  avoidBuggy: boolean;
  /** disabled, or unusable because of a conflict: keeps what it holds, assigns nothing new */
  frozen: boolean;
  conflicts: string[];
}
interface Svc {
  key: string;
  namespace: string;
  labels: Record<string, string>;
  families: Family[];
  sharingKey: string;
  ports: Set<string>;
  /** per family: requested (hard) address, or an error with the request */
  requested: Map<Family, Addr | string>;
  requestError?: string;
  held: Map<Family, Addr>;
}
interface Held {
  a: Addr;
  /** the pool it was taken from */
  pool: Pool;
  by: Svc[];
}

/** A pool entry (CIDR, FIRST-LAST or one address) to a range, or an error. */
export function parseRange(entry: string): Range | string {
  const s = entry.trim();
  const slash = s.indexOf('/');
  if (slash >= 0) {
    const a = parseAddr(s.slice(0, slash));
    const lenText = s.slice(slash + 1);
    const bits = a?.family === 4 ? 32 : 128;
    if (!a || !/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > bits) return `${JSON.stringify(entry)} is not a CIDR`;
    const host = (1n << BigInt(bits - Number(lenText))) - 1n;
    return { family: a.family, first: a.n & ~host, last: (a.n & ~host) | host };
  }
  const dash = s.indexOf('-');
  const first = parseAddr(dash >= 0 ? s.slice(0, dash).trim() : s);
  const last = dash >= 0 ? parseAddr(s.slice(dash + 1).trim()) : first;
  if (!first || !last) return `${JSON.stringify(entry)} is not a CIDR, an address or a FIRST-LAST range`;
  if (first.family !== last.family) return `${JSON.stringify(entry)} mixes IPv4 and IPv6`;
  if (first.n > last.n) return `${JSON.stringify(entry)}: first address after the last`;
  return { family: first.family, first: first.n, last: last.n };
}

function buggy(a: Addr, pool: Pool): boolean {
  return pool.avoidBuggy && a.family === 4 && (a.n % 256n === 0n || a.n % 256n === 255n);
}

/** Addresses ending in .0 or .255 in [first, last] (IPv4). */
function buggyCount(r: Range): bigint {
  if (r.family !== 4) return 0n;
  const upTo = (x: bigint) => (x < 0n ? 0n : x / 256n + 1n + (x >= 255n ? (x - 255n) / 256n + 1n : 0n));
  return upTo(r.last) - upTo(r.first - 1n);
}

export function selectorMatches(sel: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!sel) return true;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key]!);
    const ok = e.operator === 'In' ? inValues
      : e.operator === 'NotIn' ? !inValues
        : e.operator === 'Exists' ? has
          : e.operator === 'DoesNotExist' ? !has
            : false;
    if (!ok) return false;
  }
  return true;
}

/** Whether xlb assigns this Service an address (type LoadBalancer, no other class). */
export function wantsAddress(svc: V1Service): boolean {
  const cls = svc.spec?.loadBalancerClass;
  return svc.spec?.type === 'LoadBalancer' && (cls === undefined || cls === null || cls === LB_CLASS);
}

function readPools(raw: readonly LoadBalancerIPPool[]): Pool[] {
  const pools: Pool[] = raw
    .map((p) => {
      const conflicts: string[] = [];
      const ranges: Range[] = [];
      for (const e of p.spec?.addresses ?? []) {
        const r = typeof e === 'string' ? parseRange(e) : `${JSON.stringify(e)} is not a string`;
        if (typeof r === 'string') conflicts.push(r);
        else ranges.push(r);
      }
      return {
        name: p.metadata?.name ?? '',
        ranges,
        selector: p.spec?.serviceSelector,
        namespaces: p.spec?.namespaces?.length ? p.spec.namespaces : undefined,
        autoAssign: p.spec?.autoAssign !== false,
        avoidBuggy: p.spec?.avoidBuggyIPs === true,
        frozen: p.spec?.disabled === true,
        conflicts,
      };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // Overlapping pools: the first by name keeps working, the later one is frozen.
  for (let i = 0; i < pools.length; i++) {
    for (let j = 0; j < i; j++) {
      const clash = pools[i]!.ranges.find((r) => pools[j]!.ranges.some((o) => o.family === r.family && o.first <= r.last && r.first <= o.last));
      if (clash) {
        pools[i]!.conflicts.push(`overlaps pool ${pools[j]!.name}: assigns no new addresses`);
        pools[i]!.frozen = true;
        pools[j]!.conflicts.push(`pool ${pools[i]!.name} overlaps this one`);
      }
    }
  }
  return pools;
}

function creationMs(svc: V1Service): number {
  const t = svc.metadata?.creationTimestamp as unknown;
  const ms = t === undefined || t === null ? NaN : new Date(t as string).getTime();
  return Number.isNaN(ms) ? 0 : ms;
}

function readService(svc: V1Service, key: string): Svc {
  const spec = svc.spec!;
  const families = serviceFamilies(spec);
  const requested = new Map<Family, Addr | string>();
  let requestError: string | undefined;
  const ann = svc.metadata?.annotations?.[ANNOTATION_LB_IPS];
  const asked = ann !== undefined ? ann.split(',').map((x) => x.trim()).filter(Boolean) : spec.loadBalancerIP ? [spec.loadBalancerIP] : [];
  const source = ann !== undefined ? ANNOTATION_LB_IPS : 'spec.loadBalancerIP';
  for (const text of asked) {
    const a = parseAddr(text);
    if (!a) requestError ??= `${source}: ${JSON.stringify(text)} is not an IP address`;
    else if (!families.includes(a.family)) requestError ??= `${source}: ${text} is ${FAMILY_NAME[a.family]}, not one of the Service's ipFamilies`;
    else if (requested.has(a.family)) requestError ??= `${source}: more than one ${FAMILY_NAME[a.family]} address`;
    else requested.set(a.family, a);
  }
  if (asked.length && !requestError) {
    for (const f of families) if (!requested.has(f)) requested.set(f, `${source} names no ${FAMILY_NAME[f]} address`);
  }
  const held = new Map<Family, Addr>();
  for (const ing of svc.status?.loadBalancer?.ingress ?? []) {
    const a = ing.ip ? parseAddr(ing.ip) : null;
    if (a && families.includes(a.family) && !held.has(a.family)) held.set(a.family, a);
  }
  return {
    key,
    namespace: svc.metadata?.namespace || 'default',
    labels: svc.metadata?.labels ?? {},
    families,
    sharingKey: svc.metadata?.annotations?.[ANNOTATION_SHARING_KEY] ?? '',
    ports: new Set((spec.ports ?? []).map((p) => `${p.protocol ?? 'TCP'}/${p.port}`)),
    requested,
    requestError,
    held,
  };
}

/**
 * Assigns addresses. `services` may hold any Services (others are ignored); keys are
 * namespace/name. The result depends only on the arguments, never on their order.
 */
export function allocate(services: readonly V1Service[], rawPools: readonly LoadBalancerIPPool[]): Allocation {
  const pools = readPools(rawPools);
  const svcs = services
    .filter(wantsAddress)
    .map((s) => ({ s, key: `${s.metadata?.namespace || 'default'}/${s.metadata?.name ?? ''}`, t: creationMs(s) }))
    .sort((a, b) => a.t - b.t || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map(({ s, key }) => readService(s, key));

  const holders = new Map<string, Held>(); // "family/n" -> the Services on that address
  const id = (a: Addr) => `${a.family}/${a.n}`;
  const got = new Map<string, Map<Family, { a: Addr; pool: string }>>();
  const reasons = new Map<string, string[]>();
  const fail = (s: Svc, why: string) => reasons.set(s.key, [...(reasons.get(s.key) ?? []), why]);
  const matching = (s: Svc, f: Family) => pools.filter((p) =>
    p.ranges.some((r) => r.family === f) && selectorMatches(p.selector, s.labels) && (!p.namespaces || p.namespaces.includes(s.namespace)));

  /** Why `s` cannot have `a` now, or null (then it may take it). */
  const blocker = (s: Svc, a: Addr): string | null => {
    for (const h of holders.get(id(a))?.by ?? []) {
      if (!s.sharingKey || h.sharingKey !== s.sharingKey) return `${formatAddr(a)} is in use by ${h.key}`;
      const clash = [...s.ports].find((p) => h.ports.has(p));
      if (clash) return `${formatAddr(a)} is shared with ${h.key}, which uses port ${clash} too`;
    }
    return null;
  };
  const take = (s: Svc, a: Addr, pool: Pool) => {
    const h = holders.get(id(a)) ?? holders.set(id(a), { a, pool, by: [] }).get(id(a))!;
    h.by.push(s);
    if (!got.has(s.key)) got.set(s.key, new Map());
    got.get(s.key)!.set(a.family, { a, pool: pool.name });
  };
  const poolOf = (s: Svc, a: Addr) => matching(s, a.family).find((p) => p.ranges.some((r) => r.family === a.family && r.first <= a.n && a.n <= r.last));

  // 1. Held addresses that are still valid.
  for (const s of svcs) {
    for (const [f, a] of s.held) {
      const req = s.requested.get(f);
      if (s.requestError || (req !== undefined && (typeof req === 'string' || req.n !== a.n))) continue;
      const pool = poolOf(s, a);
      if (pool && !buggy(a, pool) && blocker(s, a) === null) take(s, a, pool);
    }
  }
  // 2. Requested addresses.
  for (const s of svcs) {
    if (s.requestError) {
      fail(s, s.requestError);
      continue;
    }
    for (const [f, a] of s.requested) {
      if (got.get(s.key)?.has(f)) continue;
      if (typeof a === 'string') {
        fail(s, a);
        continue;
      }
      const pool = poolOf(s, a);
      const why = !pool ? `requested ${formatAddr(a)} is in no pool that selects this Service`
        : pool.frozen ? `requested ${formatAddr(a)}: pool ${pool.name} assigns no new addresses (${pool.conflicts.length ? 'conflict' : 'disabled'})`
          : buggy(a, pool) ? `requested ${formatAddr(a)}: pool ${pool.name} avoids .0 and .255`
            : blocker(s, a);
      if (why) fail(s, why.startsWith('requested') ? why : `requested ${why}`);
      else take(s, a, pool!);
    }
  }
  // 3. Everything else from the pools. Nothing is freed in this step, so the lowest free
  // address of a range only grows: each scan resumes where the last one stopped.
  const cursors = new Map<Range, bigint>();
  for (const s of svcs) {
    if (s.requestError) continue;
    for (const f of s.families) {
      if (got.get(s.key)?.has(f) || s.requested.has(f)) continue;
      const cands = matching(s, f).filter((p) => p.autoAssign && !p.frozen);
      if (!cands.length) {
        fail(s, `no ${FAMILY_NAME[f]} pool assigns addresses to this Service`);
        continue;
      }
      const found = findAddress(s, f, cands, holders, blocker, cursors);
      if (found) take(s, found.a, found.pool);
      else fail(s, `no free ${FAMILY_NAME[f]} address in pool${cands.length > 1 ? 's' : ''} ${cands.map((p) => p.name).join(', ')}`);
    }
  }

  const out: Allocation = { services: new Map(), pools: new Map() };
  for (const s of svcs) {
    const mine = s.families.map((f) => got.get(s.key)?.get(f)).filter((x) => x !== undefined);
    const why = reasons.get(s.key);
    out.services.set(s.key, {
      addresses: mine.map((x) => formatAddr(x.a)),
      pools: mine.map((x) => x.pool),
      ...(why ? { reason: why.join('; ') } : {}),
    });
  }
  for (const p of pools) {
    let used = 0;
    for (const h of holders.values()) if (h.pool === p) used++;
    const size = p.ranges.reduce((acc, r) => acc + (r.last - r.first + 1n) - (p.avoidBuggy ? buggyCount(r) : 0n), 0n);
    out.pools.set(p.name, { used, free: String(size - BigInt(used)), conflicts: p.conflicts });
  }
  return out;
}

/** An address to share (same sharing key, no port clash), else the lowest free one. */
function findAddress(
  s: Svc, f: Family, pools: Pool[], holders: Map<string, Held>, blocker: (s: Svc, a: Addr) => string | null,
  cursors: Map<Range, bigint>,
): { a: Addr; pool: Pool } | null {
  if (s.sharingKey) {
    const shared = [...holders.values()]
      .filter((h) => h.a.family === f && pools.includes(h.pool) && h.by[0]!.sharingKey === s.sharingKey && blocker(s, h.a) === null)
      .sort((x, y) => (x.a.n < y.a.n ? -1 : 1));
    if (shared[0]) return shared[0];
  }
  for (const pool of pools) {
    for (const r of pool.ranges.filter((x) => x.family === f).sort((x, y) => (x.first < y.first ? -1 : 1))) {
      // Each step passes a held or an avoided address, so this ends after at most that many.
      for (let n = cursors.get(r) ?? r.first; n <= r.last; n++) {
        const a: Addr = { family: f, n };
        if (!buggy(a, pool) && !holders.has(`${f}/${n}`)) {
          cursors.set(r, n);
          return { a, pool };
        }
      }
      cursors.set(r, r.last + 1n);
    }
  }
  return null;
}

/** Whether a pool's addresses include `ip` (whatever the pool's selectors and state). */
export function inAnyPool(ip: string, pools: readonly LoadBalancerIPPool[]): boolean {
  const a = parseAddr(ip);
  if (!a) return false;
  return pools.some((p) => (p.spec?.addresses ?? []).some((e) => {
    const r = typeof e === 'string' ? parseRange(e) : 'invalid';
    return typeof r !== 'string' && r.family === a.family && r.first <= a.n && a.n <= r.last;
  }));
}
