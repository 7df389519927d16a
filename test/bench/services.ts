// One Service set, three renderings: desired state (ServiceSpec, what the xlb agent programs),
// kube-proxy-style rules (kubeproxy.ts), and the Kubernetes YAML the xlb agent reads in
// manifests mode. Tests and benchmarks describe Services once, as SimpleService, so every mode
// serves exactly the same Services.
//
// ServiceSpec is built here directly rather than through model.translate(): the baselines
// must not depend on the code under test to decide what a Service means.
import { stringify } from 'yaml';
import type { BackendSpec, Family, FrontendSpec, FrontendType, Protocol, Scope, ServiceSpec } from '../../src/model/types.js';

export interface SimplePort { name: string; port: number; targetPort: number; proto: Protocol; nodePort?: number }
/** addr6: the endpoint's IPv6 address (a dual-stack Service's IPv6 EndpointSlice) */
export interface SimpleEndpoint { addr: string; node: string; target: string; addr6?: string }
export interface SimpleService {
  namespace: string;
  name: string;
  clusterIP: string;
  /** dual stack (ipFamilies IPv4, IPv6): the IPv6 ClusterIP; its endpoints are those with addr6 */
  clusterIP6?: string;
  ports: SimplePort[];
  lbIPs?: string[];
  externalIPs?: string[];
  /** externalTrafficPolicy: Local */
  externalLocal?: boolean;
  endpoints: SimpleEndpoint[];
}

export const CLUSTER_CIDR = '10.244.0.0/16';
export const CLUSTER_CIDR6 = 'fd00:244::/48';

const familyOf = (addr: string): Family => (addr.includes(':') ? 6 : 4);

function serviceType(s: SimpleService): ServiceSpec['type'] {
  if (s.lbIPs?.length) return 'LoadBalancer';
  return s.ports.some((p) => p.nodePort) ? 'NodePort' : 'ClusterIP';
}

function backends(s: SimpleService, p: SimplePort, node: string, localOnly: boolean, family: Family): BackendSpec[] {
  const eps = family === 6 ? s.endpoints.filter((e) => e.addr6) : s.endpoints;
  return eps.map((e) => ({
    addr: family === 6 ? e.addr6! : e.addr, port: p.targetPort, state: 'active' as const, local: e.node === node,
    selectable: !localOnly || e.node === node, weight: 1, nodeName: e.node, target: e.target,
  }));
}

function frontend(s: SimpleService, p: SimplePort, node: string, type: FrontendType, addr: string | null, port: number, scope: Scope, family: Family): FrontendSpec {
  const key = `${s.namespace}/${s.name}`;
  const localOnly = scope === 'external' && type !== 'ClusterIP' && !!s.externalLocal;
  return {
    id: `${key}|${p.name}|${p.proto}|${type}|${addr ?? '*'}:${port}|${scope}${family === 6 ? '|6' : ''}`,
    service: key, portName: p.name, type, addr, family, port, proto: p.proto, scope,
    backends: backends(s, p, node, localOnly, family), affinityTimeoutSec: 0, sourceRanges: [], localOnly,
    maglev: scope === 'external',
  };
}

/** The desired state for one node, as the agent on `node` would hold it. */
export function toServiceSpec(s: SimpleService, node: string): ServiceSpec {
  const frontends: FrontendSpec[] = [];
  const clusterIPs = [s.clusterIP, ...(s.clusterIP6 ? [s.clusterIP6] : [])];
  for (const cip of clusterIPs) {
    const family = familyOf(cip);
    for (const p of s.ports) {
      for (const scope of ['internal', 'external'] as const) frontends.push(frontend(s, p, node, 'ClusterIP', cip, p.port, scope, family));
      if (p.nodePort) frontends.push(frontend(s, p, node, 'NodePort', null, p.nodePort, 'external', family));
      for (const ip of (s.lbIPs ?? []).filter((a) => familyOf(a) === family)) frontends.push(frontend(s, p, node, 'LoadBalancer', ip, p.port, 'external', family));
      for (const ip of (s.externalIPs ?? []).filter((a) => familyOf(a) === family)) frontends.push(frontend(s, p, node, 'ExternalIP', ip, p.port, 'external', family));
    }
  }
  return {
    key: `${s.namespace}/${s.name}`, type: serviceType(s), frontends,
    localReadyEndpoints: s.endpoints.filter((e) => e.node === node).length, warnings: [],
  };
}

/**
 * `count` filler Services (ClusterIPs from 10.96.128.0 upwards). Their endpoints are real
 * pods when given (so the last one can be probed to know a mode has programmed everything),
 * otherwise two addresses nothing serves.
 */
export function fillerServices(count: number, endpoints?: SimpleEndpoint[], targetPort = 8080, o: { dualStack?: boolean } = {}): SimpleService[] {
  if (count > 30_000) throw new Error('fillerServices: at most 30000');
  const out: SimpleService[] = [];
  for (let i = 0; i < count; i++) {
    out.push({
      namespace: 'filler', name: `svc-${i}`, clusterIP: fillerIP(i), ...(o.dualStack ? { clusterIP6: fillerIP6(i) } : {}),
      ports: [{ name: 'http', port: 80, targetPort, proto: 'TCP' }],
      endpoints: endpoints ?? [
        { addr: `10.244.1.${200 + (i % 50)}`, addr6: `fd00:244:1::${(200 + (i % 50)).toString(16)}`, node: 'node1', target: `filler-${i}-a` },
        { addr: `10.244.2.${200 + (i % 50)}`, addr6: `fd00:244:2::${(200 + (i % 50)).toString(16)}`, node: 'node2', target: `filler-${i}-b` },
      ],
    });
  }
  return out;
}

export function fillerIP(i: number): string {
  return `10.96.${128 + (i >> 8)}.${i & 255}`;
}

/** Filler i's IPv6 ClusterIP (fd00:96::8000 upwards, ULA). */
export function fillerIP6(i: number): string {
  return `fd00:96::${(0x8000 + i).toString(16)}`;
}

/** Service + EndpointSlice (+ the Nodes) as multi-document YAML for the manifests source. */
export function toManifests(services: SimpleService[], nodes: Array<{ name: string; ip: string; ip6?: string }>): string {
  const docs: unknown[] = nodes.map((n) => ({
    apiVersion: 'v1', kind: 'Node',
    metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, 'xlb.io/enabled': 'true' } },
    status: { addresses: [...[n.ip, n.ip6].filter((a) => a).map((address) => ({ type: 'InternalIP', address })), { type: 'Hostname', address: n.name }] },
  }));
  for (const s of services) docs.push(serviceDoc(s), sliceDoc(s, 4), ...(s.clusterIP6 ? [sliceDoc(s, 6)] : []));
  return docs.map((d) => stringify(d)).join('---\n');
}

function serviceDoc(s: SimpleService): unknown {
  const type = serviceType(s);
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { namespace: s.namespace, name: s.name },
    spec: {
      type, clusterIP: s.clusterIP,
      ...(s.clusterIP6
        ? { clusterIPs: [s.clusterIP, s.clusterIP6], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' }
        : { clusterIPs: [s.clusterIP], ipFamilies: ['IPv4'] }),
      ports: s.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort, protocol: p.proto, ...(p.nodePort ? { nodePort: p.nodePort } : {}) })),
      ...(s.externalIPs?.length ? { externalIPs: s.externalIPs } : {}),
      ...(type !== 'ClusterIP' ? { externalTrafficPolicy: s.externalLocal ? 'Local' : 'Cluster' } : {}),
    },
    ...(s.lbIPs?.length ? { status: { loadBalancer: { ingress: s.lbIPs.map((ip) => ({ ip })) } } } : {}),
  };
}

function sliceDoc(s: SimpleService, family: Family): unknown {
  const eps = family === 6 ? s.endpoints.filter((e) => e.addr6) : s.endpoints;
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { namespace: s.namespace, name: `${s.name}-${family === 6 ? 'v6-' : ''}1`, labels: { 'kubernetes.io/service-name': s.name } },
    addressType: family === 6 ? 'IPv6' : 'IPv4',
    endpoints: eps.map((e) => ({
      addresses: [family === 6 ? e.addr6 : e.addr], conditions: { ready: true, serving: true, terminating: false }, nodeName: e.node,
      targetRef: { kind: 'Pod', namespace: s.namespace, name: e.target },
    })),
    ports: s.ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: p.proto })),
  };
}

/** The pods of `app` (or those matching `filter`) as endpoints. */
export function podEndpoints(pods: Array<{ name: string; app: string; node: string; ip: string; ip6?: string }>, filter: (p: { name: string; app: string; node: string }) => boolean): SimpleEndpoint[] {
  return pods.filter(filter).map((p) => ({ addr: p.ip, node: p.node, target: p.name, ...(p.ip6 ? { addr6: p.ip6 } : {}) }));
}

/** Render every Service for one node. */
export function specsFor(services: SimpleService[], node: string): ServiceSpec[] {
  return services.map((s) => toServiceSpec(s, node));
}
