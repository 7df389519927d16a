// `xlb maps` against a real xlb.o with a full conntrack table (issue 12.11): 10,000 flows
// (20,000 CT entries, a forward and a reply entry each) must all be shown, well within the
// CLI's 15 s deadline, because the agent streams the decoded maps instead of one message.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadObject, type BpfObject } from '../../src/datapath/bpf.js';
import * as C from '../../src/datapath/codecs.js';
import { decodeAllMaps, decodeMaps } from '../../src/agent/inspect.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import type { DecodedMap, DecodedMaps } from '../../src/api/view.js';
import { FakeView } from '../helpers/fake-view.js';
import { cliPath } from '../helpers/cluster.js';
import { bpffsDir, objPath } from './util.js';

const pexec = promisify(execFile);
const FLOWS = 10_000;
const dir = bpffsDir('maps-cli');
const work = mkdtempSync(join(tmpdir(), 'xlb-maps-cli-'));
let obj: BpfObject | undefined;
let server: ApiServer | undefined;

after(async () => {
  await server?.close();
  obj?.close();
  dir.cleanup();
  rmSync(work, { recursive: true, force: true });
});

/** The agent's view of the real maps (as src/agent/view.ts has it); everything else from the fake. */
class MapsView extends FakeView {
  constructor(private readonly o: BpfObject) { super(); }
  override async maps(): Promise<DecodedMaps> { return decodeAllMaps(this.o); }
  override async *mapChunks(names: string[]): AsyncIterable<DecodedMap> { yield* decodeMaps(this.o, names); }
}

function ctEntries(): { keys: Buffer; values: Buffer } {
  const keys: Buffer[] = [];
  const values: Buffer[] = [];
  for (let i = 0; i < FLOWS; i++) {
    const client = `198.18.${(i >> 8) & 255}.${i & 255}`;
    const sport = 1024 + i;
    const v = {
      natAddr: '10.244.1.5', origAddr: '10.96.0.10', natPort: 8080, origPort: 80, backendId: 1, svcId: 1,
      state: 'established' as const, flags: 0, lastSeen: 1n, created: 1n,
    };
    keys.push(C.encodeCtKey({ saddr: client, daddr: '10.96.0.10', sport, dport: 80, proto: 'TCP' }));
    values.push(C.encodeCtValue(v));
    keys.push(C.encodeCtKey({ saddr: '10.244.1.5', daddr: client, sport: 8080, dport: sport, proto: 'TCP' }));
    values.push(C.encodeCtValue(v));
  }
  return { keys: Buffer.concat(keys), values: Buffer.concat(values) };
}

test(`xlb maps shows all ${2 * FLOWS} conntrack entries of ${FLOWS} flows well within its deadline`, async (t) => {
  // The agent's sizes (its default --conntrack-size): every array is read whole.
  obj = await loadObject(objPath('xlb'), { pinPath: dir.path, maxEntries: { ct: 262144 } });
  const { keys, values } = ctEntries();
  assert.equal(await obj.map(C.MAP.ct).updateBatch(keys, values, 2 * FLOWS), 2 * FLOWS);
  const socket = join(work, 'xlb.sock');
  server = await startApiServer(new MapsView(obj), { socketPath: socket });

  // Half the CLI's 15 s deadline, best of three runs: the machine may be busy.
  const timed = async (args: string[]): Promise<{ ms: number; stdout: string }> => {
    let best = { ms: Infinity, stdout: '' };
    for (let i = 0; i < 3 && best.ms >= 7_500; i++) {
      const t0 = performance.now();
      const r = await pexec(process.execPath, [cliPath(), ...args, '--socket', socket], { maxBuffer: 256 << 20, timeout: 30_000 });
      const ms = performance.now() - t0;
      if (ms < best.ms) best = { ms, stdout: r.stdout };
    }
    return best;
  };
  const table = await timed(['maps', 'ct']);
  const lines = table.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, new RegExp(`^ct \\(lru_hash, ${2 * FLOWS}/262144 entries\\)$`));
  assert.equal(lines.length, 2 + 2 * FLOWS, 'a header line, the column heads and one row per entry');
  const all = await timed(['maps', '-o', 'json']);
  const ct = (JSON.parse(all.stdout) as Array<{ name: string; entries: unknown[] }>).find((m) => m.name === 'ct');
  assert.equal(ct?.entries.length, 2 * FLOWS, 'every map, json: all conntrack entries');
  t.diagnostic(`xlb maps ct: ${Math.round(table.ms)} ms; xlb maps -o json (every map): ${Math.round(all.ms)} ms`);
  assert.ok(table.ms < 7_500, `xlb maps ct took ${Math.round(table.ms)} ms (deadline 15 s)`);
  assert.ok(all.ms < 7_500, `xlb maps -o json took ${Math.round(all.ms)} ms (deadline 15 s)`);
});
