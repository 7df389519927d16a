// The agent's own Node as the model needs it: name, addresses, zone, labels.
import type { V1Node } from '@kubernetes/client-node';
import type { NodeInfo } from './types.js';
import { isIPv4, ipv4Net, inIpv4Net, ipv4ToNumber } from './ip.js';

/** The well-known label kube-proxy reads the node's zone from (topology-aware routing). */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

// Hostname and DNS addresses are names, not destinations a packet can carry.
const ADDRESS_TYPES = new Set(['InternalIP', 'ExternalIP']);

/** IPv4 InternalIP/ExternalIP addresses (deduplicated, status order), zone and labels. */
export function nodeInfo(node: V1Node): NodeInfo {
  const labels = { ...(node.metadata?.labels ?? {}) };
  const addresses: string[] = [];
  for (const a of node.status?.addresses ?? []) {
    if (ADDRESS_TYPES.has(a.type) && isIPv4(a.address) && !addresses.includes(a.address)) addresses.push(a.address);
  }
  const zone = labels[ZONE_LABEL];
  return { name: node.metadata?.name ?? '', addresses, ...(zone ? { zone } : {}), labels };
}

/**
 * Node addresses that accept NodePort traffic, as kube-proxy's --nodeport-addresses: every
 * node address by default, else those inside one of the IPv4 CIDRs. Throws on a bad CIDR,
 * since this comes from the agent's own configuration.
 */
export function nodePortAddresses(node: NodeInfo, cidrs?: readonly string[]): string[] {
  if (!cidrs || cidrs.length === 0) return [...node.addresses];
  const nets = cidrs.map((c) => {
    const net = ipv4Net(c);
    if (!net) throw new RangeError(`nodePortAddresses: ${JSON.stringify(c)} is not an IPv4 CIDR`);
    return net;
  });
  return node.addresses.filter((a) => nets.some((net) => inIpv4Net(ipv4ToNumber(a)!, net)));
}
