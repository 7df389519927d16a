// One entry point for the agent: build the configured source of cluster state.
import type { Logger } from '../log.js';
import { KubeSource, type KubeConnection, type KubeSourceOptions } from './kube.js';
import { ManifestsSource } from './manifests.js';
import type { Source } from './types.js';

export type SourceConfig =
  | { kind: 'manifests'; nodeName: string; dir: string; rescanMs?: number; maxBytes?: number; maxDepth?: number; log?: Logger }
  | ({ kind: 'kube'; nodeName: string; connection: KubeConnection } & Omit<KubeSourceOptions, 'connection' | 'nodeName'>);

export function createSource(c: SourceConfig): Source {
  if (c.kind === 'manifests') {
    return new ManifestsSource({ dir: c.dir, nodeName: c.nodeName, rescanMs: c.rescanMs, maxBytes: c.maxBytes, maxDepth: c.maxDepth, log: c.log });
  }
  const { kind: _kind, ...opts } = c;
  return new KubeSource(opts);
}

export { KubeSource, ManifestsSource };
export { apiServerUrl, loadKubeConfig, PROXY_LABEL_SELECTOR, type KubeConnection } from './kube.js';
export { KeyQueue, type KeyQueueOptions } from './queue.js';
export * from './types.js';
export { noAddressReason } from './lbpools.js';
