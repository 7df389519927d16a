// Watch events and manifest files carry plain JSON, while the typed list calls return objects
// built by the client library's serializer (timestamps as Date, and so on). Running every
// object through that same serializer gives the agent one shape whatever the path.
// The serializer is not re-exported from the package index in 1.4.0, hence the deep import
// (the package has no "exports" map, and the version is pinned).
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import type { V1EndpointSlice, V1Node, V1Service } from './types.js';
import { POOL_KIND, type LoadBalancerIPPool } from '../model/ipam.js';

export const TYPE_NAMES = {
  Service: 'V1Service',
  EndpointSlice: 'V1EndpointSlice',
  Node: 'V1Node',
} as const;

/** xlb's own kind has no client-library model: it stays the plain JSON it arrived as. */
export type KindName = keyof typeof TYPE_NAMES | typeof POOL_KIND;
export type KindType<K extends KindName> = K extends typeof POOL_KIND
  ? LoadBalancerIPPool
  : K extends 'Service'
  ? V1Service
  : K extends 'EndpointSlice'
    ? V1EndpointSlice
    : V1Node;

export function decode<K extends KindName>(kind: K, raw: unknown): KindType<K> {
  if (kind === POOL_KIND) return structuredClone(raw) as KindType<K>;
  return compact(ObjectSerializer.deserialize(raw, TYPE_NAMES[kind as keyof typeof TYPE_NAMES], '')) as KindType<K>;
}

/**
 * The serializer's model objects carry every field their type declares, the unset ones as
 * undefined: a third of an EndpointSlice's heap (10 endpoints: 4,000 objects 8.6 MB -> 5.6 MB).
 * The same values in plain objects with only the fields that are set; Dates stay Dates.
 */
function compact(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || v instanceof Date) return v;
  if (Array.isArray(v)) return v.map(compact);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = compact(x);
  return out;
}
