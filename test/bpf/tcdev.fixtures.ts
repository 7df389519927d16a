// xlb_tc_dev (node devices at tc ingress, --device-mode tc) makes the same external-scope
// decision as xlb_xdp, so it runs every XDP row with the verdicts in tc's words: a packet up
// the stack is TC_ACT_OK, a drop TC_ACT_SHOT, a redirect (rejects back out of the device)
// TC_ACT_REDIRECT; output bytes, checksums, CT entries, stats and drop counters must match.
// Steps of a row that run on a pod veth (xlb_tc) stay there.
import type { Prog, Row, Step, Verdict } from './rows.js';
import { podReplyRows, podReplyXdpRows, xdpMetaRows, xdpRows } from './xdp.fixtures.js';

const TC_VERDICT: Partial<Record<Verdict, Verdict>> = { PASS: 'OK', DROP: 'SHOT', REDIRECT: 'TC_REDIRECT', TX: 'TC_REDIRECT' };

function verdict(v: Verdict): Verdict {
  const t = TC_VERDICT[v];
  if (!t) throw new Error(`XDP verdict ${v} has no tc counterpart`);
  return t;
}

function prog(p: Prog | undefined): Prog | undefined {
  return p === 'xdp' ? 'tcdev' : p;
}

function step(s: Step): Step {
  const onDevice = s.prog === undefined || s.prog === 'xdp';
  return { ...s, prog: prog(s.prog), verdict: s.verdict && onDevice ? verdict(s.verdict) : s.verdict };
}

/** A FIB row's name with its verdicts in tc's words. */
export function tcDevName(n: string): string {
  return `${n.replace('XDP_REDIRECT, not XDP_TX', 'TC_ACT_REDIRECT').replace(/XDP_/g, 'TC_ACT_')} [tc device]`;
}

/** An XDP row (or one of the FIB rows) as the tc device entry must run it. */
export function asTcDev(r: Row, rename = (n: string) => `${n} [tc device]`): Row {
  return {
    ...r,
    name: rename(r.name),
    prog: 'tcdev',
    verdict: verdict(r.verdict),
    before: r.before?.map(step),
  };
}

/** BPF_PROG_TEST_RUN refuses (EINVAL) to build an skb for an IPv4 frame shorter than an
 *  IPv4 header, so that row cannot run at tc; a real one is caught by the same bound check. */
const NO_SKB = new Set(['IPv4 header cut short: truncated drop']);

/** What XDP leaves to tc (podReplyRows) the tc device entry translates; XDP's mark for tc. */
const XDP_ONLY = new Set([...podReplyXdpRows, ...xdpMetaRows].map((r) => r.name));

export const tcDevRows: Row[] = [
  ...xdpRows.filter((r) => !NO_SKB.has(r.name) && !XDP_ONLY.has(r.name)).map((r) => asTcDev(r)),
  ...podReplyRows.map((r) => asTcDev(r)),
];
