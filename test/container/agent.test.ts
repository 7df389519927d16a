// The image built and run for real (issue 20): deploy/Containerfile built with podman on a base
// made from Debian packages (image.ts), and the agent run in it the way deploy/daemonset.yaml
// runs it: in a node's network namespace of the e2e topology, the run's own bpffs at
// /sys/fs/bpf, the DaemonSet's capabilities and nothing else (read from the manifest here, so
// text and proof cannot drift), its user, a read-only root, no privilege escalation, not
// privileged. node2's agent runs on the host as in the e2e suites.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildTopology, type Topology, type TopoPod } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { XlbCluster, HTTP_PORT, type SvcDef } from '../helpers/cluster.js';
import { steadyIn } from '../helpers/steady.js';
import { sweepStale, isRoot } from '../helpers/netns.js';
import { answers, eventually } from '../helpers/e2e.js';
import { DEPLOY, loadYaml } from '../unit/deploy-manifests.js';
import { PODMAN, buildImage, engineMissing, ensureBase, imageSize, podman, runLimits } from './image.js';

const skip = !isRoot() ? 'the container suite runs podman as root' : await engineMissing();
if (skip) console.log(`# test/container skipped: ${skip}`);

// ---- what the DaemonSet says ----
const ds = loadYaml(join(DEPLOY, 'daemonset.yaml'))[0]!;
const agentSpec = (ds.spec.template.spec.containers as Array<Record<string, any>>).find((c) => c.name === 'agent')!;
const sc = agentSpec.securityContext as Record<string, any>;
const CAPS = sc.capabilities.add as string[];
const initSpec = (ds.spec.template.spec.initContainers as Array<Record<string, any>>)[0]!;

/** podman flags for the DaemonSet's securityContext, with `caps` added after dropping all. */
function securityFlags(caps: string[], seccomp: string): string[] {
  assert.deepEqual(sc.capabilities.drop, ['ALL']);
  assert.equal(sc.privileged, false);
  assert.equal(sc.allowPrivilegeEscalation, false);
  assert.equal(sc.readOnlyRootFilesystem, true);
  return ['--user', `${sc.runAsUser}:0`, '--cap-drop=all', ...caps.map((c) => `--cap-add=CAP_${c}`),
    '--read-only', '--security-opt', 'no-new-privileges', '--security-opt', `seccomp=${seccomp}`];
}

/** The DaemonSet's agent args, with the manifests source in place of the kube source. */
function agentArgs(): string[] {
  const keep = (agentSpec.args as string[]).filter((a) => !/^--(source|config)=/.test(a));
  return [...keep, '--source=manifests', '--manifests=/etc/xlb/manifests', '--node=node1', '--devices=eth0', '--pod-interfaces=lxc*'];
}

/**
 * The runtime's default seccomp profile, with bpf() allowed under CAP_BPF as containerd 1.7+
 * and Docker 23+ ship it: Debian bookworm's podman (4.3) allows bpf() only with CAP_SYS_ADMIN,
 * which the DaemonSet does not add (see the seccomp test below for what its profile does).
 */
async function bpfSeccompProfile(dir: string): Promise<{ stock: string; withBpf: string }> {
  const stock = (await podman(['info', '--format', '{{.Host.Security.SECCOMPProfilePath}}'])).trim();
  const p = JSON.parse(readFileSync(stock, 'utf8')) as { syscalls: Array<{ names: string[]; action: string; includes?: { caps?: string[] }; excludes?: { caps?: string[] } }> };
  if (p.syscalls.some((r) => r.names.includes('bpf') && r.action === 'SCMP_ACT_ALLOW' && r.includes?.caps?.includes('CAP_BPF'))) {
    return { stock, withBpf: stock };
  }
  for (const r of p.syscalls) {
    if (r.names.includes('bpf') && r.action === 'SCMP_ACT_ERRNO') r.names = r.names.filter((n) => n !== 'bpf');
  }
  p.syscalls.push({ names: ['bpf'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_BPF'] } });
  const withBpf = join(dir, 'seccomp-bpf.json');
  writeFileSync(withBpf, JSON.stringify(p));
  return { stock, withBpf };
}

interface Exit { code: number; stdout: string; stderr: string }
function podmanExit(args: string[], timeoutMs = 60_000): Promise<Exit> {
  return new Promise((resolve) => {
    execFile('podman', [...PODMAN, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

let topo: Topology;
let c: XlbCluster;
let app1: TopoPod[];
let image = '';
let base = '';
let name = '';
let seccomp: { stock: string; withBpf: string };
const started: string[] = [];
const log = (s: string) => console.log(`# ${s}`);
const web: SvcDef = { name: 'web', type: 'NodePort', clusterIP: '10.96.1.10', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT, nodePort: 30180 }] };

/** podman run flags that mount what the DaemonSet's volumes give the agent. */
function volumeFlags(): string[] {
  const run = join(c.work, 'run-xlb');
  mkdirSync(run, { recursive: true });
  // bpffs: HostToContainer propagation is rslave; /run/xlb: the status socket's hostPath.
  return ['-v', `${c.bpffs}:/sys/fs/bpf:rslave`, '-v', `${run}:/run/xlb`, '-v', `${c.dir}:/etc/xlb/manifests:ro`,
    '--tmpfs', '/tmp:size=16m'];
}

function runFlags(ctr: string, caps: string[], profile = seccomp.withBpf): string[] {
  started.push(ctr);
  return ['--name', ctr, ...runLimits(), '--network', `ns:/run/netns/${topo.nsFor('node1').name}`, ...securityFlags(caps, profile), ...volumeFlags(), image, ...agentArgs()];
}

async function runningCount(ctr: string): Promise<number> {
  const r = await podmanExit(['logs', ctr]);
  return (r.stdout + r.stderr).split('"agent running"').length - 1;
}

async function waitRunning(ctr: string, n: number, timeoutMs = 40_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await runningCount(ctr) >= n) return;
    const st = (await podmanExit(['inspect', '--format', '{{.State.Status}}', ctr])).stdout.trim();
    if (st === 'exited') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const l = await podmanExit(['logs', '--tail', '20', ctr]);
  assert.fail(`container agent not running:\n${l.stdout}${l.stderr}`);
}

before(async () => {
  if (skip) return;
  await sweepStale('ctr');
  base = await ensureBase(log);
  image = await buildImage(base, log);
  topo = await buildTopology({ tag: 'ctr', apps: ['app1'], podsPerNode: 2 });
  app1 = topo.pods;
  await startPodServers(topo);
  c = new XlbCluster(topo, 'ctr');
  seccomp = await bpfSeccompProfile(c.work);
  name = `${topo.set.prefix}-agent`;
  c.apply(web, app1.map((pod) => ({ pod })));
  await c.startAgent('node2');
  // The DaemonSet's init container first, as it runs it: privileged, the bpffs volume shared.
  assert.equal(initSpec.securityContext.privileged, true);
  await podman(['run', '--rm', ...runLimits(), '--privileged', '--network', `ns:/run/netns/${topo.nsFor('node1').name}`,
    '-v', `${c.bpffs}:/sys/fs/bpf:rshared`, '--entrypoint', initSpec.command[0], image, ...initSpec.command.slice(1)]);
  await podman(['run', '-d', ...runFlags(name, CAPS)]);
  await waitRunning(name, 1);
});

after(async () => {
  for (const ctr of started) await podmanExit(['rm', '-f', '-t', '0', ctr]);
  await c?.teardown();
  await topo?.teardown();
});

const t = (title: string, fn: () => Promise<void>) => test(title, { skip: skip ?? false }, fn);

t('the image: what it adds to its base stays within 70 MB, `xlb` on PATH', async () => {
  // The 200 MB goal of issue 20 is out of reach with a node:20-bookworm-slim-like base: Node
  // alone is 95 MB, its headers 54 MB and npm 19 MB (the official images ship all three).
  // What the Containerfile adds is what this project controls.
  const size = await imageSize(image);
  const added = size - await imageSize(base);
  log(`image size ${(size / 1e6).toFixed(1)} MB, base ${((size - added) / 1e6).toFixed(1)} MB, added ${(added / 1e6).toFixed(1)} MB`);
  assert.ok(added <= 70e6, `the image adds ${(added / 1e6).toFixed(1)} MB to its base`);
  const which = await podman(['run', '--rm', ...runLimits(), '--network=none', '--entrypoint', 'sh', image, '-c', 'command -v xlb']);
  assert.equal(which.trim(), '/usr/local/bin/xlb');
});

t("the agent runs with exactly the DaemonSet's capabilities, read-only root, its user", async () => {
  const status = await podman(['exec', name, 'cat', '/proc/1/status']);
  const eff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)![1]}`);
  const bits: Record<string, number> = { NET_ADMIN: 12, NET_RAW: 13, PERFMON: 38, BPF: 39 };
  assert.equal(eff, CAPS.reduce((m, cap) => m | (1n << BigInt(bits[cap]!)), 0n), `CapEff ${eff.toString(16)} for ${CAPS}`);
  assert.match(status, /^NoNewPrivs:\s*1$/m);
  assert.match(status, /^Seccomp:\s*2$/m);
  assert.match(status, /^Uid:\s*0\s/m);
  const w = await podmanExit(['exec', name, 'touch', '/opt/xlb/x']);
  assert.notEqual(w.code, 0, 'the root filesystem is read-only');
});

t('the Services of the e2e topology answer through the containerized agent', async () => {
  await eventually('NodePort on node1 answers', async () => (await topo.curl('client', `http://${topo.nodes[0].ip}:30180/`, { timeoutMs: 500 })).status === 200, 15_000);
  const np = await answers(topo, 'client', `http://${topo.nodes[0].ip}:30180/`, 8);
  assert.equal(np.failed, 0);
  const onNode1 = app1.find((p) => p.node === 'node1')!;
  const cip = await answers(topo, onNode1.name, 'http://10.96.1.10/', 8);
  assert.equal(cip.failed, 0);
  assert.ok(cip.names.size >= 2, `answers rotate across pods: ${[...cip.names]}`);
});

t('`xlb status` works inside the container', async () => {
  const r = await podmanExit(['exec', name, 'xlb', 'status']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /node1/);
});

t('a restart of the container under load loses no request', async () => {
  const load = steadyIn(topo.client.ns, topo.nodes[0].ip, 30180, 8000);
  await new Promise((r) => setTimeout(r, 1500));
  await podman(['restart', '-t', '10', name]);
  await waitRunning(name, 2);
  const res = await load;
  assert.equal(res.established.failed, 0, `established: ${res.established.errors.join('; ')}`);
  assert.equal(res.fresh.failed, 0, `new: ${res.fresh.errors.join('; ')}`);
  assert.ok(res.established.ok > 50 && res.fresh.ok > 50, `enough traffic ran: ${JSON.stringify({ e: res.established.ok, n: res.fresh.ok })}`);
});

t('each capability the DaemonSet adds: without it the agent fails with one line naming it (NET_RAW: runs); the pinned datapath keeps serving', async () => {
  await podman(['stop', '-t', '10', name]);
  // NET_RAW only sends the gratuitous ARP / unsolicited NA of an address takeover; without it
  // the agent runs (a failed send is logged and counted): it starts, as far as "agent running".
  const noRaw = `${name}-no-net_raw`;
  await podman(['run', '-d', ...runFlags(noRaw, CAPS.filter((x) => x !== 'NET_RAW'))]);
  await waitRunning(noRaw, 1);
  await podman(['rm', '-f', noRaw]);
  for (const cap of CAPS.filter((x) => x !== 'NET_RAW')) {
    const r = await podmanExit(['run', '--rm', ...runFlags(`${name}-no-${cap.toLowerCase()}`, CAPS.filter((x) => x !== cap))]);
    const lines = r.stderr.trim().split('\n').filter(Boolean);
    log(`without ${cap}: exit ${r.code}: ${lines.join(' | ')}`);
    assert.notEqual(r.code, 0, `the agent without ${cap} must fail`);
    assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
    assert.match(lines[0]!, new RegExp(`^xlb agent: missing capability CAP_${cap} `));
    const np = await answers(topo, 'client', `http://${topo.nodes[0].ip}:30180/`, 6);
    assert.equal(np.failed, 0, `Services still answer after the run without ${cap}`);
  }
  await podman(['start', name]);
  await waitRunning(name, 3);
});

t("the runtime's stock seccomp profile, if it allows bpf() only with CAP_SYS_ADMIN: one line saying so; the datapath keeps serving", async () => {
  if (seccomp.withBpf === seccomp.stock) return log('the stock profile allows bpf() with CAP_BPF');
  await podman(['stop', '-t', '10', name]);
  const r = await podmanExit(['run', '--rm', ...runFlags(`${name}-stock-seccomp`, CAPS, seccomp.stock)]);
  const lines = r.stderr.trim().split('\n').filter(Boolean);
  log(`stock seccomp: exit ${r.code}: ${lines.join(' | ')}`);
  assert.notEqual(r.code, 0);
  assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
  assert.match(lines[0]!, /^xlb agent: .*bpf\(\) denied with CAP_BPF held: the seccomp profile allows bpf\(\) only with CAP_SYS_ADMIN/);
  const np = await answers(topo, 'client', `http://${topo.nodes[0].ip}:30180/`, 6);
  assert.equal(np.failed, 0, 'Services still answer');
  await podman(['start', name]);
  await waitRunning(name, 4);
});
