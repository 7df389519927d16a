// The test topology itself: routing between client, nodes and pods works as a CNI's would,
// pod servers answer with their names, and teardown leaves no namespace behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology, type Topology } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { run, sweepStale } from '../helpers/netns.js';

async function namespacesWithPrefix(prefix: string): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout.split('\n').map((l) => l.split(' ')[0]).filter((n) => n && n.startsWith(prefix + '-'));
}

test('topology: client, nodes and pods reach each other; teardown removes everything', async (t) => {
  await sweepStale('topo');
  const topo: Topology = await buildTopology({ tag: 'topo', podsPerNode: 2 });
  t.after(() => topo.teardown());
  const prefix = topo.set.prefix;

  await t.test('layout', () => {
    assert.deepEqual(topo.pods.map((p) => `${p.name}@${p.node}=${p.ip}/${p.hostIf}`), [
      'app1-1@node1=10.244.1.11/lxc11', 'app1-2@node2=10.244.2.11/lxc21',
      'app1-3@node1=10.244.1.12/lxc12', 'app1-4@node2=10.244.2.12/lxc22',
    ]);
  });

  await startPodServers(topo);

  await t.test('pod to pod across nodes answers with the pod name', async () => {
    const r = await topo.curl('app1-1', 'http://10.244.2.11:8080/');
    assert.equal(r.status, 200, r.error);
    assert.equal(r.body, 'Hello, app1-2\n');
  });

  await t.test('client reaches pods on both nodes, source address preserved', async () => {
    for (const p of topo.pods) {
      const r = await topo.curl('client', `http://${p.ip}:8080/`);
      assert.equal(r.body, `Hello, ${p.name}\n`);
    }
    const ip = await topo.curl('client', 'http://10.244.1.12:8080/ip');
    assert.equal(ip.body, '198.18.0.1\n');
  });

  await t.test('UDP echo', async () => {
    assert.equal(await topo.udpEcho('client', '10.244.2.12', 9000, 'ping'), 'app1-4:ping');
    assert.equal(await topo.udpEcho('app1-2', '10.244.1.11', 9000, 'x'), 'app1-1:x');
  });

  await t.test('an address nothing owns gets no answer', async () => {
    const r = await topo.curl('client', 'http://10.244.1.99:8080/', { timeoutMs: 500 });
    assert.equal(r.status, 0);
  });

  await t.test('teardown leaves no namespace', async () => {
    assert.ok((await namespacesWithPrefix(prefix)).length >= 7);
    await topo.teardown();
    assert.deepEqual(await namespacesWithPrefix(prefix), []);
  });
});
