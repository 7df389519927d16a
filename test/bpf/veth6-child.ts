// Runs inside the veth6 test's "node" namespace: loads xlb.o, programs three internal IPv6
// frontends, attaches xlb_tc to both pods' host-side veths (tcx ingress), prints "ready",
// and on stdin end prints the datapath's counters as one JSON line, detaches and exits.
import * as C from '../../src/datapath/codecs.js';
import { Link } from '../../src/datapath/bpf.js';
import { Datapath } from './harness.js';

export const POD6_A = 'fd00:10:244:1::5';
export const POD6_B = 'fd00:10:244:1::6';
export const CIP6_B = 'fd00:10:96::a';   // -> pod B:8080 (TCP), pod B:9000 (UDP 53)
export const CIP6_A = 'fd00:10:96::b';   // -> pod A:8080: pod A reaching itself (hairpin)

async function main(): Promise<void> {
  const d = await Datapath.open(`veth6-${process.argv[2] ?? 'x'}`);
  const links: Link[] = [];
  try {
    d.reset({ flags: 0 });
    d.backend(1, POD6_B, 8080);
    d.backend(2, POD6_A, 8080);
    d.backend(3, POD6_B, 9000);
    d.service({ addr: CIP6_B, port: 80, svcId: 10, backends: [1], scope: 'internal' });
    d.service({ addr: CIP6_A, port: 80, svcId: 11, backends: [2], scope: 'internal' });
    d.service({ addr: CIP6_B, port: 53, proto: 'UDP', svcId: 12, backends: [3], scope: 'internal' });
    for (const dev of ['lxca', 'lxcb']) links.push(Link.attachTc(d.obj.program(C.PROG.tc), dev, 'ingress'));
    process.stdout.write('ready\n');
    await new Promise<void>((resolve) => { process.stdin.on('end', resolve); process.stdin.on('error', resolve); process.stdin.resume(); });
    const stats = Object.fromEntries([10, 11, 12].map((id) => [id, Number(d.stats(id).newFlows)]));
    process.stdout.write(`${JSON.stringify({ drops: d.drops(), newFlows: stats })}\n`);
  } finally {
    for (const l of links) l.detach();
    d.close();
  }
}

await main();
