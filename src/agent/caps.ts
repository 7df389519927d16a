// The capabilities the agent needs, checked once at start so that a container started without
// one fails with a line naming it, before anything pinned by a previous agent is touched
// (the datapath it left keeps serving). deploy/daemonset.yaml adds exactly these.
import { readFileSync } from 'node:fs';

const CAP = { NET_ADMIN: 12, SYS_ADMIN: 21, PERFMON: 38, BPF: 39 } as const;
type Cap = keyof typeof CAP;

/** What each capability is for, in the words of the error. */
const WHY: Record<'NET_ADMIN' | 'BPF' | 'PERFMON', string> = {
  BPF: 'load BPF programs and create maps',
  PERFMON: 'have the verifier accept the programs, not reject them under its unprivileged rules',
  NET_ADMIN: 'load and attach XDP and tc programs',
};

/** Effective capability set from /proc/<pid>/status text (the CapEff hex mask). */
export function effectiveCaps(status: string): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

const has = (eff: bigint, c: Cap) => ((eff >> BigInt(CAP[c])) & 1n) === 1n;

/**
 * Capabilities missing from `eff`. SYS_ADMIN stands in for BPF and PERFMON (kernels before
 * 5.8 have neither: lastCap < 39); NET_ADMIN is always needed.
 */
export function missingCaps(eff: bigint, lastCap: number): Cap[] {
  const missing: Cap[] = [];
  if (!has(eff, 'SYS_ADMIN')) {
    if (lastCap < CAP.BPF) missing.push('SYS_ADMIN');
    else for (const c of ['BPF', 'PERFMON'] as const) if (!has(eff, c)) missing.push(c);
  }
  if (!has(eff, 'NET_ADMIN')) missing.push('NET_ADMIN');
  return missing;
}

/** One line naming what is missing and what to do, or null when this process has it all. */
export function capabilityError(): string | null {
  const eff = effectiveCaps(readFileSync('/proc/self/status', 'utf8'));
  const lastCap = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  const missing = missingCaps(eff, lastCap);
  if (!missing.length) return null;
  const what = missing.map((c) => (c === 'SYS_ADMIN' ? 'CAP_SYS_ADMIN (this kernel has no CAP_BPF)' : `CAP_${c} (to ${WHY[c]})`));
  return `missing capability ${what.join(', ')}: run as root with it, e.g. the DaemonSet's capabilities.add (deploy/daemonset.yaml)`;
}

/**
 * EPERM from bpf() with every needed capability held (checked at start) and a seccomp filter on:
 * the container runtime's profile allows bpf() only with CAP_SYS_ADMIN (e.g. podman's before
 * CAP_BPF was added), which the DaemonSet does not add.
 */
export function seccompHint(): string | null {
  const status = readFileSync('/proc/self/status', 'utf8');
  const eff = effectiveCaps(status);
  const lastCap = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  if (missingCaps(eff, lastCap).length || has(eff, 'SYS_ADMIN') || !/^Seccomp:\s*2$/m.test(status)) return null;
  return 'bpf() denied with CAP_BPF held: the seccomp profile allows bpf() only with CAP_SYS_ADMIN; '
    + 'use a profile that allows it with CAP_BPF (containerd 1.7+, Docker 23+), or add SYS_ADMIN';
}
