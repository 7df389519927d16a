// The pin path must live on a bpffs. A fresh boot may not have one at /sys/fs/bpf.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, readdirSync, statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const pexec = promisify(execFile);
const BPF_FS_MAGIC = 0xcafe4a11;
/** The kernel's designated bpffs mount point (an empty sysfs directory until mounted). */
export const SYS_BPF = '/sys/fs/bpf';

function isBpffs(path: string): boolean {
  try {
    return statfsSync(path).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/** The path itself or, when it does not exist yet, its nearest existing ancestor. */
function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

/**
 * Where a bpffs would have to be mounted for `pinPath`, or undefined when it is on one already.
 * Under /sys/fs/bpf that is /sys/fs/bpf (sysfs cannot hold the pin directory itself); anywhere
 * else only the pin path itself, never a parent: a mount over /var/lib would hide the node's
 * files. Throws the one line to show when mounting is not allowed.
 */
export function bpffsMountPoint(pinPath: string, allowMount: boolean, onBpffs = isBpffs): string | undefined {
  const path = resolve(pinPath);
  if (onBpffs(nearestExisting(path))) return undefined;
  if (path === SYS_BPF || path.startsWith(`${SYS_BPF}/`)) return SYS_BPF;
  if (allowMount) return path;
  throw new Error(`--pin-path ${path} is not on a bpf filesystem: use a path under ${SYS_BPF}, mount one there ` +
    `('mount -t bpf bpf ${path}'), or give --mount-bpffs true to let xlb mount it at ${path}`);
}

/** Ensure `pinPath` exists on a bpffs, mounting one only where bpffsMountPoint allows. */
export async function ensureBpffs(pinPath: string, allowMount = false): Promise<{ mounted: boolean }> {
  const at = bpffsMountPoint(pinPath, allowMount);
  if (at !== undefined) {
    mkdirSync(at, { recursive: true });
    // Mounting over files would hide them; an operator's directory must be empty to be a mount point.
    if (at !== SYS_BPF && readdirSync(at).length > 0) {
      throw new Error(`--pin-path ${at} is not on a bpf filesystem and is not empty: mounting a bpffs there would hide its files; give an empty or new directory`);
    }
    try {
      await pexec('mount', ['-t', 'bpf', 'bpf', at]);
    } catch (e) {
      throw new Error(`${at} is not a bpf filesystem and mounting one failed (${(e as Error).message.trim()}); ` +
        `mount it with 'mount -t bpf bpf ${at}' or give --pin-path on a bpffs`);
    }
  }
  mkdirSync(pinPath, { recursive: true });
  return { mounted: at !== undefined };
}
