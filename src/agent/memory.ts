// Giving memory back after a burst. A cold start of 10,000 Services allocates a few hundred MB
// that are garbage once the maps are written: V8 keeps its old generation grown until a later
// collection it has no reason to start while the agent idles, and glibc keeps the free pages of
// the arenas the addon's worker threads used. One full collection and one malloc_trim after the
// burst bring RSS down to what the agent holds.
//
// That one collection compacts every page (--compact-on-every-full-gc, set around it only):
// V8's own choice of pages to evacuate left a third of the old generation free but committed
// (10,000 Services x 10 endpoints: old space 136 MB committed, 99 MB used). The flag is off
// again for every later collection, so no steady-state GC pays for a full compaction.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { trimMemory } from '../datapath/bpf.js';

let fullGc: (() => void) | undefined;

/** A full collection that compacts every page, then the malloc arenas trimmed. Blocks for ~0.5 s at 10,000 Services. */
export function releaseMemory(): void {
  if (!fullGc) {
    // The documented way to reach gc() without starting node with --expose-gc.
    setFlagsFromString('--expose-gc');
    fullGc = runInNewContext('gc') as () => void;
  }
  setFlagsFromString('--compact-on-every-full-gc');
  try {
    fullGc();
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc');
  }
  trimMemory();
}
