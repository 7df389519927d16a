// What the agent exposes to the status API, the CLI, /healthz and /metrics. The agent
// implements AgentView from the state it already keeps; everything here is plain data so
// this module has no side effects and no gRPC dependency.
import type { EventEmitter } from 'node:events';
import type { ServiceSpec } from '../model/types.js';

/** Where the agent serves the status API and the CLI looks for it. */
export const DEFAULT_API_SOCKET = '/run/xlb/xlb.sock';

export type EnabledReason = 'label' | 'toggle' | 'default';

export interface DeviceInfo {
  name: string;
  ifindex: number;
  /** native, generic or offload */
  xdpMode: string;
  progId: number;
  linkId: number;
}

export interface PodInterfaceInfo {
  name: string;
  progIds: number[];
}

export interface MapFill {
  name: string;
  entries: number;
  maxEntries: number;
}

export interface KernelCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface StatusInfo {
  node: string;
  enabled: boolean;
  /** what decided `enabled`: the Node label, `xlb toggle`, or the configured default */
  reason: EnabledReason;
  devices: DeviceInfo[];
  podInterfaces: PodInterfaceInfo[];
  pinPath: string;
  /** ms since the epoch of the last completed sync; 0 = never */
  lastSync: number;
  pendingChanges: number;
  mapFill: MapFill[];
  kernel: { release: string; checks: KernelCheck[] };
  source: { kind: 'kube' | 'manifests'; synced: boolean; connection: string };
  /** --snat-port-range, the ports of it the node uses (left out), ports held by live flows
   *  (as of the last conntrack sweep) */
  snatPorts: { first: number; last: number; skipped: number; used: number };
  /** while starting: the source's initial read, then programming every Service */
  progress?: Progress;
  /** LoadBalancer addresses xlb assigned, whether this node announces each and why */
  lbAddresses: LbAddressInfo[];
  /** ARP answered by the datapath (announce_stats), takeovers and failed gratuitous ARPs of this agent */
  announce: { arpReplies: number; arpExpired: number; ndpReplies: number; ndpExpired: number; takeovers: number; garpErrors: number };
  /** node_addrs (the Node's and its devices' addresses, both families) and the SNAT address of each family */
  addresses?: { node: string[]; snat: string[] };
  /** switched off and draining: flows xlb still translates, seconds until it detaches anyway */
  drain?: { flows: number; secondsLeft: number };
}

/** A LoadBalancer address as this node sees it. */
export interface LbAddressInfo {
  addr: string;
  /** namespace/name of the Services on it */
  services: string[];
  /** this node answers ARP for it */
  announcing: boolean;
  /** the announcing node as far as this node knows ('' = unknown) */
  announcer: string;
  /** why this node announces it, or why not */
  why: string;
  /** the device whose subnet holds it ('' = none) */
  device: string;
  /** ms since the epoch this node took it over; 0 = not announcing */
  since: number;
}

export interface Progress {
  stage: string;
  done: number;
  total: number;
}

/** One decoded map entry. Values may hold bigint (u64 counters); the API turns them into JSON. */
export interface DecodedEntry {
  key: Record<string, unknown>;
  value: Record<string, unknown>;
}

export interface DecodedMap {
  name: string;
  /** hash, lru_hash, array, percpu_array, lpm_trie, ... */
  type: string;
  maxEntries: number;
  entries: DecodedEntry[];
}

export type DecodedMaps = DecodedMap[];

export interface ServiceStats {
  /** namespace/name */
  svc: string;
  /** addr:port/proto scope (IPv6 in brackets) */
  frontend: string;
  /** IPv4 or IPv6 */
  ipFamily?: 'IPv4' | 'IPv6';
  packets: number;
  bytes: number;
  newFlows: number;
}

export interface StatsInfo {
  services: ServiceStats[];
  /** drop reason name -> packets */
  drops: Record<string, number>;
  conntrack: { entries: number; max: number };
}

/** Emitted as `view.events.emit('programmed', ev)` after each Service is (re)programmed. */
export interface ProgrammedEvent {
  /** ms since the epoch */
  time: number;
  service: string;
  frontends: number;
  backends: number;
  durationMs: number;
  ok: boolean;
  error?: string;
}

export interface HealthInfo {
  /** ms since the epoch of the last time the datapath matched the desired state; 0 = never */
  lastUpdated: number;
  /** ms since the epoch of the oldest change not yet applied; null = nothing pending */
  pendingSince: number | null;
  /** false while the Node is being deleted or tainted ToBeDeletedByClusterAutoscaler */
  nodeEligible: boolean;
}

/** Which Services a listing covers; an absent or empty field matches everything. */
export interface ServiceFilter {
  namespace?: string;
  /** Service name; without namespace, in every namespace */
  name?: string;
  /** the Service's type, any case */
  type?: string;
}

export interface AgentView {
  status(): StatusInfo;
  /** the LoadBalancer addresses (status().lbAddresses without the rest) */
  lbAddresses(): LbAddressInfo[];
  /** desired state, sorted by key (namespace/name); see selectServices() in sorted.ts */
  services(filter?: ServiceFilter): ServiceSpec[];
  /** actual state, decoded from the pinned maps */
  maps(): Promise<DecodedMaps>;
  /** the same, those named (all when none), a map in chunks of its name; NOT_FOUND for a name that is no map */
  mapChunks(names: string[]): AsyncIterable<DecodedMap>;
  /** counters of the frontends of the Services the filter selects, in their order */
  stats(filter?: ServiceFilter): Promise<StatsInfo>;
  /** 'programmed' events (ProgrammedEvent) */
  readonly events: EventEmitter;
  /** Manifests mode; in kube mode throws ViewError('FAILED_PRECONDITION', ...). */
  toggle(on: boolean): Promise<{ enabled: boolean; reason: string }>;
  health(): HealthInfo;
}

/** gRPC status names the API maps a ViewError to (grpc.status.<code>). */
export type ViewErrorCode = 'FAILED_PRECONDITION' | 'INVALID_ARGUMENT' | 'UNAVAILABLE' | 'NOT_FOUND' | 'INTERNAL';

/** An error a view method throws on purpose: the API answers with this code and message. */
export class ViewError extends Error {
  constructor(readonly code: ViewErrorCode, message: string) {
    super(message);
    this.name = 'ViewError';
  }
}

/** Throws NOT_FOUND naming the maps there are when a requested name is not one of them. */
export function checkMapNames(names: string[], available: string[]): void {
  const unknown = names.filter((n) => !available.includes(n));
  if (unknown.length) throw new ViewError('NOT_FOUND', `no map named ${unknown.join(', ')} (maps: ${available.join(', ')})`);
}
