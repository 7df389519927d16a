// Leak probe, run by leak.test.ts as `node --expose-gc leak-child.js <phase> <count>`.
// Warms up, records RSS/heap/open fds, runs the loop, collects garbage, prints {before, after, ms}.
import { readdirSync } from 'node:fs';
import { BpfMap, loadObject } from '../../src/datapath/bpf.js';
import { objPath } from './util.js';

const gc = (globalThis as { gc?: () => void }).gc;

// Node-API finalizers run after the GC pass, on a later tick: alternate the two.
async function settle(): Promise<{ rss: number; heapUsed: number; fds: number }> {
  for (let i = 0; i < 4; i++) {
    gc?.();
    await new Promise((r) => setImmediate(r));
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, fds: readdirSync('/proc/self/fd').length };
}

function updates(n: number): void {
  const m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 4096, name: 'leak_probe' });
  const k = Buffer.alloc(4), v = Buffer.alloc(8);
  for (let i = 0; i < n; i++) {
    k.writeUInt32LE(i & 4095);
    v.writeUInt32LE(i);
    m.update(k, v);
    if ((i & 1023) === 0) m.lookup(k);  // exercises the result-Buffer path too
  }
  m.close();
}

async function loads(n: number): Promise<void> {
  const file = objPath('t_prog');
  for (let i = 0; i < n; i++) {
    const o = await loadObject(file);
    o.map('counters');
    o.program('xdp_count');
    o.close();
  }
}

async function phase(name: string, n: number): Promise<void> {
  if (name === 'updates') updates(n);
  else await loads(n);
}

async function main(): Promise<void> {
  const [name = 'updates', countArg = '1000'] = process.argv.slice(2);
  const n = Number(countArg);
  await phase(name, Math.max(1, Math.floor(n / 10)));  // warm-up: JIT, allocator arenas
  const before = await settle();
  const t0 = Date.now();
  await phase(name, n);
  const ms = Date.now() - t0;
  const after = await settle();
  console.log(JSON.stringify({ phase: name, n, before, after, ms }));
}

await main();
