// The agent as the status API, the CLI, /healthz and /metrics see it (AgentView): read-only
// views of the state the agent keeps, the maps decoded on demand, the kernel checks.
import { existsSync } from 'node:fs';
import { release, totalmem } from 'node:os';
import type { EventEmitter } from 'node:events';
import type { AgentOptions } from './options.js';
import type { Attacher } from './attach.js';
import type { Toggle } from './toggle.js';
import { reapDetail, sockLbCheck, type SockCgroup, type SockLbKernel } from './socklb.js';
import { announceCounters, decodeAllMaps, decodeMaps, readStats, ctLive } from './inspect.js';
import type { Announcer } from './announce.js';
import type { NfctKernel } from './switch.js';
import type { BpfObject } from '../datapath/bpf.js';
import * as C from '../datapath/codecs.js';
import type { Reconciler } from '../datapath/reconcile.js';
import type { NodeDatapath } from '../datapath/node.js';
import type { ServiceSpec } from '../model/types.js';
import type { KeyQueue, Source } from '../sources/index.js';
import { selectServices, type HealthTracker, type SortedIndex } from '../api/index.js';
import type { AgentView, DecodedMap, DecodedMaps, KernelCheck, LbAddressInfo, Progress, ServiceFilter, StatsInfo, StatusInfo } from '../api/view.js';

/** What the view reads from the running agent, which owns and writes all of it. */
export interface AgentState {
  readonly opts: AgentOptions;
  readonly events: EventEmitter;
  readonly tracker: HealthTracker;
  /** desired state by key, sorted for the status API's pages and filters */
  readonly desired: SortedIndex<ServiceSpec>;
  readonly obj: BpfObject;
  readonly rec: Reconciler;
  readonly nodeDp: NodeDatapath;
  readonly onOff: Toggle;
  readonly source?: Source;
  readonly queue?: KeyQueue<string>;
  readonly attacher?: Attacher;
  readonly migration?: { checks(): Array<{ name: string; ok: boolean; detail: string }> };
  readonly devices: readonly string[];
  readonly podIfs: readonly string[];
  /** named devices that do not exist (yet): --wait-for-devices */
  readonly absent: readonly string[];
  readonly lastSync: number;
  /** every initial list is in */
  readonly listed: boolean;
  /** a full sync's progress while it runs */
  readonly syncing?: Progress;
  readonly sockKernel: SockLbKernel;
  /** the cgroup the socket LB hooks are on, or why they are not */
  readonly sockCgroup: SockCgroup;
  readonly sweepMs: number;
  /** where the conntrack sweep runs (the kernel, or the agent's JS where ct_sweep.o does not load), and why */
  readonly ctSweep: { kernel: boolean; detail: string; lastMs?: number; fallbacks?: number };
  /** LoadBalancer address announcement (absent until the first sync is done) */
  readonly announcer?: Announcer;
  /** whether new flows netfilter conntrack tracks are left to it (switch-on), and why */
  readonly nfctKernel: NfctKernel;
  /** a drain's progress while switched off and still translating xlb's flows */
  drainStatus(): { flows: number; secondsLeft: number } | undefined;
  toggle(on: boolean): Promise<{ enabled: boolean; reason: string }>;
}

export class StatusView implements AgentView {
  constructor(private readonly a: AgentState) {}

  get events(): EventEmitter {
    return this.a.events;
  }

  toggle(on: boolean): Promise<{ enabled: boolean; reason: string }> {
    return this.a.toggle(on);
  }

  status(): StatusInfo {
    const a = this.a;
    const atts = a.attacher?.attachments() ?? [];
    // backends is an ARRAY (every index exists) and the others can be large: count those from
    // what the agent knows (the reconciler's state, the datapath's admission counter) instead.
    const written = a.rec.entryCounts();
    const counted: Record<string, () => number> = {
      [C.MAP.services]: () => written.services,
      [C.MAP.slots]: () => written.slots,
      [C.MAP.maglev]: () => written.maglev,
      [C.MAP.srcRanges]: () => written.srcRanges,
      [C.MAP.backends]: () => a.rec.backendCount(),
      [C.MAP.ct]: () => 2 * ctLive(a.obj), // a forward and a reply entry per flow
    };
    const mapFill = [C.MAP.services, C.MAP.backends, C.MAP.slots, C.MAP.maglev, C.MAP.ct, C.MAP.affinity, C.MAP.srcRanges].map((name) => {
      const m = a.obj.map(name);
      return { name, entries: counted[name]?.() ?? m.keys().length, maxEntries: m.maxEntries };
    });
    const errs = [...(a.attacher?.errors.values() ?? [])];
    return {
      node: a.opts.node,
      enabled: a.onOff.enabled,
      reason: a.onOff.reason,
      devices: a.devices.map((d) => {
        const x = atts.find((t) => t.kind === 'xdp' && t.ifname === d) ?? atts.find((t) => t.kind === 'tc-device' && t.ifname === d);
        const mode = x?.kind === 'tc-device' ? 'tc' : x?.mode;
        return { name: d, ifindex: x?.ifindex ?? 0, xdpMode: mode ?? (errs.find((e) => e.ifname === d)?.error ?? (a.absent.includes(d) ? 'waiting: no such interface' : 'detached')), progId: x?.progId ?? 0, linkId: x?.linkId ?? 0 };
      }),
      podInterfaces: a.podIfs.map((name) => ({ name, progIds: atts.filter((t) => t.ifname === name).map((t) => t.progId) })),
      pinPath: a.opts.pinPath,
      lastSync: a.lastSync,
      pendingChanges: a.queue?.pending() ?? 0,
      mapFill,
      kernel: { release: release(), checks: this.kernelChecks() },
      source: { kind: a.opts.source, synced: a.source?.synced ?? false, connection: a.source?.synced ? 'up' : 'syncing' },
      snatPorts: { ...a.nodeDp.snatPorts },
      progress: this.progress(),
      lbAddresses: this.lbAddresses(),
      announce: { ...this.announceCounts() },
      addresses: { node: [...a.nodeDp.addresses.addrs], snat: [...a.nodeDp.addresses.snat] },
      drain: a.drainStatus(),
    };
  }

  lbAddresses(): LbAddressInfo[] {
    return this.a.announcer?.list() ?? [];
  }

  private announceCounts(): StatusInfo['announce'] {
    const c = announceCounters(this.a.obj);
    return { arpReplies: c.arp_replies, arpExpired: c.arp_expired, ndpReplies: c.ndp_replies, ndpExpired: c.ndp_expired, takeovers: this.a.announcer?.takeovers ?? 0, garpErrors: this.a.announcer?.garpErrors ?? 0 };
  }

  /** The source's initial read, then the first full sync; undefined once started. */
  progress(): Progress | undefined {
    return this.a.syncing ? { ...this.a.syncing } : this.a.listed ? undefined : this.a.source?.progress;
  }

  private kernelChecks(): KernelCheck[] {
    const { opts, sockKernel, attacher } = this.a;
    const [maj, min] = release().split('.').map(Number);
    const tcx = maj > 6 || (maj === 6 && min >= 6);
    return [
      { name: 'btf', ok: existsSync('/sys/kernel/btf/vmlinux'), detail: '/sys/kernel/btf/vmlinux' },
      { name: 'tcx links (6.6+)', ok: tcx, detail: release() },
      { name: 'bpffs at pin path', ok: true, detail: opts.pinPath },
      {
        name: 'conntrack size', ok: true,
        detail: `${opts.conntrackSize} entries (${opts.conntrackSizeFrom === 'flag' ? '--conntrack-size' : `from the node's memory, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`})`,
      },
      ...(this.a.migration?.checks() ?? []),
      {
        name: 'flow cache', ok: true,
        detail: opts.flowCacheSize ? `${opts.flowCacheSize} entries per CPU` : 'off (--flow-cache-size 0): every packet looks up conntrack',
      },
      {
        name: 'local delivery', ok: true,
        detail: opts.localDelivery === 'peer'
          ? 'peer: translated packets enter local pods directly (bpf_redirect_peer), past the host FORWARD hooks'
          : 'stack: translated packets reach local pods through host routing and netfilter',
      },
      { name: 'netfilter conntrack lookup', ok: this.a.nfctKernel.ok, detail: this.a.nfctKernel.detail },
      { name: 'socket LB hooks (kernel)', ok: sockKernel.ok, detail: sockKernel.detail },
      sockLbCheck(opts.socketLb, sockKernel, this.a.sockCgroup, attacher?.cgroupAttachments() ?? []),
      { name: 'socket LB: connected UDP, backend removed', ok: true, detail: reapDetail(sockKernel, this.a.sweepMs) },
      { name: 'conntrack sweep', ok: true, detail: ctSweepDetail(this.a.ctSweep, this.a.sweepMs) },
      ...[...(attacher?.errors.values() ?? [])].map((e) => ({ name: `attach ${e.kind} ${e.ifname}`, ok: false, detail: e.error })),
    ];
  }

  services(filter?: ServiceFilter): ServiceSpec[] {
    return selectServices(this.a.desired, filter);
  }

  async maps(): Promise<DecodedMaps> {
    return decodeAllMaps(this.a.obj);
  }

  mapChunks(names: string[]): AsyncIterable<DecodedMap> {
    return decodeMaps(this.a.obj, names);
  }

  async stats(filter?: ServiceFilter): Promise<StatsInfo> {
    return readStats(this.a.obj, this.a.rec.svcIds(this.services(filter).map((s) => s.key)));
  }

  health() {
    return this.a.tracker.info();
  }
}

function ctSweepDetail(c: AgentState['ctSweep'], sweepMs: number): string {
  const where = c.kernel ? 'in the kernel (bpf/ct_sweep.c)' : `in the agent, reading the whole table (${c.detail})`;
  const last = c.lastMs === undefined ? '' : `; last ${c.lastMs.toFixed(1)} ms`;
  const fb = c.kernel && c.fallbacks ? `; ${c.fallbacks} passes also read the table (entries of reaped backends)` : '';
  return `every ${sweepMs / 1000} s, ${where}${last}${fb}`;
}
