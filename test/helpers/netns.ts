// Network namespaces for tests, benchmarks and the demo. Every address lives only inside
// namespaces created here; nothing is added to the root namespace. Names carry a per-run
// prefix so parallel runs never collide, and teardown() removes all of them.
import { execFile, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const pexec = promisify(execFile);

export interface RunResult { stdout: string; stderr: string }

/** Run a command (argv form), throwing with its stderr on failure; `input` goes to its stdin. */
export async function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  try {
    const p = pexec(cmd, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 << 20 });
    if (opts.input !== undefined) p.child.stdin?.end(opts.input);
    const r = await p;
    return { stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  } catch (e) {
    const err = e as Error & { stderr?: string; stdout?: string; code?: unknown };
    // stdout kept on the error: a tool that explains its failure there (iperf3 -J) can be read
    throw Object.assign(new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr?.toString().trim() || err.message}`), { stdout: err.stdout?.toString() ?? '' });
  }
}

export class Netns {
  constructor(readonly name: string) {}

  /** Run a command inside this namespace. */
  exec(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** `ip ...` inside this namespace. */
  ip(...args: string[]): Promise<RunResult> {
    return run('ip', ['-n', this.name, ...args]);
  }

  /** Several `ip` commands inside this namespace in one process (`ip -batch`), in order; the
   *  first that fails stops the rest and throws, naming its line. */
  ipBatch(lines: string[][]): Promise<RunResult> {
    return run('ip', ['-n', this.name, '-batch', '-'], { input: lines.map((l) => l.join(' ')).join('\n') + '\n' });
  }

  /** Start a long-running process inside this namespace; the caller (or teardown) kills it. */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: 'ignore', ...opts });
  }
}

/** A set of namespaces with one prefix; teardown kills their processes and deletes them. */
/** Sets not torn down yet: a SIGINT, SIGTERM or SIGHUP (Ctrl-C, `timeout`, the runner cancelling a
 *  file) or an exit without teardown would otherwise leave their namespaces and processes behind. */
const live = new Set<NetnsSet>();
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => { for (const s of live) s.teardownSync(); });
  for (const [sig, n] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const) {
    process.once(sig, () => {
      for (const s of live) s.teardownSync();
      process.exit(128 + n);
    });
  }
}

export class NetnsSet {
  readonly prefix: string;
  private readonly list: Netns[] = [];
  private readonly procs: ChildProcess[] = [];

  constructor(tag: string) {
    this.prefix = `xlbt-${tag}-${process.pid % 100000}`;
  }

  async add(short: string): Promise<Netns> {
    const ns = new Netns(`${this.prefix}-${short}`);
    installHandlers();
    live.add(this);
    await run('ip', ['netns', 'add', ns.name]);
    this.list.push(ns);
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /** Track a process so teardown kills it. */
  track(p: ChildProcess): ChildProcess {
    this.procs.push(p);
    return p;
  }

  /** Create a veth pair with each end directly inside its namespace (never in the root one),
   *  with the given MAC addresses or the kernel's random ones. */
  async veth(a: Netns, aName: string, b: Netns, bName: string, macs?: { a: string; b: string }): Promise<void> {
    const mac = (m?: string) => (m ? ['address', m] : []);
    await run('ip', ['link', 'add', aName, ...mac(macs?.a), 'netns', a.name, 'type', 'veth', 'peer', 'name', bName, ...mac(macs?.b), 'netns', b.name]);
  }

  get namespaces(): readonly Netns[] {
    return this.list;
  }

  async teardown(): Promise<void> {
    for (const p of this.procs) {
      try { p.kill('SIGKILL'); } catch { /* already gone */ }
    }
    // Kill anything still running inside, then delete: every namespace at once (one `ip`
    // process costs tens of ms on a loaded machine; a topology has a dozen namespaces).
    await Promise.all(this.list.map(async (ns) => {
      await run('ip', ['netns', 'pids', ns.name]).then(async (r) => {
        for (const pid of r.stdout.split(/\s+/).filter(Boolean)) {
          try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
        }
      }).catch(() => undefined);
      await run('ip', ['netns', 'del', ns.name]).catch(() => undefined);
    }));
    this.list.length = 0;
    live.delete(this);
  }

  /** teardown() for a process that is exiting: the same steps, synchronously. */
  teardownSync(): void {
    for (const p of this.procs) {
      try { p.kill('SIGKILL'); } catch { /* already gone */ }
    }
    for (const ns of this.list) {
      const r = spawnSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8' });
      for (const pid of (r.stdout ?? '').split(/\s+/).filter(Boolean)) {
        try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
      }
      spawnSync('ip', ['netns', 'del', ns.name]);
    }
    this.list.length = 0;
    live.delete(this);
  }
}

/**
 * Resolve with the first match of `pattern` in a child's stdout (stderr is kept for the
 * error message); reject when it exits first or after `timeoutMs`.
 */
export function waitForOutput(p: ChildProcess, pattern: RegExp, what: string, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${what}: no ${pattern} after ${timeoutMs} ms: ${(out + err).slice(-300)}`)), timeoutMs);
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = out.match(pattern);
      if (m) { clearTimeout(timer); resolve(m[0]); }
    });
    p.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    p.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${what}: exited (${code}) before ${pattern}: ${(out + err).slice(-300)}`)); });
  });
}

/**
 * Signal a child and wait until it exits, at most `timeoutMs`. The bound's timer is cleared
 * once the child is gone: left armed, it kept every test file's process alive for the whole
 * bound after its last teardown (30 s a file, a quarter of the suite's wall time).
 */
export async function stopProcess(p: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  let timer: NodeJS.Timeout | undefined;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill(signal);
  await Promise.race([exited, new Promise<void>((r) => { timer = setTimeout(r, timeoutMs); })]);
  clearTimeout(timer);
}

/** True when this process may create namespaces and load BPF (root). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Remove namespaces left behind by an earlier, killed run with this tag (any pid). */
export async function sweepStale(tag: string): Promise<void> {
  const r = await run('ip', ['netns', 'list']).catch(() => ({ stdout: '' }));
  for (const line of r.stdout.split('\n')) {
    const name = line.split(' ')[0];
    if (!name || !name.startsWith(`xlbt-${tag}-`)) continue;
    const pid = Number(name.split('-')[2]);
    if (pid && pid !== process.pid % 100000) {
      try { process.kill(pid, 0); continue; } catch { /* owner gone: stale */ }
    }
    await run('ip', ['netns', 'del', name]).catch(() => undefined);
  }
}
