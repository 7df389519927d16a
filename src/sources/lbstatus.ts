// Kube mode: the leader writes each LoadBalancer Service's address into
// status.loadBalancer.ingress (ip, ipMode VIP) through the status subresource, only when it
// differs from what the Service holds, and empties it when a Service lost its address (type
// changed, pool shrunk); likewise each pool's status (used, free, conflicts). What to write is
// a pure function of the Services, the pools and the allocation, so a new leader writes
// nothing that is already right.
import type { V1Service } from '@kubernetes/client-node';
import type { KubeClient } from './kubeclient.js';
import { inAnyPool, POOL_API_VERSION, wantsAddress, type Allocation, type LoadBalancerIPPool, type PoolStatus } from '../model/ipam.js';
import type { Logger } from '../log.js';
import { describe } from './reflector.js';
import { objectKey } from './types.js';

export interface Ingress {
  ip: string;
  ipMode: 'VIP';
}

export interface StatusWrite {
  key: string;
  namespace: string;
  name: string;
  /** the version the write is based on: the API server refuses it if the Service moved on */
  resourceVersion: string;
  ingress: Ingress[];
}

export interface PoolStatusWrite {
  /** pool/NAME */
  key: string;
  pool: string;
  resourceVersion: string;
  status: PoolStatus;
}

/** Pools whose status differs from the allocation's count of them. */
export function poolStatusWrites(pools: readonly LoadBalancerIPPool[], alloc: Allocation): PoolStatusWrite[] {
  const out: PoolStatusWrite[] = [];
  for (const p of pools) {
    const name = p.metadata?.name ?? '';
    const want = alloc.pools.get(name);
    const cur = p.status;
    if (!want || (cur && cur.used === want.used && cur.free === want.free && JSON.stringify(cur.conflicts ?? []) === JSON.stringify(want.conflicts))) continue;
    out.push({ key: `pool/${name}`, pool: name, resourceVersion: p.metadata?.resourceVersion ?? '', status: want });
  }
  return out;
}

/**
 * The status writes that make the Services agree with the allocation. With no pool at all
 * xlb assigns nothing, so it leaves every status alone (another controller, or a person, may
 * own them). A Service that is no longer xlb's (type changed) is emptied only if its ingress
 * lies in xlb's pools.
 */
export function statusWrites(services: readonly V1Service[], pools: readonly LoadBalancerIPPool[], alloc: Allocation): StatusWrite[] {
  if (!pools.length) return [];
  const out: StatusWrite[] = [];
  for (const s of services) {
    const key = objectKey(s.metadata);
    const current = (s.status?.loadBalancer?.ingress ?? []).map((i) => ({ ip: i.ip ?? '', ipMode: i.ipMode }));
    let want: Ingress[];
    if (wantsAddress(s)) want = (alloc.services.get(key)?.addresses ?? []).map((ip) => ({ ip, ipMode: 'VIP' }));
    else if (current.length && current.every((i) => inAnyPool(i.ip, pools))) want = [];
    else continue;
    if (current.length === want.length && current.every((c, i) => c.ip === want[i]!.ip && c.ipMode === want[i]!.ipMode)) continue;
    out.push({ key, namespace: s.metadata?.namespace || 'default', name: s.metadata?.name ?? '', resourceVersion: s.metadata?.resourceVersion ?? '', ingress: want });
  }
  return out;
}

/** Carries out status writes, one pass at a time; a pass asked for during one runs after it. */
export class LbStatusWriter {
  /** key -> the resourceVersion a write was based on: until the watch delivers the result, not again */
  private readonly done = new Map<string, string>();
  private running: Promise<void> | undefined;
  private pending: (() => Array<StatusWrite | PoolStatusWrite>) | undefined;
  private allowed: () => boolean = () => true;
  private retry: NodeJS.Timeout | undefined;
  /** status writes done (each one PATCH) */
  writes = 0;

  constructor(
    private readonly api: KubeClient,
    private readonly log: Logger,
    private readonly retryMs = 5000,
  ) {}

  /**
   * Runs `plan()` (read when the pass starts, so it sees the latest cache) and writes, each
   * write only while `allowed()` (still the leader).
   */
  sync(plan: () => Array<StatusWrite | PoolStatusWrite>, allowed: () => boolean = () => true): Promise<void> {
    this.pending = plan;
    this.allowed = allowed;
    this.running ??= this.drain().finally(() => (this.running = undefined));
    return this.running;
  }

  stop(): void {
    clearTimeout(this.retry);
    this.pending = undefined;
  }

  private async drain(): Promise<void> {
    while (this.pending) {
      const plan = this.pending;
      this.pending = undefined;
      let failed = false;
      for (const w of plan()) {
        const tag = `${w.resourceVersion}|${JSON.stringify('pool' in w ? w.status : w.ingress)}`;
        if (this.done.get(w.key) === tag) continue;
        if (!this.allowed()) break;
        try {
          await this.write(w);
          this.done.set(w.key, tag);
        } catch (e) {
          const code = (e as { code?: number }).code;
          // 409: the Service changed since this cache saw it; its watch event brings another pass.
          // 404: it is gone. Anything else is retried.
          if (code === 404) this.done.delete(w.key);
          if (code === 409 || code === 404) this.log.debug({ object: w.key, err: describe(e) }, 'status write skipped');
          else {
            failed = true;
            this.log.warn({ object: w.key, err: describe(e) }, 'status write failed; retrying');
          }
        }
      }
      if (failed) {
        clearTimeout(this.retry);
        const allowed = this.allowed;
        this.retry = setTimeout(() => void this.sync(plan, allowed), this.retryMs);
        this.retry.unref();
      }
    }
  }

  /** One merge patch of a status subresource (the ingress list replaced as a whole), with the resourceVersion it is based on as precondition. */
  private async write(w: StatusWrite | PoolStatusWrite): Promise<void> {
    const metadata = { resourceVersion: w.resourceVersion };
    if ('pool' in w) {
      await this.api.mergePatch(`/apis/${POOL_API_VERSION}/loadbalancerippools/${encodeURIComponent(w.pool)}/status`, { metadata, status: w.status });
      this.log.debug({ pool: w.pool, ...w.status }, 'pool status written');
      return;
    }
    await this.api.mergePatch(`/api/v1/namespaces/${encodeURIComponent(w.namespace)}/services/${encodeURIComponent(w.name)}/status`, { metadata, status: { loadBalancer: { ingress: w.ingress } } });
    this.writes++;
    this.log.info({ svc: w.key, ingress: w.ingress.map((i) => i.ip) }, w.ingress.length ? 'load balancer address written' : 'load balancer address released');
  }
}
