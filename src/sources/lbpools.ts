// LoadBalancerIPPools in a source: the manifests source has no API server to hold Service
// status, so it plays that part itself. Each agent runs the pure allocator over the same
// files and hands the agent Services whose status carries the result: the address in
// status.loadBalancer.ingress (what translate programs), or a condition with the reason.
import { allocate, parseRange, POOL_API_VERSION, POOL_KIND, wantsAddress, type LoadBalancerIPPool } from '../model/ipam.js';
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
export function withAddresses(services: V1Service[], pools: LoadBalancerIPPool[]): V1Service[] {
  if (!pools.length) return services;
  const alloc = allocate(services, pools);
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
