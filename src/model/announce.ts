// Which node announces a LoadBalancer address on the local network (answers ARP/NDP for it,
// bpf/include/announce.h). Pure: the same Services, slices and Nodes give the same answer on
// every node. A node is eligible for an address when it is Ready, xlb runs on it, it is not
// labelled node.kubernetes.io/exclude-from-external-load-balancers and, for every Service
// with externalTrafficPolicy Local on the address, it has a ready endpoint of it. Among the
// eligible nodes the order is a rendezvous hash of (address, node name): each address has
// its own first choice, and a node leaving moves only the addresses it was first for.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { hashString } from './hash.js';
import { canonicalIP, inCidr, isIPv4 } from './ip.js';
import { wantsAddress } from './ipam.js';

export const EXCLUDE_LB_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

/** What eligibility needs of a node; `enabled` is xlb's on/off decision for it. */
export interface AnnounceNode {
  name: string;
  enabled: boolean;
  node: V1Node | undefined;
}

export type Eligibility = { ok: true; why: string } | { ok: false; why: string };

/** Ready unless its Ready condition says otherwise (a hand-written Node has none). */
export function nodeReady(n: V1Node | undefined): boolean {
  const c = n?.status?.conditions?.find((x) => x.type === 'Ready');
  return !c || c.status === 'True';
}

/** The LoadBalancer addresses xlb assigned the Service (its status ingress), canonical. */
export function announcedAddresses(svc: V1Service): string[] {
  if (!wantsAddress(svc)) return [];
  return (svc.status?.loadBalancer?.ingress ?? []).map((i) => canonicalIP(i.ip ?? '')).filter((a): a is string => a !== null);
}

function localReadyEndpoint(node: string, slices: readonly V1EndpointSlice[]): boolean {
  return slices.some((s) => (s.endpoints ?? []).some((e) => e.nodeName === node && e.conditions?.ready !== false));
}

/** Whether the node may announce an address these Services (with their slices) share. */
export function eligibility(n: AnnounceNode, services: ReadonlyArray<{ svc: V1Service; slices: readonly V1EndpointSlice[] }>): Eligibility {
  if (!n.node) return { ok: false, why: 'no Node object' };
  if (!nodeReady(n.node)) return { ok: false, why: 'node not Ready' };
  if (!n.enabled) return { ok: false, why: 'xlb off on this node' };
  if (n.node.metadata?.labels?.[EXCLUDE_LB_LABEL] !== undefined) return { ok: false, why: `node labelled ${EXCLUDE_LB_LABEL}` };
  const local = services.filter((s) => s.svc.spec?.externalTrafficPolicy === 'Local');
  const without = local.find((s) => !localReadyEndpoint(n.name, s.slices));
  if (without) return { ok: false, why: `externalTrafficPolicy Local: no ready endpoint of ${without.svc.metadata?.namespace ?? 'default'}/${without.svc.metadata?.name} here` };
  return { ok: true, why: local.length ? 'eligible: ready, xlb on, a local ready endpoint (externalTrafficPolicy Local)' : 'eligible: ready, xlb on' };
}

/** The node's rendezvous score for an address: the lowest score is the first choice. */
export function announceScore(addr: string, node: string): number {
  return hashString(`${addr}/${node}`, 0x5eed);
}

/** The eligible nodes in the order they should hold the address (first: the announcer). */
export function announceOrder(addr: string, eligible: readonly string[]): string[] {
  return [...new Set(eligible)].sort((a, b) => announceScore(addr, a) - announceScore(addr, b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** Services by the LoadBalancer address they were assigned (several when they share it). */
export function servicesByAddress(services: readonly V1Service[]): Map<string, V1Service[]> {
  const out = new Map<string, V1Service[]>();
  for (const s of services) {
    for (const a of announcedAddresses(s)) out.set(a, [...(out.get(a) ?? []), s]);
  }
  return out;
}

export interface DeviceAddr { ifindex: number; name: string; mac: string | null; cidrs: string[] }

/** The device whose subnet holds the address (the longest prefix), or undefined: then no
 *  neighbour asks this node for it on any link, and it is not announced. */
export function deviceFor(addr: string, devices: readonly DeviceAddr[]): DeviceAddr | undefined {
  const hostBits = isIPv4(addr) ? 32 : 128;
  let best: { d: DeviceAddr; bits: number } | undefined;
  for (const d of devices) {
    for (const c of d.cidrs) {
      const [host, len] = c.split('/');
      const bits = Number(len);
      // Not the device's own address or a host prefix (/32, /128): those hold no neighbours.
      if (bits >= hostBits || host === addr || !inCidr(addr, c)) continue;
      if (!best || bits > best.bits) best = { d, bits };
    }
  }
  return best?.d;
}
