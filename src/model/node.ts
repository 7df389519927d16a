// The agent's own Node as the model needs it: name, addresses, zone, labels.
import type { V1Node } from '@kubernetes/client-node';
import type { NodeInfo } from './types.js';
import { canonicalIP, inCidr, parseCidr } from './ip.js';

/** The well-known label kube-proxy reads the node's zone from (topology-aware routing). */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

// Hostname and DNS addresses are names, not destinations a packet can carry.
const ADDRESS_TYPES = new Set(['InternalIP', 'ExternalIP']);

/** The well-known label of the node's region (topology, beside the zone). */
export const REGION_LABEL = 'topology.kubernetes.io/region';

/** The Node label that switches xlb on or off on this node. */
export const ENABLED_LABEL = 'xlb.io/enabled';

/** What a Node update changes for xlb; everything else (kubelet status writes) changes nothing. */
export interface NodeChange {
  /** InternalIP/ExternalIP addresses: node_addrs, the SNAT address, device detection */
  addresses: boolean;
  /** zone or region: Services that use topology-aware routing */
  topology: boolean;
  /** the xlb.io/enabled label */
  enabled: boolean;
}

/** Compare two views of the own Node (undefined: none listed) by the fields xlb reads. */
export function nodeChange(prev: NodeInfo | undefined, next: NodeInfo | undefined): NodeChange {
  const label = (n: NodeInfo | undefined, k: string) => n?.labels[k];
  return {
    addresses: (prev === undefined) !== (next === undefined) || (prev?.addresses ?? []).join() !== (next?.addresses ?? []).join(),
    topology: prev?.zone !== next?.zone || label(prev, REGION_LABEL) !== label(next, REGION_LABEL),
    enabled: label(prev, ENABLED_LABEL) !== label(next, ENABLED_LABEL),
  };
}

/** InternalIP/ExternalIP addresses of both families (canonical, deduplicated, status order), zone and labels. */
export function nodeInfo(node: V1Node): NodeInfo {
  const labels = { ...(node.metadata?.labels ?? {}) };
  const addresses: string[] = [];
  for (const a of node.status?.addresses ?? []) {
    const addr = ADDRESS_TYPES.has(a.type) && typeof a.address === 'string' ? canonicalIP(a.address) : null;
    if (addr && !addresses.includes(addr)) addresses.push(addr);
  }
  const zone = labels[ZONE_LABEL];
  return { name: node.metadata?.name ?? '', addresses, ...(zone ? { zone } : {}), labels };
}

/**
 * Node addresses that accept NodePort traffic, as kube-proxy's --nodeport-addresses: every
 * node address by default, else those inside one of the CIDRs (either family). Throws on a bad CIDR,
 * since this comes from the agent's own configuration.
 */
export function nodePortAddresses(node: NodeInfo, cidrs?: readonly string[]): string[] {
  if (!cidrs || cidrs.length === 0) return [...node.addresses];
  for (const c of cidrs) if (!parseCidr(c).ok) throw new RangeError(`nodePortAddresses: ${JSON.stringify(c)} is not a CIDR`);
  return node.addresses.filter((a) => cidrs.some((c) => inCidr(a, c)));
}
