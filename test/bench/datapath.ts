// Per-packet cost of xlb_xdp via BPF_PROG_TEST_RUN repeat, beside a reference XDP program
// (bpf/test/ref_pass.c: parse Ethernet + IPv4, XDP_PASS) in the same run, printed as ratios.
//   node dist/test/bench/datapath.js [--quick]
//
// A test run repeats the program on one buffer without restoring it, so a translating path
// would see its own output from the second repetition on. So:
//   ct_hit:   set up as a cycle: two established forward CT entries (client->LB IP:80 =>
//             pod:8080 and client->pod:8080 => LB IP:80), so every repetition does the full
//             hit path of an established flow: the per-CPU flow cache slot (conntrack on the
//             first packet of each direction and once per 100 ms after), backend check,
//             stats, DNAT with checksum updates.
//   ct_hit_ct: the same with the flow cache off (config.flow_cache_gen 0): every repetition
//             looks up conntrack (a hash map) — what a flow's first packets and every packet
//             of a node with --flow-cache-size 0 cost.
//   pass:     UDP to an address that is no frontend: CT miss, service miss, XDP_PASS.
//   new_flow: one test run per packet (repeat 1), each with a new source port: service
//             lookup, slot choice, both CT entries written, DNAT. Compared with ref_pass
//             measured the same way (repeat 1), since a single run carries the timer cost.
import { fileURLToPath } from 'node:url';
import { loadObject, type BpfProgram } from '../../src/datapath/bpf.js';
import * as C from '../../src/datapath/codecs.js';
import { buildPacket } from '../helpers/packet.js';
import { CLIENT, Datapath, LB_IP, POD_A, REF_OBJ } from '../bpf/harness.js';

export interface DatapathFigures {
  repeat: number;
  rounds: number;
  /** median ns per packet; refSingle: ref_pass with repeat 1 (the new_flow baseline) */
  ns: { ref: number; refSingle: number; ctHit: number; ctHitCt: number; newFlow: number; pass: number };
  /** ns / ref (new_flow: ns / refSingle) */
  ratio: { ctHit: number; ctHitCt: number; newFlow: number; pass: number };
}

const udp = (dst: string, dport: number, sport = 40000): Buffer =>
  buildPacket({ src: CLIENT, dst, proto: 'UDP', sport, dport, payload: Buffer.alloc(18, 0x61) });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function setupCtHit(d: Datapath, cfg: Partial<C.XlbConfig> = {}): void {
  d.reset({ udpTimeout: 3600, ...cfg });
  d.backend(1, POD_A, 8080);
  d.backend(2, LB_IP, 80);
  const now = process.hrtime.bigint() - 1_000_000_000n; // the datapath's coarse clock may lag
  const entry = (backendId: number): Buffer => C.encodeCtValue({
    natAddr: null, origAddr: null, natPort: 0, origPort: 0, backendId, svcId: 1, state: 'udp',
    flags: C.CT_FLAG.external | C.CT_FLAG.localBackend, lastSeen: now, created: now,
  });
  d.map(C.MAP.ct).update(C.encodeCtKey({ saddr: CLIENT, daddr: LB_IP, sport: 40000, dport: 80, proto: 'UDP' }), entry(1));
  d.map(C.MAP.ct).update(C.encodeCtKey({ saddr: CLIENT, daddr: POD_A, sport: 40000, dport: 8080, proto: 'UDP' }), entry(2));
}

function setupNewFlow(d: Datapath): void {
  d.reset({ ctLimit: 1_000_000 });
  d.backend(1, POD_A, 8080);
  d.service({ addr: LB_IP, port: 80, proto: 'UDP', svcId: 1, backends: [1] });
}

/** Mean ns of single runs, each on its own packet. */
function singleRuns(p: BpfProgram, pkts: Buffer[], want: number): number {
  let sum = 0;
  for (const data of pkts) {
    const r = p.testRun({ data, repeat: 1, cpu: 0 });
    if (r.retval !== want) throw new Error(`${p.name}: verdict ${r.retval}, expected ${want}`);
    sum += r.durationNs;
  }
  return sum / pkts.length;
}

export async function benchDatapath(o: { quick?: boolean } = {}): Promise<DatapathFigures> {
  const repeat = o.quick ? 200_000 : 2_000_000;
  const rounds = o.quick ? 3 : 5;
  const d = await Datapath.open('bench');
  const ref = await loadObject(REF_OBJ);
  try {
    const xdp = d.obj.program(C.PROG.xdp);
    const refProg = ref.program('ref_pass');
    const sample = { ref: [] as number[], refSingle: [] as number[], ctHit: [] as number[], ctHitCt: [] as number[], newFlow: [] as number[], pass: [] as number[] };
    const singles = o.quick ? 2000 : 20000;
    const fresh = (round: number) => Array.from({ length: singles }, (_, i) => udp(LB_IP, 80, 1024 + ((round * singles + i) % 60000)));
    const time = (p: typeof xdp, data: Buffer, want: number): number => {
      const r = p.testRun({ data, repeat, cpu: 0 });
      if (r.retval !== want) throw new Error(`${p.name}: verdict ${r.retval}, expected ${want}`);
      return r.durationNs;
    };
    for (let i = 0; i < rounds; i++) {
      sample.ref.push(time(refProg, udp(LB_IP, 80), 2));
      setupCtHit(d);
      sample.ctHit.push(time(xdp, udp(LB_IP, 80), 2));
      if (d.stats(1).packets < BigInt(repeat / 2)) throw new Error('ct_hit path did not translate every packet');
      setupCtHit(d, { flowCacheGen: 0 });
      sample.ctHitCt.push(time(xdp, udp(LB_IP, 80), 2));
      if (d.stats(1).packets < BigInt(repeat / 2)) throw new Error('ct_hit_ct path did not translate every packet');
      sample.refSingle.push(singleRuns(refProg, fresh(i), 2));
      setupNewFlow(d);
      sample.newFlow.push(singleRuns(xdp, fresh(i), 2));
      if (d.stats(1).newFlows !== BigInt(singles)) throw new Error('new_flow path did not create a flow per packet');
      d.reset();
      sample.pass.push(time(xdp, udp('198.51.100.99', 80), 2));
    }
    const ns = {
      ref: median(sample.ref), refSingle: median(sample.refSingle), ctHit: median(sample.ctHit), ctHitCt: median(sample.ctHitCt),
      newFlow: median(sample.newFlow), pass: median(sample.pass),
    };
    const r = (x: number) => Math.round((x / ns.ref) * 100) / 100;
    const newFlow = Math.round((ns.newFlow / ns.refSingle) * 100) / 100;
    return { repeat, rounds, ns, ratio: { ctHit: r(ns.ctHit), ctHitCt: r(ns.ctHitCt), newFlow, pass: r(ns.pass) } };
  } finally {
    ref.close();
    d.close();
  }
}

function print(f: DatapathFigures): void {
  console.log(`xlb_xdp per-packet cost, BPF_PROG_TEST_RUN repeat=${f.repeat}, median of ${f.rounds} rounds`);
  console.log('path          ns/pkt   x ref_pass');
  const row = (name: string, ns: number, ratio: number | string) => console.log(`${name.padEnd(13)} ${ns.toFixed(1).padStart(6)}   ${ratio}`);
  row('ref_pass', f.ns.ref, 1);
  row('ct_hit', f.ns.ctHit, f.ratio.ctHit);
  row('ct_hit_ct', f.ns.ctHitCt, `${f.ratio.ctHitCt} (flow cache off: conntrack lookup every packet)`);
  row('ref_pass x1', f.ns.refSingle, '(repeat 1: baseline for new_flow)');
  row('new_flow x1', f.ns.newFlow, f.ratio.newFlow);
  row('pass', f.ns.pass, f.ratio.pass);
  console.log(`target: ct_hit <= 2x ref_pass: ${f.ratio.ctHit <= 2 ? 'met' : 'NOT met'}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  print(await benchDatapath({ quick: process.argv.includes('--quick') }));
}
