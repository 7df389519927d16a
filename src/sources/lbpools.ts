// LoadBalancerIPPools in a source: the manifests source has no API server to hold Service
// status, so it plays that part itself. Each agent runs the pure allocator over the same
// files and hands the agent Services whose status carries the result: the address in
// status.loadBalancer.ingress (what translate programs), or a condition with the reason.
import { allocate, parseRange, POOL_API_VERSION, POOL_KIND, wantsAddress, type Allocation, type LoadBalancerIPPool } from '../model/ipam.js';
import { objectKey, type V1Service } from './types.js';

/** status.conditions type that says why a LoadBalancer Service has no address. */
export const NO_ADDRESS_CONDITION = 'xlb.io/LoadBalancerAddress';

export { POOL_API_VERSION, POOL_KIND, type LoadBalancerIPPool };

/** The first problem with a pool's shape, or undefined. */
export function validatePool(o: { spec?: unknown }): string | undefined {
  const spec = o.spec as { addresses?: unknown } | undefined;
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) return 'spec must be a mapping';
  if (!Array.isArray(spec.addresses) || !spec.addresses.length || !spec.addresses.every((a) => typeof a === 'string')) {
    return 'spec.addresses must be a non-empty list of strings';
  }
  for (const a of spec.addresses as string[]) {
    const r = parseRange(a);
    if (typeof r === 'string') return `spec.addresses: ${r}`;
  }
  return undefined;
}

/**
 * The Services with the pools' assignments in their status. A Service whose manifest
 * already writes an ingress keeps it (the file is its status); the allocator counts that
 * address as held, so no other Service gets it.
 */
export function withAddresses(services: V1Service[], pools: LoadBalancerIPPool[], alloc = pools.length ? allocate(services, pools) : undefined): V1Service[] {
  if (!pools.length || !alloc) return services;
  return services.map((s) => {
    const a = wantsAddress(s) && !s.status?.loadBalancer?.ingress?.length ? alloc.services.get(objectKey(s.metadata)) : undefined;
    if (!a) return s;
    const status = { ...s.status };
    if (a.addresses.length) status.loadBalancer = { ingress: a.addresses.map((ip) => ({ ip, ipMode: 'VIP' })) };
    if (a.reason) {
      status.conditions = [...(s.status?.conditions ?? []), {
        type: NO_ADDRESS_CONDITION, status: 'False', reason: 'NoAddress', message: a.reason,
        lastTransitionTime: new Date(0), observedGeneration: s.metadata?.generation,
      }];
    }
    return { ...s, status };
  });
}

/** Why a LoadBalancer Service has no (or not every) address, from its status; undefined if none. */
export function noAddressReason(s: V1Service): string | undefined {
  return s.status?.conditions?.find((c) => c.type === NO_ADDRESS_CONDITION && c.status === 'False')?.message;
}

/** Services the allocation concerns: xlb's LoadBalancers, and any holding an address (to release). */
function tracked(s: V1Service): boolean {
  return wantsAddress(s) || !!s.status?.loadBalancer?.ingress?.length;
}

/**
 * Kube mode: the Services a source hands the agent, with pool addresses in their status as
 * in manifests mode (withAddresses), kept current as Services and pools change one watch
 * event at a time. Allocation is global (a freed address goes to a waiting Service), so every
 * change to a LoadBalancer Service or a pool recomputes it over the LoadBalancer Services and
 * re-emits those whose result changed; every other Service passes straight through.
 */
export class PoolAssigner {
  private readonly pools = new Map<string, LoadBalancerIPPool>();
  /** raw LoadBalancer Services (as the API server has them), by key */
  private readonly lbs = new Map<string, V1Service>();
  private alloc: Allocation = { services: new Map(), pools: new Map() };

  constructor(
    private readonly sink: { upsertService(s: V1Service, derived?: boolean): void; deleteService(key: string): void; serviceKeys(): string[] },
    /** after every recompute (the kube source's leader writes status from here) */
    private readonly onRecompute: () => void = () => undefined,
  ) {}

  /** The allocation as of the last change. */
  allocation(): Allocation {
    return this.alloc;
  }

  /** Raw Services (what the API server holds) of type LoadBalancer or with an ingress, and every pool. */
  rawServices(): V1Service[] {
    return [...this.lbs.values()];
  }
  poolList(): LoadBalancerIPPool[] {
    return [...this.pools.values()];
  }

  replaceServices(items: V1Service[]): void {
    const keep = new Set(items.map((s) => objectKey(s.metadata)));
    for (const key of this.sink.serviceKeys()) if (!keep.has(key)) this.deleteService(key, false);
    this.lbs.clear();
    for (const s of items) if (tracked(s)) this.lbs.set(objectKey(s.metadata), s);
    for (const s of items) if (!tracked(s)) this.sink.upsertService(s);
    this.recompute();
  }

  upsertService(s: V1Service): void {
    const key = objectKey(s.metadata);
    const was = this.lbs.has(key);
    if (tracked(s)) this.lbs.set(key, s);
    else {
      this.lbs.delete(key);
      this.sink.upsertService(s);
    }
    if (was || this.lbs.has(key)) this.recompute(key);
  }

  deleteService(key: string, recompute = true): void {
    const was = this.lbs.delete(key);
    this.sink.deleteService(key);
    if (was && recompute) this.recompute();
  }

  replacePools(items: LoadBalancerIPPool[]): void {
    this.pools.clear();
    for (const p of items) this.pools.set(p.metadata?.name ?? '', p);
    this.recompute();
  }

  upsertPool(p: LoadBalancerIPPool): void {
    this.pools.set(p.metadata?.name ?? '', p);
    this.recompute();
  }

  removePool(p: LoadBalancerIPPool): void {
    if (this.pools.delete(p.metadata?.name ?? '')) this.recompute();
  }

  /** `changed`: a Service whose own object changed (emitted even if its result did not). */
  private recompute(changed?: string): void {
    const raw = [...this.lbs.values()];
    const pools = [...this.pools.values()];
    this.alloc = allocate(raw, pools);
    for (const s of withAddresses(raw, pools, this.alloc)) {
      const key = objectKey(s.metadata);
      this.sink.upsertService(s, key !== changed);
    }
    this.onRecompute();
  }
}
