// sendFrame (native/packet.cc): a raw frame out of an interface, here a gratuitous ARP from
// one end of a veth pair between two namespaces this test creates; the other end's neighbour
// table shows the kernel took it (an existing entry moves to the announced MAC).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gratuitousArp } from '../../src/datapath/arp.js';
import { NetnsSet, run, sweepStale, type Netns } from '../helpers/netns.js';
import { eventually } from '../helpers/e2e.js';
import { vethPair } from './util.js';

const A_ADDR = '10.199.8.1', B_ADDR = '10.199.8.2', VIP = '10.199.8.50';
const OLD_MAC = '02:00:00:00:99:01', NEW_MAC = '02:00:00:00:99:02';
const set = new NetnsSet('nframe');
let a: Netns, b: Netns;

before(async () => {
  await sweepStale('nframe');
  ({ a, b } = await vethPair(set, A_ADDR, B_ADDR));
});

after(() => set.teardown());

async function send(ns: Netns, ifname: string, frame: Buffer): Promise<{ sent?: number; error?: { code: string; op: string; message: string } }> {
  const r = await run('ip', ['netns', 'exec', ns.name, process.execPath, new URL('./frame-child.js', import.meta.url).pathname, ifname, frame.toString('hex')]);
  return JSON.parse(r.stdout.trim());
}

const neighMac = async (ns: Netns, addr: string): Promise<string | undefined> =>
  (JSON.parse((await ns.ip('-j', 'neigh', 'show', addr, 'dev', 'vb')).stdout || '[]') as Array<{ lladdr?: string }>)[0]?.lladdr;

test('sendFrame: a gratuitous ARP sent on a veth moves the neighbour entry on the other end', async () => {
  await b.ip('neigh', 'replace', VIP, 'lladdr', OLD_MAC, 'dev', 'vb', 'nud', 'stale');
  assert.equal(await neighMac(b, VIP), OLD_MAC);
  const r = await send(a, 'va', gratuitousArp(NEW_MAC, VIP));
  assert.deepEqual(r, { sent: 42 });
  await eventually('neighbour entry moved to the new MAC', async () => (await neighMac(b, VIP)) === NEW_MAC, 3000);
});

test('sendFrame: a missing interface and a short frame are errors with a code, not crashes', async () => {
  const gone = await send(a, '-', gratuitousArp(NEW_MAC, VIP));
  assert.equal(gone.error?.op, 'sendto');
  assert.match(gone.error?.code ?? '', /^(ENXIO|ENODEV)$/);
  const short = await send(a, 'va', Buffer.alloc(10));
  assert.equal(short.error?.code, 'EINVAL');
  assert.match(short.error?.message ?? '', /14\.\.1514 bytes/);
});
