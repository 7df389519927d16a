// A child cgroup v2 of the test's own, for socket LB tests: the agent attaches there (never to
// the machine's root cgroup) and only processes started through `run` are inside it. The
// hierarchy is mounted again under /run, because `ip netns exec` remounts /sys and an agent in
// a node namespace would not see /sys/fs/cgroup; a second cgroup2 mount is the same hierarchy.
import { mkdirSync, readFileSync, rmdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { run, Netns, type RunResult } from './netns.js';

export class TestCgroup {
  private constructor(readonly mount: string, readonly path: string) {}

  /** Mounts cgroup2 at /run/<prefix>-cg and creates <mount>/<prefix> (removed by remove()). */
  static async create(prefix: string): Promise<TestCgroup> {
    const mount = `/run/${prefix}-cg`;
    mkdirSync(mount, { recursive: true });
    const mounted = await run('mountpoint', ['-q', mount]).then(() => true, () => false);
    if (!mounted) await run('mount', ['-t', 'cgroup2', 'none', mount]);
    const cg = new TestCgroup(mount, join(mount, prefix));
    mkdirSync(cg.path, { recursive: true });
    return cg;
  }

  /** `cmd args` in ns, inside this cgroup: the shell joins it, then execs `ip netns exec`. */
  exec(ns: Netns, cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    return run('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"', this.path, ns.name, cmd, ...args], opts);
  }

  /** ns as the load helpers take it, whose exec() runs inside this cgroup. */
  netns(ns: Netns): Netns {
    const cg = this;
    return new (class extends Netns {
      override exec(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
        return cg.exec(ns, cmd, args, opts);
      }
    })(ns.name);
  }

  pids(): number[] {
    if (!existsSync(this.path)) return [];
    return readFileSync(join(this.path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  }

  /** Moves any process still inside back to the mount's root, removes the cgroup, unmounts. */
  async remove(): Promise<void> {
    for (const pid of this.pids()) {
      try { writeFileSync(join(this.mount, 'cgroup.procs'), String(pid)); } catch { /* exited */ }
    }
    try { rmdirSync(this.path); } catch { /* already gone */ }
    await run('umount', ['-l', this.mount]).catch(() => undefined);
    try { rmdirSync(this.mount); } catch { /* busy or gone */ }
  }
}
