// kube-proxy-style baselines (iptables and nftables layouts) rendered from ServiceSpecs really
// load-balance: a ClusterIP from a pod and a NodePort from the client reach every backend,
// UDP works, a Service without endpoints is rejected, and flushing removes the Services.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTopology } from '../helpers/topology.js';
import { startPodServers } from '../helpers/podserver.js';
import { sweepStale } from '../helpers/netns.js';
import { applyBaseline, flushBaseline, type Baseline } from '../bench/kubeproxy.js';
import { podEndpoints, specsFor, type SimpleService } from '../bench/services.js';

const ROUNDS = 24;

for (const kind of ['iptables', 'nftables'] as Baseline[]) {
  test(`baseline ${kind}: ClusterIP and NodePort rotate across pods, then flush`, async (t) => {
    await sweepStale(`bl${kind[0]}`);
    const topo = await buildTopology({ tag: `bl${kind[0]}`, podsPerNode: 2 });
    t.after(() => topo.teardown());
    await startPodServers(topo);
    const all = podEndpoints(topo.pods, () => true);
    const services: SimpleService[] = [
      { namespace: 'default', name: 'web', clusterIP: '10.96.0.10', endpoints: all,
        ports: [{ name: 'http', port: 80, targetPort: 8080, proto: 'TCP', nodePort: 30080 },
          { name: 'echo', port: 53, targetPort: 9000, proto: 'UDP', nodePort: 30053 }] },
      { namespace: 'default', name: 'empty', clusterIP: '10.96.0.20', endpoints: [],
        ports: [{ name: 'http', port: 80, targetPort: 8080, proto: 'TCP' }] },
    ];
    for (const n of topo.nodes) await applyBaseline(kind, n.ns, specsFor(services, n.name));
    const names = new Set(topo.pods.map((p) => p.name));

    await t.test('ClusterIP from a pod reaches more than one backend', async () => {
      const seen = new Set<string>();
      for (let i = 0; i < ROUNDS; i++) {
        const r = await topo.curl('app1-1', 'http://10.96.0.10/');
        assert.equal(r.status, 200, r.error);
        const name = r.body.replace(/^Hello, /, '').trim();
        assert.ok(names.has(name), r.body);
        seen.add(name);
      }
      assert.ok(seen.size >= 2, `only ${[...seen]}`);
    });

    await t.test('NodePort from the client rotates and is masqueraded (eTP Cluster)', async () => {
      const seen = new Set<string>();
      for (let i = 0; i < ROUNDS; i++) {
        const r = await topo.curl('client', 'http://198.18.0.11:30080/');
        assert.equal(r.status, 200, r.error);
        seen.add(r.body);
      }
      assert.ok(seen.size >= 2, `only ${[...seen]}`);
      const ip = await topo.curl('client', 'http://198.18.0.11:30080/ip');
      assert.equal(ip.body, '198.18.0.11\n');
    });

    await t.test('UDP through ClusterIP and NodePort', async () => {
      const a = await topo.udpEcho('app1-2', '10.96.0.10', 53, 'q');
      assert.match(a ?? '', /^app1-\d:q$/);
      const b = await topo.udpEcho('client', '198.18.0.12', 30053, 'n');
      assert.match(b ?? '', /^app1-\d:n$/);
    });

    await t.test('a Service without endpoints is rejected, not left to time out', async () => {
      const r = await topo.curl('app1-1', 'http://10.96.0.20/', { timeoutMs: 2000 });
      assert.equal(r.status, 0);
      assert.ok(r.ms < 1500, `took ${r.ms} ms: ${r.error}`);
    });

    await t.test('flush removes the Services', async () => {
      for (const n of topo.nodes) await flushBaseline(n.ns);
      const r = await topo.curl('client', 'http://198.18.0.11:30080/', { timeoutMs: 500 });
      assert.equal(r.status, 0);
    });
  });
}
