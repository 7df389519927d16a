// Runs bpf.ts operations in a separate process, e.g. under `ip netns exec NS node child.js`,
// because attach/detach/list act on the process's network namespace. Reads a JSON array of
// steps from argv[2]; prints one JSON line with a result (or {error}) per step.
import { loadObject, Link, listAttached, ifIndex, type BpfObject, type XdpMode } from '../../src/datapath/bpf.js';
import { setLogLevel } from '../../src/log.js';

export type Step =
  | { op: 'attach'; obj: string; pinPath: string; prog: string; ifname: string; kind: 'xdp' | 'tc-ingress' | 'tc-egress'; mode?: XdpMode | 'auto'; linkPin?: string }
  | { op: 'update'; obj: string; pinPath: string; prog: string; linkPin: string }
  | { op: 'list'; ifname: string }
  | { op: 'detach'; linkPin: string; unpin?: boolean }
  | { op: 'live'; obj: string; pinPath: string; prog: string; ifname: string; repeat: number; frame: string };

const objects = new Map<string, BpfObject>();

async function object(file: string, pinPath: string): Promise<BpfObject> {
  const key = `${file}\0${pinPath}`;
  let o = objects.get(key);
  if (!o) {
    o = await loadObject(file, { pinPath });
    objects.set(key, o);
  }
  return o;
}

async function runStep(s: Step): Promise<unknown> {
  switch (s.op) {
    case 'attach': {
      const prog = (await object(s.obj, s.pinPath)).program(s.prog);
      const link = s.kind === 'xdp'
        ? Link.attachXdp(prog, s.ifname, { mode: s.mode ?? 'auto' })
        : Link.attachTc(prog, s.ifname, s.kind === 'tc-ingress' ? 'ingress' : 'egress');
      if (s.linkPin) link.pin(s.linkPin);
      return { linkId: link.id, progId: link.progId(), mode: link.mode, kind: link.kind, ifindex: link.ifindex, progIdOfProgram: prog.id };
    }
    case 'update': {
      const prog = (await object(s.obj, s.pinPath)).program(s.prog);
      const link = Link.openPinned(s.linkPin);
      const before = link.progId();
      link.update(prog);
      return { before, after: link.progId(), progIdOfProgram: prog.id, linkId: link.id };
    }
    case 'list':
      return listAttached(s.ifname);
    case 'detach': {
      const link = Link.openPinned(s.linkPin);
      link.detach();
      if (s.unpin) link.unpin();
      link.close();
      return { detached: link.id };
    }
    case 'live': {
      const prog = (await object(s.obj, s.pinPath)).program(s.prog);
      return prog.testRunLive({ data: Buffer.from(s.frame, 'hex'), repeat: s.repeat, ifindex: ifIndex(s.ifname) });
    }
  }
}

async function main(): Promise<void> {
  setLogLevel('silent');
  const steps = JSON.parse(process.argv[2] ?? '[]') as Step[];
  for (const s of steps) {
    try {
      console.log(JSON.stringify({ ok: await runStep(s) }));
    } catch (e) {
      const err = e as Error & { code?: string; target?: string };
      console.log(JSON.stringify({ error: { code: err.code, message: err.message, target: err.target } }));
    }
  }
  for (const o of objects.values()) o.close();
}

await main();
