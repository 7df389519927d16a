// Socket-level load balancing (--socket-lb, --cgroup): what the kernel offers for it, which
// cgroup the hooks go on, and what config says about it. The programs are bpf/include/sock.h;
// Attacher.syncCgroup() attaches them.
import { readFileSync } from 'node:fs';
import { netnsCookie, probeKfunc, probeProgType, type BpfProgram, type CgroupHook } from '../datapath/bpf.js';
import * as C from '../datapath/codecs.js';
import type { SocketLbMode } from './options.js';

/** Helpers sock.h calls, by id (kernel ABI). */
const HELPERS: Record<number, string> = { 46: 'get_socket_cookie', 122: 'get_netns_cookie', 187: 'set_retval (5.18)' };

export interface SockLbKernel {
  ok: boolean;
  detail: string;
  /** this process's network namespace cookie (0 when unknown) */
  cookie: number;
  /** bpf_sock_destroy (6.5+): connected UDP sockets to a removed backend can be destroyed */
  reap: boolean;
}

/** The programs the kernel cannot load, for LoadOptions.skipPrograms. */
export function sockSkipped(k: SockLbKernel): string[] {
  if (!k.ok) return [...Object.values(C.SOCK_PROGS), C.SOCK_REAP_PROG];
  return k.reap ? [] : [C.SOCK_REAP_PROG];
}

/** What happens to a connected UDP socket whose backend is removed, on this kernel. */
export function reapDetail(k: SockLbKernel, sweepMs: number): string {
  if (!k.reap) return 'kept on the removed backend until the application reconnects: this kernel has no bpf_sock_destroy (6.5+)';
  return `destroyed within ${sweepMs / 1000} s (bpf_sock_destroy from a UDP socket iterator; sockets of the node's namespace), so the application reconnects to a live backend`;
}

/** The kernel check, made once at start: a kernel without the hooks is reported, never fatal. */
export function probeSocketLb(): SockLbKernel {
  const missing: string[] = [];
  try {
    const ids = Object.keys(HELPERS).map(Number);
    missing.push(...probeProgType('cgroup_sock_addr', ids).map((m) => m.replace(/^helper (\d+)$/, (_, id: string) => `helper ${HELPERS[Number(id)] ?? id}`)));
  } catch (e) {
    missing.push((e as Error).message);
  }
  let cookie = 0;
  try {
    cookie = netnsCookie();
  } catch (e) {
    missing.push(`netns cookie: ${(e as Error).message}`);
  }
  if (missing.length) return { ok: false, detail: `unavailable: ${missing.join(', ')}`, cookie, reap: false };
  let reap = false;
  try { reap = probeKfunc('bpf_sock_destroy'); } catch { /* no kernel BTF: no kfuncs */ }
  return { ok: true, detail: 'cgroup sock_addr connect4/sendmsg4/recvmsg4/getpeername4, netns and socket cookies, set_retval', cookie, reap };
}

/** The first cgroup v2 mount point in a mountinfo text (the root of the unified hierarchy). */
export function cgroup2Root(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.split(' ')[0] === 'cgroup2') return pre.split(' ')[4]?.replace(/\\040/g, ' ');
  }
  return undefined;
}

/** --cgroup, else the cgroup v2 mount's root; a line to act on when there is none. */
export function resolveCgroup(given: string | undefined): { path?: string; error?: string } {
  if (given) return { path: given };
  let path: string | undefined;
  try {
    path = cgroup2Root(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch { /* no procfs: same answer as no mount */ }
  return path ? { path } : { error: 'no cgroup v2 mount in this mount namespace: mount it or pass --cgroup DIR' };
}

/** config.sockFlags / netnsCookie for a mode. */
export function sockConfig(mode: SocketLbMode, cookie: number): Pick<C.XlbConfig, 'sockFlags' | 'netnsCookie'> {
  return { sockFlags: mode === 'all' ? C.SOCK_FLAG.all : 0, netnsCookie: cookie };
}

/** The (hook, program) pairs to attach for a mode: none when off. */
export function sockPrograms(mode: SocketLbMode, program: (name: string) => BpfProgram): Array<[CgroupHook, BpfProgram]> {
  if (mode === 'off') return [];
  return (Object.entries(C.SOCK_PROGS) as Array<[CgroupHook, string]>).map(([hook, name]) => [hook, program(name)]);
}
