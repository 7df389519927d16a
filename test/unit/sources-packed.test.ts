// The sources keep EndpointSlices with their endpoints packed (src/sources/packed.ts): readers
// must see exactly the slices that were stored, and the store must tell a change from a no-op
// as it did with the objects themselves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { ClusterStore } from '../../src/sources/store.js';
import { decode } from '../../src/sources/decode.js';
import { PackedEndpoints, packSlice, sameSliceContent, unpackSlice } from '../../src/sources/packed.js';
import type { ChangeKind } from '../../src/sources/types.js';

/** Every kind of endpoint a slice may carry: the usual ones and those kept as they came. */
function sliceWithEveryKind(): V1EndpointSlice {
  return decode('EndpointSlice', {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { namespace: 'shop', name: 'web-abc', labels: { 'kubernetes.io/service-name': 'web' }, resourceVersion: '7' },
    addressType: 'IPv4',
    endpoints: [
      { addresses: ['10.244.1.5'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-a', targetRef: { kind: 'Pod', namespace: 'shop', name: 'web-1', uid: 'u-1' } },
      { addresses: ['10.244.1.6'], conditions: { ready: false, serving: true, terminating: true }, nodeName: 'node-b', targetRef: { kind: 'Pod', namespace: 'shop', name: 'web-2' } },
      // another key order, a zone, no targetRef, no nodeName
      { conditions: { ready: true }, addresses: ['10.244.1.7'], zone: 'zone-a' },
      { addresses: ['10.244.1.8'] },
      { addresses: ['10.244.1.9'], conditions: {}, targetRef: { name: 'web-9', kind: 'Pod' } },
      // kept as they came: hints, a hostname, two addresses, no address
      { addresses: ['10.244.2.1'], conditions: { ready: true }, hints: { forZones: [{ name: 'zone-a' }] }, zone: 'zone-a' },
      { addresses: ['10.244.2.2'], hostname: 'web-0', conditions: { ready: true } },
      { addresses: ['10.244.2.3', '10.244.2.4'], conditions: { ready: true } },
      { conditions: { ready: true } },
    ],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  }, true);
}

test('a packed slice unpacks to the same slice, key order included; JSON of the packed one is the original\'s', () => {
  const s = sliceWithEveryKind();
  const packed = packSlice(s);
  assert.ok((packed as unknown as { endpoints: unknown }).endpoints instanceof PackedEndpoints);
  assert.equal(packSlice(packed), packed, 'packing a packed slice changes nothing');
  const back = unpackSlice(packed);
  assert.equal(JSON.stringify(back), JSON.stringify(s));
  assert.equal(JSON.stringify(packed), JSON.stringify(s));
  assert.deepEqual(back, s);
  assert.notEqual(unpackSlice(packed).endpoints, unpackSlice(packed).endpoints, 'fresh objects each time');
  // a slice without endpoints stays as it is
  const empty = { ...s, endpoints: undefined } as unknown as V1EndpointSlice;
  delete (empty as { endpoints?: unknown }).endpoints;
  assert.equal(packSlice(empty), empty);
});

test('sameSliceContent: equal content is the same whichever objects hold it; any field of any endpoint makes a difference', () => {
  const a = packSlice(sliceWithEveryKind());
  assert.ok(sameSliceContent(a, packSlice(sliceWithEveryKind())));
  assert.ok(sameSliceContent(a, sliceWithEveryKind()));
  const edits: Array<(s: V1EndpointSlice) => void> = [
    (s) => { s.endpoints[0]!.conditions!.ready = false; },
    (s) => { s.endpoints[1]!.nodeName = 'node-c'; },
    (s) => { s.endpoints[1]!.targetRef!.name = 'web-3'; },
    (s) => { s.endpoints[2]!.zone = 'zone-b'; },
    (s) => { s.endpoints[3]!.addresses = ['10.244.1.18']; },
    (s) => { s.endpoints[5]!.hints!.forZones = [{ name: 'zone-b' }]; },
    (s) => { s.endpoints[6]!.hostname = 'web-1'; },
    (s) => { s.endpoints.pop(); },
    (s) => { s.ports![0]!.port = 8081; },
  ];
  for (const [i, edit] of edits.entries()) {
    const b = JSON.parse(JSON.stringify(sliceWithEveryKind())) as V1EndpointSlice;
    edit(b);
    assert.ok(!sameSliceContent(a, packSlice(b)), `edit ${i}`);
  }
});

test('the store hands out the slices it was given; an upsert of equal content is no change, a different endpoint is one', () => {
  const changes: Array<[ChangeKind, string]> = [];
  const store = new ClusterStore('node-a', (k, key) => changes.push([k, key]), 'content');
  store.upsertSlice(sliceWithEveryKind());
  assert.deepEqual(changes, [['slices', 'shop/web']]);
  assert.deepEqual(store.slices('shop/web'), [sliceWithEveryKind()]);
  store.upsertSlice(sliceWithEveryKind());
  assert.equal(changes.length, 1, 'same content: no change');
  const b = sliceWithEveryKind();
  b.endpoints[4]!.conditions = { ready: false };
  store.upsertSlice(b);
  assert.equal(changes.length, 2);
  assert.deepEqual(store.slices('shop/web'), [b]);

  // by resourceVersion (the kube source): the version decides
  const kube = new ClusterStore('node-a', (k, key) => changes.push([k, key]));
  kube.upsertSlice(sliceWithEveryKind());
  const same = sliceWithEveryKind();
  same.endpoints[0]!.nodeName = 'node-z';
  kube.upsertSlice(same);
  assert.equal(changes.length, 3, 'same resourceVersion: no change');
  same.metadata!.resourceVersion = '8';
  kube.upsertSlice(same);
  assert.equal(changes.length, 4);
  assert.equal(kube.slices('shop/web')[0]!.endpoints[0]!.nodeName, 'node-z');
});
