// NodePort bulk TCP against going straight to the pod, measured side by side in one run on
// one topology with xlb running on both nodes (issue 3 §9):
//   direct-local   client -> app1-1 (on node1), routed by node1's stack
//   np-local       client -> node1:NodePort -> app1-1 (XDP DNAT, up the stack to the pod)
//   direct-remote  client -> app1-2 (on node2), routed by node2's stack
//   routed-remote  client -> node1 -> node2 -> app1-2 and back the same way: plain routing
//                  through node1's stack, the hops np-remote takes, without any translation
//   np-remote      client -> node1:NodePort -> app1-2 (XDP DNAT+SNAT, FIB, redirect to node2)
// Each repetition runs every case once, rotating the order, so drift on a shared 2-core machine
// spreads over all of them; figures are medians. "direct" crosses node1's XDP program too (a
// miss costs a parse and two lookups), as it would on a node running xlb.
// np-remote takes one hop more than direct-remote (node1 then node2): its ratio is taken
// against routed-remote, which crosses the same hops without any Service translation.
//   node dist/test/bench/nodeport.js [--quick] [--reps N] [--duration S] [--json FILE]
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isRoot, sweepStale } from '../helpers/netns.js';
import { buildTopology, type Topology } from '../helpers/topology.js';
import { startIperfServer } from '../helpers/podserver.js';
import { iperfTcp } from '../helpers/load.js';
import { XlbCluster, type SvcDef } from '../helpers/cluster.js';

const IPERF_PORT = 5201;
const NP_LOCAL = 30301;
const NP_REMOTE = 30302;
const TARGET_RATIO = 0.95;

export interface NodePortBenchOptions { quick?: boolean; reps?: number; durationS?: number }
export type CaseName = 'direct-local' | 'np-local' | 'direct-remote' | 'routed-remote' | 'np-remote';
export interface NodePortBenchResult {
  durationS: number; reps: number;
  /** Gbit/s per repetition and their median, per case */
  samples: Record<CaseName, number[]>;
  median: Record<CaseName, number | null>;
  /** NodePort median / direct median to the same pod over the same hops (local: direct-local,
   *  remote: routed-remote), and remote against the one-hop direct-remote for reference */
  ratio: { local: number | null; remote: number | null; remoteVsOneHop: number | null };
  target: number;
  errors: string[];
  /** how the remote case leaves node1 (XDP redirect or the stack), from the drops and ethtool counters */
  remotePath: string;
}

interface Case { name: CaseName; pod: string; host: string; port: number; viaNode1?: boolean }

function cases(topo: Topology): Case[] {
  const [n1] = topo.nodes;
  const ip = (name: string) => topo.pods.find((p) => p.name === name)!.ip;
  return [
    { name: 'direct-local', pod: 'app1-1', host: ip('app1-1'), port: IPERF_PORT },
    { name: 'np-local', pod: 'app1-1', host: n1.ip, port: NP_LOCAL },
    { name: 'direct-remote', pod: 'app1-2', host: ip('app1-2'), port: IPERF_PORT },
    { name: 'routed-remote', pod: 'app1-2', host: ip('app1-2'), port: IPERF_PORT, viaNode1: true },
    { name: 'np-remote', pod: 'app1-2', host: n1.ip, port: NP_REMOTE },
  ];
}

function iperfService(name: string, clusterIP: string, nodePort: number): SvcDef {
  return { name, type: 'NodePort', clusterIP, ports: [{ name: 'iperf', port: IPERF_PORT, targetPort: IPERF_PORT, nodePort }] };
}

const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function measure(topo: Topology, c: Case, durationS: number): Promise<number> {
  // one-off server per run: a failed run never leaves a busy server behind for the next case
  const srv = await startIperfServer(topo, c.pod, { oneOff: true });
  if (c.viaNode1) await routeViaNode1(topo, c.host, 'replace');
  try {
    return (await iperfTcp(topo.client.ns, c.host, c.port, durationS)).gbps;
  } finally {
    srv.stop();
    if (c.viaNode1) await routeViaNode1(topo, c.host, 'del');
  }
}

/** Client <-> pod on node2 through node1 both ways, as np-remote's packets go. */
async function routeViaNode1(topo: Topology, podIp: string, op: 'replace' | 'del'): Promise<void> {
  const [n1, n2] = topo.nodes;
  await topo.client.ns.ip('route', op, `${podIp}/32`, 'via', n1.ip, 'dev', 'eth0');
  await n2.ns.ip('route', op, `${topo.client.ip}/32`, 'via', n1.ip, 'dev', 'eth0');
}

/**
 * node1 forwards routed-remote out of the device it came in on; an ICMP redirect would teach
 * the client to go to node2 directly and quietly turn that case into direct-remote.
 */
async function noRedirects(topo: Topology): Promise<void> {
  await topo.nodes[0].ns.exec('sysctl', ['-q', '-w', 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.eth0.send_redirects=0']);
}

/** XDP_REDIRECT count on node1's device: tells whether np-remote left through XDP. */
async function xdpRedirects(topo: Topology): Promise<number> {
  const r = await topo.nodes[0].ns.exec('ethtool', ['-S', 'eth0']);
  const m = /rx_queue_0_xdp_redirect:\s+(\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : 0;
}

/** node1's device hook as its agent reports it: native, generic or tc. */
async function deviceMode(c: XlbCluster): Promise<string> {
  const st = JSON.parse(await c.cli('node1', ['status', '-o', 'json'])) as { devices: Array<{ name: string; xdpMode: string }> };
  return st.devices.find((d) => d.name === 'eth0')?.xdpMode ?? 'unknown';
}

export async function benchNodePort(opts: NodePortBenchOptions = {}): Promise<NodePortBenchResult> {
  const reps = opts.reps ?? (opts.quick ? 1 : 3);
  const durationS = opts.durationS ?? (opts.quick ? 2 : 5);
  const t0 = performance.now();
  await sweepStale('npb');
  const topo = await buildTopology({ tag: 'npb', podsPerNode: 1 });
  const c = new XlbCluster(topo, 'npb');
  const samples: Record<CaseName, number[]> = { 'direct-local': [], 'np-local': [], 'direct-remote': [], 'routed-remote': [], 'np-remote': [] };
  const errors: string[] = [];
  let remotePath = 'not measured';
  try {
    const [local, remote] = [topo.pods.find((p) => p.name === 'app1-1')!, topo.pods.find((p) => p.name === 'app1-2')!];
    c.apply(iperfService('iperf-local', '10.96.3.1', NP_LOCAL), [{ pod: local }]);
    c.apply(iperfService('iperf-remote', '10.96.3.2', NP_REMOTE), [{ pod: remote }]);
    await c.startAgent('node1');
    await c.startAgent('node2');
    await noRedirects(topo);
    const list = cases(topo);
    for (let r = 0; r < reps; r++) {
      for (let i = 0; i < list.length; i++) {
        const cs = list[(i + r) % list.length];
        const before = cs.name === 'np-remote' ? await xdpRedirects(topo) : 0;
        try {
          samples[cs.name].push(await measure(topo, cs, durationS));
        } catch (e) {
          errors.push(`${cs.name}: ${(e as Error).message.split('\n')[0].slice(0, 200)}`);
        }
        if (cs.name === 'np-remote') {
          // Which device hook ran (auto: tc on these veths, XDP on a NIC); under XDP its
          // redirect counter also shows the flow left through XDP rather than the stack.
          const mode = await deviceMode(c);
          const n = (await xdpRedirects(topo)) - before;
          remotePath = mode === 'tc' ? 'tc device hook (xlb_tc_dev: FIB + bpf_redirect)'
            : n > 1000 ? `XDP_REDIRECT (${n} frames redirected by node1's XDP in the last run)` : `the stack (${n} XDP redirects)`;
        }
      }
    }
  } finally {
    await c.teardown();
    await topo.teardown();
  }
  const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)])) as Record<CaseName, number | null>;
  const ratio = (a: number | null, b: number | null) => (a !== null && b ? a / b : null);
  return {
    durationS: (performance.now() - t0) / 1000, reps, samples, median: med,
    ratio: {
      local: ratio(med['np-local'], med['direct-local']), remote: ratio(med['np-remote'], med['routed-remote']),
      remoteVsOneHop: ratio(med['np-remote'], med['direct-remote']),
    },
    target: TARGET_RATIO, errors, remotePath,
  };
}

export function renderNodePort(r: NodePortBenchResult): string {
  const f = (v: number | null) => (v === null ? '-' : v.toFixed(2));
  const lines = ['iperf3 TCP, one stream, client -> pod (Gbit/s, median of ' + r.reps + ')', ''];
  for (const [k, v] of Object.entries(r.median)) lines.push(`${k.padEnd(16)}${f(v).padStart(8)}   samples ${r.samples[k as CaseName].map((x) => x.toFixed(2)).join(' ')}`);
  lines.push('');
  for (const [side, label] of [['local', 'np-local / direct-local'], ['remote', 'np-remote / routed-remote']] as const) {
    const v = r.ratio[side];
    lines.push(`${label.padEnd(28)}${f(v).padStart(6)}  (target >= ${r.target}${v === null ? '' : v >= r.target ? ', met' : ', NOT met'})`);
  }
  lines.push(`${'np-remote / direct-remote'.padEnd(28)}${f(r.ratio.remoteVsOneHop).padStart(6)}  (one hop fewer for direct: reference only)`);
  lines.push(`np-remote left node1 through: ${r.remotePath}`);
  for (const e of r.errors) lines.push(`error: ${e}`);
  lines.push(`total ${r.durationS.toFixed(0)} s`);
  return lines.join('\n');
}

function parseArgs(argv: string[]): { opts: NodePortBenchOptions; json?: string } {
  const opts: NodePortBenchOptions = {};
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = (what: string) => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0 || v > 60) throw new Error(`nodeport bench: ${what} must be a number in 1..60`);
      return v;
    };
    if (a === '--quick') opts.quick = true;
    else if (a === '--reps') opts.reps = num('--reps');
    else if (a === '--duration') opts.durationS = num('--duration');
    else if (a === '--json' && argv[i + 1]) json = resolve(argv[++i]);
    else throw new Error(`nodeport bench: unknown flag '${a}' (flags: --quick, --reps N, --duration S, --json FILE)`);
  }
  return { opts, json };
}

async function main(argv: string[]): Promise<number> {
  const { opts, json } = parseArgs(argv);
  if (!isRoot()) { console.error('nodeport bench: needs root (network namespaces, BPF)'); return 1; }
  const r = await benchNodePort(opts);
  console.log(renderNodePort(r));
  if (json) {
    await mkdir(dirname(json), { recursive: true });
    await writeFile(json, JSON.stringify(r, null, 2) + '\n');
  }
  return r.errors.length ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((c) => { process.exitCode = c; }, (e: Error) => { console.error(e.message); process.exitCode = 2; });
}
