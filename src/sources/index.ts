// One entry point for the agent: build the configured source of cluster state. The kube
// source (and with it the Kubernetes client, ~70 MB of RSS once loaded) is imported only when
// it is the one configured.
import type { Logger } from '../log.js';
import type { KubeConnection, KubeSourceOptions } from './kube.js';
import { ManifestsSource } from './manifests.js';
import type { Source } from './types.js';

export type SourceConfig =
  | { kind: 'manifests'; nodeName: string; dir: string; rescanMs?: number; maxBytes?: number; maxDepth?: number; log?: Logger }
  | ({ kind: 'kube'; nodeName: string; connection: KubeConnection } & Omit<KubeSourceOptions, 'connection' | 'nodeName'>);

export async function createSource(c: SourceConfig): Promise<Source> {
  if (c.kind === 'manifests') {
    return new ManifestsSource({ dir: c.dir, nodeName: c.nodeName, rescanMs: c.rescanMs, maxBytes: c.maxBytes, maxDepth: c.maxDepth, log: c.log });
  }
  const { kind: _kind, ...opts } = c;
  const { KubeSource } = await import('./kube.js');
  return new KubeSource(opts);
}

export { ManifestsSource };
export type { KubeConnection };
export { KeyQueue, type KeyQueueOptions } from './queue.js';
export * from './types.js';
export { noAddressReason } from './lbpools.js';
