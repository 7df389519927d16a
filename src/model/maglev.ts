// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network
// Load Balancer", NSDI'16, section 3.4), computed in user space and written to the maglev map.
//
// Each backend walks its own permutation of the M slots (offset + j*skip mod M, M prime so
// every skip visits every slot) and claims the first free slot on its turn. Two deliberate
// differences from the paper's pseudocode:
//  - Quotas are fixed up front (largest-remainder apportionment of M by weight), so every
//    backend ends with floor or ceil of its exact share: |count - M*w/W| < 1. With equal
//    weights that is exactly what the paper's round-robin yields; with weights it keeps the
//    same guarantee instead of the paper's approximate one.
//  - Turns are paced by quota (a backend with twice the weight claims about two slots per
//    round), so heavier backends still pick early in their preference lists, which is what
//    keeps disruption low when the set changes.
// Backends are ordered by key, so the table depends on the set, never on the input order.

import { hashString } from './hash.js';

export interface MaglevBackend {
  /** written into the table; the datapath's backend_id */
  id: number;
  /** stable identity hashed for the permutation, e.g. "10.1.0.5:8080" */
  key: string;
  /** relative share, > 0; default 1 */
  weight?: number;
}

/** Default table size: prime, >= 100 x a 160-backend Service so shares stay within 1%. */
export const MAGLEV_DEFAULT_M = 16381;

// Arbitrary fixed seeds: changing either re-shuffles every table (and so every flow without
// a CT entry), so they are part of the on-node format.
const SEED_OFFSET = 0x9747b28c;
const SEED_SKIP = 0x5bd1e995;

export function isPrime(m: number): boolean {
  if (!Number.isSafeInteger(m) || m < 2) return false;
  if (m % 2 === 0) return m === 2;
  for (let d = 3; d * d <= m; d += 2) if (m % d === 0) return false;
  return true;
}

interface Prepared {
  id: number;
  key: string;
  weight: number;
  offset: number;
  skip: number;
}

function validate(backends: readonly MaglevBackend[], m: number): void {
  if (!isPrime(m)) throw new RangeError(`maglev table size ${m} is not a prime number`);
  if (backends.length === 0) throw new RangeError('maglev table needs at least one backend');
  if (m <= backends.length) {
    throw new RangeError(`maglev table size ${m} must be larger than the number of backends (${backends.length})`);
  }
  const seen = new Set<string>();
  for (const b of backends) {
    if (!Number.isInteger(b.id) || b.id < 0 || b.id > 0xffffffff) {
      throw new RangeError(`maglev backend ${JSON.stringify(b.key)}: id ${b.id} is not a 32-bit unsigned integer`);
    }
    if (typeof b.key !== 'string' || b.key === '') throw new RangeError(`maglev backend id ${b.id}: empty key`);
    if (seen.has(b.key)) throw new RangeError(`maglev backend key ${JSON.stringify(b.key)} appears twice`);
    seen.add(b.key);
    const w = b.weight ?? 1;
    if (!Number.isFinite(w) || w <= 0) {
      throw new RangeError(`maglev backend ${JSON.stringify(b.key)}: weight ${w} must be a finite number > 0`);
    }
  }
}

/** Where a key's preference list starts and how it steps through the m slots. */
export function maglevPermutation(key: string, m: number): { offset: number; skip: number } {
  return { offset: hashString(key, SEED_OFFSET) % m, skip: (hashString(key, SEED_SKIP) % (m - 1)) + 1 };
}

function prepare(backends: readonly MaglevBackend[], m: number): Prepared[] {
  return backends
    .map((b) => ({ id: b.id, key: b.key, weight: b.weight ?? 1, ...maglevPermutation(b.key, m) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Largest-remainder apportionment of m slots by weight; ties go to the earlier backend. */
export function maglevQuotas(weights: readonly number[], m: number): number[] {
  const total = weights.reduce((s, w) => s + w, 0);
  const exact = weights.map((w) => (m * w) / total);
  const quotas = exact.map((e) => Math.floor(e));
  let left = m - quotas.reduce((s, q) => s + q, 0);
  const byRemainder = exact
    .map((e, i) => ({ i, frac: e - quotas[i] }))
    .sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % byRemainder.length, left--) quotas[byRemainder[k].i]++;
  return quotas;
}

/**
 * The Maglev lookup table: m slots, each holding the id of one backend, every backend owning
 * floor or ceil of m * weight / totalWeight slots. Throws RangeError on invalid input.
 */
export function maglevTable(backends: readonly MaglevBackend[], m = MAGLEV_DEFAULT_M): Uint32Array {
  validate(backends, m);
  const list = prepare(backends, m);
  const quotas = maglevQuotas(
    list.map((b) => b.weight),
    m,
  );
  const qmax = Math.max(...quotas);
  const table = new Uint32Array(m);
  const taken = new Uint8Array(m);
  const next = list.map((b) => b.offset);
  const counts = new Array<number>(list.length).fill(0);
  for (let round = 1; round <= qmax; round++) {
    for (let i = 0; i < list.length; i++) {
      const target = Math.ceil((round * quotas[i]) / qmax);
      const skip = list[i].skip;
      let pos = next[i];
      while (counts[i] < target) {
        while (taken[pos]) {
          pos += skip;
          if (pos >= m) pos -= m;
        }
        taken[pos] = 1;
        table[pos] = list[i].id;
        counts[i]++;
      }
      next[i] = pos;
    }
  }
  return table;
}
