// Source backed by the Kubernetes API: Services, EndpointSlices (discovery.k8s.io/v1) and the
// agent's own Node, each through a Reflector (list, then watch from the list's
// resourceVersion; see reflector.ts for what the pinned client library does and does not do).
//
// Label selector: kube-proxy (cmd/kube-proxy/app/server.go) builds ONE selector,
// `!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless`, and applies it
// through a shared informer factory to both its Service and its EndpointSlice informers.
// The EndpointSlice controller copies a Service's labels onto its slices and adds the
// headless label for headless Services, so the same selector drops the slices of Services
// another proxy owns and of headless Services. kube-proxy puts no managed-by requirement on
// slices (it also consumes slices mirrored or written by other controllers), and neither do
// we. The own Node is watched with fieldSelector metadata.name=<node>, as kube-proxy does.
//
// The API server address always comes from configuration (a kubeconfig, or an explicit URL
// with the service-account credentials): inside a pod KUBERNETES_SERVICE_HOST is normally
// the `kubernetes` Service's ClusterIP, which nothing serves until xlb itself is up.
import { KubeClient, readKubeconfig, type KubeClusterConfig } from './kubeclient.js';
import { isIPv6 } from 'node:net';
import type { Logger } from '../log.js';
import { child } from '../log.js';
import { BaseSource } from './base.js';
import { Reflector, type ReflectorOptions, type ReflectorTuning } from './reflector.js';
import { objectKey, type AnnounceCampaign, type AnnounceHandlers, type Source } from './types.js';
import type { KindName } from './decode.js';
import { POOL_API_VERSION, POOL_KIND, PoolAssigner, type LoadBalancerIPPool } from './lbpools.js';
import { LeaseElector } from './lease.js';
import { canonicalIP } from '../model/ip.js';
import { LbStatusWriter, poolStatusWrites, statusWrites } from './lbstatus.js';
import { EventRecorder } from './events.js';

export const PROXY_LABEL_SELECTOR = '!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless';

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export type KubeConnection =
  /** a kubeconfig file, optionally a context other than its current one */
  | { kubeconfig: string; context?: string }
  /** the pod's service account (token file, CA) against an API server named in config */
  | { inCluster: true; server: string; serviceAccountDir?: string }
  /** an explicit URL; credentials optional */
  | { server: string; token?: string; tokenFile?: string; caFile?: string; insecureSkipTLSVerify?: boolean };

/** https URL for a host and port, as KUBERNETES_SERVICE_HOST/PORT-style settings give them. */
export function apiServerUrl(host: string, port: number | string): string {
  return `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;
}

/** Where the API server is and the credentials to use, from a kubeconfig or the settings given. */
export function loadKubeConfig(c: KubeConnection): KubeClusterConfig {
  if ('kubeconfig' in c) return readKubeconfig(c.kubeconfig, c.context);
  const server = checkServer(c.server, 'insecureSkipTLSVerify' in c && !!c.insecureSkipTLSVerify);
  if ('inCluster' in c) {
    const dir = c.serviceAccountDir ?? SA_DIR;
    // the token file is reread, so rotated service-account tokens keep working
    return { server, caFile: `${dir}/ca.crt`, tokenFile: `${dir}/token` };
  }
  return { server, caFile: c.caFile, token: c.token, tokenFile: c.token ? undefined : c.tokenFile, insecureSkipTLSVerify: !!c.insecureSkipTLSVerify };
}

function checkServer(server: string, insecure: boolean): string {
  let u: URL;
  try {
    u = new URL(server);
  } catch {
    throw new Error(`API server "${server}" is not a URL (expected https://host:port)`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`API server "${server}" must be an https:// URL`);
  if (u.protocol === 'http:' && !insecure) throw new Error(`API server "${server}" is plain http; use https, or set insecureSkipTLSVerify for a test server`);
  return server.replace(/\/+$/, '');
}

export interface KubeSourceOptions extends ReflectorTuning {
  connection: KubeConnection | KubeClient;
  nodeName: string;
  log?: Logger;
  /**
   * Campaign for the Lease that decides which agent writes LoadBalancer status and Events
   * (holder = nodeName). Without it this source only reads.
   */
  leaderElection?: LeaderElectionOptions;
}

export interface LeaderElectionOptions {
  namespace: string;
  /** default xlb-lb-status */
  leaseName?: string;
  /** default 15 s */
  durationMs?: number;
  /** default 5 s */
  renewMs?: number;
  /** Event updates per object at most this often (default 60 s) */
  eventIntervalMs?: number;
  /** per-address announce Leases (xlb-announce-ADDRESS): duration (default 15 s), renewed every third */
  announceDurationMs?: number;
}

export const LEASE_NAME = 'xlb-lb-status';

/** The Lease whose holder announces a LoadBalancer address (a DNS-1123 name: '.' and ':'
 *  become '-'; an IPv6 address ending in '::' gets a final '0', as a name must end in an
 *  alphanumeric, and no canonical address ends in '::0', so names stay distinct). */
export function announceLeaseName(addr: string): string {
  const name = `xlb-announce-${(canonicalIP(addr) ?? addr).replace(/[.:]/g, '-')}`;
  return name.endsWith('-') ? `${name}0` : name;
}

/** The warning translate gives for an externalIP outside --external-ip-cidrs. */
const EXTERNAL_IP_REFUSED = /^externalIP \S+ refused: /;

type Resource = 'services' | 'endpointslices' | 'nodes' | 'loadbalancerippools';

const POOL_PLURAL = 'loadbalancerippools';

export class KubeSource extends BaseSource implements Source {
  private readonly reflectors: Record<Resource, Reflector<KindName>>;
  private readonly states: Record<Resource, 'up' | 'down' | 'init'> = { services: 'init', endpointslices: 'init', nodes: 'init', loadbalancerippools: 'init' };
  /** LoadBalancer Services get their pool addresses here before the store sees them */
  private readonly assigner: PoolAssigner;
  private connected: boolean | undefined;
  private readonly log: Logger;
  private readonly leader?: { elector: LeaseElector; writer: LbStatusWriter; events: EventRecorder };
  private readonly client: KubeClient;
  /** refused externalIP warnings per Service key, as the agent last reported them */
  private readonly refused = new Map<string, string[]>();
  /** the allocation failure last recorded as an Event, per Service key */
  private readonly failed = new Map<string, string>();
  readonly server: string;

  constructor(private readonly opts: KubeSourceOptions) {
    super(opts.nodeName, 'resourceVersion');
    this.log = opts.log ?? child('sources.kube');
    const client = (this.client = opts.connection instanceof KubeClient ? opts.connection : new KubeClient(loadKubeConfig(opts.connection)));
    this.server = client.server;
    const s = this.store;
    const a = (this.assigner = new PoolAssigner(s, () => this.leaderPass()));
    const le = opts.leaderElection;
    if (le) {
      this.leader = {
        elector: new LeaseElector(client, {
          namespace: le.namespace, name: le.leaseName ?? LEASE_NAME, identity: opts.nodeName,
          durationMs: le.durationMs, renewMs: le.renewMs, log: this.log.child({ lease: le.leaseName ?? LEASE_NAME }),
          onChange: (leading) => this.onLeading(leading),
        }),
        writer: new LbStatusWriter(client, this.log.child({ component: 'lbstatus' })),
        events: new EventRecorder(client, { host: opts.nodeName, log: this.log.child({ component: 'events' }), intervalMs: le.eventIntervalMs }),
      };
      this.on('change', (kind, key) => {
        if (kind === 'service' && !this.service(key)) {
          this.refused.delete(key);
          this.failed.delete(key);
        }
      });
    }
    this.reflectors = {
      services: this.reflector('services', {
        kind: 'Service', apiVersion: 'v1', path: '/api/v1/services', labelSelector: PROXY_LABEL_SELECTOR,
        handlers: { replace: (x) => a.replaceServices(x), upsert: (o) => a.upsertService(o), remove: (o) => a.deleteService(objectKey(o.metadata)) },
      }),
      // Cluster-scoped pools; a cluster without the CRD simply has none (retried with backoff).
      loadbalancerippools: this.reflector('loadbalancerippools', {
        kind: POOL_KIND, apiVersion: POOL_API_VERSION, path: `/apis/${POOL_API_VERSION}/${POOL_PLURAL}`, mayBeAbsent: true,
        handlers: { replace: (x) => a.replacePools(x), upsert: (o) => a.upsertPool(o), remove: (o) => a.removePool(o) },
      }),
      endpointslices: this.reflector('endpointslices', {
        kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', path: '/apis/discovery.k8s.io/v1/endpointslices', labelSelector: PROXY_LABEL_SELECTOR,
        handlers: { replace: (a) => s.replaceSlices(a), upsert: (o) => s.upsertSlice(o), remove: (o) => s.deleteSlice(objectKey(o.metadata)) },
      }),
      nodes: this.reflector('nodes', {
        kind: 'Node', apiVersion: 'v1', path: '/api/v1/nodes', fieldSelector: `metadata.name=${opts.nodeName}`,
        handlers: { replace: (a) => s.replaceNodes(a), upsert: (o) => s.setNode(o), remove: () => s.setNode(undefined) },
      }),
    };
  }

  /** Resolves when Services, EndpointSlices, the Node and the pools have all been listed once. */
  async start(): Promise<void> {
    this.log.info({ server: this.server, node: this.opts.nodeName }, 'starting kube source');
    await Promise.all(Object.values(this.reflectors).map((r) => r.start()));
    this.isSynced = true;
    // Status is written only from a complete view.
    this.leader?.elector.start();
    this.log.info({ services: this.store.services().length, slices: this.store.sliceKeys().length, node: !!this.store.node() }, 'initial sync complete');
  }

  async stop(): Promise<void> {
    if (this.leader) {
      this.leader.writer.stop();
      this.leader.events.stop();
      await this.leader.elector.stop();
    }
    await Promise.all(Object.values(this.reflectors).map((r) => r.stop()));
  }

  /** Campaigns for the announce Lease of one address, in the leader election's namespace. */
  announceLease(addr: string, h: AnnounceHandlers): AnnounceCampaign {
    const le = this.opts.leaderElection;
    if (!le) throw new Error('announce Leases need leaderElection (its namespace)');
    const durationMs = le.announceDurationMs ?? 15_000;
    const name = announceLeaseName(addr);
    const e = new LeaseElector(this.client, {
      namespace: le.namespace, name, identity: this.opts.nodeName, durationMs, renewMs: durationMs / 3,
      log: this.log.child({ lease: name }), onChange: h.onChange, onRenew: h.onRenew, acquireDelayMs: h.acquireDelayMs,
    });
    e.start();
    return { get holding() { return e.isLeader; }, get holder() { return e.holder; }, stop: (release = true) => e.stop(release) };
  }

  /** Whether this agent holds the Lease (writes status and Events). */
  get leading(): boolean {
    return this.leader?.elector.isLeader ?? false;
  }

  /** Service status writes done and Events dropped by the rate limit (tests, logs). */
  leaderWork(): { statusWrites: number; eventsDropped: number } {
    return { statusWrites: this.leader?.writer.writes ?? 0, eventsDropped: this.leader?.events.dropped ?? 0 };
  }

  /** Resolves when the writes asked for so far are done (tests). */
  async settled(): Promise<void> {
    await this.leader?.writer.sync(() => [], () => this.leading);
    await this.leader?.events.flush();
  }

  /**
   * The agent's warnings for a Service after translating it: a refused externalIP becomes a
   * Warning Event (ExternalIPRefused) on the Service when it first appears, written by the
   * leader (with its own --external-ip-cidrs, normally the same on every node).
   */
  reportWarnings(key: string, warnings: readonly string[]): void {
    if (!this.leader) return;
    const now = warnings.filter((w) => EXTERNAL_IP_REFUSED.test(w));
    const before = this.refused.get(key) ?? [];
    if (now.length) this.refused.set(key, now); else this.refused.delete(key);
    if (!this.leading) return;
    const svc = this.service(key);
    for (const w of now) if (svc && !before.includes(w)) this.leader.events.record(svc, 'Warning', 'ExternalIPRefused', w);
  }

  private onLeading(leading: boolean): void {
    if (!leading || !this.leader) return;
    // A new leader writes what is missing and repeats the warnings it knows of (the Events
    // have deterministic names, so an existing one is continued, not duplicated).
    this.failed.clear();
    for (const [key, ws] of this.refused) {
      const svc = this.service(key);
      for (const w of ws) if (svc) this.leader.events.record(svc, 'Warning', 'ExternalIPRefused', w);
    }
    this.leaderPass();
  }

  /** As leader: Service and pool status for the current allocation, and an Event per new allocation failure. */
  private leaderPass(): void {
    const l = this.leader;
    if (!l || !this.isSynced || !this.leading) return;
    const a = this.assigner;
    void l.writer.sync(() => [
      ...statusWrites(a.rawServices(), a.poolList(), a.allocation()),
      ...poolStatusWrites(a.poolList(), a.allocation()),
    ], () => this.leading);
    if (!a.poolList().length) return; // no pool: xlb assigns nothing, so nothing failed
    for (const [key, asg] of a.allocation().services) {
      const svc = this.service(key);
      if (!asg.reason || !svc) {
        this.failed.delete(key);
        continue;
      }
      if (this.failed.get(key) === asg.reason) continue;
      this.failed.set(key, asg.reason);
      l.events.record(svc, 'Warning', 'AllocationFailed', asg.reason);
    }
  }

  /** Lists done per resource since start (a relist after 410 adds one). */
  listCount(resource: Resource): number {
    return this.reflectors[resource].lists;
  }

  private reflector<K extends KindName>(
    res: Resource,
    r: Omit<ReflectorOptions<K>, 'client' | 'onState' | 'log' | keyof ReflectorTuning>,
  ): Reflector<KindName> {
    const o = this.opts;
    return new Reflector<K>({
      ...r,
      client: this.client,
      log: this.log.child({ resource: res }),
      onState: (st, detail) => this.onState(res, st, detail),
      backoff: o.backoff, sleep: o.sleep, watchTimeoutSeconds: o.watchTimeoutSeconds,
      idleTimeoutMs: o.idleTimeoutMs, minHealthyWatchMs: o.minHealthyWatchMs, listTimeoutMs: o.listTimeoutMs,
      listPageSize: o.listPageSize,
    }) as unknown as Reflector<KindName>;
  }

  /** One 'connection' event per transition of the three watches taken together. */
  private onState(res: Resource, st: 'up' | 'down', detail?: string): void {
    this.states[res] = st;
    const up = Object.values(this.states).every((x) => x === 'up');
    if (st === 'down' && this.connected !== false) {
      this.connected = false;
      this.emit('connection', 'down', `${res}: ${detail ?? 'disconnected'}`);
    } else if (up && this.connected !== true) {
      this.connected = true;
      this.emit('connection', 'up', this.server);
    }
  }
}
