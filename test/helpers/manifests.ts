// Builders for Kubernetes objects as tests write them (plain JSON, what YAML or the API
// server carries), temp manifest directories, and polling helpers.
import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

export type KObj = Record<string, any>;

export interface PortDef {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: 'TCP' | 'UDP';
  nodePort?: number;
}

export function service(name: string, o: { ns?: string; clusterIP?: string; type?: string; ports?: PortDef[]; labels?: Record<string, string> } = {}): KObj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: o.ns ?? 'default', ...(o.labels ? { labels: o.labels } : {}) },
    spec: {
      type: o.type ?? 'ClusterIP',
      clusterIP: o.clusterIP ?? '10.96.0.10',
      ports: o.ports ?? [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
    },
  };
}

export function slice(name: string, svc: string, addrs: string[], o: { ns?: string; port?: number; labels?: Record<string, string> } = {}): KObj {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: o.ns ?? 'default', labels: { 'kubernetes.io/service-name': svc, ...(o.labels ?? {}) } },
    addressType: 'IPv4',
    endpoints: addrs.map((a) => ({ addresses: [a], conditions: { ready: true, serving: true, terminating: false } })),
    ports: [{ name: 'http', port: o.port ?? 8080, protocol: 'TCP' }],
  };
}

export function node(name: string, addr = '192.168.50.2', labels: Record<string, string> = {}): KObj {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels },
    status: { addresses: [{ type: 'InternalIP', address: addr }] },
  };
}

/** A LoadBalancerIPPool (deploy/crd-loadbalancerippool.yaml) as a user writes it. */
export function ipPool(name: string, addresses: string[], spec: KObj = {}): KObj {
  return { apiVersion: 'xlb.io/v1alpha1', kind: 'LoadBalancerIPPool', metadata: { name }, spec: { addresses, ...spec } };
}

/** Multi-document YAML, as kubectl would read it. */
export function yamlDocs(...objs: unknown[]): string {
  return objs.map((o) => stringify(o)).join('---\n');
}

export class ManifestDir {
  private constructor(readonly path: string) {}

  static async create(): Promise<ManifestDir> {
    return new ManifestDir(await mkdtemp(join(tmpdir(), 'xlb-manifests-')));
  }

  async write(file: string, text: string): Promise<void> {
    await writeFile(join(this.path, file), text);
  }

  /** Save the way many editors do: write a temp file, then rename it over the original. */
  async writeByRename(file: string, text: string): Promise<void> {
    const tmp = join(this.path, `.${file}.tmp${process.pid}`);
    await writeFile(tmp, text);
    await rename(tmp, join(this.path, file));
  }

  async remove(file: string): Promise<void> {
    await rm(join(this.path, file));
  }

  async cleanup(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
  }
}

/** Polls `cond` until it holds; fails with `what` after `timeoutMs`. Returns the elapsed ms. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000, stepMs = 10): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return Date.now() - t0;
}
