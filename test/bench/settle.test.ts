// The bench's step between two modes' windows (settle.ts): conntrack flushed in the run's
// namespaces only, then a bounded wait until the host's CPU is as quiet as before the previous
// window; and the run records it. Checked without root (the flush and the CPU are parameters).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { betweenModes, busyBetween, flushCommand, isQuiet, parseCpu, parseFlush, summarize, waitQuiet, FLUSH_SCRIPT, SETTLE_DEFAULTS, type Flushed } from './settle.js';
import { config, renderTable, type BenchResult } from './run.js';

test('between modes: /proc/stat busy share, quiet against the level before the previous window', () => {
  const a = parseCpu('cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4 5\n');
  assert.deepEqual(a, { idle: 800, total: 1000 });
  const b = parseCpu('cpu  250 0 150 750 100 0 0 0 0 0\n');
  assert.ok(Math.abs(busyBetween(a, b) - 0.8) < 1e-9, 'busy 200 of 250 jiffies');
  assert.equal(busyBetween(a, a), 0, 'no time passed');
  assert.throws(() => parseCpu('intr 1 2 3\n'), /no aggregate cpu line/);
  assert.ok(isQuiet(0.45, 0.4, 0.1) && !isQuiet(0.55, 0.4, 0.1));
  assert.ok(SETTLE_DEFAULTS.maxS <= 30 && config(false).settleMaxS <= 30 && config(true).settleMaxS <= 2 && config(true).settleSampleMs <= 250);
});

test('between modes: the wait ends at the first quiet interval, or at its bound', async () => {
  let clock = 0;
  const now = () => clock;
  const feed = (xs: number[]) => async (ms: number) => { clock += ms; return xs.shift() ?? 1; };
  const o = { maxS: 10, sampleMs: 1000, margin: 0.1 };
  const q = await waitQuiet(0.3, o, feed([0.9, 0.7, 0.35, 0.1]), now);
  assert.deepEqual(q, { waitedS: 3, quiet: true, busy: [0.9, 0.7, 0.35] });
  clock = 0;
  const busy = await waitQuiet(0.3, o, feed([]), now); // never quiet
  assert.equal(busy.quiet, false);
  assert.ok(busy.waitedS <= o.maxS && busy.busy.length <= 11, `bounded: ${busy.busy.length} samples, ${busy.waitedS} s`);
  // a clock that does not move (a sampler returning at once) is still bounded by the count
  const stuck = await waitQuiet(0, { maxS: 2, sampleMs: 500, margin: 0 }, async () => 1, () => 0);
  assert.equal(stuck.busy.length, 5);
});

test('between modes: conntrack flushed only in the run\'s namespaces, both families, counted before and after', async () => {
  const [cmd, args] = flushCommand('xlbt-bench-123-node1');
  assert.equal(cmd, 'nsenter');
  assert.deepEqual(args.slice(0, 3), ['--net=/run/netns/xlbt-bench-123-node1', 'sh', '-c']);
  assert.match(args[3], /conntrack -F -f ipv4/);
  assert.match(args[3], /conntrack -F -f ipv6/);
  assert.equal(args[3], FLUSH_SCRIPT);
  for (const bad of ['', 'default', '../../proc/1/ns/net', 'xlbt-a b', 'xlbt-x;reboot']) assert.throws(() => flushCommand(bad), /not a namespace of a test run/);
  assert.deepEqual(parseFlush('n', '24536\n0\n'), { ns: 'n', before: 24536, after: 0 });
  assert.throws(() => parseFlush('n', 'conntrack: error\n'), /unreadable counts/);

  const calls: string[][] = [];
  const flush = async (ns: string[]): Promise<Flushed[]> => { calls.push(ns); return ns.map((n, i) => ({ ns: n, before: i === 0 ? 0 : 1000 * i, after: 0 })); };
  const refs: number[] = [];
  const s = await betweenModes('iptables', 'xlb', ['xlbt-b-1-client', 'xlbt-b-1-node1', 'xlbt-b-1-node2'], 0.42, SETTLE_DEFAULTS, flush,
    async (ref) => { refs.push(ref); return { waitedS: 2.5, quiet: true, busy: [0.9, 0.45] }; });
  assert.deepEqual(calls, [['xlbt-b-1-client', 'xlbt-b-1-node1', 'xlbt-b-1-node2']]);
  assert.deepEqual(refs, [0.42], 'the wait is against the level before the previous window');
  assert.equal(s.conntrackFlushed, 3000);
  assert.deepEqual(s.conntrackBefore, { 'xlbt-b-1-node1': 1000, 'xlbt-b-1-node2': 2000 });
  assert.ok(s.after === 'iptables' && s.before === 'xlb' && s.settleS === 2.5 && s.quiet && s.conntrackLeft === 0 && !s.error);
  // a failed flush is recorded, and the wait still runs
  const f = await betweenModes('nftables', 'xlb', ['xlbt-b-1-node1'], 0.2, SETTLE_DEFAULTS, async () => { throw new Error('nsenter failed: boom'); },
    async () => ({ waitedS: 30, quiet: false, busy: [1] }));
  assert.ok(f.error?.includes('boom') && f.conntrackFlushed === 0 && !f.quiet);
  assert.match(summarize([s, f]), /^between modes \(2 steps\): conntrack flushed .* 3000 entries in all .* 1\/2 quiet in time; 1 flush error/);
});

test('between modes: the steps are in the JSON\'s extra and summed up in a note, not printed one by one', () => {
  const res: BenchResult = {
    config: config(true), startedAt: 'now', durationS: 1, notes: ['between modes (1 steps): x'], rows: [],
    modes: { direct: { available: true } },
    extra: { betweenModes: [{ after: 'iptables', before: 'xlb', conntrackFlushed: 5 }], datapath: { available: false } },
  };
  const t = renderTable(res);
  assert.doesNotMatch(t, /betweenModes/);
  assert.match(t, /^datapath: /m);
  assert.match(t, /^note: between modes/m);
});
