// Which endpoints take new flows, per traffic policy, as kube-proxy's CategorizeEndpoints
// decides it: readiness, the KEP-1669 serving+terminating fallback, and topology hints.
import type { BackendSpec, BackendState } from './types.js';
import type { EndpointInfo } from './endpoints.js';
import { compareIpv4 } from './ip.js';

export type PolicyMode = 'cluster' | 'local';

export interface Topology {
  /** the Service asked for zone-aware routing (topology-mode annotation / trafficDistribution) */
  requested: boolean;
  /** this node's zone */
  zone?: string;
}

/**
 * Hints are used only if every ready endpoint carries zone hints and at least one names this
 * node's zone; otherwise routing falls back to every endpoint, so a half-rolled-out hint set
 * never blackholes a zone.
 */
export function canUseTopology(eps: readonly EndpointInfo[], topo: Topology): boolean {
  if (!topo.requested || !topo.zone) return false;
  let hasZone = false;
  for (const ep of eps) {
    if (!ep.ready) continue;
    if (!ep.zoneHints) return false;
    if (ep.zoneHints.has(topo.zone)) hasZone = true;
  }
  return hasZone;
}

const fallback = (ep: EndpointInfo): boolean => ep.serving && ep.terminating;

function clusterChoice(eps: readonly EndpointInfo[], topo: Topology): Set<EndpointInfo> {
  const useTopology = canUseTopology(eps, topo);
  const ready = eps.filter((ep) => ep.ready && (!useTopology || ep.zoneHints!.has(topo.zone!)));
  // The fallback ignores topology: it is a last resort to avoid dropping traffic.
  return new Set(ready.length > 0 ? ready : eps.filter(fallback));
}

function localChoice(eps: readonly EndpointInfo[]): Set<EndpointInfo> {
  const local = eps.filter((ep) => ep.local);
  const ready = local.filter((ep) => ep.ready);
  return new Set(ready.length > 0 ? ready : local.filter(fallback));
}

export function backendState(ep: EndpointInfo): BackendState {
  if (ep.ready) return 'active';
  return fallback(ep) ? 'terminating' : 'draining';
}

/**
 * Every endpoint of the port as a backend (so established flows keep theirs), with
 * `selectable` marking the ones new flows may use under this policy. Sorted by address, port.
 */
export function selectBackends(eps: readonly EndpointInfo[], mode: PolicyMode, topo: Topology): BackendSpec[] {
  const chosen = mode === 'local' ? localChoice(eps) : clusterChoice(eps, topo);
  return [...eps]
    .sort((a, b) => compareIpv4(a.addr, b.addr) || a.port - b.port)
    .map((ep) => {
      const b: BackendSpec = {
        addr: ep.addr,
        port: ep.port,
        state: backendState(ep),
        selectable: chosen.has(ep),
        local: ep.local,
        weight: 1,
      };
      if (ep.nodeName) b.nodeName = ep.nodeName;
      if (ep.zone) b.zone = ep.zone;
      if (ep.target) b.target = ep.target;
      return b;
    });
}
