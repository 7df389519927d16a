// Runs inside a veth test's "node" namespace: loads xlb.o, programs three internal frontends
// of one family (argv[3] "ipv6", else IPv4), attaches xlb_tc to both pods' host-side veths
// (tcx ingress) and xlb_tc_host (tcx egress), prints "ready", and on stdin end prints the datapath's counters as one JSON
// line, detaches and exits.
import * as C from '../../src/datapath/codecs.js';
import { Link } from '../../src/datapath/bpf.js';
import { Datapath } from './harness.js';

/** Pods, and ClusterIPs: cipB -> pod B:8080 (TCP), pod B:9000 (UDP 53); cipA -> pod A:8080
 *  (pod A reaching itself: hairpin). */
export interface VethWorld { podA: string; podB: string; cipB: string; cipA: string }
export const WORLD: Record<'ipv4' | 'ipv6', VethWorld> = {
  ipv4: { podA: '10.244.1.5', podB: '10.244.1.6', cipB: '10.96.0.10', cipA: '10.96.0.11' },
  ipv6: { podA: 'fd00:10:244:1::5', podB: 'fd00:10:244:1::6', cipB: 'fd00:10:96::a', cipA: 'fd00:10:96::b' },
};

async function main(): Promise<void> {
  const fam = process.argv[3] === 'ipv6' ? 'ipv6' : 'ipv4';
  const w = WORLD[fam];
  const d = await Datapath.open(`veth-${fam}-${process.argv[2] ?? 'x'}`);
  const links: Link[] = [];
  try {
    d.reset({ flags: 0 });
    d.backend(1, w.podB, 8080);
    d.backend(2, w.podA, 8080);
    d.backend(3, w.podB, 9000);
    d.service({ addr: w.cipB, port: 80, svcId: 10, backends: [1], scope: 'internal' });
    d.service({ addr: w.cipA, port: 80, svcId: 11, backends: [2], scope: 'internal' });
    d.service({ addr: w.cipB, port: 53, proto: 'UDP', svcId: 12, backends: [3], scope: 'internal' });
    // as the agent attaches them: a flow up the stack (no peer redirect here) has its reply
    // reverse-translated at the client pod's veth egress, after the node routed it
    for (const dev of ['lxca', 'lxcb']) {
      links.push(Link.attachTc(d.obj.program(C.PROG.tc), dev, 'ingress'));
      links.push(Link.attachTc(d.obj.program(C.PROG.tcHost), dev, 'egress'));
    }
    process.stdout.write('ready\n');
    await new Promise<void>((resolve) => { process.stdin.on('end', resolve); process.stdin.on('error', resolve); process.stdin.resume(); });
    const stats = Object.fromEntries([10, 11, 12].map((id) => [id, Number(d.stats(id).newFlows)]));
    process.stdout.write(`${JSON.stringify({ drops: d.drops(), newFlows: stats })}\n`);
  } finally {
    for (const l of links) l.detach();
    d.close();
  }
}

if (process.argv[1]?.endsWith('veth-child.js')) await main();
