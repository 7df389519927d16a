// The hitless switch between kube-proxy and xlb on a node (bpf/include/nfct.h): whether the
// kernel can tell xlb which flows netfilter conntrack already tracks (switching on), and the
// drain after switching off. The drain's deadline is kept in a file beside the toggle file
// (bpffs holds no plain files), so an agent restarted mid-drain resumes it where it was.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { probeKfunc } from '../datapath/bpf.js';
import type { AgentOptions } from './options.js';

export interface NfctKernel {
  /** the datapath asks netfilter conntrack before it starts a flow */
  ok: boolean;
  detail: string;
}

/** Where the kfuncs live when nf_conntrack is a module, and a file only a loaded nf_conntrack makes. */
const NFCT_MODULE_BTF = '/sys/kernel/btf/nf_conntrack';
const NFCT_LOADED = '/proc/sys/net/netfilter/nf_conntrack_max';

/** The start-time check: lookups only where the kernel has the kfuncs and nf_conntrack runs. */
export function probeNfct(mode: AgentOptions['netfilterLookup'], has = { kfunc: kfuncPresent, loaded: () => existsSync(NFCT_LOADED) }): NfctKernel {
  if (mode === 'off') return { ok: false, detail: 'no: --netfilter-lookup off; connections kube-proxy NATed before the switch move to xlb' };
  if (!has.loaded()) return { ok: false, detail: 'no: nf_conntrack is not loaded; no connection is tracked by netfilter to keep' };
  if (!has.kfunc()) return { ok: false, detail: 'no: this kernel has no bpf_skb_ct_lookup/bpf_xdp_ct_lookup (5.18+); connections kube-proxy NATed before the switch move to xlb' };
  return { ok: true, detail: 'yes: connections netfilter conntrack tracks (kube-proxy NATed them) stay with it; only new flows enter xlb' };
}

function kfuncPresent(): boolean {
  try {
    return probeKfunc('bpf_skb_ct_lookup') || existsSync(NFCT_MODULE_BTF);
  } catch {
    return existsSync(NFCT_MODULE_BTF);
  }
}

/** A drain in progress: ms since the epoch. */
export interface Drain {
  started: number;
  deadline: number;
}

interface DrainFileContent { [pinPath: string]: Drain }

/** The drain of this agent's datapath (one entry per pin path, beside the toggle file). */
export class DrainStore {
  constructor(private readonly o: Pick<AgentOptions, 'apiSocket' | 'pinPath'>) {}

  private file(): string {
    return join(dirname(this.o.apiSocket), 'drain.json');
  }

  private all(): DrainFileContent {
    try { return JSON.parse(readFileSync(this.file(), 'utf8')) as DrainFileContent; } catch { return {}; }
  }

  read(): Drain | undefined {
    const d = this.all()[this.o.pinPath];
    return d && Number.isFinite(d.deadline) && Number.isFinite(d.started) ? d : undefined;
  }

  write(d: Drain | undefined): void {
    const all = this.all();
    if (d) all[this.o.pinPath] = d; else delete all[this.o.pinPath];
    if (!Object.keys(all).length) {
      rmSync(this.file(), { force: true });
      return;
    }
    mkdirSync(dirname(this.file()), { recursive: true });
    writeFileSync(this.file(), JSON.stringify(all));
  }
}

/** What `xlb status` shows of a drain: flows xlb still translates, whole seconds left. */
export function drainProgress(d: Drain, flows: number, now: number): { flows: number; secondsLeft: number } {
  return { flows: Math.max(0, flows), secondsLeft: Math.max(0, Math.ceil((d.deadline - now) / 1000)) };
}

/** Whether a drain is over: no flow left, or the deadline passed. */
export function drainDone(d: Drain, flows: number, now: number): boolean {
  return flows <= 0 || now >= d.deadline;
}
