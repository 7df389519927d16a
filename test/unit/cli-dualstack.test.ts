// Both families in what an operator reads (issue 15 item 5): `xlb services` prints an IPv6
// frontend as [addr]:port with its FAMILY, `xlb status` names the node's addresses and SNAT
// address per family (a family without any is said so), /metrics carries ip_family.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { translate } from '../../src/model/translate.js';
import { serviceToMsg, statusToMsg } from '../../src/api/convert.js';
import { formatServices } from '../../src/cli/services.js';
import { formatStatus } from '../../src/cli/status.js';
import { XlbMetrics } from '../../src/api/metrics.js';
import type { Service__Output } from '../../src/api/generated/xlb/v1/Service.js';
import type { StatusInfo__Output } from '../../src/api/generated/xlb/v1/StatusInfo.js';
import { FakeView } from '../helpers/fake-view.js';
import { svc, ep, slice, NODE, NODE_A } from './model.fixtures.js';

function dualStack(): Service__Output {
  const s = svc({
    type: 'NodePort', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:10:96::a'], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack',
    ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }],
  });
  const r = translate(s, [
    slice('web-v4', [{ name: 'http', port: 8080 }], [ep('10.244.1.5', { node: NODE })]),
    slice('web-v6', [{ name: 'http', port: 8080 }], [ep('fd00:244::5', { node: NODE })], { addressType: 'IPv6' }),
  ], NODE_A, { nodeName: NODE });
  assert.ok(r.ok);
  return serviceToMsg(r.service) as Service__Output;
}

test('xlb services: both families of a dual-stack Service, IPv6 as [addr]:port, FAMILY column', () => {
  const rows = formatServices([dualStack()]).split('\n').filter((l) => /internal/.test(l));
  assert.deepEqual(rows.map((l) => l.split(/\s+/).slice(3, 5).concat(l.split(/\s+/).at(-1)!)), [
    ['10.96.0.10:80', 'IPv4', '10.244.1.5:8080'],
    ['*:30080', 'IPv4', '10.244.1.5:8080'],
    ['[fd00:10:96::a]:80', 'IPv6', '[fd00:244::5]:8080'],
    ['[::]:30080', 'IPv6', '[fd00:244::5]:8080'],
  ]);
});

test('xlb status: addresses and SNAT address per family; a family the node has none of is named', () => {
  const view = new FakeView();
  const base = view.status();
  const line = (s: StatusInfo__Output, f: string) => formatStatus(s).split('\n').find((l) => l.startsWith(`${f} addresses`))?.replace(/\s+/g, ' ');
  const dual = statusToMsg({ ...base, addresses: { node: ['192.168.1.10', 'fd00:1::10', 'fd00:1::11'], snat: ['192.168.1.10', 'fd00:1::10'] } }) as StatusInfo__Output;
  assert.equal(line(dual, 'IPv4'), 'IPv4 addresses: 192.168.1.10 (SNAT 192.168.1.10)');
  assert.equal(line(dual, 'IPv6'), 'IPv6 addresses: fd00:1::10, fd00:1::11 (SNAT fd00:1::10)');
  const v4 = statusToMsg({ ...base, addresses: { node: ['192.168.1.10'], snat: ['192.168.1.10'] } }) as StatusInfo__Output;
  assert.equal(line(v4, 'IPv6'), 'IPv6 addresses: none (no IPv6 NodePort, no IPv6 SNAT)');
});

test('/metrics: per-frontend counters carry ip_family', async () => {
  const view = new FakeView();
  view.statsInfo.services = [
    { svc: 'default/web', frontend: '10.96.0.10:80/TCP internal', ipFamily: 'IPv4', packets: 5, bytes: 500, newFlows: 1 },
    { svc: 'default/web', frontend: '[fd00:10:96::a]:80/TCP internal', ipFamily: 'IPv6', packets: 7, bytes: 700, newFlows: 2 },
  ];
  const text = await new XlbMetrics(view, { processMetrics: false }).render();
  assert.match(text, /^xlb_service_packets_total\{service="default\/web",frontend="10\.96\.0\.10:80\/TCP internal",ip_family="IPv4"\} 5$/m);
  assert.match(text, /^xlb_service_packets_total\{service="default\/web",frontend="\[fd00:10:96::a\]:80\/TCP internal",ip_family="IPv6"\} 7$/m);
});
