// --pin-path and bpffs (issue 12.10): a pin path outside a bpffs gets a bpffs mounted only at
// the pin path itself and only when the operator asks (--mount-bpffs), never at its parent
// (with /var/lib/xlb that would hide /var/lib). Runs on temp directories this test owns and
// unmounts whatever it finds mounted under them, whatever the outcome.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bpffsMountPoint, ensureBpffs, SYS_BPF } from '../../src/agent/bpffs.js';
import { run } from '../helpers/netns.js';

const owned: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'xlb-bpffs-'));
  owned.push(d);
  return d;
}

/** Mount points at or under `dir`, deepest first (from /proc/self/mountinfo). */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4]).filter((p): p is string => !!p && (p === dir || p.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

after(async () => {
  for (const d of owned) {
    for (const m of mountsUnder(d)) await run('umount', [m]).catch(() => run('umount', ['-l', m]));
    rmSync(d, { recursive: true, force: true });
  }
});

test('where a bpffs may be mounted: nowhere on a bpffs, /sys/fs/bpf for paths under it, else only the pin path with --mount-bpffs', () => {
  const on = (fs: string) => (p: string) => p === fs || p.startsWith(`${fs}/`);
  assert.equal(bpffsMountPoint('/sys/fs/bpf/xlb', false, on(SYS_BPF)), undefined);
  assert.equal(bpffsMountPoint('/sys/fs/bpf/xlb', false, () => false), SYS_BPF);
  assert.equal(bpffsMountPoint('/var/lib/xlb', true, () => false), '/var/lib/xlb');
  assert.throws(() => bpffsMountPoint('/var/lib/xlb', false, () => false), (e: Error) => {
    assert.equal(e.message, "--pin-path /var/lib/xlb is not on a bpf filesystem: use a path under /sys/fs/bpf, mount one there " +
      "('mount -t bpf bpf /var/lib/xlb'), or give --mount-bpffs true to let xlb mount it at /var/lib/xlb");
    return true;
  });
});

test('a pin path on a plain directory fails with one line and mounts nothing over its parent', async () => {
  const parent = tempDir();
  writeFileSync(join(parent, 'keep'), 'the parent directory\'s own file');
  await assert.rejects(ensureBpffs(join(parent, 'xlb')), (e: Error) => {
    assert.match(e.message, /is not on a bpf filesystem/);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
  assert.deepEqual(mountsUnder(parent), [], 'nothing mounted at or under the pin path\'s parent');
  assert.equal(readFileSync(join(parent, 'keep'), 'utf8'), 'the parent directory\'s own file');
});

test('--mount-bpffs mounts at the pin path itself, never at its parent; a non-empty directory is refused', async () => {
  const parent = tempDir();
  const pin = join(parent, 'pins');
  assert.deepEqual(await ensureBpffs(pin, true), { mounted: true });
  assert.deepEqual(mountsUnder(parent), [pin]);
  const fstype = (await run('stat', ['-f', '-c', '%T', pin])).stdout.trim();
  assert.equal(fstype, 'bpf_fs');
  // A second start finds the bpffs and mounts nothing more.
  assert.deepEqual(await ensureBpffs(pin, true), { mounted: false });
  assert.deepEqual(mountsUnder(parent), [pin]);

  const full = join(tempDir(), 'full');
  mkdirSync(full);
  writeFileSync(join(full, 'data'), 'x');
  await assert.rejects(ensureBpffs(full, true), /is not empty: mounting a bpffs there would hide its files/);
  assert.deepEqual(mountsUnder(full), []);
});
