// XDP's mark for tc on the real path: a packet xlb_xdp passes reaches xlb_tc_dev at the same
// device's tc ingress with the XDP metadata it left (ctx_xdp_mark_done), and tc does not decide
// again. BPF_PROG_TEST_RUN of a tc program cannot carry XDP metadata, so this runs xlb_xdp on
// live frames into a veth in a namespace of its own (no address is configured anywhere: the
// frames die in that namespace's stack) with xlb_tc_dev attached behind it. The frame is one
// both programs count when they see it (a fragment whose first never came): with the mark it
// is counted once per frame (XDP only); without it (fixture config) twice, which shows tc
// would see it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsSet, run, sweepStale, type Netns } from '../helpers/netns.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = resolve(here, 'xdpmark-child.js');
const N = 50;
const set = new NetnsSet('xdpmark');
let node: Netns;

before(async () => {
  await sweepStale('xdpmark');
  node = await set.add('node');
  const peer = await set.add('peer');
  await set.veth(node, 'eth0', peer, 'p0');
  await node.ip('link', 'set', 'eth0', 'up');
  await peer.ip('link', 'set', 'p0', 'up');
});
after(async () => { await set.teardown(); });

test('a packet xlb_xdp passed is not decided again by xlb_tc_dev behind it; unmarked, tc decides', async () => {
  const script = 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; exec "$0" "$@"';
  const r = await run('ip', ['netns', 'exec', node.name, 'sh', '-c', script, process.execPath, CHILD, String(N)], { timeoutMs: 30_000 });
  const counts = JSON.parse(r.stdout.trim()) as { deliver: number; fixture: number };
  assert.deepEqual(counts, { deliver: N, fixture: 2 * N });
});
