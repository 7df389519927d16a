// Minimal checks on hand-written manifests: enough that the agent never meets an object whose
// basic shape is wrong, each failure one sentence naming the field. The API server does the
// full validation for the kube source; this mirrors only the rules the datapath depends on.
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { SERVICE_NAME_LABEL } from './types.js';
import { POOL_API_VERSION, POOL_KIND, validatePool } from './lbpools.js';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPort = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;
const PROTOCOLS = new Set(['TCP', 'UDP', 'SCTP']);

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
  if (o.kind === 'Service') return validateService(o);
  if (o.kind === 'EndpointSlice') return validateSlice(o);
  if (o.kind === POOL_KIND) return validatePool(o);
  return undefined;
}

function stringMap(v: unknown): boolean {
  return isObj(v) && Object.values(v).every((x) => typeof x === 'string');
}

function validateService(o: Obj): string | undefined {
  if (o.spec === undefined) return undefined;
  if (!isObj(o.spec)) return 'spec must be a mapping';
  const spec = o.spec;
  if (spec.type !== undefined && !['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'].includes(spec.type as string))
    return `spec.type ${String(spec.type)} is not one of ClusterIP, NodePort, LoadBalancer, ExternalName`;
  if (spec.clusterIP !== undefined && spec.clusterIP !== 'None' && spec.clusterIP !== '' && !isIP(String(spec.clusterIP)))
    return `spec.clusterIP ${String(spec.clusterIP)} is not an IP address`;
  if (spec.ports === undefined) return undefined;
  if (!Array.isArray(spec.ports)) return 'spec.ports must be a list';
  for (let i = 0; i < spec.ports.length; i++) {
    const err = validateServicePort(spec.ports[i], spec.ports.length > 1);
    if (err) return `spec.ports[${i}]: ${err}`;
  }
  return undefined;
}

function validateServicePort(p: unknown, multi: boolean): string | undefined {
  if (!isObj(p)) return 'must be a mapping';
  if (!isPort(p.port)) return `port ${JSON.stringify(p.port)} must be an integer 1-65535`;
  if (p.protocol !== undefined && !PROTOCOLS.has(p.protocol as string))
    return `protocol ${JSON.stringify(p.protocol)} must be TCP, UDP or SCTP`;
  if (p.name !== undefined && typeof p.name !== 'string') return 'name must be a string';
  if (multi && !p.name) return 'name is required when a Service has more than one port';
  if (p.targetPort !== undefined && !isPort(p.targetPort) && (typeof p.targetPort !== 'string' || p.targetPort === ''))
    return `targetPort ${JSON.stringify(p.targetPort)} must be an integer 1-65535 or a port name`;
  if (p.nodePort !== undefined && !isPort(p.nodePort)) return `nodePort ${JSON.stringify(p.nodePort)} must be an integer 1-65535`;
  return undefined;
}

const ADDRESS_CHECK: Record<string, (a: string) => boolean> = {
  IPv4: (a) => isIPv4(a),
  IPv6: (a) => isIPv6(a),
  FQDN: (a) => a.length > 0,
};

function validateSlice(o: Obj): string | undefined {
  const labels = (o.metadata as Obj).labels as Record<string, string> | undefined;
  if (!labels?.[SERVICE_NAME_LABEL]) return `missing label ${SERVICE_NAME_LABEL} (the Service this slice belongs to)`;
  const check = ADDRESS_CHECK[o.addressType as string];
  if (!check) return `addressType ${JSON.stringify(o.addressType)} must be IPv4, IPv6 or FQDN`;
  if (!Array.isArray(o.endpoints)) return 'endpoints must be a list';
  for (let i = 0; i < o.endpoints.length; i++) {
    const err = validateEndpoint(o.endpoints[i], check, o.addressType as string);
    if (err) return `endpoints[${i}]: ${err}`;
  }
  if (o.ports === undefined || o.ports === null) return undefined;
  if (!Array.isArray(o.ports)) return 'ports must be a list';
  for (let i = 0; i < o.ports.length; i++) {
    const p = o.ports[i];
    if (!isObj(p)) return `ports[${i}]: must be a mapping`;
    if (p.port !== undefined && p.port !== null && !isPort(p.port)) return `ports[${i}]: port ${JSON.stringify(p.port)} must be an integer 1-65535`;
    if (p.protocol !== undefined && !PROTOCOLS.has(p.protocol as string)) return `ports[${i}]: protocol ${JSON.stringify(p.protocol)} must be TCP, UDP or SCTP`;
  }
  return undefined;
}

function validateEndpoint(e: unknown, check: (a: string) => boolean, family: string): string | undefined {
  if (!isObj(e)) return 'must be a mapping';
  if (!Array.isArray(e.addresses) || e.addresses.length === 0) return 'addresses must be a non-empty list';
  for (const a of e.addresses) {
    if (typeof a !== 'string' || !check(a)) return `address ${JSON.stringify(a)} is not a valid ${family} address`;
  }
  if (e.conditions !== undefined && !isObj(e.conditions)) return 'conditions must be a mapping';
  return undefined;
}
