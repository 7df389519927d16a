// xlb on the namespace topology: Services and EndpointSlices as ordinary YAML in a folder,
// one agent per node namespace (manifests source), each with its own pin path and socket.
// Used by the end-to-end tests, the demo and the benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, renameSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isIPv6 } from 'node:net';
import { stringify } from 'yaml';
import { AGENT_NODE_FLAGS, agentEnv } from '../../src/agent/node-flags.js';
import { run, stopProcess } from './netns.js';
import type { Topology, TopoPod } from './topology.js';

export type KObj = Record<string, any>;

export interface PortDef { name: string; port: number; targetPort: number; protocol?: 'TCP' | 'UDP'; nodePort?: number }
export interface SvcDef {
  name: string;
  ns?: string;
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  clusterIP: string;
  ports: PortDef[];
  lbIP?: string;
  externalIPs?: string[];
  eTP?: 'Cluster' | 'Local';
  iTP?: 'Cluster' | 'Local';
  affinitySec?: number;
  sourceRanges?: string[];
  /** dual stack: the IPv6 ClusterIP (ipFamilies IPv4, IPv6; RequireDualStack) and an IPv6 LoadBalancer address */
  clusterIP6?: string;
  lbIP6?: string;
}
export interface EpDef { pod: TopoPod; ready?: boolean; serving?: boolean; terminating?: boolean }

export const HTTP_PORT = 8080;
export const UDP_PORT = 9000;

export function serviceObj(d: SvcDef): KObj {
  const spec: KObj = {
    type: d.type ?? 'ClusterIP',
    clusterIP: d.clusterIP,
    clusterIPs: d.clusterIP6 ? [d.clusterIP, d.clusterIP6] : [d.clusterIP],
    ...(d.clusterIP6 ? { ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' }
      : isIPv6(d.clusterIP) ? { ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack' } : {}),
    ports: d.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort, protocol: p.protocol ?? 'TCP', ...(p.nodePort ? { nodePort: p.nodePort } : {}) })),
  };
  if (d.externalIPs) spec.externalIPs = d.externalIPs;
  if (d.eTP && d.type !== 'ClusterIP') spec.externalTrafficPolicy = d.eTP;
  if (d.iTP) spec.internalTrafficPolicy = d.iTP;
  if (d.affinitySec !== undefined) {
    spec.sessionAffinity = 'ClientIP';
    spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: d.affinitySec } };
  }
  if (d.sourceRanges) spec.loadBalancerSourceRanges = d.sourceRanges;
  const obj: KObj = { apiVersion: 'v1', kind: 'Service', metadata: { name: d.name, namespace: d.ns ?? 'default' }, spec };
  const ingress = [d.lbIP, d.lbIP6].filter((ip) => ip).map((ip) => ({ ip }));
  if (ingress.length) obj.status = { loadBalancer: { ingress } };
  return obj;
}

/** The Service's EndpointSlice of one family (IPv6: the pods' ip6, a dual-stack topology's). */
export function sliceObj(d: SvcDef, eps: EpDef[], family: 4 | 6 = 4): KObj {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${d.name}-${family === 6 ? 'v6' : ''}abc12`, namespace: d.ns ?? 'default', labels: { 'kubernetes.io/service-name': d.name } },
    addressType: family === 6 ? 'IPv6' : 'IPv4',
    endpoints: eps.map((e) => ({
      addresses: [family === 6 ? e.pod.ip6 : e.pod.ip],
      nodeName: e.pod.node,
      targetRef: { kind: 'Pod', name: e.pod.name, namespace: d.ns ?? 'default' },
      conditions: { ready: e.ready ?? true, serving: e.serving ?? (e.ready ?? true), terminating: e.terminating ?? false },
    })),
    ports: d.ports.map((p) => ({ name: p.name, port: p.targetPort, protocol: p.protocol ?? 'TCP' })),
  };
}

export function nodeObj(name: string, ip: string, labels: Record<string, string> = {}, ip6?: string): KObj {
  const addresses = [ip, ip6].filter((a) => a).map((address) => ({ type: 'InternalIP', address }));
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels }, status: { addresses } };
}

export interface AgentHandle {
  node: string;
  proc: ChildProcess;
  socket: string;
  pinPath: string;
  log: string[];
  /** the agent logged "agent running" (kept apart from log, which holds only the last lines) */
  running: boolean;
}

/** The repo's CLI, compiled (dist/src/cli/main.js). */
export function cliPath(): string {
  return new URL('../../src/cli/main.js', import.meta.url).pathname;
}

/**
 * Make the topology's links behave like the NIC-facing wires of real nodes, for xlb and for
 * every baseline alike (benchmarks compare modes on the same links):
 * - XDP needs a wire that carries complete checksums; a veth whose sender offloads them (the
 *   default) carries only the pseudo-header sum plus a flag in the skb, which XDP cannot see
 *   and a redirected frame loses. With `xdp` the client's and nodes' devices checksum in
 *   software (which also turns their TSO off); otherwise they keep the veth defaults, as the
 *   tc device hook (the agent's choice on a veth) handles partial checksums and GSO packets.
 * - XDP redirect out of a veth needs the peer to run NAPI; veth enables it when GRO *changes*
 *   to on (it is on by default), so the bridge side cycles it. A physical NIC needs neither.
 */
export async function wireLike(topo: Topology, o: { xdp?: boolean } = {}): Promise<void> {
  const xdp = o.xdp ?? envDeviceMode() === 'xdp';
  for (const n of topo.nodes) {
    await topo.bridge.exec('ethtool', ['-K', `v${n.name}`, 'gro', 'off']);
    await topo.bridge.exec('ethtool', ['-K', `v${n.name}`, 'gro', 'on']);
  }
  for (const ns of [topo.client.ns, ...topo.nodes.map((n) => n.ns)]) {
    await ns.exec('ethtool', ['-K', 'eth0', 'tx', xdp ? 'off' : 'on']);
  }
}

export type DeviceMode = 'auto' | 'xdp' | 'tc';

/** XLB_DEVICE_MODE (the agent's own variable) picks the mode for runs that do not choose one,
 *  e.g. `XLB_DEVICE_MODE=xdp node dist/test/bench/run.js` to compare with the tc hook. */
function envDeviceMode(): DeviceMode | undefined {
  const m = process.env.XLB_DEVICE_MODE;
  return m === 'auto' || m === 'xdp' || m === 'tc' ? m : undefined;
}

export class XlbCluster {
  readonly dir: string;
  readonly work: string;
  readonly agents = new Map<string, AgentHandle>();

  /** deviceMode: the agents' --device-mode (default: the agent's own, auto: tc on these veths).
   *  sweepMs: the conntrack sweep interval (XLB_CT_SWEEP_MS); tests default to 1000, so flows
   *  they let expire go within a second; 'agent' leaves the agent's own (5 s), as deployed:
   *  the benchmarks, where a sweep of a table the load keeps full costs the node CPU. */
  constructor(readonly topo: Topology, readonly tag: string, readonly opts: { deviceMode?: DeviceMode; sweepMs?: number | 'agent' } = {}) {
    this.work = mkdtempSync(join(tmpdir(), `xlb-${tag}-`));
    this.dir = join(this.work, 'manifests');
    mkdirSync(this.dir);
    this.bpffs = `/run/${topo.set.prefix}-bpffs`;
    const nodes = topo.nodes.map((n) => nodeObj(n.name, n.ip, {}, n.ip6));
    this.write('nodes.yaml', nodes);
  }

  /** Write (atomically, as an editor's rename-save does) one manifest file. */
  write(file: string, objs: KObj[]): void {
    const tmp = join(this.work, `.${file}.tmp`);
    writeFileSync(tmp, objs.map((o) => stringify(o)).join('---\n'));
    renameSync(tmp, join(this.dir, file));
  }

  /** Write YAML text as one manifest file (atomically). */
  writeText(file: string, text: string): void {
    const tmp = join(this.work, `.${file}.tmp`);
    writeFileSync(tmp, text);
    renameSync(tmp, join(this.dir, file));
  }

  remove(file: string): void {
    rmSync(join(this.dir, file), { force: true });
  }

  /**
   * A Service and its EndpointSlice in `<name>.yaml`: of the ClusterIP's family; a dual-stack
   * Service gets one per family (IPv6: the pods of `eps6`, by default those of `eps`).
   */
  apply(d: SvcDef, eps: EpDef[], eps6: EpDef[] = eps): void {
    const slices = d.clusterIP6 ? [sliceObj(d, eps), sliceObj(d, eps6, 6)] : [sliceObj(d, eps, isIPv6(d.clusterIP) ? 6 : 4)];
    this.write(`${d.name}.yaml`, [serviceObj(d), ...slices]);
  }

  /**
   * `ip netns exec` remounts /sys, so a pin under /sys/fs/bpf made inside it would live in a
   * private mount and vanish with the agent. A bpffs of the run's own under /run stays
   * visible from every namespace and outlives any one agent, as /sys/fs/bpf does on a node.
   */
  readonly bpffs: string;

  pinPath(node: string): string {
    return join(this.bpffs, node);
  }

  socket(node: string): string {
    return join(this.work, node, 'xlb.sock');
  }

  private async mountBpffs(): Promise<void> {
    mkdirSync(this.bpffs, { recursive: true });
    const r = await run('mountpoint', ['-q', this.bpffs]).then(() => true, () => false);
    if (!r) await run('mount', ['-t', 'bpf', 'bpf', this.bpffs]);
  }

  /** The bpffs mount and link settings before each start, one start at a time. */
  private prepared: Promise<void> = Promise.resolve();

  /**
   * Start agents on several nodes at once, with the same flags, and wait until each has
   * programmed its first sync: the load (BPF verifier, module start) of one overlaps the other's.
   * Each may take as long as the starts one after the other would (the CPUs are shared).
   */
  async startAgents(nodes: string[], extra: string[] = [], readyTimeoutMs = 20_000 * nodes.length): Promise<AgentHandle[]> {
    return Promise.all(nodes.map((n) => this.startAgent(n, extra, readyTimeoutMs)));
  }

  /** Start the agent in a node namespace and wait until it has programmed its first sync. */
  async startAgent(node: string, extra: string[] = [], readyTimeoutMs = 20_000,
    source: string[] = ['--source', 'manifests', '--manifests', this.dir]): Promise<AgentHandle> {
    const prep = this.prepared.then(async () => {
      await this.mountBpffs();
      await wireLike(this.topo, { xdp: (this.opts.deviceMode ?? envDeviceMode()) === 'xdp' });
    });
    this.prepared = prep.catch(() => undefined);
    await prep;
    const ns = this.topo.nsFor(node);
    const socket = this.socket(node);
    const mode = this.opts.deviceMode ? ['--device-mode', this.opts.deviceMode] : [];
    const args = [...AGENT_NODE_FLAGS, cliPath(), 'agent', ...source, '--node', node,
      '--devices', 'eth0', ...mode, '--pod-interfaces', 'lxc*', '--pin-path', this.pinPath(node), '--api-socket', socket,
      '--healthz-bind-address', '127.0.0.1:10256', '--metrics-bind-address', '127.0.0.1:10249',
      // Socket LB attaches to a cgroup: never the default (the machine's root cgroup). A test
      // that wants it passes --socket-lb and --cgroup with a child cgroup it created (later wins).
      '--socket-lb', 'off', ...extra];
    const proc = spawn('ip', ['netns', 'exec', ns.name, process.execPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...agentEnv(), ...(this.opts.sweepMs === 'agent' ? {} : { XLB_CT_SWEEP_MS: String(this.opts.sweepMs ?? 1000) }) },
    });
    const h: AgentHandle = { node, proc, socket, pinPath: this.pinPath(node), log: [], running: false };
    // A pipe chunk can end mid-line, and with thousands of Services more than the kept lines can
    // follow "agent running" between two polls: join lines across chunks, note readiness here.
    const keeper = () => {
      let part = '';
      return (d: Buffer) => {
        const lines = (part + d.toString()).split('\n');
        part = lines.pop() ?? '';
        for (const l of lines) {
          if (!l) continue;
          h.log.push(l);
          if (l.includes('"agent running"')) h.running = true;
        }
        if (h.log.length > 2000) h.log.splice(0, h.log.length - 2000);
      };
    };
    proc.stdout?.on('data', keeper());
    proc.stderr?.on('data', keeper());
    this.agents.set(node, h);
    await this.waitReady(h, readyTimeoutMs);
    return h;
  }

  private async waitReady(h: AgentHandle, timeoutMs = 20_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (h.proc.exitCode !== null) throw new Error(`agent on ${h.node} exited (${h.proc.exitCode}):\n${h.log.slice(-20).join('\n')}`);
      if (h.running) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`agent on ${h.node} not ready in ${timeoutMs} ms:\n${h.log.slice(-20).join('\n')}`);
  }

  /** Stop an agent: SIGTERM (graceful) or SIGKILL (kill -9). */
  async stopAgent(node: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const h = this.agents.get(node);
    if (!h) return;
    this.agents.delete(node);
    // `ip netns exec` execs node, so the child pid is the agent itself. Bounded, but long
    // enough for a loaded host: a killed agent that has not exited yet still answers on its
    // status socket, and the next agent refuses to start beside it.
    await stopProcess(h.proc, signal, 30_000);
  }

  /** Run the xlb CLI against a node's agent. */
  async cli(node: string, args: string[]): Promise<string> {
    const r = await run(process.execPath, [cliPath(), ...args, '--socket', this.socket(node)], { timeoutMs: 15_000 });
    return r.stdout;
  }

  /** Wait until `file`'s content is programmed on every running agent (a new event after now). */
  async settle(ms = 600): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
  }

  async teardown(): Promise<void> {
    for (const node of [...this.agents.keys()]) await this.stopAgent(node, 'SIGKILL');
    await run('umount', ['-l', this.bpffs]).catch(() => undefined);
    rmSync(this.bpffs, { recursive: true, force: true });
    rmSync(this.work, { recursive: true, force: true });
  }
}
