// The agent against bad input it must refuse or survive (issue 12): a --devices name that does
// not exist stops it with one line unless --wait-for-devices says the device comes later; a
// manifests directory with a symlink loop, a 10 MB file of nested brackets, a parser memory
// bomb and a file over --manifest-max-bytes is read with the API answering, each bad file
// reported by name, and the good Services programmed, at start and on a restart.
// One namespace per run with a veth pair inside it; the pin path is a bpffs of the run's own
// under /run (visible inside `ip netns exec`, see test/helpers/cluster.ts), removed at the end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { AGENT_NODE_FLAGS, agentEnv } from '../../src/agent/node-flags.js';
import { cliPath } from '../helpers/cluster.js';
import { eventually } from '../helpers/e2e.js';
import { node, service, slice, yamlDocs } from '../helpers/manifests.js';
import { NetnsSet, run, sweepStale, type Netns } from '../helpers/netns.js';

const set = new NetnsSet('input');
let ns: Netns;
const work = mkdtempSync(join(tmpdir(), 'xlb-e2e-input-'));
const manifests = join(work, 'manifests');
const bpffs = `/run/${set.prefix}-bpffs`;
const socket = join(work, 'xlb.sock');
let agent: { proc: ChildProcess; out: string[]; err: string[]; exit: Promise<number | null> } | undefined;

before(async () => {
  await sweepStale('input');
  ns = await set.add('n1');
  await ns.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p');
  await ns.ip('addr', 'add', '198.18.9.2/24', 'dev', 'eth0');
  for (const l of ['eth0', 'eth0p']) await ns.ip('link', 'set', l, 'up');
  mkdirSync(manifests);
  writeFileSync(join(manifests, 'node.yaml'), stringify(node('n1', '198.18.9.2')));
  mkdirSync(bpffs, { recursive: true });
  await run('mount', ['-t', 'bpf', 'bpf', bpffs]);
});

after(async () => {
  await stopAgent();
  await set.teardown();
  await run('umount', ['-l', bpffs]).catch(() => undefined);
  rmSync(bpffs, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

/** Starts `xlb agent` in the namespace; 'running' or the exit code, whichever comes first. */
async function startAgent(extra: string[], timeoutMs = 20_000): Promise<{ state: 'running' | 'exited'; code: number | null; stderr: string[] }> {
  const args = [...AGENT_NODE_FLAGS, cliPath(), 'agent', '--source', 'manifests', '--manifests', manifests, '--node', 'n1',
    '--pin-path', join(bpffs, 'n1'), '--api-socket', socket, '--pod-interfaces', 'lxc*',
    '--healthz-bind-address', '127.0.0.1:10256', '--metrics-bind-address', '127.0.0.1:10249', ...extra];
  const proc = spawn('ip', ['netns', 'exec', ns.name, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: agentEnv() });
  const out: string[] = [];
  const err: string[] = [];
  let code: number | null | undefined;
  const exit = new Promise<number | null>((r) => proc.once('exit', (c) => { code = c; r(c); }));
  agent = { proc, out, err, exit };
  proc.stdout!.on('data', (d: Buffer) => out.push(...d.toString().split('\n').filter(Boolean)));
  proc.stderr!.on('data', (d: Buffer) => err.push(...d.toString().split('\n').filter(Boolean)));
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (code !== undefined) {
      await new Promise((r) => setImmediate(r)); // let the pipes drain
      return { state: 'exited', code, stderr: err };
    }
    if (out.some((l) => l.includes('"agent running"'))) return { state: 'running', code: null, stderr: err };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`agent neither ran nor exited in ${timeoutMs} ms:\n${out.slice(-20).join('\n')}`);
}

async function stopAgent(): Promise<void> {
  if (!agent) return;
  const a = agent;
  agent = undefined;
  // `ip netns exec` execs node, so the child pid is the agent itself.
  if (a.proc.exitCode === null) a.proc.kill('SIGKILL');
  await a.exit;
}

async function status(): Promise<{ devices: Array<{ name: string; xdpMode: string; progId: number }> }> {
  const r = await run(process.execPath, [cliPath(), 'status', '-o', 'json', '--socket', socket], { timeoutMs: 15_000 });
  return JSON.parse(r.stdout) as { devices: Array<{ name: string; xdpMode: string; progId: number }> };
}

test('--devices naming an interface that does not exist stops the agent with one line', async () => {
  const r = await startAgent(['--devices', 'eth0,nosuch0']);
  await stopAgent();
  assert.equal(r.state, 'exited', 'the agent must not start with a device that does not exist');
  assert.equal(r.code, 1);
  assert.equal(r.stderr.length, 1, r.stderr.join('\n'));
  assert.match(r.stderr[0]!, /^xlb agent: --devices: no interface named nosuch0 on this node \(it has .*eth0.*\); fix --devices, or give --wait-for-devices true/);
});

test('--wait-for-devices: the agent starts, shows the device as waiting, and attaches it when it appears', async () => {
  const r = await startAgent(['--devices', 'eth0,late0', '--wait-for-devices', 'true']);
  assert.equal(r.state, 'running', r.stderr.join('\n'));
  const st = await status();
  assert.equal(st.devices.find((d) => d.name === 'late0')?.xdpMode, 'waiting: no such interface');
  assert.ok((st.devices.find((d) => d.name === 'eth0')?.progId ?? 0) > 0, 'eth0 attached');
  await ns.ip('link', 'add', 'late0', 'type', 'veth', 'peer', 'name', 'late0p');
  await ns.ip('link', 'set', 'late0', 'up');
  await eventually('late0 attached once it exists', async () => ((await status()).devices.find((d) => d.name === 'late0')?.progId ?? 0) > 0, 10_000);
  await stopAgent();
});

/** `xlb maps services`: the ClusterIPs the datapath holds. */
async function programmedAddrs(): Promise<string[]> {
  const r = await run(process.execPath, [cliPath(), 'maps', 'services', '-o', 'json', '--socket', socket], { timeoutMs: 15_000 });
  const maps = JSON.parse(r.stdout) as Array<{ entries: Array<{ key: { addr: string } }> }>;
  return [...new Set(maps[0]!.entries.map((e) => e.key.addr))]; // one entry per scope
}

/** /healthz from inside the namespace: the HTTP status, 0 when it did not answer within 1 s. */
async function healthz(): Promise<number> {
  const r = await ns.exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '1', 'http://127.0.0.1:10256/healthz']).catch(() => ({ stdout: '0' }));
  return Number(r.stdout.trim()) || 0;
}

test('bad manifest files: each reported by name, the agent answers and programs the good Services, also after a restart', async () => {
  writeFileSync(join(manifests, 'web.yaml'), yamlDocs(service('web', { clusterIP: '10.96.7.10' }), slice('web-1', 'web', ['10.244.7.5'])));
  symlinkSync('loop-b.yaml', join(manifests, 'loop-a.yaml'));
  symlinkSync('loop-a.yaml', join(manifests, 'loop-b.yaml'));
  writeFileSync(join(manifests, 'deep.yaml'), '['.repeat(10 << 20));
  writeFileSync(join(manifests, 'big.yaml'), `# ${'x'.repeat(2 << 20)}\n`);
  const bad = ['big.yaml', 'deep.yaml', 'loop-a.yaml', 'loop-b.yaml'];
  const reported = (file: string): boolean => agent!.out.some((l) => l.includes('"manifest problem"') && l.includes(`"file":"${file}"`));
  for (const round of ['start', 'restart']) {
    const r = await startAgent(['--devices', 'eth0', '--manifest-max-bytes', String(1 << 20)], 60_000);
    assert.equal(r.state, 'running', `${round}: ${r.stderr.join('\n')}`);
    for (const f of bad) assert.ok(reported(f), `${round}: ${f} reported`);
    assert.deepEqual(await programmedAddrs(), ['10.96.7.10'], `${round}: the good Service is programmed`);
    assert.notEqual(await healthz(), 0);
    if (round === 'start') {
      // A memory bomb for the parser (a flat 1 MB flow sequence needs ~500 MB) arriving while
      // the agent runs: /healthz answers throughout, the agent stays up, the file is reported.
      writeFileSync(join(manifests, 'flat.yaml'), `[${'1,'.repeat(500_000)}1]`);
      bad.push('flat.yaml');
      const end = Date.now() + 90_000; // a worker parse to its heap limit: seconds, longer on a busy machine
      while (!reported('flat.yaml') && Date.now() < end) assert.notEqual(await healthz(), 0, '/healthz answers while the file is read');
      assert.ok(reported('flat.yaml'), 'flat.yaml reported');
      assert.equal(agent!.proc.exitCode, null, 'the agent is still running');
    }
    await stopAgent();
  }
  for (const f of [...bad, 'web.yaml']) rmSync(join(manifests, f), { force: true });
});
