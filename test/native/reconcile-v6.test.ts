// The reconciler's writes of a dual-stack Service (issue 15): its IPv6 frontends, backends,
// source ranges and revnat entries in the real maps, adopted after a restart (the IPv6
// NodePort's wildcard key read back as what it was written for), then removed without a trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadObject, possibleCpus, type BpfObject } from '../../src/datapath/bpf.js';
import * as C from '../../src/datapath/codecs.js';
import { Reconciler, mapsOf } from '../../src/datapath/reconcile.js';
import { translate } from '../../src/model/translate.js';
import { NODE, ep, slice, svc } from '../unit/model.fixtures.js';
import { bpffsDir, objPath } from './util.js';

const http = [{ name: 'http', port: 8080, protocol: 'TCP' }];
const dual = svc({
  type: 'LoadBalancer', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:96::a'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack',
  ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }],
  loadBalancerSourceRanges: ['198.51.100.0/24', 'fd00:c::/48'],
}, { ingress: [{ ip: '203.0.113.7' }, { ip: 'fd00:1b::7' }] });
const slices = [
  slice('web-v4', http, [ep('10.244.1.5', { node: NODE })]),
  slice('web-v6', http, [ep('fd00:244:1::5', { node: NODE }), ep('fd00:244:2::6')], { addressType: 'IPv6' }),
];

const dump = (obj: BpfObject, name: string) => [...obj.map(name).entries()];

test('a dual-stack Service: IPv6 entries in services, backends, src_ranges and revnat; adopted after a restart; removed whole', async (t) => {
  const dir = bpffsDir('recv6');
  const objs: BpfObject[] = [];
  t.after(() => { for (const o of objs) o.close(); dir.cleanup(); });
  const load = async () => { const o = await loadObject(objPath('xlb'), { pinPath: dir.path, maxEntries: { backends: 1024, ct: 1024 } }); objs.push(o); return o; };
  const r = translate(dual, slices, { name: NODE, addresses: ['192.0.2.10', 'fd00:2::10'], labels: {} }, { nodeName: NODE });
  assert.ok(r.ok);
  const spec = r.service;
  const obj = await load();
  const rec = new Reconciler(mapsOf(obj), { maglevM: 251, cpus: possibleCpus() });
  assert.equal((await rec.apply(spec.key, spec)).ok, true);

  const keys = dump(obj, C.MAP.services).map(([k]) => C.decodeSvcKey(k)).filter((k) => k.scope === 'external');
  const text = (k: C.SvcKey) => `${k.addr ?? (k.family === 6 ? '[::]' : '*')}:${k.port}`;
  assert.deepEqual(keys.map(text).sort(), ['*:30080', '10.96.0.10:80', '203.0.113.7:80', '[::]:30080', 'fd00:1b::7:80', 'fd00:96::a:80']);
  const backends = dump(obj, C.MAP.backends).map(([, v]) => C.decodeBackendValue(v)).filter((b) => b).map((b) => b!.addr).sort();
  assert.deepEqual(backends, ['10.244.1.5', 'fd00:244:1::5', 'fd00:244:2::6']);
  const ranges = dump(obj, C.MAP.srcRanges).map(([k]) => C.decodeSrcRangeKey(k).cidr);
  assert.deepEqual([...new Set(ranges)].sort(), ['198.51.100.0/24', 'fd00:c::/48'], 'each family\'s frontends get their own family\'s range');
  for (const f of spec.frontends) {
    const id = rec.svcIdOf(f)!;
    const rev = C.decodeRevnatValue(obj.map(C.MAP.revnat).lookup(C.encodeRevnatKey(id))!);
    assert.deepEqual([rev.addr, rev.port, rev.family], [f.addr, f.port, f.addr === null && f.family === 6 ? 6 : undefined], f.id);
  }
  const before = new Map(spec.frontends.map((f) => [f.id, rec.svcIdOf(f)]));
  obj.close();

  const obj2 = await load();
  const rec2 = new Reconciler(mapsOf(obj2), { maglevM: 251, cpus: possibleCpus() });
  assert.equal((await rec2.adoptPinned()).frontends, spec.frontends.length);
  assert.equal((await rec2.apply(spec.key, spec)).ok, true);
  for (const f of spec.frontends) assert.equal(rec2.svcIdOf(f), before.get(f.id), `${f.id} keeps its svc_id`);
  assert.equal((await rec2.apply(spec.key, undefined)).ok, true);
  for (const m of [C.MAP.services, C.MAP.srcRanges, C.MAP.revnat, C.MAP.slots]) assert.deepEqual(dump(obj2, m), [], `${m} empty`);
});
