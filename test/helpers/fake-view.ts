// An AgentView with fixed, realistic contents for API, CLI, health and metrics tests.
// Tests mutate its public fields to drive state changes (a pending change, a toggle, ...).
import { EventEmitter } from 'node:events';
import type { ServiceSpec } from '../../src/model/types.js';
import { checkMapNames, ViewError, type AgentView, type DecodedMap, type DecodedMaps, type HealthInfo, type LbAddressInfo, type Progress, type ServiceFilter, type StatsInfo, type StatusInfo } from '../../src/api/view.js';
import { selectServices, SortedIndex } from '../../src/api/sorted.js';

export const T0 = Date.UTC(2025, 0, 2, 3, 4, 5);

export function sampleServices(): ServiceSpec[] {
  return [
    {
      key: 'default/web',
      type: 'ClusterIP',
      frontends: [{
        id: 'default/web|http|TCP|ClusterIP|10.96.0.10:80|internal',
        service: 'default/web', portName: 'http', type: 'ClusterIP', addr: '10.96.0.10', port: 80, proto: 'TCP', scope: 'internal',
        backends: [
          { addr: '10.244.1.5', port: 8080, state: 'active', selectable: true, local: true, weight: 1, nodeName: 'node-a', target: 'web-1' },
          { addr: '10.244.2.7', port: 8080, state: 'terminating', selectable: false, local: false, weight: 1, nodeName: 'node-b', target: 'web-2' },
        ],
        affinityTimeoutSec: 0, sourceRanges: [], localOnly: false, maglev: false,
      }],
      localReadyEndpoints: 1,
      warnings: [],
    },
    {
      key: 'shop/lb',
      type: 'LoadBalancer',
      frontends: [{
        id: 'shop/lb||UDP|LoadBalancer|192.0.2.10:53|external',
        service: 'shop/lb', portName: '', type: 'LoadBalancer', addr: '192.0.2.10', port: 53, proto: 'UDP', scope: 'external',
        backends: [{ addr: '10.244.1.9', port: 5353, state: 'active', selectable: true, local: true, weight: 1 }],
        affinityTimeoutSec: 10800, sourceRanges: ['198.51.100.0/24'], localOnly: true, maglev: true,
      }, {
        id: 'shop/lb||UDP|NodePort|*:30053|external',
        service: 'shop/lb', portName: '', type: 'NodePort', addr: null, port: 30053, proto: 'UDP', scope: 'external',
        backends: [{ addr: '10.244.1.9', port: 5353, state: 'active', selectable: true, local: true, weight: 1 }],
        affinityTimeoutSec: 0, sourceRanges: [], localOnly: true, maglev: true,
      }],
      healthCheckNodePort: 32100,
      localReadyEndpoints: 1,
      warnings: ['port 9/SCTP: protocol not supported'],
    },
  ];
}

export class FakeView implements AgentView {
  readonly events = new EventEmitter();
  kubeMode = false;
  enabled = true;
  reason: StatusInfo['reason'] = 'default';
  healthInfo: HealthInfo = { lastUpdated: T0, pendingSince: null, nodeEligible: true };
  private readonly index = new SortedIndex<ServiceSpec>();
  statsInfo: StatsInfo = {
    services: [
      { svc: 'default/web', frontend: '10.96.0.10:80/TCP', packets: 1200, bytes: 3_500_000, newFlows: 40 },
      { svc: 'shop/lb', frontend: '192.0.2.10:53/UDP', packets: 7, bytes: 700, newFlows: 7 },
    ],
    drops: { no_backend: 3, malformed: 1 },
    conntrack: { entries: 47, max: 65536 },
  };
  mapsError: Error | undefined;
  progress: Progress | undefined;
  /** shop/lb's address, announced by this node */
  addresses: LbAddressInfo[] = [{
    addr: '192.0.2.10', services: ['shop/lb'], announcing: true, announcer: 'node-a', why: 'eligible: ready, xlb on', device: 'eth0', since: T0,
  }];
  drain: StatusInfo['drain'];

  constructor(specs: ServiceSpec[] = sampleServices()) {
    this.setServices(specs);
  }

  /** Replaces the desired state; stats become one zero row per frontend unless keepStats. */
  setServices(specs: ServiceSpec[], keepStats = true): void {
    for (const k of this.index.keys()) this.index.delete(k);
    for (const s of specs) this.index.set(s.key, s);
    if (!keepStats) {
      this.statsInfo.services = specs.flatMap((s) => s.frontends.map((f) => ({ svc: s.key, frontend: f.id, packets: 0, bytes: 0, newFlows: 0 })));
    }
  }

  status(): StatusInfo {
    return {
      node: 'node-a',
      enabled: this.enabled,
      reason: this.reason,
      devices: [{ name: 'eth0', ifindex: 2, xdpMode: 'native', progId: 41, linkId: 7 }],
      podInterfaces: [{ name: 'veth1a2b', progIds: [42, 43] }],
      pinPath: '/sys/fs/bpf/xlb-test',
      lastSync: T0,
      pendingChanges: 2,
      mapFill: [{ name: 'services', entries: 3, maxEntries: 65536 }, { name: 'backends', entries: 2, maxEntries: 16384 }],
      kernel: { release: '6.18.0-test', checks: [{ name: 'btf', ok: true, detail: '/sys/kernel/btf/vmlinux' }, { name: 'bpf_link_xdp', ok: false, detail: 'needs 5.9' }, { name: 'netfilter conntrack lookup', ok: true, detail: 'yes: connections netfilter conntrack tracks stay with it' }] },
      source: { kind: this.kubeMode ? 'kube' : 'manifests', synced: true, connection: 'up' },
      snatPorts: { first: 1024, last: 65535, skipped: 28232, used: 1230 },
      progress: this.progress,
      lbAddresses: this.lbAddresses(),
      announce: { arpReplies: 12, arpExpired: 1, ndpReplies: 5, ndpExpired: 2, takeovers: 1, garpErrors: 0 },
      drain: this.drain,
    };
  }

  lbAddresses(): LbAddressInfo[] {
    return this.addresses.map((a) => ({ ...a }));
  }

  services(filter?: ServiceFilter): ServiceSpec[] {
    return selectServices(this.index, filter);
  }

  async maps(): Promise<DecodedMaps> {
    if (this.mapsError) throw this.mapsError;
    return [
      {
        name: 'services', type: 'hash', maxEntries: 65536,
        entries: [{ key: { addr: '10.96.0.10', port: 80, proto: 'TCP', scope: 'internal' }, value: { svc_id: 1, count: 1, flags: 0 } }],
      },
      {
        name: 'stats', type: 'percpu_array', maxEntries: 4,
        entries: [{ key: { svc_id: 1 }, value: { packets: 12n, bytes: 9_007_199_254_740_993n, raw: new Uint8Array([1, 2, 255]) } }],
      },
      { name: 'affinity', type: 'lru_hash', maxEntries: 1024, entries: [] },
    ];
  }

  async *mapChunks(names: string[]): AsyncIterable<DecodedMap> {
    const all = await this.maps();
    checkMapNames(names, all.map((m) => m.name));
    for (const m of all) if (!names.length || names.includes(m.name)) yield m;
  }

  async stats(filter?: ServiceFilter): Promise<StatsInfo> {
    if (!filter?.namespace && !filter?.name && !filter?.type) return this.statsInfo;
    const keys = new Set(this.services(filter).map((s) => s.key));
    return { ...this.statsInfo, services: this.statsInfo.services.filter((x) => keys.has(x.svc)) };
  }

  async toggle(on: boolean): Promise<{ enabled: boolean; reason: string }> {
    if (this.kubeMode) throw new ViewError('FAILED_PRECONDITION', 'xlb follows the node label xlb.io/enabled here: use the node label');
    this.enabled = on;
    this.reason = 'toggle';
    return { enabled: on, reason: 'toggle' };
  }

  health(): HealthInfo {
    return this.healthInfo;
  }
}
