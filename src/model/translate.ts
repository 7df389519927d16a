// Service + EndpointSlices + own Node -> the frontends and backends this node programs.
// Semantics follow the Kubernetes API field docs and kube-proxy where the docs leave room;
// each rule is pinned by a test in test/unit/model.translate.test.ts.
import type { V1Service, V1ServicePort, V1EndpointSlice } from '@kubernetes/client-node';
import type {
  BackendSpec, FrontendSpec, FrontendType, NodeInfo, Protocol, Scope, ServiceSpec, TranslateResult,
} from './types.js';
import { canonicalIP, FAMILY_NAME, frontendText, inCidr, ipFamily, parseCidr, type Family } from './ip.js';
import { clusterIPsOf, familyPolicy, serviceFamilies } from './families.js';
import { checkIdentity, skipReason, validateService } from './validate.js';
import { endpointsForPort, slicesOf, type EndpointInfo } from './endpoints.js';
import { selectBackends, type PolicyMode, type Topology } from './select.js';

export interface TranslateOptions {
  /** this node's name, matched against endpoints' nodeName to find local endpoints */
  nodeName: string;
  /**
   * CIDRs whose addresses a Service may claim in spec.externalIPs (CVE-2020-8554: anyone who
   * can create a Service could otherwise intercept traffic to any address). Empty: none.
   * Undefined: no guard (the agent always passes its --external-ip-cidrs).
   */
  externalIPCidrs?: readonly string[];
}

export const ANNOTATION_TOPOLOGY_MODE = 'service.kubernetes.io/topology-mode';
export const ANNOTATION_TOPOLOGY_HINTS = 'service.kubernetes.io/topology-aware-hints';
/** spec.sessionAffinityConfig.clientIP.timeoutSeconds default (3 hours) */
export const DEFAULT_AFFINITY_TIMEOUT_SEC = 10800;

export function frontendId(
  service: string, portName: string, proto: Protocol, type: FrontendType, addr: string | null, port: number, scope: Scope, family: Family = 4,
): string {
  // join() makes one flat string; a template literal left a tree of concatenations (~360 bytes
  // an id, kept for as long as the Service is: 7 MB at 10,000 Services).
  return [service, portName, proto, type, frontendText(addr, port, family), scope].join('|');
}

/** Whether the Service asks for topology-aware routing (its endpoints then depend on the node's zone). */
export function topologyRequested(svc: V1Service): boolean {
  const ann = svc.metadata?.annotations ?? {};
  // topology-mode supersedes the legacy annotation when both are set, as in kube-proxy.
  const mode = ann[ANNOTATION_TOPOLOGY_MODE] ?? ann[ANNOTATION_TOPOLOGY_HINTS];
  const td = svc.spec!.trafficDistribution;
  return mode?.toLowerCase() === 'auto' || td === 'PreferClose' || td === 'PreferSameZone' || td === 'PreferSameNode';
}

/**
 * addrs (valid, canonical) by family, duplicates dropped; those of a family the Service is not
 * served in are named in a warning, as kube-proxy logs them ("wrong family").
 */
function byFamily(addrs: readonly string[], what: string, served: readonly Family[], warn: (m: string) => void): Map<Family, string[]> {
  const out = new Map<Family, string[]>(served.map((f) => [f, []]));
  for (const a of addrs) {
    const c = canonicalIP(a);
    if (!c) continue;
    const list = out.get(ipFamily(c)!);
    if (!list) warn(`${what} ${c} is ${FAMILY_NAME[ipFamily(c)!]}, a family this Service has no ClusterIP of; ignored`);
    else if (!list.includes(c)) list.push(c);
  }
  return out;
}

function loadBalancerIPs(svc: V1Service, warn: (m: string) => void): string[] {
  const ips: string[] = [];
  for (const ing of svc.status?.loadBalancer?.ingress ?? []) {
    if (!ing.ip) {
      if (ing.hostname) warn(`load balancer ingress ${ing.hostname} has no IP (hostname-only ingress is not programmed)`);
      continue;
    }
    // ipMode Proxy: the load balancer rewrites the destination itself, so the node must not
    // capture the VIP (kube-proxy skips these too).
    if (ing.ipMode === 'Proxy') continue;
    if (ipFamily(ing.ip)) ips.push(ing.ip);
    else warn(`load balancer ingress IP ${JSON.stringify(ing.ip)} is not an IP address; ignored`);
  }
  return ips;
}

/**
 * Valid loadBalancerSourceRanges per served family (each family's frontends are guarded by the
 * ranges of that family, as each of kube-proxy's per-family proxiers does); invalid entries are
 * ignored with a warning (kube-proxy).
 */
function sourceRanges(svc: V1Service, served: readonly Family[], warn: (m: string) => void): Map<Family, string[]> {
  const given = svc.spec!.loadBalancerSourceRanges ?? [];
  const out = new Map<Family, string[]>(served.map((f) => [f, []]));
  for (const r of given) {
    const p = parseCidr(r);
    if (!p.ok) warn(`loadBalancerSourceRanges entry ${JSON.stringify(r)} is not a CIDR; ignored`);
    else if (!out.get(p.family)?.includes(p.cidr)) out.get(p.family)?.push(p.cidr);
  }
  for (const [f, list] of out) {
    const name = FAMILY_NAME[f];
    if (given.length > 0 && list.length === 0) warn(`no usable ${name} loadBalancerSourceRanges: ${name} load balancer traffic is not restricted`);
  }
  return out;
}

/** One family the Service is served in: its ClusterIP and the addresses of that family. */
interface FamilyCtx {
  family: Family;
  clusterIP: string;
  lbIPs: string[];
  externalIPs: string[];
  ranges: string[];
}

interface ServiceCtx {
  key: string;
  type: ServiceSpec['type'];
  /** the families with a ClusterIP, primary first */
  families: FamilyCtx[];
  affinityTimeoutSec: number;
  iTPLocal: boolean;
  eTPLocal: boolean;
  /** false only for LoadBalancer with allocateLoadBalancerNodePorts=false */
  allocateNodePorts: boolean;
  topo: Topology;
}

interface Target {
  type: FrontendType;
  addr: string | null;
  port: number;
}

function targetsOf(ctx: ServiceCtx, fc: FamilyCtx, p: V1ServicePort, warn: (m: string) => void): Target[] {
  const t: Target[] = [{ type: 'ClusterIP', addr: fc.clusterIP, port: p.port }];
  if (ctx.type !== 'ClusterIP') {
    if (p.nodePort) t.push({ type: 'NodePort', addr: null, port: p.nodePort });
    else if (ctx.allocateNodePorts) warn(`port ${p.name || p.port}: no nodePort allocated; NodePort not programmed`);
  }
  if (ctx.type === 'LoadBalancer') for (const addr of fc.lbIPs) t.push({ type: 'LoadBalancer', addr, port: p.port });
  for (const addr of fc.externalIPs) t.push({ type: 'ExternalIP', addr, port: p.port });
  return t;
}

/**
 * ClusterIP follows internalTrafficPolicy from anywhere. The externally-facing addresses follow
 * externalTrafficPolicy for traffic arriving on a device, but a pod on this node reaching them
 * gets cluster-wide endpoints, as kube-proxy routes local traffic to external destinations.
 */
function policyFor(ctx: ServiceCtx, type: FrontendType, scope: Scope): PolicyMode {
  if (type === 'ClusterIP') return ctx.iTPLocal ? 'local' : 'cluster';
  return scope === 'external' && ctx.eTPLocal ? 'local' : 'cluster';
}

function portFrontends(
  ctx: ServiceCtx, fc: FamilyCtx, p: V1ServicePort, proto: Protocol, eps: EndpointInfo[], warn: (m: string) => void, seen: Set<string>,
): FrontendSpec[] {
  const portName = p.name ?? '';
  // One frozen list per policy, made when a frontend needs it and shared by every frontend
  // of the port that uses that policy (at 10,000 Services the copies were tens of MB).
  const lists: Partial<Record<PolicyMode, readonly BackendSpec[]>> = {};
  const listFor = (mode: PolicyMode): readonly BackendSpec[] =>
    (lists[mode] ??= Object.freeze(selectBackends(eps, mode, ctx.topo).map((b) => Object.freeze(b))));
  const out: FrontendSpec[] = [];
  for (const t of targetsOf(ctx, fc, p, warn)) {
    const where = `${frontendText(t.addr, t.port, fc.family)}/${proto}`;
    if (seen.has(where)) {
      warn(`${t.type} ${where} repeats an address:port of this Service; ignored`);
      continue;
    }
    seen.add(where);
    for (const scope of ['internal', 'external'] as const) {
      const mode = policyFor(ctx, t.type, scope);
      out.push({
        id: frontendId(ctx.key, portName, proto, t.type, t.addr, t.port, scope, fc.family),
        service: ctx.key,
        portName,
        type: t.type,
        addr: t.addr,
        family: fc.family,
        port: t.port,
        proto,
        scope,
        backends: listFor(mode),
        affinityTimeoutSec: ctx.affinityTimeoutSec,
        // The rule: the ranges guard the NodePort too, or it would be a way around them.
        sourceRanges: t.type === 'LoadBalancer' || t.type === 'NodePort' ? [...fc.ranges] : [],
        localOnly: mode === 'local',
        // Maglev keeps a flow on one backend whichever node an upstream load balancer picks;
        // that matters for NodePort/LB/external IPs. A ClusterIP reached from outside has no
        // such balancer in front of it, and a table per ClusterIP would cost 64 KiB and a
        // map-in-map update (an RCU grace period) for every Service: random slots serve it.
        maglev: scope === 'external' && t.type !== 'ClusterIP',
      });
    }
  }
  return out;
}

/** spec.externalIPs this node may serve; each refused one is named in a warning. */
function allowedExternalIPs(addrs: string[], cidrs: readonly string[] | undefined, warn: (m: string) => void): string[] {
  if (!cidrs) return addrs;
  return addrs.filter((a) => {
    if (cidrs.some((c) => inCidr(a, c))) return true;
    warn(`externalIP ${a} refused: not inside --external-ip-cidrs (${cidrs.join(',') || 'empty: no externalIPs allowed'})`);
    return false;
  });
}

function serviceCtx(svc: V1Service, key: string, node: NodeInfo | undefined, opts: TranslateOptions, warn: (m: string) => void): ServiceCtx {
  const spec = svc.spec!;
  const type = (spec.type ?? 'ClusterIP') as ServiceSpec['type'];
  const external = type === 'NodePort' || type === 'LoadBalancer';
  const clusterIPs = clusterIPsOf(spec).map(canonicalIP).filter((a) => a !== null);
  // kube-proxy serves a Service in a family only if it has a ClusterIP of that family.
  const served = serviceFamilies(spec).filter((f) => clusterIPs.some((a) => ipFamily(a) === f));
  for (const f of serviceFamilies(spec)) {
    if (!served.includes(f) && familyPolicy(spec) === 'RequireDualStack') warn(`ipFamilyPolicy RequireDualStack, but no ${FAMILY_NAME[f]} ClusterIP: not served over ${FAMILY_NAME[f]}`);
  }
  const lbIPs = byFamily(type === 'LoadBalancer' ? loadBalancerIPs(svc, warn) : [], 'load balancer ingress IP', served, warn);
  const externalIPs = byFamily(allowedExternalIPs(spec.externalIPs ?? [], opts.externalIPCidrs, warn), 'externalIP', served, warn);
  const ranges = type === 'LoadBalancer' ? sourceRanges(svc, served, warn) : new Map<Family, string[]>();
  return {
    key,
    type,
    families: served.map((family) => ({
      family,
      clusterIP: clusterIPs.find((a) => ipFamily(a) === family)!,
      lbIPs: lbIPs.get(family) ?? [],
      externalIPs: externalIPs.get(family) ?? [],
      ranges: ranges.get(family) ?? [],
    })),
    affinityTimeoutSec:
      spec.sessionAffinity === 'ClientIP'
        ? spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_SEC
        : 0,
    iTPLocal: spec.internalTrafficPolicy === 'Local',
    // The API allows externalTrafficPolicy only where a NodePort exists.
    eTPLocal: external && spec.externalTrafficPolicy === 'Local',
    allocateNodePorts: !(type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts === false),
    topo: { requested: topologyRequested(svc), node: opts.nodeName, ...(node?.zone ? { zone: node.zone } : {}) },
  };
}

function protocolOf(p: V1ServicePort, warn: (m: string) => void): Protocol | null {
  const proto = p.protocol ?? 'TCP';
  if (proto === 'TCP' || proto === 'UDP') return proto;
  warn(`port ${p.name || p.port}: SCTP unsupported; port skipped`);
  return null;
}

/**
 * Desired datapath state for one Service on this node. Never throws: invalid objects and
 * Services xlb does not proxy come back as { ok: false } with the reason.
 */
export function translate(
  svc: V1Service, slices: readonly V1EndpointSlice[], node: NodeInfo | undefined, opts: TranslateOptions,
): TranslateResult {
  const identity = checkIdentity(svc);
  if (identity) return { ok: false, skipped: `invalid Service: ${identity}`, invalid: true };
  const skip = skipReason(svc);
  if (skip) return { ok: false, skipped: skip };
  const invalid = validateService(svc);
  if (invalid) return { ok: false, skipped: `invalid Service: ${invalid}`, invalid: true };

  const warnings = new Set<string>();
  const warn = (m: string): void => void warnings.add(m);
  const ns = svc.metadata!.namespace ?? 'default';
  const key = `${ns}/${svc.metadata!.name}`;
  const ctx = serviceCtx(svc, key, node, opts, warn);
  if (ctx.families.length === 0) return { ok: false, skipped: 'no ClusterIP allocated' };

  const own = slicesOf(slices, ns, svc.metadata!.name!);
  const epCtx = { nodeName: opts.nodeName, publishNotReady: svc.spec!.publishNotReadyAddresses === true, warn };
  const frontends: FrontendSpec[] = [];
  // Per family: a dual-stack pod is one endpoint in each family's slices, not two (kube-proxy's
  // health check server counts one family's endpoints).
  const localReady = new Map<Family, Set<string>>(ctx.families.map((fc) => [fc.family, new Set<string>()]));
  const seen = new Set<string>();
  for (const p of svc.spec!.ports!) {
    const proto = protocolOf(p, warn);
    if (!proto) continue;
    for (const fc of ctx.families) {
      const eps = endpointsForPort(own, p.name ?? '', proto, fc.family, epCtx);
      for (const ep of eps) if (ep.local && ep.ready) localReady.get(fc.family)!.add(ep.addr);
      frontends.push(...portFrontends(ctx, fc, p, proto, eps, warn, seen));
    }
  }

  // slice(): an exact-size copy; the pushed-to array keeps spare room for 17 (kept per Service).
  const service: ServiceSpec = { key, type: ctx.type, frontends: frontends.slice(), localReadyEndpoints: Math.max(0, ...[...localReady.values()].map((s) => s.size)), warnings: [...warnings] };
  const hc = svc.spec!.healthCheckNodePort;
  if (ctx.type === 'LoadBalancer' && ctx.eTPLocal && hc) service.healthCheckNodePort = hc;
  return { ok: true, service };
}
