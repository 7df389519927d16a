// Socket-level load balancing (--socket-lb, --cgroup): what the kernel offers for it, which
// cgroup the hooks go on, and what config says about it. The programs are bpf/include/sock.h;
// Attacher.syncCgroup() attaches them.
import { existsSync, readFileSync } from 'node:fs';
import type { KernelCheck } from '../api/view.js';
import { netnsCookie, probeKfunc, probeProgType, type BpfProgram, type CgroupHook } from '../datapath/bpf.js';
import * as C from '../datapath/codecs.js';
import type { CgroupAttachment } from './attach.js';
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
  /** the kernel has IPv6 (not booted with ipv6.disable=1): the *6 hooks are loaded and attached */
  v6: boolean;
}

/** The IPv6 hooks (connect6, sendmsg6, recvmsg6, getpeername6). */
const isV6Hook = (hook: C.SockHook): boolean => hook.endsWith('6');

/** The hooks a kernel gets: the IPv4 ones, and the IPv6 ones when it has IPv6. */
function sockHooks(k: Pick<SockLbKernel, 'v6'>): C.SockHook[] {
  return (Object.keys(C.SOCK_PROGS) as C.SockHook[]).filter((h) => k.v6 || !isV6Hook(h));
}

/** The programs the kernel cannot load, for LoadOptions.skipPrograms. */
export function sockSkipped(k: SockLbKernel): string[] {
  if (!k.ok) return [...Object.values(C.SOCK_PROGS), C.SOCK_REAP_PROG];
  const hooks = new Set(sockHooks(k));
  const skipped = (Object.keys(C.SOCK_PROGS) as C.SockHook[]).filter((h) => !hooks.has(h)).map((h) => C.SOCK_PROGS[h]);
  return k.reap ? skipped : [...skipped, C.SOCK_REAP_PROG];
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
  // ipv6.disable=1 (or a kernel without IPv6) leaves no net.ipv6 sysctls: no IPv6 socket to serve
  const v6 = existsSync('/proc/sys/net/ipv6');
  if (missing.length) return { ok: false, detail: `unavailable: ${missing.join(', ')}`, cookie, reap: false, v6 };
  let reap = false;
  try { reap = probeKfunc('bpf_sock_destroy'); } catch { /* no kernel BTF: no kfuncs */ }
  const hooks = v6 ? 'connect4/6, sendmsg4/6, recvmsg4/6, getpeername4/6' : 'connect4/sendmsg4/recvmsg4/getpeername4 (IPv4 only: this kernel has no IPv6)';
  return { ok: true, detail: `cgroup sock_addr ${hooks}, netns and socket cookies, set_retval`, cookie, reap, v6 };
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

/** The (hook, program) pairs to attach for a mode: none when off; the IPv6 ones when the kernel has IPv6. */
export function sockPrograms(mode: SocketLbMode, k: Pick<SockLbKernel, 'v6'>, program: (name: string) => BpfProgram): Array<[CgroupHook, BpfProgram]> {
  if (mode === 'off') return [];
  return sockHooks(k).map((hook) => [hook, program(C.SOCK_PROGS[hook])]);
}

/** Where the socket LB hooks are: the cgroup, or why none is (error), and hooks that failed to attach. */
export interface SockCgroup { path?: string; error?: string; failed?: string[] }

/** The status check for the mode, the cgroup and what is attached there (a hook that failed, IPv6
 *  ones included, makes it fail with its reason; the others keep working). */
export function sockLbCheck(mode: SocketLbMode, k: SockLbKernel, cg: SockCgroup, hooks: CgroupAttachment[]): KernelCheck {
  const name = `socket LB ${mode}`;
  if (mode === 'off') return { name, ok: true, detail: 'off: only packets on devices and pod interfaces are translated' };
  if (!k.ok) return { name, ok: false, detail: 'not attached: this kernel lacks the hooks' };
  if (cg.error) return { name, ok: false, detail: `cgroup ${cg.path ?? '?'}: ${cg.error}` };
  const failed = cg.failed?.length ? `; not attached: ${cg.failed.join('; ')}` : '';
  if (!hooks.length && !failed) return { name, ok: true, detail: `cgroup ${cg.path ?? '?'}: detached (xlb disabled on this node)` };
  const who = mode === 'all' ? 'every socket' : `sockets of the node's network namespace (cookie ${k.cookie})`;
  const v4only = k.v6 ? '' : ' (IPv4 only: this kernel has no IPv6)';
  const links = hooks.map((h) => `${h.hook} link ${h.linkId}`).join(', ');
  return { name, ok: !failed, detail: `${who} in cgroup ${hooks[0]?.cgroup ?? cg.path}: ${links}${v4only}${failed}` };
}
