// `xlb agent`: keeps the datapath equal to the cluster. Source -> model.translate ->
// reconciler -> pinned maps; programs attached through pinned links; status over gRPC,
// /healthz and /metrics. Exiting (or kill -9) leaves maps and links pinned, so forwarding
// goes on and the next agent adopts them.
import { EventEmitter } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentOptions } from './options.js';
import { child, setLogLevel, type Logger } from '../log.js';
import { loadObject, possibleCpus, type BpfObject } from '../datapath/bpf.js';
import * as C from '../datapath/codecs.js';
import { Reconciler, mapsOf, type ReconcileResult } from '../datapath/reconcile.js';
import { NodeDatapath } from '../datapath/node.js';
import { KernelCtSweep, sweepConntrack } from '../datapath/ctgc.js';
import { topologyRequested, translate } from '../model/translate.js';
import { FrontendClaims, claimRank } from '../model/claims.js';
import { announcedAddresses } from '../model/announce.js';
import { nodeChange, nodeInfo } from '../model/node.js';
import type { NodeInfo, ServiceSpec } from '../model/types.js';
import { releaseMemory } from './memory.js';
import { ctLive, dropCount } from './inspect.js';
import { createSource, KeyQueue, noAddressReason, type Source } from '../sources/index.js';
import { proxyHealth, wantsHealthCheck } from '../api/health.js';
import { splitHostPort } from './options.js';
import { readTcpAuth, startApiServer, startHealthServer, startMetricsServer, HealthCheckServers, HealthTracker, XlbMetrics, SortedIndex } from '../api/index.js';
import type { ProgrammedEvent } from '../api/view.js';
import { ensureBpffs } from './bpffs.js';
import { capabilityError, seccompHint } from './caps.js';
import { Attacher, chooseDeviceMode, type DeviceChoice } from './attach.js';
import { NEXT_SUFFIX, PinMigration } from './pinmigrate.js';
import { allowLocalSource, checkDevices, detectDevices, listLinks, LinkMonitor, nodeAddresses, selectPodInterfaces } from './netlink.js';
import { probeSocketLb, resolveCgroup, sockConfig, sockPrograms, sockSkipped, type SockCgroup, type SockLbKernel } from './socklb.js';
import { nodePortsIn } from './ports.js';
import { Toggle } from './toggle.js';
import { DrainStore, drainDone, drainProgress, probeNfct, type Drain, type NfctKernel } from './switch.js';
import { StatusView, type AgentState } from './view.js';
import { Announcer } from './announce.js';
import type { LinkInfo } from './netlink.js';

/** Services per applyMany() of a full sync; the event loop gets a turn between batches. */
const SYNC_BATCH = 256;
/** Longest stretch of a full sync's translation before the event loop gets a turn. */
const TURN_MS = 10;

/** How often a drain's end is checked. */
const DRAIN_CHECK_MS = 1000;

const STATE_LINE = {
  on: 'xlb enabled on this node',
  off: 'xlb disabled on this node: programs detached',
  draining: 'xlb disabled on this node: draining (new flows go to the stack, xlb flows are still translated)',
} as const;

/** The queue key of the own Node: no Service key (namespace/name) can take this form. */
const NODE_KEY = '\0node';

/** The longest the datapath holds TCP packets it cannot place across a ct migration's link
 *  switch (config.carry_until): the agent ends it after its copy, within milliseconds to a
 *  fraction of a second; this bound ends it should the agent die in between. */
const CARRY_BOUND_S = 10;
const monotonicS = (): number => Number(process.hrtime.bigint() / 1_000_000_000n);

/** The largest table the kernel sweep walks in one program run (bpf/ct_sweep.c). */
const KERNEL_SWEEP_MAX_ENTRIES = 1 << 20;

/** build/bpf/xlb.o next to the package (dist/src/agent/run.js -> package root). */
export function objectPath(): string {
  if (process.env.XLB_BPF_OBJECT) return process.env.XLB_BPF_OBJECT;
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  return join(root, 'build', 'bpf', 'xlb.o');
}

/** The running agent: the fields AgentState names are what its status view (./view.ts) reads. */
export class Agent implements AgentState {
  readonly events = new EventEmitter();
  readonly view = new StatusView(this);
  private readonly log: Logger;
  obj!: BpfObject;
  rec!: Reconciler;
  nodeDp!: NodeDatapath;
  source!: Source;
  queue!: KeyQueue<string>;
  attacher!: Attacher;
  /** what this start did with pinned maps of another layout */
  migration!: PinMigration;
  private monitor = new LinkMonitor();
  readonly tracker = new HealthTracker();
  private metrics!: XlbMetrics;
  private hc!: HealthCheckServers;
  private closers: Array<() => Promise<void> | void> = [];
  readonly desired = new SortedIndex<ServiceSpec>();
  /** what each Service asks for, and which one owns a frontend several ask for */
  private readonly claims = new FrontendClaims();
  private node: NodeInfo | undefined;
  devices: string[] = [];
  podIfs: string[] = [];
  absent: string[] = [];
  private deviceModes = new Map<string, DeviceChoice>();
  readonly onOff: Toggle;
  lastSync = 0;
  private cpus = 1;
  private ctTimer?: NodeJS.Timeout;
  /** every initial list is in: changes are programmed from here on (the first full sync reads the rest) */
  listed = false;
  private readonly changedAt = new Map<string, number>();
  sockKernel: SockLbKernel = { ok: false, detail: 'not probed', cookie: 0, reap: false, v6: false };
  readonly sweepMs = Number(process.env.XLB_CT_SWEEP_MS ?? 5000);
  ctSweep: { kernel: boolean; detail: string; lastMs?: number; fallbacks?: number } = { kernel: false, detail: 'not probed' };
  private kernelSweep?: KernelCtSweep;
  sockCgroup: SockCgroup = {};
  nfctKernel: NfctKernel = { ok: false, detail: 'not probed' };
  /** switched off while xlb still translates flows it started: see applyEnabled() */
  drain: Drain | undefined;
  private readonly drains: DrainStore;
  private drainTimer?: NodeJS.Timeout;
  syncing: { stage: string; done: number; total: number } | undefined;
  /** called as the first full sync advances (the cold start's progress line) */
  private onProgress: (() => void) | undefined;
  private sweeping = false;
  announcer?: Announcer;
  /** Services with LoadBalancer addresses to announce, as of their last programming */
  private readonly announced = new Set<string>();
  /** the node devices xlb is attached to, as last listed */
  private deviceLinks: LinkInfo[] = [];

  constructor(readonly opts: AgentOptions) {
    this.log = child('agent');
    this.onOff = new Toggle(opts);
    this.drains = new DrainStore(opts);
  }

  /** on, off, or draining (off, still translating the flows xlb started). */
  get state(): 'on' | 'off' | 'draining' {
    return this.onOff.enabled ? 'on' : this.drain ? 'draining' : 'off';
  }

  // ---- lifecycle ----

  async start(): Promise<void> {
    const o = this.opts;
    // bpffs first: `ip -d` (checkDevices) can mount one at /sys/fs/bpf itself in a fresh mount
    // namespace, and the pin path must be decided before anything else touches it.
    await ensureBpffs(o.pinPath, o.mountBpffs);
    await checkDevices(o);
    // The source reads while the datapath loads (the verifier takes seconds of the kernel's
    // time): the manifests parse in a worker, the kube lists come in. Nothing is programmed
    // before the datapath is up and every list is in (listed).
    this.source = await createSource(o.source === 'manifests'
      ? { kind: 'manifests', nodeName: o.node, dir: o.manifests!, maxBytes: o.manifestMaxBytes, maxDepth: o.manifestMaxDepth, log: child('source') }
      : {
          kind: 'kube', nodeName: o.node, log: child('source'),
          connection: o.kubeconfig ? { kubeconfig: o.kubeconfig } : { inCluster: true, server: o.apiServer! },
          leaderElection: { namespace: o.leaseNamespace, announceDurationMs: o.announceLeaseDuration * 1000 },
        });
    this.source.on('problem', (p) => this.log.warn({ ...p }, 'object skipped'));
    this.source.on('connection', (state, detail) => this.log.info({ state, detail }, 'api connection'));
    const listing = this.source.start();
    listing.catch(() => undefined); // awaited below, once the datapath is up
    this.closers.push(() => this.source.stop());
    this.cpus = possibleCpus();
    this.sockKernel = probeSocketLb();
    if (!this.sockKernel.ok) this.log.warn({ socketLb: o.socketLb, kernel: this.sockKernel.detail }, 'socket LB hooks unavailable on this kernel');
    this.log.info({ conntrackSize: o.conntrackSize, from: o.conntrackSizeFrom }, 'conntrack size');
    // Maps pinned in another layout keep their entries: held open across the load, migrated
    // into the new maps before anything reads them, old pins replaced after the link switch.
    this.migration = new PinMigration(o.pinPath, child('migrate'), this.cpus);
    this.migration.openPinned();
    this.closers.push(() => this.migration.close());
    this.obj = await loadObject(objectPath(), {
      pinPath: o.pinPath,
      replaceMismatched: true,
      replacedPinSuffix: NEXT_SUFFIX,
      maxEntries: { [C.MAP.ct]: o.conntrackSize, [C.MAP.flowCache]: Math.max(1, o.flowCacheSize) },
      skipPrograms: sockSkipped(this.sockKernel),
    });
    this.closers.push(() => this.obj.close());
    C.verifyLayout(this.obj);
    const reasons = this.obj.map(C.MAP.drops).maxEntries;
    if (reasons !== C.DROP_MAX) throw new Error(`layout check: the BPF object counts ${reasons} drop reasons, codecs name ${C.DROP_MAX}`);
    await this.migration.migrate(this.obj);
    this.rec = new Reconciler(mapsOf(this.obj), { maglevM: o.maglevTableSize, cpus: this.cpus });
    this.nfctKernel = probeNfct(o.netfilterLookup);
    this.log.info({ netfilterLookup: this.nfctKernel.detail }, 'netfilter conntrack lookup');
    this.nodeDp = new NodeDatapath(this.obj, {
      peerDelivery: o.localDelivery === 'peer', nfct: this.nfctKernel.ok, nodePortRange: o.nodePortRange, snatPortRange: o.snatPortRange,
      maglevM: o.maglevTableSize, conntrackSize: o.conntrackSize, flowCacheSize: o.flowCacheSize, cpus: this.cpus,
      sock: sockConfig(o.socketLb, this.sockKernel.cookie),
    });
    // A drain the previous agent started goes on from the first config write: the pinned
    // programs and the pinned config's flag kept it running meanwhile.
    this.drain = this.drains.read();
    this.nodeDp.setDrain(this.drain !== undefined);
    const adopted = await this.rec.adoptPinned();
    this.log.info({ pinPath: o.pinPath, reused: this.obj.reused.length, ...adopted }, 'datapath loaded');

    this.metrics = new XlbMetrics(this.view);
    // healthCheckNodePort listeners share the healthz host; probes fail only when a change is late.
    const hcHost = splitHostPort(this.opts.healthzBindAddress).host || '0.0.0.0';
    this.hc = new HealthCheckServers(hcHost, () => proxyHealth(this.view, o.healthTimeout * 1000).healthy);
    this.closers.push(() => this.hc.sync([]));

    this.queue = new KeyQueue<string>((key) => (key === NODE_KEY ? this.nodeChanged() : this.programService(key)), {
      onError: (key, err) => this.log.error({ [key === NODE_KEY ? 'node' : 'service']: key === NODE_KEY ? o.node : key, err: String(err) }, 'programming failed; will retry'),
    });
    this.source.on('change', (kind, key) => this.onChange(kind, key));

    // The API comes up first so `xlb status` can say what the agent is waiting for.
    const tcpAuth = readTcpAuth({ ca: o.apiTlsCa, cert: o.apiTlsCert, key: o.apiTlsKey, tokenFile: o.apiTokenFile });
    const api = await startApiServer(this.view, { socketPath: o.apiSocket, tcpAddress: o.apiAddress, tcpAuth });
    this.closers.push(() => api.close());
    const hz = await startHealthServer(this.view, o.healthzBindAddress, { healthTimeoutMs: o.healthTimeout * 1000 });
    this.closers.push(() => hz.close());
    const mx = await startMetricsServer(this.metrics, o.metricsBindAddress, { config: { ...o } });
    this.closers.push(() => mx.close());
    this.log.info({ socket: o.apiSocket, healthzPort: hz.port, metricsPort: mx.port }, 'status endpoints up');

    // Never program from a partial view: wait for every initial list.
    this.tracker.queued();
    // Progress lines at most once a second: the first as soon as there is progress to show (a
    // cold start shorter than a second still logs one), then each second while it lasts.
    let lastProgressLog = 0;
    const logProgress = (): void => {
      const p = this.view.progress();
      const now = Date.now();
      if (!p || now - lastProgressLog < 1000) return;
      lastProgressLog = now;
      this.log.info({ ...p }, `starting: ${p.stage} ${p.done} / ${p.total}`);
    };
    const progressLog = setInterval(logProgress, 250);
    this.onProgress = logProgress;
    try {
      await listing;
      this.listed = true;
      await this.applyNode();
      await this.fullSync();
    } finally {
      clearInterval(progressLog);
      this.onProgress = undefined;
    }
    const pruned = this.rec.prune();
    if (pruned) this.log.info({ frontends: pruned }, 'removed pinned frontends no Service claims');
    releaseMemory();
    // A migrated ct: the flows the old programs made during the sync are copied just before the
    // links switch, and from then until the copy after it the datapath holds the TCP packets it
    // cannot place (flow_carry_held): the last moment's flows are not reset meanwhile.
    const carry = this.migration.carrying();
    const heldBefore = carry ? dropCount(this.obj, C.DROP.ct_carry) : 0;
    if (carry) {
      await this.migration.catchUp(this.obj, 'before the link switch');
      this.nodeDp.setCarry(monotonicS() + CARRY_BOUND_S);
    }
    const switched = performance.now();
    await this.applyEnabled();
    // The links run the new programs now: flows the old ones made meanwhile, then the pins.
    await this.migration.finish(this.obj);
    if (carry) {
      this.nodeDp.setCarry(0);
      this.log.info({ heldMs: Math.round(performance.now() - switched), packetsHeld: dropCount(this.obj, C.DROP.ct_carry) - heldBefore }, 'conntrack carry-over done');
    }
    // Only now: ct_sweep.o takes xlb.o's maps from their pins, which name the migrated maps
    // from here on (before, a replaced map's pin is still the old one).
    await this.openKernelSweep();
    this.announcer = new Announcer({
      node: o.node, source: this.source, obj: this.obj, enabled: () => this.onOff.enabled, enabledByDefault: o.enabledByDefault,
      devices: () => this.deviceLinks, leaseDurationMs: o.announceLeaseDuration * 1000, log: child('announce'),
    });
    this.announcer.start();
    // Runs before the source stops: entries go, then the Leases are released.
    this.closers.push(() => this.announcer?.stop());

    this.monitor.on('change', () => void this.syncInterfaces().catch((e) => this.log.warn({ err: String(e) }, 'interface sync failed')));
    this.monitor.start();
    this.closers.push(() => this.monitor.stop());
    this.ctTimer = setInterval(() => void this.sweep(), this.sweepMs);
    this.ctTimer.unref();
    this.closers.push(() => clearInterval(this.ctTimer), () => clearInterval(this.drainTimer));
  }

  async stop(): Promise<void> {
    // Nothing is programmed from here on: the source stops after the maps are closed.
    this.queue?.stop();
    for (const c of this.closers.reverse()) {
      try { await c(); } catch (e) { this.log.warn({ err: String(e) }, 'shutdown step failed'); }
    }
    this.attacher?.close();
  }

  // ---- changes ----

  private onChange(kind: 'service' | 'slices' | 'node', key: string): void {
    // Before every initial list is in, a Service may be listed without its EndpointSlices (or
    // the Node without its label): programming it then would reject flows it has backends for.
    // start() programs everything listed once the lists are complete.
    if (!this.listed) return;
    if (kind === 'node') key = NODE_KEY;
    else if (kind === 'service') this.metrics.serviceChange(); else this.metrics.endpointChange();
    if (!this.changedAt.has(key)) this.changedAt.set(key, Date.now());
    this.tracker.queued();
    this.queue.add(key);
    this.updatePending();
  }

  private updatePending(): void {
    const n = this.queue.pending();
    this.metrics.setPending(n, n);
    if (n === 0) this.tracker.updated();
  }

  private translateOne(key: string): ServiceSpec | undefined {
    const svc = this.source.service(key);
    if (!svc) return undefined;
    const r = translate(svc, this.source.slices(key), this.node, { nodeName: this.opts.node, externalIPCidrs: this.opts.externalIpCidrs });
    if (!r.ok) {
      if (r.invalid) this.log.warn({ service: key, reason: r.skipped }, 'invalid Service skipped');
      else this.log.debug({ service: key, reason: r.skipped }, 'Service skipped');
      return undefined;
    }
    const noAddress = noAddressReason(svc);
    if (noAddress) r.service.warnings.push(`no load balancer address: ${noAddress}`);
    for (const w of r.service.warnings) this.log.warn({ service: key, warning: w }, 'Service warning');
    this.source.reportWarnings?.(key, r.service.warnings);
    return r.service;
  }

  private async programService(key: string): Promise<void> {
    const rivals = this.record(key);
    const hadHealthCheck = wantsHealthCheck(this.desired.get(key));
    const spec = this.desire(key);
    // A frontend this Service now owns may still be programmed for a rival that lost it
    // (an older Service appeared): the rival lets go first, in the same call, so the frontend
    // is handed over in place.
    const holders = this.holdersOf(key, spec);
    const results = await this.rec.applyMany([...holders.map((h) => [h, this.desire(h)] as const), [key, spec]]);
    for (const r of results) this.afterProgrammed(r);
    // The listeners follow every Service's spec, so a sync reads all 10,000 of them: only when
    // this one had or has a healthCheckNodePort (each change waited ~0.2 ms for it before).
    if (hadHealthCheck || holders.length || wantsHealthCheck(spec)) void this.syncHealthChecks();
    for (const r of rivals) if (!holders.includes(r)) this.queue.add(r);
    // The announcer re-reads every Service: only for one that has or had an address to announce.
    if (results.some((r) => this.hasAnnounced(r.service))) this.announcer?.sync();
    const res = results[results.length - 1];
    if (isMapFull(res)) {
      // Map full: retried by the queue with backoff; other Services are not held up.
      throw new Error(res.errors.join('; '));
    }
  }

  /** Translate one Service and record its claims; returns the Services whose ownership of a shared frontend may have moved. */
  private record(key: string): string[] {
    return this.claims.set(claimRank(key, this.source.service(key)?.metadata?.creationTimestamp), this.translateOne(key));
  }

  /** The recorded Service minus the frontends an older Service owns, as desired state (undefined: no state). */
  private desire(key: string): ServiceSpec | undefined {
    const spec = this.claims.owned(key);
    if (spec) this.desired.set(key, spec); else this.desired.delete(key);
    for (const f of this.claims.lost(key)) this.log.warn({ service: key, warning: f }, 'frontend owned by another Service');
    return spec;
  }

  /** Other Services the datapath still programs one of this Service's frontends for. */
  private holdersOf(key: string, spec: ServiceSpec | undefined): string[] {
    const out = new Set<string>();
    for (const f of spec?.frontends ?? []) {
      const o = this.rec.ownerOf(f);
      if (o !== undefined && o !== key) out.add(o);
    }
    return [...out];
  }

  private afterProgrammed(res: ReconcileResult): void {
    const started = this.changedAt.get(res.service);
    this.changedAt.delete(res.service);
    if (started) this.metrics.observeProgramming((Date.now() - started) / 1000);
    this.report(res);
    this.lastSync = Date.now();
    this.metrics.observeSync(res.durationMs / 1000);
    setImmediate(() => this.updatePending());
  }

  /** Whether the Service has LoadBalancer addresses to announce now or had when last asked. */
  private hasAnnounced(key: string): boolean {
    const svc = this.source.service(key);
    const now = svc !== undefined && announcedAddresses(svc).length > 0;
    const was = this.announced.has(key);
    if (now) this.announced.add(key); else this.announced.delete(key);
    return now || was;
  }

  private syncHealthChecks(): Promise<void> {
    return this.hc.sync([...this.desired.values()]).catch((e) => this.log.warn({ err: String(e) }, 'health check servers'));
  }

  private report(res: ReconcileResult): void {
    const ev: ProgrammedEvent = {
      time: Date.now(), service: res.service, frontends: res.frontends, backends: res.backends,
      durationMs: Math.round(res.durationMs * 1000) / 1000, ok: res.ok, error: res.errors.join('; ') || undefined,
    };
    // During a full sync the once-a-second progress line speaks for the batch.
    if (res.ok) this.log[this.syncing ? 'debug' : 'info']({ svc: res.service, frontends: res.frontends, backends: res.backends, durationMs: ev.durationMs }, 'service programmed');
    else this.log.warn({ svc: res.service, errors: res.errors }, 'service programmed with errors');
    this.events.emit('programmed', ev);
  }

  /** Every Service from the cache, then removal of those gone. */
  private async fullSync(): Promise<void> {
    const t0 = performance.now();
    const keys = new Set(this.source.services().map((s) => `${s.metadata?.namespace ?? 'default'}/${s.metadata?.name}`));
    const gone = new Set([...this.desired.keys(), ...this.rec.services()].filter((k) => !keys.has(k)));
    // Removals first, so a frontend a deleted Service frees can go to a new one; applyMany
    // writes in chunks, each in the make-before-break order. Every claim first, so which
    // Service owns a shared frontend never depends on the order. Batches keep the API
    // answering (and `xlb status` counting) while 10,000 Services are programmed.
    const all = [...gone, ...keys];
    this.syncing = { stage: 'translated', done: 0, total: all.length };
    this.onProgress?.();
    try {
      // 10,000 Services translate in about a second: the API keeps answering in between.
      let since = performance.now();
      for (const key of all) {
        this.record(key);
        this.hasAnnounced(key);
        this.syncing.done++;
        if (performance.now() - since < TURN_MS) continue;
        await new Promise((r) => setImmediate(r));
        since = performance.now();
      }
      this.syncing = { stage: 'programmed', done: 0, total: all.length };
      this.onProgress?.();
      for (let i = 0; i < all.length; i += SYNC_BATCH) {
        const entries = all.slice(i, i + SYNC_BATCH).map((key) => [key, this.desire(key)] as [string, ServiceSpec | undefined]);
        for (const res of await this.rec.applyMany(entries)) {
          this.afterProgrammed(res);
          // Map full, or an owned frontend still held by a Service listed after it: queued again.
          if (isMapFull(res) || this.holdersOf(res.service, this.desired.get(res.service)).length) this.queue.add(res.service);
        }
        this.syncing.done += entries.length;
        this.onProgress?.();
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.syncing = undefined;
    }
    await this.syncHealthChecks();
    this.metrics.observeSync((performance.now() - t0) / 1000);
    this.lastSync = Date.now();
    this.updatePending();
  }

  // ---- node, devices, toggle ----

  /**
   * A Node update. Kubelet writes status (conditions, heartbeats, images) far more often than
   * anything xlb reads changes: only an address change rewrites node state, only the enabled
   * label attaches or detaches, and only a zone or region change reprograms the Services that
   * route by topology, each through the queue like any other change.
   */
  private async nodeChanged(): Promise<void> {
    const n = this.source.node();
    const next = n ? nodeInfo(n) : undefined;
    const d = nodeChange(this.node, next);
    if (d.addresses) await this.applyNode();
    else {
      this.tracker.syncNode(n);
      this.node = next;
    }
    if (d.enabled) await this.applyEnabled();
    if (d.topology) {
      for (const s of this.source.services()) {
        if (s.spec && topologyRequested(s)) this.queue.add(`${s.metadata?.namespace ?? 'default'}/${s.metadata?.name}`);
      }
    }
    this.announcer?.sync();
    if (d.addresses || d.enabled || d.topology) this.log.info({ node: this.opts.node, ...d }, 'node update');
    else this.log.debug({ node: this.opts.node }, 'node update: nothing xlb reads changed');
    setImmediate(() => this.updatePending());
  }

  private async applyNode(): Promise<void> {
    const n = this.source.node();
    this.tracker.syncNode(n);
    this.node = n ? nodeInfo(n) : undefined;
    const nodeAddrs = this.node?.addresses ?? [];
    this.devices = this.opts.devices.length ? this.opts.devices : await detectDevices(nodeAddrs);
    this.nodeDp.writeSnatSkip(await nodePortsIn(this.opts.snatPortRange));
    this.nodeDp.write(nodeAddresses(nodeAddrs, await listLinks(), this.devices));
  }

  /**
   * On: attached, new flows enter xlb (those netfilter already tracks excepted). Off: a node
   * that was serving drains first: new flows go to the stack (kube-proxy's rules), flows in
   * xlb's conntrack keep being translated until none is left or --drain-timeout passes, then
   * the programs detach. On again mid-drain simply ends the drain.
   */
  private async applyEnabled(): Promise<void> {
    const was = this.state;
    const d = this.onOff.decide(this.node?.labels);
    if (!this.attacher) this.attacher = new Attacher(this.opts.pinPath, child('attach'));
    if (d.enabled) {
      this.setDrain(undefined);
      await this.syncInterfaces();
    } else if (!this.drain && this.attacher.hasPinned() && this.opts.drainTimeout > 0) {
      const now = Date.now();
      this.setDrain({ started: now, deadline: now + this.opts.drainTimeout * 1000 });
    } else if (!this.drain) {
      this.attacher.detachAll();
    }
    // Draining keeps the links current (a restarted agent adopts them, with its own programs).
    if (this.drain) await this.syncInterfaces();
    this.announcer?.sync();
    if (this.drain && !this.drainTimer) {
      this.drainTimer = setInterval(() => this.checkDrain(), DRAIN_CHECK_MS);
      this.drainTimer.unref();
      this.checkDrain();
    }
    if (was !== this.state || !this.lastSync) this.log.info({ state: this.state, reason: d.reason, drain: this.drainStatus() }, STATE_LINE[this.state]);
  }

  private setDrain(d: Drain | undefined): void {
    if (!d && !this.drain) return;
    this.drains.write(d);
    this.drain = d;
    this.nodeDp.setDrain(d !== undefined);
    if (!d && this.drainTimer) {
      clearInterval(this.drainTimer);
      this.drainTimer = undefined;
    }
  }

  /** The drain's progress for `xlb status`; undefined when not draining. */
  drainStatus(): { flows: number; secondsLeft: number } | undefined {
    return this.drain ? drainProgress(this.drain, ctLive(this.obj), Date.now()) : undefined;
  }

  /** Ends the drain once no xlb flow is left (the sweep releases closed and idle ones) or its time is up. */
  private checkDrain(): void {
    if (!this.drain || this.onOff.enabled) return;
    const flows = ctLive(this.obj);
    if (!drainDone(this.drain, flows, Date.now())) return;
    this.log.info({ flowsLeft: flows, timedOut: flows > 0 }, 'drain over: programs detached');
    this.attacher.detachAll();
    this.setDrain(undefined);
  }

  private async syncInterfaces(): Promise<void> {
    if (!this.onOff.enabled && !this.drain) return;
    const links = await listLinks();
    const present = new Set(links.map((l) => l.name));
    const devices = this.devices.filter((d) => present.has(d));
    const absent = this.devices.filter((d) => !present.has(d));
    if (absent.join() !== this.absent.join() && absent.length) this.log.warn({ devices: absent }, 'waiting for devices that do not exist yet');
    this.absent = absent;
    const pods = selectPodInterfaces(links, this.devices, this.opts.podInterfaces);
    this.podIfs = pods.map((l) => l.name);
    this.nodeDp.writePodIfs(pods);
    this.deviceLinks = links.filter((l) => devices.includes(l.name));
    this.nodeDp.writeIfMacs([...this.deviceLinks, ...pods]);
    this.announcer?.sync();
    for (const d of [...devices, ...this.podIfs]) allowLocalSource(d, this.log);
    const byMode = this.chooseDeviceModes(devices, links);
    // tc first: while a device changes mode both hooks may run for a moment, which is harmless
    // (the second sees a translated packet that matches nothing); a gap would not be.
    // XDP devices run xlb_tc_dev too: XDP leaves it the replies it cannot send into a pod past
    // netfilter (flow.h); the egress hooks reverse-translate replies netfilter routed.
    this.attacher.sync('tc-device', this.obj.program(C.PROG.tcDev), [...byMode.tc, ...byMode.xdp]);
    this.attacher.sync('xdp', this.obj.program(C.PROG.xdp), byMode.xdp);
    this.attacher.sync('tc-ingress', this.obj.program(C.PROG.tc), this.podIfs);
    this.attacher.sync('tc-egress', this.obj.program(C.PROG.tcHost), this.podIfs);
    this.attacher.sync('tc-device-egress', this.obj.program(C.PROG.tcHost), devices);
    this.syncSocketLb();
  }

  /** The socket LB hooks on the cgroup (--socket-lb, --cgroup), or none (off, old kernel). */
  private syncSocketLb(): void {
    // Draining: the node's own new connections go to the stack too (kube-proxy's OUTPUT rules);
    // connected sockets already hold their backend's address and need no hook.
    const mode = this.sockKernel.ok && this.onOff.enabled ? this.opts.socketLb : 'off';
    const cg = mode === 'off' ? {} : resolveCgroup(this.opts.cgroup);
    const problems = (c: SockCgroup): string => [c.error, ...(c.failed ?? [])].filter(Boolean).join('; ');
    const was = problems(this.sockCgroup);
    try {
      const failed = this.attacher.syncCgroup(cg.path, cg.path ? sockPrograms(mode, this.sockKernel, (n) => this.obj.program(n)) : []);
      this.sockCgroup = { ...cg, failed };
    } catch (e) {
      const err = e as Error & { code?: string };
      this.sockCgroup = { path: cg.path, error: `${err.code ?? 'ERROR'}: ${err.message}` };
    }
    const now = problems(this.sockCgroup);
    if (now && now !== was) this.log.warn({ cgroup: cg.path, err: now }, 'socket LB not attached');
  }

  private chooseDeviceModes(devices: string[], links: Array<{ name: string; kind: string }>): { xdp: string[]; tc: string[] } {
    const out = { xdp: [] as string[], tc: [] as string[] };
    for (const d of devices) {
      const c = chooseDeviceMode(this.opts.deviceMode, links.find((l) => l.name === d)?.kind ?? '');
      if (this.deviceModes.get(d)?.mode !== c.mode) this.log.info({ dev: d, mode: c.mode, why: c.why }, 'device mode');
      this.deviceModes.set(d, c);
      out[c.mode].push(d);
    }
    return out;
  }

  async toggle(on: boolean): Promise<{ enabled: boolean; reason: string }> {
    this.onOff.write(on);
    await this.applyEnabled();
    return { enabled: this.onOff.enabled, reason: this.onOff.reason };
  }

  // ---- conntrack sweep ----

  /** The sweep in the kernel (bpf/ct_sweep.c) where the kernel loads it; else the JS sweep, and why. */
  private async openKernelSweep(): Promise<void> {
    const o = this.opts;
    if (process.env.XLB_CT_SWEEP === 'js') {
      this.ctSweep = { kernel: false, detail: 'XLB_CT_SWEEP=js' };
      return;
    }
    if (o.conntrackSize > KERNEL_SWEEP_MAX_ENTRIES) {
      // One walk is one BPF program run, which the kernel does not interrupt to schedule
      // (~200 ns per entry measured: ~0.2 s at 2^20); the JS sweep reads in batches.
      this.ctSweep = { kernel: false, detail: `--conntrack-size ${o.conntrackSize} is above ${KERNEL_SWEEP_MAX_ENTRIES}: one walk in the kernel would hold a CPU too long` };
      return;
    }
    try {
      this.kernelSweep = await KernelCtSweep.open(join(dirname(objectPath()), 'ct_sweep.o'), {
        pinPath: o.pinPath, maxEntries: { [C.MAP.ct]: o.conntrackSize, [C.MAP.flowCache]: Math.max(1, o.flowCacheSize) },
      });
      const k = this.kernelSweep;
      this.closers.push(() => k.close());
      this.ctSweep = { kernel: true, detail: 'bpf_for_each_map_elem' };
    } catch (e) {
      this.ctSweep = { kernel: false, detail: String((e as Error).message ?? e).split('\n')[0]! };
      this.log.warn({ reason: this.ctSweep.detail }, 'conntrack sweep in the kernel unavailable: the agent reads the table');
    }
  }

  private async sweep(): Promise<void> {
    // One sweep at a time: a table read that outlasts the interval is not stacked behind itself.
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const t0 = performance.now();
      let r;
      if (this.kernelSweep) {
        try {
          r = await this.kernelSweep.sweep(this.obj.map(C.MAP.ct), this.obj.map(C.MAP.ctFill), this.nodeDp.cfg);
          this.ctSweep.fallbacks = this.kernelSweep.fallbacks;
        } catch (e) {
          // a pass the kernel refused: the JS sweep from now on, reported
          this.log.warn({ err: String(e) }, 'conntrack sweep in the kernel failed: the agent reads the table from now on');
          this.ctSweep = { kernel: false, detail: `failed: ${String((e as Error).message ?? e).split('\n')[0]}` };
          this.kernelSweep = undefined;
        }
      }
      r ??= await sweepConntrack(this.obj.map(C.MAP.ct), this.obj.map(C.MAP.ctFill), this.nodeDp.cfg);
      this.ctSweep.lastMs = performance.now() - t0;
      const reaped = this.rec.reapRetired(r.liveBackends);
      this.nodeDp.snatPorts.used = r.snatPorts;
      void nodePortsIn(this.opts.snatPortRange).then((skip) => this.nodeDp.writeSnatSkip(skip))
        .catch((e) => this.log.warn({ err: String(e) }, 'SNAT port skip list not written'));
      if (r.expired || reaped) this.log.debug({ expired: r.expired, live: r.entries, reaped }, 'conntrack sweep');
    } catch (e) {
      this.log.warn({ err: String(e) }, 'conntrack sweep failed');
    } finally {
      this.sweeping = false;
    }
    this.reapSockets();
  }

  /** Connected UDP sockets whose backend is gone are destroyed (iter/udp), when the kernel can. */
  private reapSockets(): void {
    if (!this.sockKernel.reap || !this.onOff.enabled || this.opts.socketLb === 'off') return;
    try {
      this.obj.program(C.SOCK_REAP_PROG).runIter();
    } catch (e) {
      this.log.warn({ err: String(e) }, 'socket reap failed');
    }
  }
}

function isMapFull(res: ReconcileResult): boolean {
  return !res.ok && res.errors.some((e) => /E2BIG|ENOSPC|ENOMEM/.test(e));
}

export async function runAgent(opts: AgentOptions): Promise<number> {
  setLogLevel(opts.logLevel);
  const log = child('agent');
  const agent = new Agent(opts);
  let stopping = false;
  const done = new Promise<number>((resolve) => {
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, 'stopping; the datapath stays attached and pinned');
      void agent.stop().then(() => resolve(0));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  const capErr = capabilityError();
  if (capErr) {
    log.fatal({ err: capErr }, 'agent failed to start');
    console.error(`xlb agent: ${capErr}`);
    return 1;
  }
  try {
    await agent.start();
  } catch (e) {
    const err = e as Error & { code?: string };
    log.fatal({ err: err.message, code: err.code }, 'agent failed to start');
    console.error(`xlb agent: ${hint(err)}`);
    await agent.stop().catch(() => undefined);
    return 1;
  }
  log.info({ node: opts.node, source: opts.source }, 'agent running');
  return done;
}

/** One line that says what to do for the errors a user can cause. */
function hint(err: Error & { code?: string }): string {
  if (err.code === 'EPERM' && seccompHint()) return `${err.message} — ${seccompHint()}`;
  if (err.code === 'EPERM' || err.code === 'EACCES') return `${err.message} — run as root or with CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON`;
  if (err.code === 'ENOENT' && /xlb\.o/.test(err.message)) return `${err.message} — build it with 'npm run build'`;
  return err.message;
}
