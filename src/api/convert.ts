// AgentView data -> xlb.v1 messages. Pure functions, so the wire shape is unit-testable.
import type { BackendSpec, FrontendSpec, ServiceSpec } from '../model/types.js';
import { FAMILY_NAME } from '../model/ip.js';
import type { Backend } from './generated/xlb/v1/Backend.js';
import type { Frontend } from './generated/xlb/v1/Frontend.js';
import type { DecodedMap as DecodedMapMsg } from './generated/xlb/v1/DecodedMap.js';
import type { ListMapsResponse } from './generated/xlb/v1/ListMapsResponse.js';
import type { ProgrammedEvent as ProgrammedEventMsg } from './generated/xlb/v1/ProgrammedEvent.js';
import type { Service } from './generated/xlb/v1/Service.js';
import type { StatsInfo as StatsInfoMsg } from './generated/xlb/v1/StatsInfo.js';
import type { StatusInfo as StatusInfoMsg } from './generated/xlb/v1/StatusInfo.js';
import type { DecodedMaps, ProgrammedEvent, StatsInfo, StatusInfo } from './view.js';

export function statusToMsg(s: StatusInfo): StatusInfoMsg {
  return {
    node: s.node,
    enabled: s.enabled,
    enabledReason: s.reason,
    devices: s.devices.map((d) => ({ ...d })),
    podInterfaces: s.podInterfaces.map((p) => ({ name: p.name, progIds: [...p.progIds] })),
    pinPath: s.pinPath,
    lastSyncMs: s.lastSync,
    pendingChanges: s.pendingChanges,
    mapFill: s.mapFill.map((m) => ({ ...m })),
    kernel: { release: s.kernel.release, checks: s.kernel.checks.map((c) => ({ ...c })) },
    source: { ...s.source },
    snatPorts: { ...s.snatPorts },
    progress: s.progress ? { ...s.progress } : null,
    lbAddresses: s.lbAddresses.map((a) => ({ ...a, services: [...a.services], sinceMs: a.since })),
    announce: { ...s.announce },
    nodeAddresses: [...(s.addresses?.node ?? [])],
    snatAddresses: [...(s.addresses?.snat ?? [])],
    drain: s.drain ? { ...s.drain } : null,
  };
}

function backendToMsg(b: BackendSpec): Backend {
  return {
    addr: b.addr,
    port: b.port,
    state: b.state,
    selectable: b.selectable,
    local: b.local,
    weight: b.weight,
    nodeName: b.nodeName ?? '',
    zone: b.zone ?? '',
    target: b.target ?? '',
  };
}

function frontendToMsg(f: FrontendSpec, announcer: (addr: string) => string): Frontend {
  return {
    id: f.id,
    service: f.service,
    portName: f.portName,
    type: f.type,
    addr: f.addr ?? '',
    port: f.port,
    proto: f.proto,
    scope: f.scope,
    backends: f.backends.map(backendToMsg),
    affinityTimeoutSec: f.affinityTimeoutSec,
    sourceRanges: [...f.sourceRanges],
    localOnly: f.localOnly,
    maglev: f.maglev,
    announcer: f.type === 'LoadBalancer' && f.addr ? announcer(f.addr) : '',
    ipFamily: FAMILY_NAME[f.family ?? 4],
  };
}

/** `announcer`: the node announcing a LoadBalancer address ('' = unknown). */
export function serviceToMsg(s: ServiceSpec, announcer: (addr: string) => string = () => ''): Service {
  return {
    key: s.key,
    type: s.type,
    frontends: s.frontends.map((f) => frontendToMsg(f, announcer)),
    healthCheckNodePort: s.healthCheckNodePort ?? 0,
    localReadyEndpoints: s.localReadyEndpoints,
    warnings: [...s.warnings],
  };
}

/**
 * JSON for decoded map fields: u64 counters arrive as bigint and byte arrays as Uint8Array,
 * neither of which JSON.stringify accepts as they are.
 */
export function entryJson(o: unknown): string {
  return JSON.stringify(o, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
    return v;
  });
}

export function mapToMsg(m: DecodedMaps[number]): DecodedMapMsg {
  return {
    name: m.name,
    type: m.type,
    maxEntries: m.maxEntries,
    entries: m.entries.map((e) => ({ keyJson: entryJson(e.key), valueJson: entryJson(e.value) })),
  };
}

export function mapsToMsg(maps: DecodedMaps): ListMapsResponse {
  return { maps: maps.map(mapToMsg) };
}

export function statsToMsg(s: StatsInfo): StatsInfoMsg {
  return {
    services: s.services.map((x) => ({
      service: x.svc,
      frontend: x.frontend,
      packets: x.packets,
      bytes: x.bytes,
      newFlows: x.newFlows,
      ipFamily: x.ipFamily ?? 'IPv4',
    })),
    drops: { ...s.drops },
    conntrack: { ...s.conntrack },
  };
}

export function eventToMsg(e: ProgrammedEvent): ProgrammedEventMsg {
  return {
    timeMs: e.time,
    service: e.service,
    frontends: e.frontends,
    backends: e.backends,
    durationMs: e.durationMs,
    ok: e.ok,
    error: e.error ?? '',
  };
}
