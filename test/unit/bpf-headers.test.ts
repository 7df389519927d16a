// bpf/: each header includes what it uses, so it compiles on its own (`make -C bpf headers`,
// also part of the normal build); a header that leans on another's includes fails the check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const BPF = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bpf');

function checkHeaders(headers?: string): { ok: boolean; stderr: string } {
  try {
    execFileSync('make', ['-s', '--no-print-directory', '-C', BPF, 'headers', ...(headers ? [`HEADERS=${headers}`] : [])], {
      stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000,
    });
    return { ok: true, stderr: '' };
  } catch (e) {
    return { ok: false, stderr: String((e as { stderr?: Buffer }).stderr ?? e) };
  }
}

test('every bpf header compiles on its own with clang -target bpf', () => {
  const r = checkHeaders();
  assert.ok(r.ok, r.stderr);
});

test('a header using a helper it does not include fails the check, naming the header', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-hdr-'));
  try {
    // lb_backend() lives in lb.h; nat.h alone does not bring it
    const h = join(dir, 'leans.h');
    writeFileSync(h, '#include "nat.h"\nstatic __always_inline int leans(void) { return lb_backend(1) != 0; }\n');
    const r = checkHeaders(h);
    assert.equal(r.ok, false);
    assert.match(r.stderr, /leans\.h does not compile on its own/);
    assert.match(r.stderr, /lb_backend/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
