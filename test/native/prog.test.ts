// BPF_PROG_TEST_RUN through BpfProgram: verdicts, output bytes, timing, repeat counts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadObject, type BpfObject } from '../../src/datapath/bpf.js';
import { objPath, sumPercpu, u32 } from './util.js';

const XDP_PASS = 2;
const TC_ACT_OK = 0;
let obj: BpfObject;

before(async () => {
  obj = await loadObject(objPath('t_prog'));
});
after(() => obj?.close());

/** An Ethernet/IPv4/UDP frame; the bytes only need to be a plausible packet. */
function frame(): Buffer {
  const f = Buffer.alloc(64);
  f.write('020000000002020000000001', 0, 'hex');
  f.writeUInt16BE(0x0800, 12);
  f.write('4500003200000000401100000a0000010a000002', 14, 'hex');
  f.writeUInt16BE(40000, 34);
  f.writeUInt16BE(53, 36);
  return f;
}

test('programs report name, type and kernel id', () => {
  assert.deepEqual(obj.programNames(), ['xdp_count', 'xdp_count_v2', 'tc_ingress', 'tc_egress']);
  const p = obj.program('xdp_count');
  assert.equal(p.type, 'xdp');
  assert.equal(obj.program('tc_ingress').type, 'sched_cls');
  assert.ok(p.id > 0 && p.fd > 0);
});

test('xdp testRun: XDP_PASS verdict, packet unchanged, duration measured, counted `repeat` times', () => {
  const counters = obj.map('counters');
  const before = sumPercpu(counters.lookup(u32(0)));
  const r = obj.program('xdp_count').testRun({ data: frame(), repeat: 1000 });
  assert.equal(r.retval, XDP_PASS);
  assert.deepEqual(r.data, frame());
  assert.ok(r.durationNs > 0, `durationNs ${r.durationNs}`);
  assert.equal(sumPercpu(counters.lookup(u32(0))) - before, 1000n);
});

test('tc testRun: TC_ACT_OK and its own counter', () => {
  const counters = obj.map('counters');
  const before = sumPercpu(counters.lookup(u32(2)));
  const r = obj.program('tc_ingress').testRun({ data: frame(), repeat: 5 });
  assert.equal(r.retval, TC_ACT_OK);
  assert.equal(r.data.length, 64);
  assert.equal(sumPercpu(counters.lookup(u32(2))) - before, 5n);
});

test('testRun with cpu: the run happens on that CPU (per-CPU counters), affinity restored; a bad CPU is EINVAL', async () => {
  const { availableParallelism } = await import('node:os');
  const counters = obj.map('counters');
  const perCpu = () => { const b = counters.lookup(u32(0))!; return Array.from({ length: b.length / 8 }, (_, i) => b.readBigUInt64LE(i * 8)); };
  for (const cpu of [...new Set([0, availableParallelism() - 1])]) {
    const before = perCpu();
    obj.program('xdp_count').testRun({ data: frame(), repeat: 7, cpu });
    const after = perCpu();
    after.forEach((n, i) => assert.equal(n - before[i], i === cpu ? 7n : 0n, `cpu ${i} after a run pinned to ${cpu}`));
  }
  const { readFileSync } = await import('node:fs');
  const allowed = () => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/thread-self/status', 'utf8'))?.[1];
  const mask = allowed();
  obj.program('xdp_count').testRun({ data: frame(), cpu: 0 });
  assert.equal(allowed(), mask, 'the thread may run on every CPU it could before');
  assert.throws(() => obj.program('xdp_count').testRun({ data: frame(), cpu: 100_000 }), { code: 'EINVAL', op: 'sched_setaffinity', target: 'xdp_count' });
  assert.throws(() => obj.program('xdp_count').testRun({ data: frame(), cpu: 1000 }), { code: 'EINVAL', op: 'sched_setaffinity' });
  assert.throws(() => obj.program('xdp_count').testRun({ data: frame(), cpu: -1 }), TypeError);
  assert.equal(allowed(), mask, 'a failed pin leaves the affinity alone');
});

test('testRun with too small an output buffer is ENOSPC naming the program', () => {
  assert.throws(() => obj.program('xdp_count').testRun({ data: frame(), dataOutSize: 10 }), (e: any) => {
    assert.equal(e.code, 'ENOSPC');
    assert.equal(e.target, 'xdp_count');
    return true;
  });
});

test('a closed program throws EBADF', async () => {
  const o = await loadObject(objPath('t_prog'));
  const p = o.program('xdp_count');
  o.close();
  assert.throws(() => p.testRun({ data: frame() }), { code: 'EBADF', target: 'xdp_count' });
});
