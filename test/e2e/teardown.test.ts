// A run that is stopped by a signal (Ctrl-C, `timeout`, the test runner cancelling a file)
// still removes the network namespaces it created: NetnsSet tears down on SIGINT/SIGTERM/SIGHUP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const helpers = fileURLToPath(new URL('../helpers/netns.js', import.meta.url));

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  test(`a run stopped by ${sig} leaves no namespace behind`, async () => {
    const code = `import { NetnsSet } from ${JSON.stringify(helpers)};
      const set = new NetnsSet('sigtest');
      const a = await set.add('a');
      await set.add('b');
      set.track(a.spawn('sleep', ['30']));
      console.log(set.prefix);
      setTimeout(() => {}, 60_000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    const prefix = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => { out += d; if (out.includes('\n')) resolve(out.trim()); });
      child.once('exit', (c) => reject(new Error(`child exited early (${c})`)));
      setTimeout(() => reject(new Error('child never created its namespaces')), 20_000);
    });
    try {
      assert.equal(namespaces().filter((n) => n.startsWith(prefix)).length, 2, 'both namespaces exist while it runs');
      const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      child.kill(sig);
      const code2 = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 20_000))]);
      assert.notEqual(code2, 'timeout', 'the child exits after the signal');
      assert.deepEqual(namespaces().filter((n) => n.startsWith(prefix)), [], 'no namespace left behind');
    } finally {
      child.kill('SIGKILL');
      for (const n of namespaces().filter((x) => x.startsWith(prefix))) execFileSync('ip', ['netns', 'del', n]);
    }
  });
}
