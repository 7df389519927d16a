// Small assertions the end-to-end suites share: polling until something holds, who answers
// a URL, and which XDP program a node's device runs.
import assert from 'node:assert/strict';
import { run } from './netns.js';
import type { Topology } from './topology.js';

/** Poll `fn` until it holds, failing the test with `what` after `timeoutMs`. */
export async function eventually(what: string, fn: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  assert.fail(`${what}: not true within ${timeoutMs} ms`);
}

/** `n` sequential GETs from a namespace: the pod names that answered and how many failed. */
export async function answers(topo: Topology, from: string, url: string, n: number): Promise<{ names: Set<string>; failed: number }> {
  const names = new Set<string>();
  let failed = 0;
  for (let i = 0; i < n; i++) {
    const r = await topo.curl(from, url, { timeoutMs: 1500 });
    if (r.status === 200) names.add(r.body.trim().replace('Hello, ', '')); else failed++;
  }
  return { names, failed };
}

/** Id of the XDP program on a node's eth0 (0: none). */
export async function xdpProgId(topo: Topology, node: string): Promise<number> {
  const r = await run('ip', ['-n', topo.nsFor(node).name, '-j', '-d', 'link', 'show', 'eth0']);
  const j = JSON.parse(r.stdout) as Array<{ xdp?: { prog?: { id: number } } }>;
  return j[0]?.xdp?.prog?.id ?? 0;
}
