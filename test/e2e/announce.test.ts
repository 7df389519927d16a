// LoadBalancer addresses announced on the nodes' L2 segment (issue 18): two agents in kube
// mode against the fake API server, the client on the bridge with no route for the Service
// addresses (they are in the bridge's own subnet, so the client ARPs for them). The node
// holding each address's Lease answers ARP from the datapath; when its agent is killed
// (kill -9: its programs stay attached), its entries expire before the Lease does, the other
// node takes the Lease over, sends a gratuitous ARP, and the client's traffic follows.
// Both families (issue 15): the segment is dual-stack, the pool holds two IPv6 addresses of the
// bridge's subnet beside the IPv4 ones and the Services are dual-stack, so the same checks run
// for NDP (neighbour advertisements from the datapath, an unsolicited NA on takeover), in tc and
// XDP device mode alike.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnFakeApiServer, type FakeApiProcess } from '../helpers/fake-apiserver-proc.js';
import { httpUrl, type Topology } from '../helpers/topology.js';
import { XlbCluster, HTTP_PORT, serviceObj, sliceObj, nodeObj, type DeviceMode, type SvcDef } from '../helpers/cluster.js';
import { ipPool } from '../helpers/manifests.js';
import { sweepStale } from '../helpers/netns.js';
import { buildSegmentTopology, eventually, neighMac } from '../helpers/e2e.js';
import { announceLeaseName } from '../../src/sources/kube.js';

// Node devices are veths: tc by default (xlb_tc_dev), and XDP forced (xlb_xdp, XDP_TX).
for (const mode of ['tc', 'xdp'] as DeviceMode[]) {
  describe(`announce, --device-mode ${mode}`, () => {
    const TAG = `ann${mode}`;
    const ADDRS = ['198.18.0.200', '198.18.0.201'];
    const ADDRS6 = ['fd00:18::200', 'fd00:18::201'];
    const LEASE_SECONDS = 2;
    let topo: Topology;
    let c: XlbCluster;
    let api: FakeApiProcess;
    let call: (cmd: object) => Promise<any>;
    let macs: Map<string, string>;

    const web: SvcDef = { name: 'web', type: 'LoadBalancer', clusterIP: '10.96.9.1', clusterIP6: 'fd00:96::9:1', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] };
    const web2: SvcDef = { name: 'web2', type: 'LoadBalancer', clusterIP: '10.96.9.2', clusterIP6: 'fd00:96::9:2', ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }] };

    const neigh = (addr: string): Promise<string | undefined> => neighMac(topo, addr);
    const holder = async (addr: string): Promise<string> =>
      (await call({ op: 'get', resource: 'leases', name: announceLeaseName(addr), namespace: 'xlb-system' }))?.spec?.holderIdentity ?? '';
    const announced = async (node: string) => ((JSON.parse(await c.cli(node, ['status', '-o', 'json'])) as { lbAddresses: Array<{ addr: string; why: string; device: string; announcing: boolean }> })
      .lbAddresses.filter((a) => a.announcing));

    before(async () => {
      await sweepStale(TAG);
      // No static route: the addresses are on the client's own segment.
      ({ topo, macs } = await buildSegmentTopology(TAG, { dualStack: true }));
      c = new XlbCluster(topo, TAG, { deviceMode: mode });
      api = await spawnFakeApiServer(topo);
      call = api.call;
      for (const [i, n] of topo.nodes.entries()) await call({ op: 'apply', resource: 'nodes', obj: nodeObj(`node${i + 1}`, n.ip, {}, n.ip6) });
      await call({ op: 'apply', resource: 'loadbalancerippools', obj: ipPool('segment', [`${ADDRS[0]}-${ADDRS[1]}`, `${ADDRS6[0]}-${ADDRS6[1]}`]) });
      for (const d of [web, web2]) {
        await call({ op: 'apply', resource: 'services', obj: serviceObj(d) });
        for (const f of [4, 6] as const) await call({ op: 'apply', resource: 'endpointslices', obj: sliceObj(d, topo.pods.map((pod) => ({ pod })), f) });
      }
      const flags = ['--announce-lease-duration', String(LEASE_SECONDS)];
      for (const node of ['node1', 'node2']) await c.startAgent(node, flags, 30_000, ['--source', 'kube', '--kubeconfig', await api.kubeconfig(node)]);
    });

    after(async () => {
      api?.proc.stdin?.end();
      await c?.teardown();
      await topo?.teardown();
    });

    test('each assigned address is announced by the node holding its Lease; the client reaches both Services through ARP and NDP', async () => {
      for (const addr of [...ADDRS, ...ADDRS6]) {
        await eventually(`${addr}: Lease held`, async () => ['node1', 'node2'].includes(await holder(addr)), 20_000);
        await eventually(`${httpUrl(addr)} answers`, async () => (await topo.curl('client', httpUrl(addr), { timeoutMs: 1000 })).status === 200, 20_000);
        const h = await holder(addr);
        assert.equal(await neigh(addr), macs.get(h), `${addr}: the client's neighbour entry is ${h}'s MAC`);
        const mine = await announced(h);
        const row = mine.find((a) => a.addr === addr);
        assert.ok(row, `${h} lists ${addr} in xlb status: ${JSON.stringify(mine)}`);
        assert.equal(row.device, 'eth0');
        assert.equal(row.why, 'eligible: ready, xlb on');
        const maps = JSON.parse(await c.cli(h, ['maps', 'announce', 'announce_stats', '-o', 'json'])) as Array<{ name: string; entries: Array<{ key: any; value: any }> }>;
        const entry = maps.find((m) => m.name === 'announce')?.entries.find((e) => e.key.addr === addr);
        // flags: ARP (1) for IPv4, NDP (2) for IPv6
        const [flag, counter] = addr.includes(':') ? [2, 'ndp_replies'] : [1, 'arp_replies'];
        assert.ok(entry && entry.value.flags === flag && Number(entry.value.expires) > 0, `xlb maps announce: ${JSON.stringify(maps)}`);
        const replies = maps.find((m) => m.name === 'announce_stats')?.entries.find((e) => e.key.counter === counter);
        assert.ok(replies && Number(replies.value.count) >= 1, `the datapath counted its replies (${counter})`);
        const other = h === 'node1' ? 'node2' : 'node1';
        assert.equal((await announced(other)).some((a) => a.addr === addr), false, `${other} does not announce ${addr}`);
        const svcs = JSON.parse(await c.cli(other, ['services', '-o', 'json'])) as Array<{ frontends: Array<{ type: string; addr: string; announcer: string }> }>;
        const fe = svcs.flatMap((s) => s.frontends).find((f) => f.type === 'LoadBalancer' && f.addr === addr);
        assert.ok(fe, `${other} programs ${addr}`);
        assert.equal(fe.announcer, h, `${other}'s xlb services names the announcing node`);
      }
    });

    test('the announcing agent killed: the other node takes over within 5 s, its gratuitous ARP and unsolicited NA move the client, traffic resumes', async (t) => {
      const was = await holder(ADDRS[0]);
      const next = was === 'node1' ? 'node2' : 'node1';
      // an IPv6 address of the same holder moves with it
      let addr6: string | undefined;
      for (const a of ADDRS6) if (!addr6 && await holder(a) === was) addr6 = a;
      assert.ok(addr6, `${was} holds an IPv6 address too`);
      const addrs = [ADDRS[0], addr6];
      for (const addr of addrs) assert.equal(await neigh(addr), macs.get(was), `${addr} before the kill`);
      const t0 = Date.now();
      await c.stopAgent(was, 'SIGKILL');
      // The killed node's programs stay attached; only the expiry stops its answers. The client's
      // cache is moved by the new holder's gratuitous ARP / unsolicited NA, not by a new request of its own.
      await Promise.all(addrs.map((addr) => eventually(`client neighbour ${addr} -> ${next}'s MAC`, async () => (await neigh(addr)) === macs.get(next), 8000)));
      const moved = Date.now() - t0;
      t.diagnostic(`client neighbour entries (${addrs.join(', ')}) moved ${moved} ms after kill -9 (Lease ${LEASE_SECONDS} s)`);
      assert.ok(moved <= 5000, `the client's neighbour entries moved ${moved} ms after the kill`);
      for (const addr of addrs) {
        assert.equal(await holder(addr), next);
        const r = await topo.curl('client', httpUrl(addr), { timeoutMs: 1500 });
        assert.equal(r.status, 200, `${addr}: ${r.error}`);
        // Asked afresh, only the new holder answers: the killed node's entry has expired.
        await topo.client.ns.ip('neigh', 'flush', 'dev', 'eth0', 'to', addr);
        assert.equal((await topo.curl('client', httpUrl(addr), { timeoutMs: 1500 })).status, 200);
        assert.equal(await neigh(addr), macs.get(next));
      }
    });
  });
}
