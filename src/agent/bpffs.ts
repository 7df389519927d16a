// The pin path must live on a bpffs. A fresh boot may not have one at /sys/fs/bpf.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';

const pexec = promisify(execFile);
const BPF_FS_MAGIC = 0xcafe4a11;

function isBpffs(path: string): boolean {
  try {
    return statfsSync(path).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/** Ensure `pinPath` exists on a bpffs, mounting one at its parent when the parent is not. */
export async function ensureBpffs(pinPath: string): Promise<{ mounted: boolean }> {
  const parent = dirname(pinPath);
  let mounted = false;
  if (!isBpffs(parent) && !isBpffs(pinPath)) {
    mkdirSync(parent, { recursive: true });
    try {
      await pexec('mount', ['-t', 'bpf', 'bpf', parent]);
      mounted = true;
    } catch (e) {
      throw new Error(`${parent} is not a bpf filesystem and mounting one failed (${(e as Error).message.trim()}); ` +
        `mount it with 'mount -t bpf bpf ${parent}' or give --pin-path on a bpffs`);
    }
  }
  mkdirSync(pinPath, { recursive: true });
  return { mounted };
}
