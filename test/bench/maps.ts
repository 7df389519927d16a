// Map write throughput (single update vs updateBatch on a 100k-entry HASH) and per-packet
// cost of an XDP_PASS program via BPF_PROG_TEST_RUN repeat. Run: node dist/test/bench/maps.js
// Other benches call quick() for the same figures.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfMap, loadObject } from '../../src/datapath/bpf.js';

export interface MapBenchFigures {
  entries: number;
  singleUpdatesPerSec: number;
  batchUpdatesPerSec: number;
  batchSpeedup: number;
  xdpPassNsPerPacket: number;
  xdpRepeat: number;
}

const repoRoot = resolve(fileURLToPath(import.meta.url), '../../../..');

function packed(n: number, size: number, fill: (b: Buffer, i: number) => void): Buffer {
  const b = Buffer.alloc(n * size);
  for (let i = 0; i < n; i++) fill(b.subarray(i * size, (i + 1) * size), i);
  return b;
}

/** Best of `rounds` (least disturbed by the other work on a shared machine). */
async function best(rounds: number, fn: () => Promise<number> | number): Promise<number> {
  let top = 0;
  for (let r = 0; r < rounds; r++) top = Math.max(top, await fn());
  return top;
}

async function mapFigures(entries: number, rounds: number): Promise<{ single: number; batch: number }> {
  const m = BpfMap.create({ type: 'hash', keySize: 16, valueSize: 16, maxEntries: entries, name: 'bench_hash' });
  try {
    const keys = packed(entries, 16, (b, i) => b.writeUInt32LE(i, 12));
    const values = packed(entries, 16, (b, i) => b.writeUInt32LE(i, 0));
    const single = await best(rounds, () => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < entries; i++) m.update(keys.subarray(i * 16, i * 16 + 16), values.subarray(i * 16, i * 16 + 16));
      return entries / (Number(process.hrtime.bigint() - t0) / 1e9);
    });
    const batch = await best(rounds, async () => {
      const t0 = process.hrtime.bigint();
      await m.updateBatch(keys, values, entries);
      return entries / (Number(process.hrtime.bigint() - t0) / 1e9);
    });
    return { single, batch };
  } finally {
    m.close();
  }
}

async function xdpNsPerPacket(repeat: number): Promise<number> {
  const obj = await loadObject(resolve(repoRoot, 'build/bpf/t_prog.o'));
  try {
    const frame = Buffer.alloc(64);
    frame.writeUInt16BE(0x0800, 12);
    let ns = Infinity;
    for (let r = 0; r < 3; r++) ns = Math.min(ns, obj.program('xdp_count').testRun({ data: frame, repeat }).durationNs);
    return ns;
  } finally {
    obj.close();
  }
}

/** The figures, with smaller defaults suitable for being called from another bench. */
export async function quick(o: { entries?: number; rounds?: number; xdpRepeat?: number } = {}): Promise<MapBenchFigures> {
  const entries = o.entries ?? 100_000;
  const xdpRepeat = o.xdpRepeat ?? 1_000_000;
  const { single, batch } = await mapFigures(entries, o.rounds ?? 3);
  return {
    entries,
    singleUpdatesPerSec: Math.round(single),
    batchUpdatesPerSec: Math.round(batch),
    batchSpeedup: Number((batch / single).toFixed(2)),
    xdpPassNsPerPacket: await xdpNsPerPacket(xdpRepeat),
    xdpRepeat,
  };
}

function table(f: MapBenchFigures): string {
  const rows: Array<[string, string]> = [
    [`HASH ${f.entries} entries, single update()`, `${f.singleUpdatesPerSec.toLocaleString('en')} updates/s`],
    [`HASH ${f.entries} entries, updateBatch()`, `${f.batchUpdatesPerSec.toLocaleString('en')} updates/s (x${f.batchSpeedup})`],
    [`XDP_PASS via test_run, repeat ${f.xdpRepeat}`, `${f.xdpPassNsPerPacket} ns/packet`],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const f = await quick();
  console.log(table(f));
  console.log(JSON.stringify(f));
}
