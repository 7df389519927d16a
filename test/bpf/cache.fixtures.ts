// Flow cache fixtures (struct xlb_flow_cache_entry, bpf/include/fcache.h, flow_cached in bpf/include/flow.h): an
// established flow's packets take the per-CPU cached rewrite, and every reason not to use
// it (new generation, cache off, backend gone or reused, entry older than 100 ms, SYN/FIN/
// RST, TTL) sends the packet through conntrack again. Rows run on one CPU (Datapath.run).
//
// How a row tells the two paths apart: after the entry is cached, the conntrack entry is
// retargeted (another backend or port). The conntrack path follows the retargeted entry;
// the cache still holds the rewrite it was made with.
import assert from 'node:assert/strict';
import * as C from '../../src/datapath/codecs.js';
import { buildPacket, type PacketSpec } from '../helpers/packet.js';
import { CLIENT, CLUSTER_IP, HAIRPIN, LB_IP, NODE, POD_A, POD_B, REMOTE_POD, type Datapath } from './harness.js';
import type { Row, Step } from './rows.js';
import { lbLocal, tcp, udp } from './xdp.fixtures.js';

const uKey = (o: Partial<C.CtKey> = {}): C.CtKey => ({ saddr: CLIENT, daddr: LB_IP, sport: 40000, dport: 53, proto: 'UDP', ...o });
const tKey = (o: Partial<C.CtKey> = {}): C.CtKey => ({ saddr: CLIENT, daddr: LB_IP, sport: 40000, dport: 80, proto: 'TCP', ...o });

/** LB IP :53/UDP -> pod A:8080 (backend 1); pod B:8080 exists as backend 2, in no table. */
function udpLb(d: Datapath): void {
  lbLocal(d, { proto: 'UDP', port: 53 });
  d.backend(2, POD_B, 8080);
}

/** LB IP :80/TCP -> remote pod (backend 2, SNAT); pod B as backend 3, in no table. */
function tcpRemote(d: Datapath): void {
  d.backend(2, REMOTE_POD, 8080, { local: false });
  d.backend(3, POD_B, 8080, { local: false });
  d.service({ addr: LB_IP, port: 80, svcId: 1, backends: [2] });
}

function snatPort(d: Datapath): number {
  const v = d.ct(tKey());
  assert.ok(v, 'forward CT entry');
  return v.natPort;
}

/** Reply key of the SNATed flow to the remote pod. */
const remoteReplyKey = (d: Datapath): C.CtKey => ({ saddr: REMOTE_POD, daddr: NODE, sport: 8080, dport: snatPort(d), proto: 'TCP' });
const fromRemote = (d: Datapath, o: Partial<PacketSpec> = {}): Buffer =>
  tcp({ src: REMOTE_POD, dst: NODE, sport: 8080, dport: snatPort(d), seq: 5000, ack: 1001, ...o });

/** SYN out, SYN-ACK back from the remote pod (established), then an ACK through conntrack (cached). */
const establishedRemote: Step[] = [
  { pkt: tcp(), verdict: 'PASS' },
  { pkt: (d) => fromRemote(d, { flags: 'SA' }), verdict: 'PASS' },
  { pkt: tcp({ flags: 'A', seq: 1001, ack: 5001 }), verdict: 'PASS' },
];

/** A UDP flow's first packet (new flow) and second (conntrack hit, which caches it). */
const twoUdp = (o: Partial<PacketSpec> = {}, verdict: Step['verdict'] = 'PASS'): Step[] => [{ pkt: udp(o), verdict }, { pkt: udp(o), verdict }];
const retarget = (key: C.CtKey, patch: Partial<C.CtValue>): Step => ({ act: (d) => d.ctSet(key, patch) });
const sleepMs = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); };

/** The same input through conntrack only (generation 0) must give the cached output's bytes. */
function sameAsConntrack(prog: 'xdp' | 'tc', input: Buffer) {
  return (_o: unknown, d: Datapath, raw: Buffer): void => {
    d.config({ flowCacheGen: 0 });
    const again = d.run(prog, input);
    assert.deepEqual(again.data, raw, 'cached rewrite and conntrack rewrite differ');
  };
}

const udpLen = udp().length - 14;
const ackData = tcp({ flags: 'A', seq: 1001, ack: 5001, payload: Buffer.from('GET / HTTP/1.1\r\n\r\n') });

export const cacheRows: Row[] = [
  {
    name: 'flow cache: the third UDP packet takes the cached rewrite, not the (retargeted) CT entry', prog: 'xdp', setup: udpLb,
    before: [...twoUdp(), retarget(uKey(), { backendId: 2 })],
    pkt: udp(), verdict: 'PASS', out: { src: CLIENT, sport: 40000, dst: POD_A, dport: 8080 },
    stats: { svcId: 1, packets: 3, newFlows: 1, bytes: 3 * udpLen },
  },
  {
    name: 'flow cache: cached UDP rewrite is byte for byte the conntrack rewrite', prog: 'xdp', setup: udpLb,
    before: twoUdp(), pkt: udp(), verdict: 'PASS', out: { dst: POD_A }, check: sameAsConntrack('xdp', udp()),
  },
  {
    name: 'flow cache: UDP without a checksum stays without on the cached path', prog: 'xdp', setup: udpLb,
    before: [...twoUdp({ udpNoChecksum: true }), retarget(uKey(), { backendId: 2 })],
    pkt: udp({ udpNoChecksum: true }), verdict: 'PASS', out: { dst: POD_A, udpCsum: 0 },
  },
  {
    name: 'flow cache: established TCP to a remote backend, DNAT + SNAT from the cache, checksums valid', prog: 'xdp', setup: tcpRemote,
    before: [...establishedRemote, retarget(tKey(), { backendId: 3 })],
    pkt: ackData, verdict: 'PASS',
    check: (o, d) => {
      assert.equal(o.ip?.dst, REMOTE_POD, 'cached backend, not the retargeted one');
      assert.equal(o.ip?.src, NODE);
      assert.equal(o.tcp?.sport, snatPort(d));
      assert.equal(o.payload?.toString(), 'GET / HTTP/1.1\r\n\r\n');
    },
  },
  {
    name: 'flow cache: cached TCP DNAT + SNAT is byte for byte the conntrack rewrite', prog: 'xdp', setup: tcpRemote,
    before: establishedRemote, pkt: ackData, verdict: 'PASS', out: { dst: REMOTE_POD, src: NODE }, check: sameAsConntrack('xdp', ackData),
  },
  {
    name: 'flow cache: replies of a SNATed flow are cached too (source back to LB IP:80)', prog: 'xdp', setup: tcpRemote,
    before: [...establishedRemote, { pkt: (d) => fromRemote(d, { flags: 'A' }), verdict: 'PASS' }, { act: (d) => d.ctSet(remoteReplyKey(d), { natPort: 81 }) }],
    pkt: (d) => fromRemote(d, { flags: 'A', payload: Buffer.from('200 OK') }), verdict: 'PASS',
    out: { src: LB_IP, sport: 80, dst: CLIENT, dport: 40000 },
  },
  {
    name: 'flow cache: a TCP FIN goes through conntrack (both entries to fin)', prog: 'xdp', setup: tcpRemote,
    before: [...establishedRemote, { pkt: tcp({ flags: 'A', seq: 1001, ack: 5001 }), verdict: 'PASS' }],
    pkt: tcp({ flags: 'FA', seq: 1001, ack: 5001 }), verdict: 'PASS', out: { dst: REMOTE_POD },
    check: (_o, d) => {
      assert.equal(d.ct(tKey())?.state, 'fin');
      assert.equal(d.ct(remoteReplyKey(d))?.state, 'fin');
    },
  },
  {
    name: 'flow cache: a TCP RST goes through conntrack (closed)', prog: 'xdp', setup: tcpRemote,
    before: [...establishedRemote, retarget(tKey(), { backendId: 3 })],
    pkt: tcp({ flags: 'R', seq: 1001 }), verdict: 'PASS', out: { dst: POD_B }, ct: [{ key: tKey(), value: { state: 'closed' } }],
  },
  {
    name: 'flow cache: a config write (new generation) retires every entry', prog: 'xdp', setup: udpLb,
    before: [...twoUdp(), retarget(uKey(), { backendId: 2 }), { act: (d) => d.config() }],
    pkt: udp(), verdict: 'PASS', out: { dst: POD_B },
  },
  {
    name: 'flow cache off (generation 0): every packet reads conntrack', prog: 'xdp', setup: udpLb, config: { flowCacheGen: 0 },
    before: [...twoUdp(), retarget(uKey(), { backendId: 2 })],
    pkt: udp(), verdict: 'PASS', out: { dst: POD_B },
  },
  {
    name: 'flow cache: the cached backend was deleted: conntrack re-selects among current backends', prog: 'xdp', setup: udpLb,
    before: [...twoUdp(), { act: (d) => { d.backendDelete(1); d.service({ addr: LB_IP, port: 53, proto: 'UDP', svcId: 1, backends: [2] }); } }],
    pkt: udp(), verdict: 'PASS', out: { dst: POD_B }, ct: [{ key: uKey(), value: { backendId: 2 } }],
  },
  {
    name: 'flow cache: a UDP flow whose backend turned draining is not served from the cache', prog: 'xdp', setup: udpLb,
    before: [...twoUdp(), { act: (d) => { d.backend(1, POD_A, 8080, { state: 'draining' }); d.service({ addr: LB_IP, port: 53, proto: 'UDP', svcId: 1, backends: [2] }); } }],
    pkt: udp(), verdict: 'PASS', out: { dst: POD_B }, ct: [{ key: uKey(), value: { backendId: 2 } }],
  },
  {
    name: 'flow cache: an established TCP flow to a draining backend keeps its cached rewrite', prog: 'xdp', setup: tcpRemote,
    before: [...establishedRemote, { pkt: tcp({ flags: 'A', seq: 1001, ack: 5001 }), verdict: 'PASS' }, { act: (d) => { d.backend(2, REMOTE_POD, 8080, { local: false, state: 'draining' }); d.service({ addr: LB_IP, port: 80, svcId: 1, backends: [3] }); } }],
    pkt: tcp({ flags: 'A', seq: 1001, ack: 5001 }), verdict: 'PASS', out: { dst: REMOTE_POD, src: NODE }, ct: [{ key: tKey(), value: { backendId: 2 } }],
  },
  {
    name: 'flow cache: the backend id now holds another address: not used', prog: 'xdp', setup: udpLb,
    before: [...twoUdp(), { act: (d) => d.backend(1, POD_B, 9090) }],
    pkt: udp(), verdict: 'PASS', out: { dst: POD_B, dport: 9090 },
  },
  {
    name: 'flow cache: an entry older than 100 ms is not used (conntrack refreshes the flow)', prog: 'xdp', setup: udpLb,
    before: [...twoUdp(), { act: () => sleepMs(150) }, retarget(uKey(), { backendId: 2 })],
    pkt: udp(), verdict: 'PASS', out: { dst: POD_B },
  },
  {
    name: 'flow cache: TTL 1 on a cached flow is still a ttl drop', prog: 'xdp', setup: udpLb,
    before: twoUdp(), pkt: udp({ ttl: 1 }), verdict: 'DROP', drops: { ttl: 1 },
  },
  {
    name: 'flow cache: two flows on one slot (mask 0) evict each other and keep their own backends', prog: 'xdp', setup: udpLb, config: { flowCacheMask: 0 },
    before: [
      { pkt: udp(), verdict: 'PASS' }, { pkt: udp({ sport: 40001 }), verdict: 'PASS' },
      retarget(uKey({ sport: 40001 }), { backendId: 2 }),
      { pkt: udp({ sport: 40001 }), verdict: 'PASS' }, // conntrack -> pod B, cached in slot 0
      { pkt: udp(), verdict: 'PASS' },                 // slot holds the other flow: conntrack -> pod A, cached
    ],
    pkt: udp({ sport: 40001 }), verdict: 'PASS', out: { dst: POD_B, sport: 40001 },
  },
  {
    name: 'flow cache (tc device): third UDP packet from the cache, checksums through the skb helpers', prog: 'tcdev', setup: udpLb,
    before: [...twoUdp({}, 'OK'), retarget(uKey(), { backendId: 2 })],
    pkt: udp(), verdict: 'OK', out: { dst: POD_A, dport: 8080 },
  },
  {
    name: 'flow cache (pod veth tc): pod -> ClusterIP UDP from the cache', prog: 'tc',
    setup: (d) => {
      d.backend(1, POD_B, 8080);
      d.backend(2, REMOTE_POD, 8080);
      d.service({ addr: CLUSTER_IP, port: 53, proto: 'UDP', svcId: 10, backends: [1], scope: 'internal' });
    },
    before: [
      { pkt: pudp(), verdict: 'OK' }, { pkt: pudp(), verdict: 'OK' },
      retarget({ saddr: POD_A, daddr: CLUSTER_IP, sport: 40000, dport: 53, proto: 'UDP' }, { backendId: 2 }),
    ],
    pkt: pudp(), verdict: 'OK', out: { src: POD_A, dst: POD_B, dport: 8080 }, check: (o) => assert.equal(o.payload?.toString(), 'dns?'),
  },
  {
    name: 'flow cache (pod veth tc): hairpin flow cached with its SNAT and its bounce verdict', prog: 'tc',
    setup: (d) => {
      d.backend(1, POD_A, 8080);
      d.service({ addr: CLUSTER_IP, port: 53, proto: 'UDP', svcId: 10, backends: [1], scope: 'internal' });
    },
    before: [
      { pkt: pudp(), verdict: 'TC_REDIRECT' }, { pkt: pudp(), verdict: 'TC_REDIRECT' },
      retarget({ saddr: POD_A, daddr: CLUSTER_IP, sport: 40000, dport: 53, proto: 'UDP' }, { natAddr: '169.254.42.2' }),
    ],
    pkt: pudp(), verdict: 'TC_REDIRECT', out: { src: HAIRPIN, dst: POD_A, dport: 8080 },
    stats: { svcId: 10, packets: 3, newFlows: 1 },
  },
];

function pudp(o: Partial<PacketSpec> = {}): Buffer {
  return buildPacket({ src: POD_A, dst: CLUSTER_IP, proto: 'UDP', sport: 40000, dport: 53, payload: Buffer.from('dns?'), ...o });
}
