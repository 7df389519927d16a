// Prometheus metrics. Names follow kube-proxy's where the meaning is the same (with xlb_
// instead of kubeproxy_), so existing dashboards map over. Datapath counters and map fill are
// read from the AgentView at scrape time; sync timings are pushed by the agent.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { child } from '../log.js';
import type { ServerResponse } from 'node:http';
import { listenHttp, splitHostPort, type HttpEndpoint } from './http.js';
import type { AgentView, StatsInfo } from './view.js';

// Resolved per use so a logger installed after import (tests, the agent's config) applies.
const log = () => child('metrics');

/** kube-proxy's sync buckets: 1 ms doubling to ~16 s. */
const SYNC_BUCKETS = Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i);
/** Change-to-programmed latency: finer than kube-proxy's at the low end, same tail. */
const PROGRAMMING_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];
/** One stats read serves every metric of one scrape. */
const STATS_REUSE_MS = 500;

export class XlbMetrics {
  readonly registry = new Registry();
  private readonly syncDuration: Histogram;
  private readonly programming: Histogram;
  private readonly lastSync: Gauge;
  private readonly svcChangesPending: Gauge;
  private readonly epChangesPending: Gauge;
  private readonly svcChanges: Counter;
  private readonly epChanges: Counter;
  private statsRead?: { at: number; p: Promise<StatsInfo | undefined> };
  /** per-frontend counters: their label sets live only while a scrape renders them */
  private readonly perService: Counter[] = [];
  private rendering = 0;

  constructor(private readonly view: AgentView, opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.syncDuration = new Histogram({ name: 'xlb_sync_proxy_rules_duration_seconds', help: 'Time of one sync of desired state into the BPF maps', buckets: SYNC_BUCKETS, registers });
    this.programming = new Histogram({ name: 'xlb_network_programming_duration_seconds', help: 'Time from a Service or EndpointSlice change to its datapath state being programmed', buckets: PROGRAMMING_BUCKETS, registers });
    this.lastSync = new Gauge({ name: 'xlb_sync_proxy_rules_last_timestamp_seconds', help: 'Unix time of the last completed sync', registers });
    this.svcChangesPending = new Gauge({ name: 'xlb_sync_proxy_rules_service_changes_pending', help: 'Service changes not yet programmed', registers });
    this.epChangesPending = new Gauge({ name: 'xlb_sync_proxy_rules_endpoint_changes_pending', help: 'EndpointSlice changes not yet programmed', registers });
    this.svcChanges = new Counter({ name: 'xlb_sync_proxy_rules_service_changes_total', help: 'Service changes seen', registers });
    this.epChanges = new Counter({ name: 'xlb_sync_proxy_rules_endpoint_changes_total', help: 'EndpointSlice changes seen', registers });
    this.registerViewMetrics(registers);
  }

  observeSync(seconds: number): void {
    this.syncDuration.observe(seconds);
    this.lastSync.set(Date.now() / 1000);
  }

  observeProgramming(seconds: number): void {
    this.programming.observe(seconds);
  }

  serviceChange(): void {
    this.svcChanges.inc();
  }

  endpointChange(): void {
    this.epChanges.inc();
  }

  setPending(services: number, endpoints: number): void {
    this.svcChangesPending.set(services);
    this.epChangesPending.set(endpoints);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The exposition text. The per-frontend label sets (three per frontend: ~10 MB at 10,000
   * Services) and the stats read they came from are dropped once it is rendered: each scrape
   * builds them afresh from the datapath counters, so between scrapes the agent holds none.
   */
  async render(): Promise<string> {
    this.rendering++;
    try {
      return await this.registry.metrics();
    } finally {
      // the last of overlapping scrapes drops them: an earlier one must not empty a later one's
      if (--this.rendering === 0) {
        for (const c of this.perService) c.reset();
        this.statsRead = undefined;
      }
    }
  }

  private stats(): Promise<StatsInfo | undefined> {
    const now = Date.now();
    if (!this.statsRead || now - this.statsRead.at > STATS_REUSE_MS) {
      const p = this.view.stats().catch((e: unknown) => {
        log().warn({ err: (e as Error).message }, 'datapath counters unavailable');
        return undefined;
      });
      this.statsRead = { at: now, p };
    }
    return this.statsRead.p;
  }

  private registerViewMetrics(registers: Registry[]): void {
    const view = this.view;
    const stats = () => this.stats();
    new Gauge({
      name: 'xlb_enabled', help: '1 when the datapath is attached on this node', registers,
      collect() { this.set(view.status().enabled ? 1 : 0); },
    });
    new Gauge({
      name: 'xlb_map_entries', help: 'Entries in a pinned BPF map', labelNames: ['map'], registers,
      collect() { this.reset(); for (const m of view.status().mapFill) this.set({ map: m.name }, m.entries); },
    });
    new Gauge({
      name: 'xlb_map_max_entries', help: 'Capacity of a pinned BPF map', labelNames: ['map'], registers,
      collect() { this.reset(); for (const m of view.status().mapFill) this.set({ map: m.name }, m.maxEntries); },
    });
    new Gauge({
      name: 'xlb_conntrack_entries', help: 'Connection tracking entries in use', registers,
      async collect() { const s = await stats(); this.reset(); if (s) this.set(s.conntrack.entries); },
    });
    new Gauge({
      name: 'xlb_conntrack_max_entries', help: 'Connection tracking capacity', registers,
      async collect() { const s = await stats(); this.reset(); if (s) this.set(s.conntrack.max); },
    });
    new Gauge({
      name: 'xlb_snat_ports_used', help: 'Node source ports held by live SNATed flows (as of the last conntrack sweep)', registers,
      collect() { this.set(view.status().snatPorts.used); },
    });
    new Gauge({
      name: 'xlb_snat_ports_available', help: 'Ports of --snat-port-range SNAT may use (ports the node uses left out)', registers,
      collect() { const p = view.status().snatPorts; this.set(p.last ? p.last - p.first + 1 - p.skipped : 0); },
    });
    new Counter({
      name: 'xlb_announce_arp_replies_total', help: 'ARP requests for an announced LoadBalancer address the datapath answered', registers,
      collect() { this.reset(); this.inc(view.status().announce.arpReplies); },
    });
    new Counter({
      name: 'xlb_announce_arp_expired_total', help: 'ARP requests for an address whose announcement had expired (not answered)', registers,
      collect() { this.reset(); this.inc(view.status().announce.arpExpired); },
    });
    new Counter({
      name: 'xlb_announce_ndp_replies_total', help: 'IPv6 neighbour solicitations for an announced LoadBalancer address the datapath answered', registers,
      collect() { this.reset(); this.inc(view.status().announce.ndpReplies); },
    });
    new Counter({
      name: 'xlb_announce_ndp_expired_total', help: 'IPv6 neighbour solicitations for an address whose announcement had expired (not answered)', registers,
      collect() { this.reset(); this.inc(view.status().announce.ndpExpired); },
    });
    new Counter({
      name: 'xlb_announce_takeovers_total', help: 'LoadBalancer addresses this node took over (then sent gratuitous ARP or unsolicited neighbour advertisements)', registers,
      collect() { this.reset(); this.inc(view.status().announce.takeovers); },
    });
    new Gauge({
      name: 'xlb_announced_addresses', help: 'LoadBalancer addresses this node answers ARP for', registers,
      collect() { this.set(view.lbAddresses().filter((a) => a.announcing).length); },
    });
    new Counter({
      name: 'xlb_datapath_drops_total', help: 'Packets the datapath dropped, by reason', labelNames: ['reason'], registers,
      async collect() {
        const s = await stats();
        this.reset();
        for (const [reason, n] of Object.entries(s?.drops ?? {})) this.inc({ reason }, n);
      },
    });
    const perService = (name: string, help: string, pick: (x: StatsInfo['services'][number]) => number): void => {
      this.perService.push(new Counter({
        // ip_family as kube-proxy labels its per-family metrics (IPv4, IPv6).
        name, help, labelNames: ['service', 'frontend', 'ip_family'], registers,
        async collect() {
          const s = await stats();
          this.reset();
          for (const x of s?.services ?? []) this.inc({ service: x.svc, frontend: x.frontend, ip_family: x.ipFamily ?? 'IPv4' }, pick(x));
        },
      }));
    };
    perService('xlb_service_packets_total', 'Packets the datapath load-balanced, per Service frontend', (x) => x.packets);
    perService('xlb_service_bytes_total', 'Bytes the datapath load-balanced, per Service frontend', (x) => x.bytes);
    perService('xlb_service_new_flows_total', 'New connections the datapath load-balanced, per Service frontend', (x) => x.newFlows);
  }
}

/** What GET /proxyMode answers: kube-proxy names its mode there (iptables, ipvs, nftables). */
export const PROXY_MODE = 'xlb';

export interface MetricsServerOptions {
  /** the agent's effective configuration, served as /configz (kube-proxy's component config) */
  config?: Record<string, unknown>;
}

/**
 * The paths kube-proxy serves on its metrics address, so tooling written for it (the
 * Kubernetes e2e suite reads /proxyMode, monitoring reads /metrics) works unchanged:
 * /metrics, /proxyMode, /healthz ("ok": the process answers) and /configz.
 * bindAddress "host:port" (port 0 picks one).
 */
export function startMetricsServer(metrics: XlbMetrics, bindAddress: string, opts: MetricsServerOptions = {}): Promise<HttpEndpoint> {
  const { host, port } = splitHostPort(bindAddress);
  const text = (res: ServerResponse, status: number, body: string): void =>
    void res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' }).end(body);
  return listenHttp((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/proxyMode') return text(res, 200, PROXY_MODE);
    if (path === '/healthz') return text(res, 200, 'ok');
    if (path === '/configz') {
      return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(`${JSON.stringify({ xlb: opts.config ?? {} })}\n`);
    }
    if (path !== '/metrics') return text(res, 404, 'not found; try /metrics, /proxyMode, /healthz or /configz\n');
    metrics.render().then(
      (body) => res.writeHead(200, { 'Content-Type': metrics.contentType }).end(body),
      (e: unknown) => text(res, 500, `${(e as Error).message}\n`),
    );
  }, host, port);
}
