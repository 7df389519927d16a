// `xlb agent`: keeps the datapath equal to the cluster. Source -> model.translate ->
// reconciler -> pinned maps; programs attached through pinned links; status over gRPC,
// /healthz and /metrics. Exiting (or kill -9) leaves maps and links pinned, so forwarding
// goes on and the next agent adopts them.
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { release } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { AgentOptions } from '../cli/options.js';
import { child, setLogLevel, type Logger } from '../log.js';
import { loadObject, possibleCpus, type BpfObject } from '../datapath/bpf.js';
import * as C from '../datapath/codecs.js';
import { Reconciler, mapsOf, type ReconcileResult } from '../datapath/reconcile.js';
import { sweepConntrack } from '../datapath/ctgc.js';
import { translate } from '../model/translate.js';
import { nodeInfo } from '../model/node.js';
import type { NodeInfo, ServiceSpec } from '../model/types.js';
import { createSource, KeyQueue, type Source } from '../sources/index.js';
import { proxyHealth } from '../api/health.js';
import { splitHostPort } from '../cli/options.js';
import { startApiServer, startHealthServer, startMetricsServer, HealthCheckServers, HealthTracker, XlbMetrics, ViewError } from '../api/index.js';
import type { AgentView, DecodedMaps, StatsInfo, StatusInfo, EnabledReason, ProgrammedEvent } from '../api/view.js';
import { ensureBpffs } from './bpffs.js';
import { capabilityError, seccompHint } from './caps.js';
import { Attacher, chooseDeviceMode, type DeviceChoice } from './attach.js';
import { detectDevices, listLinks, LinkMonitor, selectPodInterfaces } from './netlink.js';
import { decodeAllMaps, readStats, ctLive } from './inspect.js';

export const ENABLED_LABEL = 'xlb.io/enabled';

/** build/bpf/xlb.o next to the package (dist/src/agent/run.js -> package root). */
export function objectPath(): string {
  if (process.env.XLB_BPF_OBJECT) return process.env.XLB_BPF_OBJECT;
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  return join(root, 'build', 'bpf', 'xlb.o');
}

interface ToggleState { [node: string]: boolean }

export class Agent implements AgentView {
  readonly events = new EventEmitter();
  private readonly log: Logger;
  private obj!: BpfObject;
  private rec!: Reconciler;
  private source!: Source;
  private queue!: KeyQueue<string>;
  private attacher!: Attacher;
  private monitor = new LinkMonitor();
  private readonly tracker = new HealthTracker();
  private metrics!: XlbMetrics;
  private hc!: HealthCheckServers;
  private closers: Array<() => Promise<void> | void> = [];
  private desired = new Map<string, ServiceSpec>();
  private node: NodeInfo | undefined;
  private devices: string[] = [];
  private podIfs: string[] = [];
  private deviceModes = new Map<string, DeviceChoice>();
  private enabled = false;
  private reason: EnabledReason = 'default';
  private lastSync = 0;
  private cfg: C.XlbConfig = { ...C.DEFAULT_CONFIG };
  private cpus = 1;
  private ctTimer?: NodeJS.Timeout;
  private syncing: Promise<void> = Promise.resolve();
  private readonly changedAt = new Map<string, number>();

  constructor(private readonly opts: AgentOptions) {
    this.log = child('agent');
  }

  // ---- lifecycle ----

  async start(): Promise<void> {
    const o = this.opts;
    await ensureBpffs(o.pinPath);
    this.cpus = possibleCpus();
    this.obj = await loadObject(objectPath(), {
      pinPath: o.pinPath,
      replaceMismatched: true,
      maxEntries: { [C.MAP.ct]: o.conntrackSize, [C.MAP.flowCache]: Math.max(1, o.flowCacheSize) },
    });
    if (this.obj.replaced.length) {
      this.log.warn({ maps: this.obj.replaced }, 'pinned maps had another layout and were replaced (their entries are gone)');
    }
    C.verifyLayout(this.obj);
    this.closers.push(() => this.obj.close());
    this.rec = new Reconciler(mapsOf(this.obj), { maglevM: o.maglevTableSize, cpus: this.cpus });
    const adopted = this.rec.adoptPinned();
    this.log.info({ pinPath: o.pinPath, reused: this.obj.reused.length, ...adopted }, 'datapath loaded');

    this.metrics = new XlbMetrics(this);
    // healthCheckNodePort listeners share the healthz host; probes fail only when a change is late.
    const hcHost = splitHostPort(this.opts.healthzBindAddress).host || '0.0.0.0';
    this.hc = new HealthCheckServers(hcHost, () => proxyHealth(this, o.healthTimeout * 1000).healthy);
    this.closers.push(() => this.hc.sync([]));

    this.source = createSource(o.source === 'manifests'
      ? { kind: 'manifests', nodeName: o.node, dir: o.manifests!, log: child('source') }
      : {
          kind: 'kube', nodeName: o.node, log: child('source'),
          connection: o.kubeconfig ? { kubeconfig: o.kubeconfig } : { inCluster: true, server: o.apiServer! },
        });
    this.source.on('problem', (p) => this.log.warn({ ...p }, 'object skipped'));
    this.source.on('connection', (state, detail) => this.log.info({ state, detail }, 'api connection'));
    this.queue = new KeyQueue<string>((key) => this.programService(key), {
      onError: (key, err) => this.log.error({ service: key, err: String(err) }, 'programming failed; will retry'),
    });
    this.source.on('change', (kind, key) => this.onChange(kind, key));

    // The API comes up first so `xlb status` can say what the agent is waiting for.
    const api = await startApiServer(this, { socketPath: o.apiSocket, tcpAddress: o.apiAddress });
    this.closers.push(() => api.close());
    const hz = await startHealthServer(this, o.healthzBindAddress, { healthTimeoutMs: o.healthTimeout * 1000 });
    this.closers.push(() => hz.close());
    const mx = await startMetricsServer(this.metrics, o.metricsBindAddress);
    this.closers.push(() => mx.close());
    this.log.info({ socket: o.apiSocket, healthzPort: hz.port, metricsPort: mx.port }, 'status endpoints up');

    // Never program from a partial view: wait for every initial list.
    this.tracker.queued();
    await this.source.start();
    this.closers.push(() => this.source.stop());
    await this.applyNode();
    await this.fullSync();
    const pruned = this.rec.prune();
    if (pruned) this.log.info({ frontends: pruned }, 'removed pinned frontends no Service claims');
    await this.applyEnabled();

    this.monitor.on('change', () => void this.syncInterfaces().catch((e) => this.log.warn({ err: String(e) }, 'interface sync failed')));
    this.monitor.start();
    this.closers.push(() => this.monitor.stop());
    const sweepMs = Number(process.env.XLB_CT_SWEEP_MS ?? 5000);
    this.ctTimer = setInterval(() => this.sweep(), sweepMs);
    this.ctTimer.unref();
    this.closers.push(() => clearInterval(this.ctTimer));
  }

  async stop(): Promise<void> {
    for (const c of this.closers.reverse()) {
      try { await c(); } catch (e) { this.log.warn({ err: String(e) }, 'shutdown step failed'); }
    }
    this.queue?.stop();
    this.attacher?.close();
  }

  // ---- changes ----

  private onChange(kind: 'service' | 'slices' | 'node', key: string): void {
    if (kind === 'node') {
      this.syncing = this.syncing.then(() => this.applyNode().then(() => this.applyEnabled()).then(() => this.fullSync()))
        .catch((e) => this.log.error({ err: String(e) }, 'node update failed'));
      return;
    }
    if (kind === 'service') this.metrics.serviceChange(); else this.metrics.endpointChange();
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
    const r = translate(svc, this.source.slices(key), this.node, { nodeName: this.opts.node });
    if (!r.ok) {
      if (r.invalid) this.log.warn({ service: key, reason: r.skipped }, 'invalid Service skipped');
      else this.log.debug({ service: key, reason: r.skipped }, 'Service skipped');
      return undefined;
    }
    for (const w of r.service.warnings) this.log.warn({ service: key, warning: w }, 'Service warning');
    return r.service;
  }

  private async programService(key: string): Promise<void> {
    const res = await this.rec.apply(key, this.desire(key));
    this.afterProgrammed(res);
    void this.syncHealthChecks();
    if (isMapFull(res)) {
      // Map full: retried by the queue with backoff; other Services are not held up.
      throw new Error(res.errors.join('; '));
    }
  }

  /** Translate one Service and record it as desired (undefined: it creates no state). */
  private desire(key: string): ServiceSpec | undefined {
    const spec = this.translateOne(key);
    if (spec) this.desired.set(key, spec); else this.desired.delete(key);
    return spec;
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

  private syncHealthChecks(): Promise<void> {
    return this.hc.sync([...this.desired.values()]).catch((e) => this.log.warn({ err: String(e) }, 'health check servers'));
  }

  private report(res: ReconcileResult): void {
    const ev: ProgrammedEvent = {
      time: Date.now(), service: res.service, frontends: res.frontends, backends: res.backends,
      durationMs: Math.round(res.durationMs * 1000) / 1000, ok: res.ok, error: res.errors.join('; ') || undefined,
    };
    if (res.ok) this.log.info({ svc: res.service, frontends: res.frontends, backends: res.backends, durationMs: ev.durationMs }, 'service programmed');
    else this.log.warn({ svc: res.service, errors: res.errors }, 'service programmed with errors');
    this.events.emit('programmed', ev);
  }

  /** Every Service from the cache, then removal of those gone. */
  private async fullSync(): Promise<void> {
    const t0 = performance.now();
    const keys = new Set(this.source.services().map((s) => `${s.metadata?.namespace ?? 'default'}/${s.metadata?.name}`));
    const gone = new Set([...this.desired.keys(), ...this.rec.services()].filter((k) => !keys.has(k)));
    // Removals first, so a frontend a deleted Service frees can go to a new one in the same
    // batch; applyMany writes in chunks, each in the make-before-break order.
    const entries = [...gone, ...keys].map((key) => [key, this.desire(key)] as [string, ServiceSpec | undefined]);
    for (const res of await this.rec.applyMany(entries)) {
      this.afterProgrammed(res);
      if (isMapFull(res)) this.queue.add(res.service);
    }
    await this.syncHealthChecks();
    this.metrics.observeSync((performance.now() - t0) / 1000);
    this.lastSync = Date.now();
    this.updatePending();
  }

  // ---- node, devices, toggle ----

  private async applyNode(): Promise<void> {
    const n = this.source.node();
    this.tracker.syncNode(n);
    this.node = n ? nodeInfo(n) : undefined;
    const nodeAddrs = this.node?.addresses ?? [];
    this.devices = this.opts.devices.length ? this.opts.devices : await detectDevices(nodeAddrs);
    const links = await listLinks();
    const addrs = new Set<string>(nodeAddrs);
    for (const l of links) if (this.devices.includes(l.name)) for (const a of l.addrs) addrs.add(a);
    this.writeNodeAddrs([...addrs]);
    const snat = nodeAddrs[0] ?? links.find((l) => this.devices.includes(l.name) && l.addrs.length)?.addrs[0] ?? null;
    this.cfg = {
      ...C.DEFAULT_CONFIG,
      flags: C.DEFAULT_CONFIG.flags | (this.opts.localDelivery === 'peer' ? C.CONFIG_FLAG.peer : 0),
      nodePortMin: this.opts.nodePortRange.min, nodePortMax: this.opts.nodePortRange.max,
      maglevM: this.opts.maglevTableSize,
      ctLimit: C.ctFlowLimit(this.opts.conntrackSize, this.cpus),
      snatAddr: snat,
      // A new generation with every config write: nothing cached under another config is used.
      flowCacheGen: this.opts.flowCacheSize ? C.nextFlowCacheGen(this.cfg.flowCacheGen) : 0,
      flowCacheMask: Math.max(1, this.opts.flowCacheSize) - 1,
    };
    this.obj.map(C.MAP.config).update(C.encodeConfigKey(), C.encodeConfig(this.cfg));
    if (!snat) this.log.warn('no node address found: remote backends of external traffic cannot be SNATed');
  }

  private writeNodeAddrs(addrs: string[]): void {
    const m = this.obj.map(C.MAP.nodeAddrs);
    const want = new Set(addrs);
    for (const a of addrs) m.update(C.encodeNodeAddrKey(a), C.encodeNodeAddrValue());
    for (const k of m.keys()) if (!want.has(C.decodeNodeAddrKey(k))) m.delete(k);
  }

  /** pod_ifs: the pod interfaces by ifindex; veths are marked as peer-redirect targets. */
  private writePodIfs(pods: Array<{ ifindex: number; kind: string }>): void {
    const m = this.obj.map(C.MAP.podIfs);
    const want = new Set<number>();
    for (const l of pods) {
      want.add(l.ifindex);
      m.update(C.encodePodIfKey(l.ifindex), C.encodePodIfValue(l.kind === 'veth' ? C.POD_IF_FLAG.peer : 0));
    }
    for (const k of m.keys()) if (!want.has(C.decodePodIfKey(k))) m.delete(k);
  }

  private toggleFile(): string {
    return join(dirname(this.opts.apiSocket), 'toggle.json');
  }

  private readToggle(): boolean | undefined {
    try {
      return (JSON.parse(readFileSync(this.toggleFile(), 'utf8')) as ToggleState)[this.opts.node];
    } catch {
      return undefined;
    }
  }

  private decideEnabled(): { enabled: boolean; reason: EnabledReason } {
    const label = this.node?.labels[ENABLED_LABEL];
    if (this.opts.source === 'manifests') {
      const t = this.readToggle();
      if (t !== undefined) return { enabled: t, reason: 'toggle' };
    }
    if (label === 'true' || label === 'false') return { enabled: label === 'true', reason: 'label' };
    return { enabled: this.opts.enabledByDefault, reason: 'default' };
  }

  private async applyEnabled(): Promise<void> {
    const d = this.decideEnabled();
    const was = this.enabled;
    this.enabled = d.enabled;
    this.reason = d.reason;
    if (!this.attacher) this.attacher = new Attacher(this.opts.pinPath, child('attach'));
    if (d.enabled) await this.syncInterfaces();
    else this.attacher.detachAll();
    if (was !== d.enabled || !this.lastSync) this.log.info({ enabled: d.enabled, reason: d.reason }, d.enabled ? 'xlb enabled on this node' : 'xlb disabled on this node: programs detached');
  }

  private async syncInterfaces(): Promise<void> {
    if (!this.enabled) return;
    const links = await listLinks();
    const present = new Set(links.map((l) => l.name));
    const devices = this.devices.filter((d) => present.has(d));
    const pods = selectPodInterfaces(links, this.devices, this.opts.podInterfaces);
    this.podIfs = pods.map((l) => l.name);
    this.writePodIfs(pods);
    for (const d of [...devices, ...this.podIfs]) allowLocalSource(d, this.log);
    const byMode = this.chooseDeviceModes(devices, links);
    // tc first: while a device changes mode both hooks may run for a moment, which is harmless
    // (the second sees a translated packet that matches nothing); a gap would not be.
    this.attacher.sync('tc-device', this.obj.program(C.PROG.tcDev), byMode.tc);
    this.attacher.sync('xdp', this.obj.program(C.PROG.xdp), byMode.xdp);
    this.attacher.sync('tc-ingress', this.obj.program(C.PROG.tc), this.podIfs);
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
    if (this.opts.source !== 'manifests') {
      throw new ViewError('FAILED_PRECONDITION', `in kube mode xlb follows the Node label: kubectl label node ${this.opts.node} ${ENABLED_LABEL}=${on} --overwrite`);
    }
    const file = this.toggleFile();
    let state: ToggleState = {};
    try { state = JSON.parse(readFileSync(file, 'utf8')) as ToggleState; } catch { /* first toggle */ }
    state[this.opts.node] = on;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(state));
    await this.applyEnabled();
    return { enabled: this.enabled, reason: this.reason };
  }

  // ---- conntrack sweep ----

  private sweep(): void {
    try {
      const r = sweepConntrack(this.obj.map(C.MAP.ct), this.obj.map(C.MAP.ctFill), this.cfg);
      const reaped = this.rec.reapRetired(r.liveBackends);
      if (r.expired || reaped) this.log.debug({ expired: r.expired, live: r.entries, reaped }, 'conntrack sweep');
    } catch (e) {
      this.log.warn({ err: String(e) }, 'conntrack sweep failed');
    }
  }

  // ---- AgentView ----

  status(): StatusInfo {
    const atts = this.attacher?.attachments() ?? [];
    // backends is an ARRAY (every index exists) and ct can be large: count those from what
    // the agent knows (the reconciler's ids, the datapath's admission counter) instead.
    const counted: Record<string, () => number> = {
      [C.MAP.backends]: () => this.rec.backendCount(),
      [C.MAP.ct]: () => 2 * ctLive(this.obj), // a forward and a reply entry per flow
    };
    const mapFill = [C.MAP.services, C.MAP.backends, C.MAP.slots, C.MAP.maglev, C.MAP.ct, C.MAP.affinity, C.MAP.srcRanges].map((name) => {
      const m = this.obj.map(name);
      return { name, entries: counted[name]?.() ?? m.keys().length, maxEntries: m.maxEntries };
    });
    const errs = [...(this.attacher?.errors.values() ?? [])];
    return {
      node: this.opts.node,
      enabled: this.enabled,
      reason: this.reason,
      devices: this.devices.map((d) => {
        const a = atts.find((x) => (x.kind === 'xdp' || x.kind === 'tc-device') && x.ifname === d);
        const mode = a?.kind === 'tc-device' ? 'tc' : a?.mode;
        return { name: d, ifindex: a?.ifindex ?? 0, xdpMode: mode ?? (errs.find((e) => e.ifname === d)?.error ?? 'detached'), progId: a?.progId ?? 0, linkId: a?.linkId ?? 0 };
      }),
      podInterfaces: this.podIfs.map((name) => ({ name, progIds: atts.filter((a) => a.ifname === name).map((a) => a.progId) })),
      pinPath: this.opts.pinPath,
      lastSync: this.lastSync,
      pendingChanges: this.queue?.pending() ?? 0,
      mapFill,
      kernel: { release: release(), checks: this.kernelChecks() },
      source: { kind: this.opts.source, synced: this.source?.synced ?? false, connection: this.source?.synced ? 'up' : 'syncing' },
    };
  }

  private kernelChecks(): { name: string; ok: boolean; detail: string }[] {
    const [maj, min] = release().split('.').map(Number);
    const tcx = maj > 6 || (maj === 6 && min >= 6);
    return [
      { name: 'btf', ok: existsSync('/sys/kernel/btf/vmlinux'), detail: '/sys/kernel/btf/vmlinux' },
      { name: 'tcx links (6.6+)', ok: tcx, detail: release() },
      { name: 'bpffs at pin path', ok: true, detail: this.opts.pinPath },
      {
        name: 'flow cache', ok: true,
        detail: this.opts.flowCacheSize ? `${this.opts.flowCacheSize} entries per CPU` : 'off (--flow-cache-size 0): every packet looks up conntrack',
      },
      {
        name: 'local delivery', ok: true,
        detail: this.opts.localDelivery === 'peer'
          ? 'peer: translated packets enter local pods directly (bpf_redirect_peer), past the host FORWARD hooks'
          : 'stack: translated packets reach local pods through host routing and netfilter',
      },
      ...[...(this.attacher?.errors.values() ?? [])].map((e) => ({ name: `attach ${e.kind} ${e.ifname}`, ok: false, detail: e.error })),
    ];
  }

  services(): ServiceSpec[] {
    return [...this.desired.values()].sort((a, b) => a.key.localeCompare(b.key));
  }

  async maps(): Promise<DecodedMaps> {
    return decodeAllMaps(this.obj);
  }

  async stats(): Promise<StatsInfo> {
    return readStats(this.obj, this.rec.svcIds(), this.cpus);
  }

  health() {
    return this.tracker.info();
  }
}

function isMapFull(res: ReconcileResult): boolean {
  return !res.ok && res.errors.some((e) => /E2BIG|ENOSPC|ENOMEM/.test(e));
}

/**
 * The device hook hands a packet it SNATed to the node's own address to the stack when the FIB
 * cannot forward it (XDP: no neighbour yet; both: e.g. fragmentation needed); without
 * accept_local the kernel drops it as a martian ("saddr is local").
 */
function allowLocalSource(dev: string, log: Logger): void {
  const f = `/proc/sys/net/ipv4/conf/${dev}/accept_local`;
  try {
    if (readFileSync(f, 'utf8').trim() !== '1') {
      writeFileSync(f, '1');
      log.info({ dev }, 'set accept_local=1 (SNATed packets passed to the stack)');
    }
  } catch (e) {
    log.warn({ dev, err: (e as Error).message }, 'could not set accept_local');
  }
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
