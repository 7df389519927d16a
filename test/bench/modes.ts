// The ways a benchmark can serve Services on the topology: straight to the pod (no Service
// at all), kube-proxy-style iptables or nftables rules, or the xlb agent. Each mode installs
// the same Service set on every node and removes every trace of itself in teardown(), so
// modes can alternate within one run.
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { run } from '../helpers/netns.js';
import type { Topology } from '../helpers/topology.js';
import { applyBaseline, flushBaseline, type Baseline } from './kubeproxy.js';
import { specsFor, toManifests, type SimpleService } from './services.js';

export interface Mode {
  name: string;
  /** null when the mode can run here, else why not */
  unavailable(): string | null;
  setup(topo: Topology, services: SimpleService[]): Promise<void>;
  teardown(): Promise<void>;
  /** Throws when something the mode runs has died (checked while waiting for readiness). */
  check?(): void;
}

export const directMode: Mode = {
  name: 'direct',
  unavailable: () => null,
  setup: async () => undefined,
  teardown: async () => undefined,
};

export function baselineMode(kind: Baseline): Mode {
  let topo: Topology | null = null;
  return {
    name: kind,
    unavailable: () => null,
    setup: async (t, services) => {
      topo = t;
      for (const n of t.nodes) await applyBaseline(kind, n.ns, specsFor(services, n.name));
    },
    teardown: async () => {
      if (!topo) return;
      for (const n of topo.nodes) await flushBaseline(n.ns).catch(() => undefined);
      topo = null;
    },
  };
}

const repoRoot = resolve(fileURLToPath(import.meta.url), '../../../..');
const AGENT_MODULE = join(repoRoot, 'dist/src/cli/agent.js');
const XLB_MAIN = join(repoRoot, 'dist/src/cli/main.js');

interface Agent { node: string; proc: ChildProcess; tail: string; exited: number | null; pinPath: string }

/**
 * The xlb agent in every node namespace, reading a manifests dir generated from the Service
 * set. Ready is decided by the caller's probe (traffic through a Service works), not by logs.
 */
export function xlbMode(): Mode {
  let agents: Agent[] = [];
  let dir = '';
  let topo: Topology | null = null;
  return {
    name: 'xlb',
    unavailable: () => (existsSync(AGENT_MODULE) ? null : `not built (${AGENT_MODULE} missing)`),
    setup: async (t, services) => {
      topo = t;
      dir = await mkdtemp(join(tmpdir(), 'xlb-bench-'));
      await mkdir(join(dir, 'manifests'));
      await writeFile(join(dir, 'manifests', 'services.yaml'), toManifests(services, t.nodes.map((n) => ({ name: n.name, ip: n.ip }))));
      agents = t.nodes.map((n) => startAgent(t, n.name, dir));
    },
    teardown: async () => {
      for (const a of agents) await stopAgent(a);
      if (topo) for (const n of topo.nodes) await detachLeftovers(topo, n.name);
      agents = [];
      if (dir) await rm(dir, { recursive: true, force: true });
      topo = null;
    },
    check: () => {
      for (const a of agents) if (a.exited !== null) throw new Error(`xlb agent on ${a.node} exited (${a.exited}): ${a.tail.slice(-600)}`);
    },
  };
}

function startAgent(t: Topology, node: string, dir: string): Agent {
  const pinPath = `/sys/fs/bpf/${t.set.prefix}-${node}`;
  const args = [XLB_MAIN, 'agent', '--source', 'manifests', '--manifests', join(dir, 'manifests'), '--node', node,
    '--devices', 'eth0', '--pod-interfaces', 'lxc*', '--pin-path', pinPath, '--api-socket', join(dir, `${node}.sock`),
    '--healthz-bind-address', '127.0.0.1:0', '--metrics-bind-address', '127.0.0.1:0', '--log-level', 'warn'];
  const proc = t.set.track(t.nsFor(node).spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const a: Agent = { node, proc, tail: '', exited: null, pinPath };
  const keep = (d: Buffer) => { a.tail = (a.tail + d.toString()).slice(-4000); };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  proc.once('exit', (code, sig) => { a.exited = code ?? (sig ? -1 : 0); });
  return a;
}

async function stopAgent(a: Agent): Promise<void> {
  if (a.exited === null) {
    const gone = new Promise<void>((r) => a.proc.once('exit', () => r()));
    a.proc.kill('SIGTERM');
    const t = setTimeout(() => a.proc.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
  // The agent leaves the datapath running on purpose (pinned links); removing the pins is
  // what detaches it here.
  await rm(a.pinPath, { recursive: true, force: true });
}

/** Whatever an agent attached without a pinned link, on this run's own node devices. */
async function detachLeftovers(t: Topology, node: string): Promise<void> {
  const ns = t.nsFor(node);
  await ns.ip('link', 'set', 'dev', 'eth0', 'xdp', 'off').catch(() => undefined);
  for (const p of t.pods.filter((p) => p.node === node)) {
    await run('ip', ['netns', 'exec', ns.name, 'tc', 'qdisc', 'del', 'dev', p.hostIf, 'clsact']).catch(() => undefined);
  }
}

export function allModes(): Mode[] {
  const x = xlbMode();
  return [directMode, baselineMode('iptables'), baselineMode('nftables'), x];
}
