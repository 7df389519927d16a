// How the addon is built and found: libbpf is linked in (no libbpf.so at runtime), and a
// missing addon produces an error that lists every place it looked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run } from '../helpers/netns.js';
import { possibleCpus } from '../../src/datapath/bpf.js';
import { repoRoot } from './util.js';

test('xlb.node links libbpf statically', async () => {
  const r = await run('ldd', [resolve(repoRoot, 'build/Release/xlb.node')]);
  assert.doesNotMatch(r.stdout, /libbpf/);
  assert.match(r.stdout, /libelf/);
  assert.ok(possibleCpus() >= 1);
});

test('a missing addon names every path tried', async () => {
  // A copy of the compiled wrapper in a tree without build/: its loader must fail clearly.
  const root = mkdtempSync(join(tmpdir(), 'xlbt-addon-'));
  try {
    mkdirSync(join(root, 'dist/src/datapath'), { recursive: true });
    cpSync(resolve(repoRoot, 'dist/src/datapath/bpf.js'), join(root, 'dist/src/datapath/bpf.js'));
    cpSync(resolve(repoRoot, 'dist/src/log.js'), join(root, 'dist/src/log.js'));
    cpSync(resolve(repoRoot, 'package.json'), join(root, 'package.json'));
    symlinkSync(resolve(repoRoot, 'node_modules'), join(root, 'node_modules'));
    const script = `import('${join(root, 'dist/src/datapath/bpf.js')}').then(b => { try { b.possibleCpus(); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); } })`;
    const r = await run(process.execPath, ['-e', script], { timeoutMs: 15_000 });
    const e = JSON.parse(r.stdout.trim()) as { code: string; message: string };
    assert.equal(e.code, 'ENOENT');
    assert.match(e.message, /npm run build/);
    assert.ok(e.message.includes(join(root, 'build/Release/xlb.node')), e.message);
    assert.ok(e.message.includes(join(root, 'build/Debug/xlb.node')), e.message);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
