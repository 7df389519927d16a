// The index the status API reads Services from: a Map whose keys (namespace/name) are also
// kept in code-unit order, so one namespace is one contiguous range found by binary search
// and a page is a slice. Keys added or removed since the last read are merged in at the next
// read: a few by insertion, a cold start's worth by one sort.
import type { ServiceSpec } from '../model/types.js';
import type { ServiceFilter } from './view.js';

/** Above this many pending keys one sort beats inserting them one at a time. */
const MERGE_ONE_BY_ONE = 64;

export class SortedIndex<T> {
  private readonly items = new Map<string, T>();
  private sorted: string[] = [];
  private readonly added = new Set<string>();
  private readonly removed = new Set<string>();

  get size(): number {
    return this.items.size;
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  values(): IterableIterator<T> {
    return this.items.values();
  }

  set(key: string, value: T): void {
    if (!this.items.has(key) && !this.removed.delete(key)) this.added.add(key);
    this.items.set(key, value);
  }

  delete(key: string): boolean {
    if (!this.items.delete(key)) return false;
    if (!this.added.delete(key)) this.removed.add(key);
    return true;
  }

  /** Keys that start with prefix, in order. */
  keys(prefix = ''): string[] {
    this.settle();
    if (!prefix) return this.sorted.slice();
    const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    return this.sorted.slice(lowerBound(this.sorted, prefix), lowerBound(this.sorted, end));
  }

  private settle(): void {
    if (this.added.size + this.removed.size > MERGE_ONE_BY_ONE) {
      this.sorted = [...this.items.keys()].sort(byCodeUnit);
    } else {
      for (const k of this.removed) this.sorted.splice(lowerBound(this.sorted, k), 1);
      for (const k of this.added) this.sorted.splice(lowerBound(this.sorted, k), 0, k);
    }
    this.added.clear();
    this.removed.clear();
  }
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function lowerBound(a: string[], k: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < k) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** Services matching the filter, in key order: a lookup, a namespace range, or a scan of keys. */
export function selectServices(index: SortedIndex<ServiceSpec>, f: ServiceFilter = {}): ServiceSpec[] {
  const type = f.type?.toLowerCase();
  const keys = f.namespace && f.name ? [`${f.namespace}/${f.name}`] : index.keys(f.namespace ? `${f.namespace}/` : '');
  const out: ServiceSpec[] = [];
  for (const k of keys) {
    if (f.name && k.slice(k.indexOf('/') + 1) !== f.name) continue;
    const s = index.get(k);
    if (s && (!type || s.type.toLowerCase() === type)) out.push(s);
  }
  return out;
}
