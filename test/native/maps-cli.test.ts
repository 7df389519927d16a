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

/** The agent's view of the real maps (as src/agent/run.ts has it); everything else from the fake. */
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
  obj = await loadObject(objPath('xlb'), { pinPath: dir.path, maxEntries: { ct: 65536, backends: 4096 } });
  const { keys, values } = ctEntries();
  assert.equal(await obj.map(C.MAP.ct).updateBatch(keys, values, 2 * FLOWS), 2 * FLOWS);
  const socket = join(work, 'xlb.sock');
  server = await startApiServer(new MapsView(obj), { socketPath: socket });

  const t0 = performance.now();
  const { stdout } = await pexec(process.execPath, [cliPath(), 'maps', 'ct', '--socket', socket], { maxBuffer: 256 << 20, timeout: 30_000 });
  const tableMs = performance.now() - t0;
  const lines = stdout.trimEnd().split('\n');
  assert.match(lines[0]!, new RegExp(`^ct \\(lru_hash, ${2 * FLOWS}/65536 entries\\)$`));
  assert.equal(lines.length, 2 + 2 * FLOWS, 'a header line, the column heads and one row per entry');
  assert.ok(tableMs < 7_500, `xlb maps ct took ${Math.round(tableMs)} ms (deadline 15 s)`);

  const t1 = performance.now();
  const json = await pexec(process.execPath, [cliPath(), 'maps', '--socket', socket, '-o', 'json'], { maxBuffer: 256 << 20, timeout: 30_000 });
  const allMs = performance.now() - t1;
  const ct = (JSON.parse(json.stdout) as Array<{ name: string; entries: unknown[] }>).find((m) => m.name === 'ct');
  assert.equal(ct?.entries.length, 2 * FLOWS, 'every map, json: all conntrack entries');
  t.diagnostic(`xlb maps ct: ${Math.round(tableMs)} ms; xlb maps -o json: ${Math.round(allMs)} ms`);
  assert.ok(allMs < 7_500, `xlb maps -o json took ${Math.round(allMs)} ms (deadline 15 s)`);
});
