// The ways a benchmark can serve Services on the topology: straight to the pod (no Service
// at all), kube-proxy-style iptables or nftables rules, or the xlb agent. Each mode installs
// the same Service set on every node and removes every trace of itself in teardown(), so
// modes can alternate within one run.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XlbCluster } from '../helpers/cluster.js';
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
  /** a variant measured on the small Service set only (not the 10,000-Service round) */
  smallOnly?: boolean;
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

/**
 * The xlb agent in every node namespace (test/helpers/cluster.ts, as the e2e tests run it),
 * reading a manifests dir generated from the Service set. setup() returns once every agent
 * has programmed its first full sync; the caller's probe then checks traffic. `agentArgs`
 * make a variant (another name) of the default agent.
 */
export function xlbMode(o: { name?: string; agentArgs?: string[]; smallOnly?: boolean } = {}): Mode {
  let c: XlbCluster | null = null;
  return {
    name: o.name ?? 'xlb',
    smallOnly: o.smallOnly,
    unavailable: () => (existsSync(AGENT_MODULE) ? null : `not built (${AGENT_MODULE} missing)`),
    setup: async (t, services) => {
      // The agent's own conntrack sweep interval (5 s), not the tests' 1 s: each sweep reads the
      // whole table, which the conn/s rows keep at 100,000+ entries (closed flows stay 30 s),
      // and at 1 s the client node's agent took 20-50% of a CPU beside wrk.
      c = new XlbCluster(t, 'bench', { sweepMs: 'agent' });
      c.remove('nodes.yaml'); // toManifests() carries the Node objects
      c.writeText('services.yaml', toManifests(services, t.nodes.map((n) => ({ name: n.name, ip: n.ip, ip6: n.ip6 }))));
      // No kube-proxy to migrate from here: the netfilter lookup off, or a port a client reuses
      // from a baseline mode's connections (still in netfilter's TIME_WAIT, its rules flushed)
      // would be left to a stack with no rules for it.
      for (const n of t.nodes) await c.startAgent(n.name, ['--netfilter-lookup', 'off', ...(o.agentArgs ?? [])], 600_000);
    },
    teardown: async () => {
      await c?.teardown();
      c = null;
    },
    check: () => {
      for (const a of c?.agents.values() ?? []) {
        if (a.proc.exitCode !== null) throw new Error(`xlb agent on ${a.node} exited (${a.proc.exitCode}): ${a.log.slice(-10).join('\n')}`);
      }
    },
  };
}

export function allModes(): Mode[] {
  // xlb-peer: the agent with --local-delivery peer (packets for local pods skip the host
  // stack; an opt-in, see README), on the small Service set only to keep the run short.
  const peer = xlbMode({ name: 'xlb-peer', agentArgs: ['--local-delivery', 'peer'], smallOnly: true });
  return [directMode, baselineMode('iptables'), baselineMode('nftables'), xlbMode(), peer];
}
