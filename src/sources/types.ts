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
  /** how far the initial read is, while it runs (a source that cannot tell leaves it out) */
  readonly progress?: { stage: string; done: number; total: number };
}

export function objectKey(meta: { namespace?: string; name?: string } | undefined): string {
  return `${meta?.namespace || 'default'}/${meta?.name ?? ''}`;
}
