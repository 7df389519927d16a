// The one rule set for Service and EndpointSlice objects: structural checks, so that a bad
// manifest becomes one clear reason instead of a throw or half a Service. The manifests source
// applies them to each object as read (sources/validate.ts checks only the envelope), and
// translate() to each Service it programs. The rules follow the API server's validation for
// the fields the datapath depends on; objects that came through a real API server always pass.
// Each rule takes plain JSON as well as typed objects: a field of the wrong type is a reason.
import type { V1EndpointSlice, V1Service, V1ServicePort } from '@kubernetes/client-node';
import { cidrMatcher, isIPv4, isIPv6 } from './ip.js';
import { familiesProblem } from './families.js';

/** Label that ties an EndpointSlice to its Service (same namespace). */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const LABEL_SERVICE_PROXY_NAME = 'service.kubernetes.io/service-proxy-name';
export const LABEL_HEADLESS = 'service.kubernetes.io/headless';

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
  if (p.name !== undefined && typeof p.name !== 'string') return `${at}.name ${JSON.stringify(p.name)} is not a string`;
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
  if (ports !== undefined && !Array.isArray(ports)) return 'spec.ports is not a list';
  if (!ports?.length) return 'spec.ports is empty';
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
  for (const f of ['clusterIPs', 'externalIPs'] as const) {
    if (spec[f] !== undefined && !Array.isArray(spec[f])) return `spec.${f} is not a list`;
  }
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
  return checkIdentity(svc) ?? checkPorts(svc.spec!.ports) ?? checkAddresses(svc) ?? familiesProblem(svc.spec!) ?? checkPolicies(svc);
}

/** Why this Service (with a valid identity) creates no datapath state at all, or null. */
export function skipReason(svc: V1Service): string | null {
  const labels = svc.metadata?.labels ?? {};
  if (svc.spec!.type === 'ExternalName') return 'ExternalName Service (DNS only, nothing to proxy)';
  if (LABEL_SERVICE_PROXY_NAME in labels) {
    return `label ${LABEL_SERVICE_PROXY_NAME}=${labels[LABEL_SERVICE_PROXY_NAME]}: another proxy owns this Service`;
  }
  if (LABEL_HEADLESS in labels) return `label ${LABEL_HEADLESS}: headless Service`;
  const primary = svc.spec!.clusterIPs?.[0] ?? svc.spec!.clusterIP;
  // 'None' beside an address is no headless Service but an invalid one (validateService says why).
  if (primary === 'None' && (svc.spec!.clusterIPs?.length ?? 1) <= 1) return 'headless Service (clusterIP None)';
  return null;
}

/** Why a Service object is invalid, null when it is valid: every rule for one xlb proxies,
 *  only the identity for one it skips (another proxy's, headless, ExternalName). */
export function serviceProblem(svc: V1Service): string | null {
  return checkIdentity(svc) ?? (skipReason(svc) ? null : validateService(svc));
}

const ADDRESS_CHECK: Record<string, (a: string) => boolean> = {
  IPv4: (a) => isIPv4(a),
  IPv6: (a) => isIPv6(a),
  FQDN: (a) => a.length > 0,
};

/** Why an EndpointSlice object is invalid (its metadata checked by the source); null when it is valid. */
export function sliceProblem(slice: V1EndpointSlice): string | null {
  if (!slice.metadata?.labels?.[SERVICE_NAME_LABEL]) return `missing label ${SERVICE_NAME_LABEL} (the Service this slice belongs to)`;
  const check = ADDRESS_CHECK[slice.addressType];
  if (!check) return `addressType ${JSON.stringify(slice.addressType)} must be IPv4, IPv6 or FQDN`;
  if (!Array.isArray(slice.endpoints)) return 'endpoints must be a list';
  for (const [i, e] of slice.endpoints.entries()) {
    if (!e || typeof e !== 'object') return `endpoints[${i}]: must be a mapping`;
    if (!Array.isArray(e.addresses) || e.addresses.length === 0) return `endpoints[${i}]: addresses must be a non-empty list`;
    for (const a of e.addresses) {
      if (typeof a !== 'string' || !check(a)) return `endpoints[${i}]: address ${JSON.stringify(a)} is not a valid ${slice.addressType} address`;
    }
    if (e.conditions !== undefined && (typeof e.conditions !== 'object' || e.conditions === null || Array.isArray(e.conditions))) {
      return `endpoints[${i}]: conditions must be a mapping`;
    }
  }
  if (slice.ports === undefined || slice.ports === null) return null;
  if (!Array.isArray(slice.ports)) return 'ports must be a list';
  for (const [i, p] of slice.ports.entries()) {
    if (!p || typeof p !== 'object' || Array.isArray(p)) return `ports[${i}]: must be a mapping`;
    if (p.port !== undefined && p.port !== null && !isPort(p.port)) return `ports[${i}]: port ${JSON.stringify(p.port)} must be an integer 1-65535`;
    if (p.protocol !== undefined && !PROTOCOLS.has(p.protocol)) return `ports[${i}]: protocol ${JSON.stringify(p.protocol)} must be TCP, UDP or SCTP`;
  }
  return null;
}

// Endpoint addresses the API server refuses (validateNonSpecialIP: unspecified, loopback,
// link-local, link-local multicast), plus the rest of multicast and the limited broadcast,
// which no pod can hold either. As a backend each one sends new flows nowhere, or to the node.
const SPECIAL: ReadonlyArray<readonly [string, string]> = [
  ['0.0.0.0/8', 'unspecified ("this network")'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['fe80::/10', 'link-local'],
  ['ff00::/8', 'multicast'],
  ['::ffff:0:0/96', 'IPv4-mapped'],
];

const specialIndex = cidrMatcher(SPECIAL.map(([cidr]) => cidr));

/** Why an EndpointSlice address cannot be a backend (an address no pod can hold); null when it can. */
export function endpointAddressProblem(addr: string): string | null {
  if (!isIPv4(addr) && !isIPv6(addr)) return 'is not an IP address';
  const hit = SPECIAL[specialIndex(addr)];
  return hit ? `is ${hit[1]} (${hit[0]}); no pod holds such an address` : null;
}
