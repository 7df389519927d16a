// npm lifecycle steps must leave a built checkout usable: npm runs a package's "install"
// script on `npm install`, `npm ci`, `npm rebuild` and on the first `npx <its bin>` in its
// own folder; without an explicit one it runs `node-gyp rebuild`, which deletes build/
// (build/bpf/*.o with it). Runs on a copy of the checkout as the suite built it (build/, dist/
// and node_modules copied, so nothing outside the copy is rebuilt), with a private npm cache,
// offline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './deploy-manifests.js';

const SKIP = new Set(['.git', 'node_modules']);

function copyCheckout(): string {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-npm-'));
  for (const name of readdirSync(ROOT)) {
    if (SKIP.has(name)) continue;
    cpSync(join(ROOT, name), join(dir, name), { recursive: true, preserveTimestamps: true });
  }
  cpSync(realpathSync(join(ROOT, 'node_modules')), join(dir, 'node_modules'),
    { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  return dir;
}

function npm(dir: string, args: string[]): string {
  return execFileSync(args[0] === 'npx' ? 'npx' : 'npm', args[0] === 'npx' ? args.slice(1) : args, {
    cwd: dir,
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, npm_config_cache: join(dir, '.npm-cache'), npm_config_offline: 'true', XLB_QUIET: '1' },
  });
}

/** The BPF objects, the addon (loads) and dist/ (the CLI answers) are all there. */
function assertUsable(dir: string, after: string): void {
  for (const f of ['build/bpf/xlb.o', 'build/Release/xlb.node', 'dist/src/cli/main.js']) {
    assert.ok(existsSync(join(dir, f)), `${f} is missing after ${after}`);
  }
  execFileSync(process.execPath, ['-e', `require(${JSON.stringify(join(dir, 'build/Release/xlb.node'))})`]);
  const help = execFileSync(process.execPath, [join(dir, 'dist/src/cli/main.js'), '--help'], { encoding: 'utf8' });
  assert.match(help, /services/, `xlb --help after ${after}`);
}

test('npm rebuild and a first npx xlb leave build/bpf, the addon and dist/ usable', () => {
  const dir = copyCheckout();
  try {
    assertUsable(dir, 'the copy');
    npm(dir, ['rebuild']);
    assertUsable(dir, 'npm rebuild');
    const out = npm(dir, ['npx', '--yes', 'xlb', '--help']);
    assert.match(out, /services/);
    assertUsable(dir, 'npx xlb --help');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
