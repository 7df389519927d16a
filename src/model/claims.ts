// Which Service owns a frontend (address, port, protocol, scope) that several Services ask
// for. The API server lets only one Service have a nodePort or a ClusterIP, but objects that
// did not pass through it (a manifests folder, a stale cache) can carry two. The Service the
// API server would have kept owns it: the oldest (creationTimestamp), then namespace/name.
// The answer depends only on the objects, never on event order, so it survives restarts, and
// it moves as soon as the claims change (the owner goes away, or an older one appears).
import type { FrontendSpec, ServiceSpec } from './types.js';
import { frontendText } from './ip.js';

export interface ClaimRank {
  /** namespace/name */
  key: string;
  /** metadata.creationTimestamp in ms; null when missing or unreadable */
  created: number | null;
}

/** A Service's rank from its key and metadata.creationTimestamp (a Date, or text from YAML). */
export function claimRank(key: string, creationTimestamp: unknown): ClaimRank {
  const t = creationTimestamp instanceof Date || typeof creationTimestamp === 'string'
    ? new Date(creationTimestamp).getTime() : NaN;
  return { key, created: Number.isFinite(t) ? t : null };
}

/** Negative when `a` owns a clash with `b`: the older first, one with a timestamp before one without, then by key. */
export function compareRank(a: ClaimRank, b: ClaimRank): number {
  if (a.created !== b.created) {
    if (a.created === null) return 1;
    if (b.created === null) return -1;
    return a.created - b.created;
  }
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** The datapath identity of a frontend: two frontends with the same one cannot coexist. */
export function claimKey(f: Pick<FrontendSpec, 'addr' | 'port' | 'proto' | 'scope' | 'family'>): string {
  return [`${frontendText(f.addr, f.port, f.family)}/${f.proto}`, f.scope].join('|'); // one flat string (kept per Service)
}

function lostReason(f: FrontendSpec, owner: ClaimRank, mine: ClaimRank): string {
  const why = owner.created !== null && owner.created !== mine.created
    ? `created earlier (${new Date(owner.created).toISOString()})`
    : 'same creation time, name sorts first';
  return `${f.type} ${frontendText(f.addr, f.port, f.family)}/${f.proto} is also claimed by ${owner.key}, which owns it (${why}; `
    + 'the API server allows one Service per address and port); not programmed for this Service';
}

/** keys: the claim keys of spec's frontends, without repeats (a few: an array) */
interface Entry { rank: ClaimRank; spec: ServiceSpec; keys: string[] }

/** What every Service asks for, and who owns each frontend asked for more than once. */
export class FrontendClaims {
  private readonly bySvc = new Map<string, Entry>();
  /** claimants per frontend: almost always one, so an array (a Map each cost ~400 bytes) */
  private readonly byKey = new Map<string, ClaimRank[]>();

  /**
   * Record a Service's translated state (undefined: it asks for nothing). Returns the other
   * Services sharing a frontend whose claimants changed: their ownership may have moved.
   */
  set(rank: ClaimRank, spec: ServiceSpec | undefined): string[] {
    const old = this.bySvc.get(rank.key);
    const keys = [...new Set((spec?.frontends ?? []).map(claimKey))];
    const rankChanged = old !== undefined && compareRank(old.rank, rank) !== 0;
    const touched = new Set<string>();
    for (const k of old?.keys ?? []) {
      if (keys.includes(k) && !rankChanged) continue;
      touched.add(k);
      const m = this.byKey.get(k)!.filter((r) => r.key !== rank.key);
      if (m.length === 0) this.byKey.delete(k); else this.byKey.set(k, m);
    }
    for (const k of keys) {
      if (old?.keys.includes(k) && !rankChanged) continue;
      touched.add(k);
      const m = (this.byKey.get(k) ?? []).filter((r) => r.key !== rank.key);
      m.push(rank);
      this.byKey.set(k, m);
    }
    if (spec) this.bySvc.set(rank.key, { rank, spec, keys }); else this.bySvc.delete(rank.key);
    const rivals = new Set<string>();
    for (const k of touched) for (const other of this.byKey.get(k) ?? []) if (other.key !== rank.key) rivals.add(other.key);
    return [...rivals];
  }

  /** The Service that owns this frontend, if any Service asks for it. */
  owner(f: Pick<FrontendSpec, 'addr' | 'port' | 'proto' | 'scope'>): ClaimRank | undefined {
    let best: ClaimRank | undefined;
    for (const r of this.byKey.get(claimKey(f)) ?? []) if (!best || compareRank(r, best) < 0) best = r;
    return best;
  }

  /** Why each frontend the Service asks for but another Service owns is not programmed for it. */
  lost(key: string): string[] {
    const e = this.bySvc.get(key);
    if (!e) return [];
    const out = new Set<string>();
    for (const f of e.spec.frontends) {
      const owner = this.owner(f)!;
      if (owner.key !== key) out.add(lostReason(f, owner, e.rank));
    }
    return [...out];
  }

  /**
   * The Service's recorded state without the frontends another Service owns, each named in a
   * warning (see lost()); undefined when the Service asks for nothing.
   */
  owned(key: string): ServiceSpec | undefined {
    const e = this.bySvc.get(key);
    if (!e) return undefined;
    const frontends = e.spec.frontends.filter((f) => this.owner(f)!.key === key);
    if (frontends.length === e.spec.frontends.length) return e.spec;
    return { ...e.spec, frontends, warnings: [...new Set([...e.spec.warnings, ...this.lost(key)])] };
  }
}
