// A start that meets pinned maps of another layout (a new build's struct, --conntrack-size):
// the old maps are opened before the load, which pins each replacement beside its old pin
// (<name>~new); their entries are migrated into the new maps (./../datapath/migrate.ts)
// before anything reads them (adoptPinned) and before the links switch to the new programs;
// flows the old programs made meanwhile are copied by catch-up passes (by their creation
// time, only if absent): one right before the switch, one after it, while the datapath holds
// the TCP packets it cannot place yet (carry_until, bpf/include/flow.h); then the new pins are
// renamed over the old ones. A start that dies half way leaves the old pins: the next one
// migrates again.
import { existsSync, readdirSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { BpfMap, type BpfObject } from '../datapath/bpf.js';
import { copyEntries, describe, migrateMap, planMigration, type Migration } from '../datapath/migrate.js';
import * as C from '../datapath/codecs.js';
import { creditReleased } from '../datapath/ctgc.js';
import type { Logger } from '../log.js';

/** bpffs refuses names with a dot */
export const NEXT_SUFFIX = '~new';

/** Rebuilt by the agent or private caches: replaced empty, nothing to carry. */
const NOT_CARRIED: Record<string, string> = {
  [C.MAP.config]: 'written by the agent at start',
  [C.MAP.flowCache]: 'a private cache',
  [C.MAP.stats]: 'counters restart',
  [C.MAP.drops]: 'counters restart',
  [C.MAP.maglev]: 'tables rebuilt by the full sync',
};
/** Written by the datapath: flows made between the first copy and the link switch count too. */
const DATAPATH_STATE = new Set<string>([C.MAP.ct, C.MAP.affinity, C.MAP.frags, C.MAP.sockRev, C.MAP.stackPorts]);
/** Maps whose entries name svc_id / backend_id: only carried when those ids were kept. */
const NAMES_IDS = new Set<string>([C.MAP.ct, C.MAP.affinity, C.MAP.slots, C.MAP.revnat, C.MAP.srcRanges]);
const ID_MAPS = [C.MAP.services, C.MAP.backends] as string[];

/** The datapath's clock stamps entries a tick or two late (bpf/include/clock.h): a catch-up
 *  reads back this far before the previous pass began. */
const CATCH_UP_SLACK_NS = 1_000_000_000n;

export class PinMigration {
  readonly results: Migration[] = [];
  #old = new Map<string, BpfMap>();
  #done = false;
  /** CLOCK_MONOTONIC ns when the last pass over the old maps began */
  #passStart = 0n;

  constructor(private readonly pinPath: string, private readonly log: Logger, private readonly cpus: number) {}

  /** Before loadObject: hold every map pinned under the pin path (not links/, not ~new). */
  openPinned(): void {
    let names: string[] = [];
    try {
      const files = readdirSync(this.pinPath, { withFileTypes: true }).filter((d) => d.isFile());
      // a start that stopped before finish() left its new maps: the old pins are still the truth
      for (const d of files.filter((f) => f.name.endsWith(NEXT_SUFFIX))) {
        try { unlinkSync(join(this.pinPath, d.name)); } catch { /* the loader replaces it anyway */ }
      }
      names = files.filter((d) => !d.name.endsWith(NEXT_SUFFIX)).map((d) => d.name);
    } catch {
      return; // no pin path yet: a first start
    }
    for (const n of names) {
      try {
        this.#old.set(n, BpfMap.openPinned(join(this.pinPath, n)));
      } catch { /* not a map: not ours to migrate */ }
    }
  }

  /** After loadObject: carry the replaced maps' entries; closes the old maps not replaced. */
  async migrate(obj: BpfObject): Promise<void> {
    this.#passStart = process.hrtime.bigint();
    const replaced = new Set(obj.replaced);
    for (const [n, m] of this.#old) {
      if (!replaced.has(n)) {
        m.close();
        this.#old.delete(n);
      }
    }
    const order = [...ID_MAPS.filter((n) => replaced.has(n)), ...[...replaced].filter((n) => !ID_MAPS.includes(n))];
    const idsLost = new Set<string>();
    for (const name of order) {
      const old = this.#old.get(name);
      const neu = obj.map(name);
      let r: Migration;
      const lost = [...idsLost];
      if (!old) {
        r = { map: name, outcome: 'emptied', found: 0, copied: 0, dropped: 0, reason: 'the old map could not be opened', fieldsAdded: [], fieldsDropped: [] };
      } else if (NOT_CARRIED[name]) {
        r = { map: name, outcome: 'emptied', found: 0, copied: 0, dropped: 0, reason: NOT_CARRIED[name], fieldsAdded: [], fieldsDropped: [] };
      } else if (NAMES_IDS.has(name) && lost.length) {
        // a ct entry must never name an id the reconciler hands out again to another backend
        const found = (await old.lookupBatch().catch(() => ({ count: 0 }))).count;
        r = { map: name, outcome: 'emptied', found, copied: 0, dropped: found, reason: `${lost.join(', ')} not migrated: the ids its entries name are not kept`, fieldsAdded: [], fieldsDropped: [] };
      } else {
        try {
          r = await migrateMap(name, old, neu, { reserve: this.reserve(name) });
        } catch (e) {
          // a start never fails over a migration: the map starts as it would have before
          r = { map: name, outcome: 'emptied', found: 0, copied: 0, dropped: 0, reason: `migration failed: ${(e as Error).message}`, fieldsAdded: [], fieldsDropped: [] };
        }
      }
      if (ID_MAPS.includes(name) && r.outcome === 'emptied') idsLost.add(name);
      this.results.push(r);
      if (name === C.MAP.ct && r.dropped > 0) this.creditDropped(obj, r.dropped);
      const line = describe(r);
      if (r.outcome === 'emptied' && r.found > 0) this.log.warn({ ...r }, `pinned map ${name} had another layout: ${line}`);
      else this.log.info({ ...r }, `pinned map ${name} had another layout: ${line}`);
    }
  }

  /** Whether flows the old programs keep making must be caught up (a datapath map was carried). */
  carrying(): boolean {
    return !this.#done && this.results.some((r) => r.outcome === 'migrated' && DATAPATH_STATE.has(r.map) && this.#old.has(r.map));
  }

  /**
   * Entries the old programs made since the previous pass began, copied where the new map has
   * none (each alone, BPF_NOEXIST: what the new programs made is kept). Before the link switch
   * it leaves only the last moments' flows to the pass after it; after the switch, nothing.
   */
  async catchUp(obj: BpfObject, when: string): Promise<number> {
    const since = this.#passStart - CATCH_UP_SLACK_NS;
    this.#passStart = process.hrtime.bigint();
    let total = 0;
    for (const r of this.results) {
      const old = this.#old.get(r.map);
      if (!old || r.outcome !== 'migrated' || !DATAPATH_STATE.has(r.map)) continue;
      try {
        const neu = obj.map(r.map);
        const plan = planMigration(old, neu);
        if (typeof plan === 'string') continue;
        const more = await copyEntries(old, neu, plan, { reserve: this.reserve(r.map), missingOnly: true, since });
        r.copied += more.copied;
        r.found += more.copied + more.dropped;
        r.dropped += more.dropped;
        total += more.copied;
        if (r.map === C.MAP.ct && more.dropped) this.creditDropped(obj, more.dropped);
        if (more.copied || more.dropped) this.log.info({ map: r.map, copied: more.copied, dropped: more.dropped, when }, 'entries the old programs made meanwhile carried over');
      } catch (e) {
        this.log.warn({ map: r.map, err: String(e), when }, 'catch-up migration pass failed');
      }
    }
    return total;
  }

  /** After the links switched to the new programs: flows the old ones made meanwhile, then the pins. */
  async finish(obj: BpfObject): Promise<void> {
    if (this.#done) return;
    await this.catchUp(obj, 'after the link switch');
    this.#done = true;
    for (const name of obj.replaced) {
      const path = join(this.pinPath, name);
      try {
        if (existsSync(path + NEXT_SUFFIX)) renameSync(path + NEXT_SUFFIX, path);
      } catch (e) {
        this.log.warn({ map: name, err: String(e) }, 'replacing the old pin failed');
      }
    }
    for (const m of this.#old.values()) m.close();
    this.#old.clear();
  }

  /** Closes what is still open (a stop before finish): the old pins stay for the next start. */
  close(): void {
    for (const m of this.#old.values()) m.close();
    this.#old.clear();
  }

  private reserve(name: string): number {
    return name === C.MAP.ct || name === C.MAP.affinity ? 256 * this.cpus : 0;
  }

  /** Flows that did not fit leave the admission count (both entries of a flow count one). */
  private creditDropped(obj: BpfObject, entries: number): void {
    try {
      creditReleased(obj.map(C.MAP.ctFill), BigInt(Math.ceil(entries / 2)));
    } catch (e) {
      this.log.warn({ err: String(e) }, 'crediting dropped flows to ct_fill failed');
    }
  }

  /** For `xlb status`: one check per map the last start found in another layout. */
  checks(): Array<{ name: string; ok: boolean; detail: string }> {
    return this.results.map((r) => ({ name: `map migration ${r.map}`, ok: r.outcome === 'migrated' || r.found === 0, detail: describe(r) }));
  }
}
