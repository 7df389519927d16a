// The README's first command runs this demo; the suite runs it quietly so a broken story
// (a step that no longer works) fails CI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';

test('npm run demo (quiet): every step of the story succeeds and cleans up', async () => {
  const script = new URL('./demo.js', import.meta.url).pathname;
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    execFile(process.execPath, [script, '--quiet'], { timeout: 170_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr });
    });
  });
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /demo: ok in/);
  // the dual-stack Service app1-dual reached over IPv6 (its IPv6 ClusterIP) from a pod
  assert.match(r.out, /demo: app1-dual answered over IPv6 at \[fd00:96::13\] by app1-\d/);
  const ns = await new Promise<string>((res) => execFile('ip', ['netns', 'list'], (_e, o) => res(o)));
  assert.doesNotMatch(ns, /xlbt-demo-/, 'the demo left namespaces behind');
});
