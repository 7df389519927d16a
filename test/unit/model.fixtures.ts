// Builders for Kubernetes objects in the shape the API server returns them, so each test
// states only the fields its rule is about.
import type { V1Service, V1ServiceSpec, V1EndpointSlice, V1Endpoint, V1Node, V1LoadBalancerIngress } from '@kubernetes/client-node';
import type { FrontendSpec, NodeInfo, ServiceSpec, TranslateResult } from '../../src/model/types.js';
import { translate } from '../../src/model/translate.js';
import { nodeInfo } from '../../src/model/node.js';

export const NODE = 'node-a';

export interface SvcOpts {
  name?: string;
  ns?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ingress?: V1LoadBalancerIngress[];
}

export function svc(spec: Partial<V1ServiceSpec>, o: SvcOpts = {}): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: o.name ?? 'web',
      namespace: o.ns ?? 'default',
      ...(o.labels ? { labels: o.labels } : {}),
      ...(o.annotations ? { annotations: o.annotations } : {}),
    },
    spec: {
      type: 'ClusterIP',
      clusterIP: '10.96.0.10',
      clusterIPs: ['10.96.0.10'],
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
      ...spec,
    },
    ...(o.ingress ? { status: { loadBalancer: { ingress: o.ingress } } } : {}),
  };
}

export interface EpOpts {
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  node?: string;
  zone?: string;
  hints?: string[];
  /** hints.forNodes names */
  nodeHints?: string[];
  pod?: string;
}

export function ep(addr: string, o: EpOpts = {}): V1Endpoint {
  const conditions: V1Endpoint['conditions'] = {};
  if (o.ready !== undefined) conditions.ready = o.ready;
  if (o.serving !== undefined) conditions.serving = o.serving;
  if (o.terminating !== undefined) conditions.terminating = o.terminating;
  return {
    addresses: [addr],
    conditions,
    ...(o.node ? { nodeName: o.node } : {}),
    ...(o.zone ? { zone: o.zone } : {}),
    ...(o.hints || o.nodeHints
      ? { hints: { ...(o.hints ? { forZones: o.hints.map((name) => ({ name })) } : {}), ...(o.nodeHints ? { forNodes: o.nodeHints.map((name) => ({ name })) } : {}) } }
      : {}),
    ...(o.pod ? { targetRef: { kind: 'Pod', name: o.pod, namespace: 'default' } } : {}),
  };
}

export function slice(
  name: string,
  ports: { name?: string; port?: number; protocol?: string }[],
  endpoints: V1Endpoint[],
  o: { service?: string; ns?: string; addressType?: string } = {},
): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: o.ns ?? 'default', labels: { 'kubernetes.io/service-name': o.service ?? 'web' } },
    addressType: o.addressType ?? 'IPv4',
    ports: ports.map((p) => ({ name: p.name ?? '', protocol: p.protocol ?? 'TCP', ...(p.port !== undefined ? { port: p.port } : {}) })),
    endpoints,
  };
}

/** One slice for the default "http" port 8080. */
export function httpSlice(...endpoints: V1Endpoint[]): V1EndpointSlice {
  return slice('web-abc', [{ name: 'http', port: 8080 }], endpoints);
}

export function node(o: { name?: string; zone?: string; addrs?: { type: string; address: string }[] } = {}): V1Node {
  return {
    metadata: { name: o.name ?? NODE, labels: { 'kubernetes.io/hostname': o.name ?? NODE, ...(o.zone ? { 'topology.kubernetes.io/zone': o.zone } : {}) } },
    status: { addresses: o.addrs ?? [{ type: 'InternalIP', address: '192.168.1.10' }, { type: 'Hostname', address: NODE }] },
  };
}

export const NODE_A: NodeInfo = nodeInfo(node({ zone: 'zone-a' }));

export function run(s: V1Service, slices: V1EndpointSlice[] = [], n: NodeInfo | undefined = NODE_A): TranslateResult {
  return translate(s, slices, n, { nodeName: NODE });
}

export function ok(s: V1Service, slices: V1EndpointSlice[] = [], n: NodeInfo | undefined = NODE_A): ServiceSpec {
  const r = run(s, slices, n);
  if (!r.ok) throw new Error(`expected ok, got skipped: ${r.skipped}`);
  return r.service;
}

export function fe(s: ServiceSpec, type: FrontendSpec['type'], scope: FrontendSpec['scope'], addr?: string | null): FrontendSpec {
  const f = s.frontends.find((x) => x.type === type && x.scope === scope && (addr === undefined || x.addr === addr));
  if (!f) throw new Error(`no ${type}/${scope} frontend in ${s.frontends.map((x) => x.id).join(', ')}`);
  return f;
}

/** Addresses of the backends new flows may use. */
export function picks(f: FrontendSpec): string[] {
  return f.backends.filter((b) => b.selectable).map((b) => b.addr);
}
