// What the manifests source checks of a hand-written object: the envelope (apiVersion, kind,
// metadata), then the model's rules for its kind (src/model/validate.ts), so that the agent
// never meets an object whose basic shape is wrong; each failure one sentence naming the field.
import { serviceProblem, sliceProblem } from '../model/validate.js';
import type { V1EndpointSlice, V1Service } from './types.js';
import { POOL_API_VERSION, POOL_KIND, validatePool } from './lbpools.js';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export const EXPECTED_API_VERSION: Record<string, string> = {
  Service: 'v1',
  EndpointSlice: 'discovery.k8s.io/v1',
  Node: 'v1',
  [POOL_KIND]: POOL_API_VERSION,
};

/** Returns the first problem found, or undefined when the object is usable. */
export function validateObject(o: unknown): string | undefined {
  if (!isObj(o)) return 'document is not a mapping';
  if (typeof o.apiVersion !== 'string' || o.apiVersion === '') return 'missing apiVersion';
  if (typeof o.kind !== 'string' || o.kind === '') return 'missing kind';
  if (!isObj(o.metadata)) return 'missing metadata';
  const md = o.metadata;
  if (typeof md.name !== 'string' || md.name === '') return 'missing metadata.name';
  if (md.namespace !== undefined && (typeof md.namespace !== 'string' || md.namespace === ''))
    return 'metadata.namespace must be a non-empty string';
  if (md.labels !== undefined && !stringMap(md.labels)) return 'metadata.labels must map strings to strings';
  const want = EXPECTED_API_VERSION[o.kind];
  if (want && o.apiVersion !== want) return `apiVersion ${o.apiVersion} is not supported for ${o.kind} (use ${want})`;
  if (o.kind === 'Service') return serviceProblem(o as V1Service) ?? undefined;
  if (o.kind === 'EndpointSlice') return sliceProblem(o as unknown as V1EndpointSlice) ?? undefined;
  if (o.kind === POOL_KIND) return validatePool(o);
  return undefined;
}

function stringMap(v: unknown): boolean {
  return isObj(v) && Object.values(v).every((x) => typeof x === 'string');
}
