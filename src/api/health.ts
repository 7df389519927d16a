// kube-proxy's health contract, so load balancers and kubelet probes configured for
// kube-proxy work unchanged: /healthz and /livez on the health address, and one listener per
// LoadBalancer Service with externalTrafficPolicy Local on its healthCheckNodePort.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServiceSpec } from '../model/types.js';
import { child } from '../log.js';
import { listenHttp, splitHostPort, type HttpEndpoint } from './http.js';
import type { AgentView, HealthInfo } from './view.js';

// Resolved per use so a logger installed after import (tests, the agent's config) applies.
const log = () => child('health');

export interface ProxyHealth {
  healthy: boolean;
  /** ms since the epoch */
  lastUpdated: number;
  currentTime: number;
  nodeEligible: boolean;
}

/**
 * Unhealthy only when a queued change has waited longer than the timeout: an idle agent
 * with nothing to do is healthy. Like kube-proxy, a healthy answer reports lastUpdated as
 * now, because older clients read it as "the sync loop is alive".
 */
export function proxyHealth(view: AgentView, healthTimeoutMs: number, now = Date.now()): ProxyHealth {
  const h = view.health();
  const healthy = h.pendingSince === null || now - h.pendingSince < healthTimeoutMs;
  return { healthy, lastUpdated: healthy ? now : h.lastUpdated, currentTime: now, nodeEligible: h.nodeEligible };
}

/** Taint the cluster autoscaler puts on a node it is about to remove. */
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

/** The minimal Node shape eligibility depends on (a V1Node fits). */
export interface NodeLike {
  metadata?: { deletionTimestamp?: Date | string };
  spec?: { taints?: { key: string }[] };
}

/**
 * Bookkeeping behind AgentView.health(), for the agent to call: queued() when a change
 * arrives, updated() when the datapath matches everything queued so far, syncNode() on
 * every Node event.
 */
export class HealthTracker {
  private lastUpdated = 0;
  private pendingSince: number | null = null;
  private nodeEligible = true; // eligible while starting, until a Node event says otherwise

  constructor(private readonly now: () => number = Date.now) {}

  /** Keeps the oldest pending time: a stream of changes must not hide a stuck one. */
  queued(): void {
    if (this.pendingSince === null) this.pendingSince = this.now();
  }

  updated(): void {
    this.pendingSince = null;
    this.lastUpdated = this.now();
  }

  syncNode(node: NodeLike | undefined): void {
    if (!node) return;
    const deleting = Boolean(node.metadata?.deletionTimestamp);
    const draining = (node.spec?.taints ?? []).some((t) => t.key === TO_BE_DELETED_TAINT);
    this.nodeEligible = !deleting && !draining;
  }

  info(): HealthInfo {
    return { lastUpdated: this.lastUpdated, pendingSince: this.pendingSince, nodeEligible: this.nodeEligible };
  }
}

function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' });
  res.end(JSON.stringify(body));
}

export interface HealthServerOptions {
  healthTimeoutMs: number;
  /** injectable clock (tests) */
  now?: () => number;
}

export function startHealthServer(view: AgentView, bindAddress: string, opts: HealthServerOptions): Promise<HttpEndpoint> {
  const now = opts.now ?? Date.now;
  const { host, port } = splitHostPort(bindAddress);
  return listenHttp((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/healthz' && path !== '/livez') return sendJson(res, 404, { error: `no such path ${path}` });
    let h: ProxyHealth;
    try {
      h = proxyHealth(view, opts.healthTimeoutMs, now());
    } catch (e) {
      return sendJson(res, 500, { error: (e as Error).message });
    }
    const body: Record<string, unknown> = { lastUpdated: rfc3339(h.lastUpdated), currentTime: rfc3339(h.currentTime) };
    // livez answers "is the process making progress"; a node being drained is still alive.
    const ok = path === '/livez' ? h.healthy : h.healthy && h.nodeEligible;
    if (path === '/healthz') body.nodeEligible = h.nodeEligible;
    sendJson(res, ok ? 200 : 503, body);
  }, host, port);
}

/** A Service the node answers load balancer health checks for (on its healthCheckNodePort). */
export function wantsHealthCheck(s: ServiceSpec | undefined): boolean {
  return s?.type === 'LoadBalancer' && !!s.healthCheckNodePort;
}

interface HcInstance {
  port: number;
  endpoint: HttpEndpoint;
  localEndpoints: number;
}

/**
 * The healthCheckNodePort listeners. An external load balancer probes each node and sends
 * traffic only to nodes that answer 200, i.e. nodes with a local ready endpoint.
 */
export class HealthCheckServers {
  private readonly instances = new Map<string, HcInstance>();
  private chain: Promise<void> = Promise.resolve();

  /**
   * @param host address to listen on (0.0.0.0 in production, 127.0.0.1 in tests)
   * @param proxyHealthy the node's own health: an unhealthy agent fails every probe
   */
  constructor(private readonly host: string, private readonly proxyHealthy: () => boolean = () => true) {}

  /** Opens, updates and closes listeners to match `services`; calls run one after another. */
  sync(services: ServiceSpec[]): Promise<void> {
    const next = this.chain.then(() => this.apply(services));
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** service key -> bound port */
  ports(): Map<string, number> {
    return new Map([...this.instances].map(([k, i]) => [k, i.endpoint.port]));
  }

  close(): Promise<void> {
    return this.sync([]);
  }

  private async apply(services: ServiceSpec[]): Promise<void> {
    const want = new Map<string, ServiceSpec>();
    for (const s of services) if (wantsHealthCheck(s)) want.set(s.key, s);
    for (const [key, inst] of this.instances) {
      const w = want.get(key);
      if (!w || w.healthCheckNodePort !== inst.port) {
        this.instances.delete(key);
        await inst.endpoint.close();
        log().info({ svc: key, port: inst.port }, 'healthCheckNodePort closed');
      }
    }
    for (const [key, s] of want) {
      const inst = this.instances.get(key);
      if (inst) {
        inst.localEndpoints = s.localReadyEndpoints;
        continue;
      }
      await this.open(key, s);
    }
  }

  private async open(key: string, s: ServiceSpec): Promise<void> {
    const port = s.healthCheckNodePort as number;
    const inst = { port, localEndpoints: s.localReadyEndpoints } as HcInstance;
    try {
      inst.endpoint = await listenHttp((_req, res) => this.answer(key, res), this.host, port);
    } catch (e) {
      // Not recorded, so the next sync tries again (the port may be freed by then).
      log().error({ svc: key, port, err: (e as Error).message }, 'cannot open healthCheckNodePort');
      return;
    }
    this.instances.set(key, inst);
    log().info({ svc: key, port }, 'healthCheckNodePort open');
  }

  private answer(key: string, res: ServerResponse): void {
    const inst = this.instances.get(key);
    const [namespace, name] = key.split('/');
    const count = inst?.localEndpoints ?? 0;
    const healthy = this.proxyHealthy();
    sendJson(res, count > 0 && healthy ? 200 : 503, {
      service: { namespace, name },
      localEndpoints: count,
      serviceProxyHealthy: healthy,
    });
  }
}
