// EndpointSlices -> the endpoints serving one Service port, with their conditions resolved the
// way the discovery.k8s.io/v1 API defines nil values and the way kube-proxy merges slices.
import type { V1EndpointSlice, V1Endpoint } from '@kubernetes/client-node';
import type { Protocol } from './types.js';
import { canonicalIP, FAMILY_NAME, ipFamily, type Family } from './ip.js';
import { endpointAddressProblem, SERVICE_NAME_LABEL } from './validate.js';

export interface EndpointInfo {
  addr: string;
  port: number;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  local: boolean;
  nodeName?: string;
  zone?: string;
  /** hints.forZones names; undefined when the endpoint carries none */
  zoneHints?: Set<string>;
  /** hints.forNodes names (trafficDistribution PreferSameNode); undefined when none */
  nodeHints?: Set<string>;
  target?: string;
}

export interface EndpointContext {
  nodeName: string;
  /** spec.publishNotReadyAddresses: every endpoint counts as ready */
  publishNotReady: boolean;
  warn: (msg: string) => void;
}

export { SERVICE_NAME_LABEL };

/** Slices that belong to namespace/name; a slice without the label is taken as given. */
export function slicesOf(slices: readonly V1EndpointSlice[], namespace: string, name: string): V1EndpointSlice[] {
  return slices.filter((s) => {
    const owner = s.metadata?.labels?.[SERVICE_NAME_LABEL];
    const ns = s.metadata?.namespace;
    return (owner === undefined || owner === name) && (ns === undefined || ns === namespace);
  });
}

function toInfo(ep: V1Endpoint, addr: string, port: number, ctx: EndpointContext): EndpointInfo {
  const c = ep.conditions ?? {};
  // API: ready nil = true, serving nil = true, terminating nil = false.
  const ready = ctx.publishNotReady || c.ready !== false;
  const info: EndpointInfo = {
    addr,
    port,
    ready,
    serving: c.serving !== false,
    terminating: c.terminating === true,
    local: ctx.nodeName !== '' && ep.nodeName === ctx.nodeName,
  };
  if (ep.nodeName) info.nodeName = ep.nodeName;
  if (ep.zone) info.zone = ep.zone;
  const zones = ep.hints?.forZones?.map((z) => z.name).filter((z) => z);
  if (zones && zones.length > 0) info.zoneHints = new Set(zones);
  const nodes = ep.hints?.forNodes?.map((n) => n.name).filter((n) => n);
  if (nodes && nodes.length > 0) info.nodeHints = new Set(nodes);
  if (ep.targetRef?.name) info.target = ep.targetRef.name;
  return info;
}

/** Slices of the family's addressType; others (FQDN) are named in a warning. */
function sliceOfFamily(slice: V1EndpointSlice, family: Family, ctx: EndpointContext): boolean {
  if (slice.addressType === 'IPv4' || slice.addressType === 'IPv6') return slice.addressType === FAMILY_NAME[family];
  ctx.warn(`EndpointSlice ${slice.metadata?.name ?? '?'}: addressType ${JSON.stringify(slice.addressType)} ignored`);
  return false;
}

/**
 * Endpoints of one IP family serving the Service port (portName, proto): as kube-proxy, a
 * Service's IPv4 and IPv6 slices feed its two families separately. A slice port matches by name and
 * protocol, and a slice without that port contributes nothing. The same address:port in
 * several slices is merged as kube-proxy does: slices in name order, a later copy replaces an
 * earlier one unless it is terminating (an endpoint moving between slices, or a new pod that
 * reuses a terminating pod's IP).
 */
export function endpointsForPort(
  slices: readonly V1EndpointSlice[],
  portName: string,
  proto: Protocol,
  family: Family,
  ctx: EndpointContext,
): EndpointInfo[] {
  const byKey = new Map<string, EndpointInfo>();
  const name = (s: V1EndpointSlice): string => s.metadata?.name ?? '';
  const ordered = [...slices].sort((a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0));
  for (const slice of ordered) {
    if (!sliceOfFamily(slice, family, ctx)) continue;
    const sp = (slice.ports ?? []).find((p) => (p.name ?? '') === portName && (p.protocol ?? 'TCP') === proto);
    if (!sp) continue;
    if (!Number.isInteger(sp.port) || sp.port! < 1 || sp.port! > 65535) {
      ctx.warn(`EndpointSlice ${slice.metadata?.name ?? '?'}: port ${JSON.stringify(portName)} has no valid port number`);
      continue;
    }
    for (const ep of slice.endpoints ?? []) {
      const addr = typeof ep?.addresses?.[0] === 'string' ? canonicalIP(ep.addresses[0]) : null;
      if (addr === null || ipFamily(addr) !== family) {
        ctx.warn(`EndpointSlice ${slice.metadata?.name ?? '?'}: endpoint address ${JSON.stringify(ep?.addresses?.[0])} is not an ${FAMILY_NAME[family]} address`);
        continue;
      }
      const refused = endpointAddressProblem(addr);
      if (refused) {
        ctx.warn(`EndpointSlice ${slice.metadata?.name ?? '?'}: endpoint ${addr} refused: it ${refused}`);
        continue;
      }
      const info = toInfo(ep, addr, sp.port!, ctx);
      const key = `${info.addr}:${info.port}`;
      if (!byKey.has(key) || !info.terminating) byKey.set(key, info);
    }
  }
  return [...byKey.values()];
}
