// Lists, watch events and manifest files carry plain JSON. decode() gives the agent one shape
// for it, the shape the agent's types (@kubernetes/client-node's models) promise, without
// loading that library's serializer: its ~700 generated models cost the agent ~25 MB of RSS,
// and the agent loads no part of the library at all (issue 14: RSS at steady state; lists and
// watches go through kubeclient.ts). The shape is the serializer's
// for Service, EndpointSlice and Node: in those models no field is renamed and every Date is
// one of DATE_FIELDS (test/unit/sources-decode.test.ts holds the two to each other).
import type { V1EndpointSlice, V1Node, V1Service } from './types.js';
import { POOL_KIND, type LoadBalancerIPPool } from '../model/ipam.js';

/** xlb's own kind has no client-library model: it stays the plain JSON it arrived as. */
export type KindName = 'Service' | 'EndpointSlice' | 'Node' | typeof POOL_KIND;
export type KindType<K extends KindName> = K extends typeof POOL_KIND
  ? LoadBalancerIPPool
  : K extends 'Service'
  ? V1Service
  : K extends 'EndpointSlice'
    ? V1EndpointSlice
    : V1Node;

/** The fields the client library's models type as Date, in Service, EndpointSlice and Node. */
const DATE_FIELDS = new Set(['creationTimestamp', 'deletionTimestamp', 'time', 'timeAdded', 'lastHeartbeatTime', 'lastTransitionTime']);

/**
 * Fields whose values repeat across thousands of objects (a namespace, a node name, 'TCP'):
 * one string each instead of one per object (10,000 Services x 10 endpoints: ~15 MB).
 */
const SHARED_VALUES = new Set(['kind', 'apiVersion', 'namespace', 'nodeName', 'protocol', 'addressType', 'type', 'zone',
  'appProtocol', 'ipFamilyPolicy', 'sessionAffinity', 'internalTrafficPolicy', 'externalTrafficPolicy', 'ipFamilies', 'status']);
const shared = new Map<string, string>();
const SHARED_MAX = 4096;

function share(s: string): string {
  const have = shared.get(s);
  if (have !== undefined) return have;
  if (shared.size >= SHARED_MAX) shared.clear();
  shared.set(s, s);
  return s;
}

/**
 * An endpoint's conditions: a few combinations of three booleans, shared (frozen: the store's
 * objects are read-only) instead of one object per endpoint (100,000 endpoints: ~5 MB).
 */
const CONDITION_KEYS = new Set(['ready', 'serving', 'terminating']);
const sharedConditions = new Map<string, Readonly<Record<string, boolean>>>();

function shareConditions(o: Record<string, unknown>): Readonly<Record<string, boolean>> | undefined {
  let key = '';
  for (const k of Object.keys(o)) {
    if (!CONDITION_KEYS.has(k) || typeof o[k] !== 'boolean') return undefined;
    key += `${k}=${o[k]},`;
  }
  let have = sharedConditions.get(key);
  if (!have) sharedConditions.set(key, (have = Object.freeze({ ...o } as Record<string, boolean>)));
  return have;
}

/**
 * An endpoint's targetRef keeps what the agent reads or shows (the pod's name, and its kind
 * and namespace): a real cluster's also carry the pod's uid, one 36-character string per
 * endpoint (100,000 endpoints: ~6 MB) nothing in the agent reads.
 */
const TARGET_REF_KEYS = new Set(['kind', 'namespace', 'name']);
const dropped = (key: string, k: string): boolean => k === 'managedFields' || (key === 'targetRef' && !TARGET_REF_KEYS.has(k));

/**
 * `owned`: raw is plain JSON that nothing else holds (a parser's fresh output), so it is
 * converted in place rather than copied (a cold start of 10,000 Services x 10 endpoints
 * copied ~600,000 objects only to drop the originals).
 */
export function decode<K extends KindName>(kind: K, raw: unknown, owned = false): KindType<K> {
  if (kind === POOL_KIND) return (owned ? raw : structuredClone(raw)) as KindType<K>;
  return (owned ? convert(raw, '') : compact(raw, '')) as KindType<K>;
}

function scalar(v: string, key: string): unknown {
  if (DATE_FIELDS.has(key)) return new Date(v);
  return SHARED_VALUES.has(key) ? share(v) : v;
}

/**
 * A copy with only the fields that are set (the serializer's model objects carry every field
 * their type declares, the unset ones as undefined: a third of an EndpointSlice's heap), Dates
 * as Dates, and without metadata.managedFields, which the agent never reads (on a real API
 * server often the largest part of an object), nor a targetRef's uid and the like.
 */
function compact(v: unknown, key: string): unknown {
  if (typeof v === 'string') return scalar(v, key);
  if (v === null || typeof v !== 'object' || v instanceof Date) return v;
  if (Array.isArray(v)) return v.map((x) => compact(x, key));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined && !dropped(key, k)) out[k] = compact(x, k);
  return (key === 'conditions' && shareConditions(out)) || out;
}

/** compact() in place, for plain JSON (no undefined values, no class instances). */
function convert(v: unknown, key: string): unknown {
  if (typeof v === 'string') return scalar(v, key);
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = convert(v[i], key);
    return v;
  }
  const o = v as Record<string, unknown>;
  const shared = key === 'conditions' ? shareConditions(o) : undefined;
  if (shared) return shared;
  for (const k of Object.keys(o)) {
    if (dropped(key, k)) delete o[k];
    else o[k] = convert(o[k], k);
  }
  return o;
}
