// Structural checks on a Service object, so that translate() turns a bad manifest into one
// clear reason instead of throwing or programming half a Service. The rules follow the API
// server's validation for the fields the datapath depends on; objects that came through a real
// API server always pass.
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';
import { isIPv4, isIPv6, ipv4ToNumber, ipv4Net, inIpv4Net } from './ip.js';

export const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;
const PROTOCOLS = new Set(['TCP', 'UDP', 'SCTP']);
const POLICIES = new Set(['Cluster', 'Local']);
const AFFINITIES = new Set(['None', 'ClientIP']);
// IANA_SVC_NAME: what a named targetPort must look like.
const SVC_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

function isPort(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;
}

function isIP(s: unknown): boolean {
  return typeof s === 'string' && (isIPv4(s) || isIPv6(s));
}

function checkPort(p: V1ServicePort, at: string): string | null {
  if (!p || typeof p !== 'object') return `${at} is not an object`;
  if (!isPort(p.port)) return `${at}.port ${JSON.stringify(p.port)} is not a port number (1-65535)`;
  if (p.protocol !== undefined && !PROTOCOLS.has(p.protocol)) {
    return `${at}.protocol ${JSON.stringify(p.protocol)} is not TCP, UDP or SCTP`;
  }
  if (p.nodePort !== undefined && p.nodePort !== 0 && !isPort(p.nodePort)) {
    return `${at}.nodePort ${JSON.stringify(p.nodePort)} is not a port number (1-65535)`;
  }
  const tp = p.targetPort;
  if (tp !== undefined && !(typeof tp === 'number' ? isPort(tp) : typeof tp === 'string' && SVC_NAME.test(tp))) {
    return `${at}.targetPort ${JSON.stringify(tp)} is neither a port number (1-65535) nor a port name`;
  }
  return null;
}

function checkPorts(ports: V1ServicePort[] | undefined): string | null {
  if (!Array.isArray(ports) || ports.length === 0) return 'spec.ports is empty';
  const names = new Set<string>();
  const numbers = new Set<string>();
  for (const [i, p] of ports.entries()) {
    const bad = checkPort(p, `spec.ports[${i}]`);
    if (bad) return bad;
    const name = p.name ?? '';
    if (names.has(name)) {
      return name === '' ? 'spec.ports: several ports need a name each' : `spec.ports: name ${JSON.stringify(name)} is used twice`;
    }
    names.add(name);
    const pp = `${p.port}/${p.protocol ?? 'TCP'}`;
    if (numbers.has(pp)) return `spec.ports: ${pp} is listed twice`;
    numbers.add(pp);
  }
  return null;
}

function checkAddresses(svc: V1Service): string | null {
  const spec = svc.spec!;
  const clusterIPs = spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP !== undefined ? [spec.clusterIP] : [];
  for (const [i, ip] of clusterIPs.entries()) {
    if (ip !== 'None' && ip !== '' && !isIP(ip)) return `spec.clusterIPs[${i}] ${JSON.stringify(ip)} is not an IP address`;
  }
  for (const [i, ip] of (spec.externalIPs ?? []).entries()) {
    if (!isIP(ip)) return `spec.externalIPs[${i}] ${JSON.stringify(ip)} is not an IP address`;
  }
  return null;
}

function checkPolicies(svc: V1Service): string | null {
  const spec = svc.spec!;
  for (const f of ['externalTrafficPolicy', 'internalTrafficPolicy'] as const) {
    const v = spec[f];
    if (v !== undefined && !POLICIES.has(v)) return `spec.${f} ${JSON.stringify(v)} is not Cluster or Local`;
  }
  if (spec.sessionAffinity !== undefined && !AFFINITIES.has(spec.sessionAffinity)) {
    return `spec.sessionAffinity ${JSON.stringify(spec.sessionAffinity)} is not None or ClientIP`;
  }
  const t = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  if (t !== undefined && !(Number.isInteger(t) && t >= 1 && t <= 86400)) {
    return `spec.sessionAffinityConfig.clientIP.timeoutSeconds ${JSON.stringify(t)} is not between 1 and 86400`;
  }
  const hc = spec.healthCheckNodePort;
  if (hc !== undefined && hc !== 0 && !isPort(hc)) {
    return `spec.healthCheckNodePort ${JSON.stringify(hc)} is not a port number (1-65535)`;
  }
  return null;
}

/** Why the object's metadata/type cannot be a Service at all; null when it can. */
export function checkIdentity(svc: V1Service): string | null {
  if (!svc || typeof svc !== 'object') return 'not an object';
  const name = svc.metadata?.name;
  if (typeof name !== 'string' || name === '') return 'metadata.name is missing';
  const ns = svc.metadata?.namespace;
  if (ns !== undefined && (typeof ns !== 'string' || ns === '')) return 'metadata.namespace is empty';
  if (!svc.spec || typeof svc.spec !== 'object') return 'spec is missing';
  const type = svc.spec.type;
  if (type !== undefined && !(SERVICE_TYPES as readonly string[]).includes(type)) {
    return `spec.type ${JSON.stringify(type)} is not one of ${SERVICE_TYPES.join(', ')}`;
  }
  return null;
}

/** Why a proxied Service (not ExternalName, not headless) is invalid; null when it is valid. */
export function validateService(svc: V1Service): string | null {
  return checkIdentity(svc) ?? checkPorts(svc.spec!.ports) ?? checkAddresses(svc) ?? checkPolicies(svc);
}

// Endpoint addresses the API server refuses (validateNonSpecialIP: unspecified, loopback,
// link-local, link-local multicast), plus the rest of multicast and the limited broadcast,
// which no pod can hold either. As a backend each one sends new flows nowhere, or to the node.
const SPECIAL_IPV4: ReadonlyArray<readonly [string, string]> = [
  ['0.0.0.0/8', 'unspecified ("this network")'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
];
const SPECIAL_NETS = SPECIAL_IPV4.map(([cidr, what]) => ({ net: ipv4Net(cidr)!, what, cidr }));

/** Why an EndpointSlice IPv4 address cannot be a backend (an address no pod can hold); null when it can. */
export function endpointAddressProblem(addr: string): string | null {
  const n = ipv4ToNumber(addr);
  if (n === null) return 'is not an IPv4 address';
  const hit = SPECIAL_NETS.find(({ net }) => inIpv4Net(n, net));
  return hit ? `is ${hit.what} (${hit.cidr}); the API server refuses such endpoints` : null;
}
