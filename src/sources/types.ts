// The contract between a source of cluster state (kube API or a manifests directory) and the
// agent. A source owns a read-only cache; the agent reads it after a 'change' event and never
// mutates the returned objects.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

export type { V1EndpointSlice, V1Node, V1Service };

export type ChangeKind = 'service' | 'slices' | 'node';

export { SERVICE_NAME_LABEL } from '../model/validate.js';

export interface ClusterView {
  services(): V1Service[];
  /** key = namespace/name */
  service(key: string): V1Service | undefined;
  /** EndpointSlices whose kubernetes.io/service-name label names this Service. */
  slices(serviceKey: string): V1EndpointSlice[];
  /** The agent's own node. */
  node(): V1Node | undefined;
}

export interface Problem {
  file?: string;
  /** 0-based index of the YAML document within the file */
  doc?: number;
  kind?: string;
  name?: string;
  reason: string;
}

/** One address's announce Lease campaign (kube mode); the holder answers ARP for the address. */
export interface AnnounceCampaign {
  readonly holding: boolean;
  /** the Lease's holder as last read ('' = none) */
  readonly holder: string;
  /** stops campaigning; a holder releases the Lease unless `release` is false */
  stop(release?: boolean): Promise<void>;
}

export interface AnnounceHandlers {
  /** the Lease was won (true) or lost / given up (false) */
  onChange(holding: boolean): void;
  /** at every acquisition and renewal, before onChange(true): how long from now the hold lasts */
  onRenew(validForMs: number): void;
  /** wait this long after seeing the Lease free before taking it (the rendezvous order) */
  acquireDelayMs: number;
}

export interface Source extends ClusterView {
  /** Resolves once every initial list is complete: the agent never programs from a partial view. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** key: service key (namespace/name) for 'service' and 'slices', node name for 'node'. */
  on(ev: 'change', fn: (kind: ChangeKind, key: string) => void): this;
  /** An object that was invalid or skipped. */
  on(ev: 'problem', fn: (p: Problem) => void): this;
  on(ev: 'connection', fn: (state: 'up' | 'down', detail?: string) => void): this;
  readonly synced: boolean;
  /** The agent's warnings for a Service after translating it (kube mode turns some into Events). */
  reportWarnings?(key: string, warnings: readonly string[]): void;
  /** Kube mode: campaign for the Lease that lets this node announce `addr` (none in manifests mode). */
  announceLease?(addr: string, h: AnnounceHandlers): AnnounceCampaign;
  /** Manifests mode: every Node object in the directory (kube mode watches only its own). */
  nodes?(): V1Node[];
  /** how far the initial read is, while it runs (a source that cannot tell leaves it out) */
  readonly progress?: { stage: string; done: number; total: number };
}

export function objectKey(meta: { namespace?: string; name?: string } | undefined): string {
  return `${meta?.namespace || 'default'}/${meta?.name ?? ''}`;
}
