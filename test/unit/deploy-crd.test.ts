// deploy/crd-loadbalancerippool.yaml: the CRD the API server accepts (structural schema,
// cluster scope, status subresource) and a schema that takes the pools users write and the
// allocator reads, with the defaults the issue names, and refuses malformed ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { parseRange, POOL_API_VERSION, POOL_KIND } from '../../src/model/ipam.js';
import { baseObjects, find, type KObj } from './deploy-manifests.js';

const crd = find(baseObjects(), 'CustomResourceDefinition');
const version = crd.spec.versions[0];
const schema = version.schema.openAPIV3Schema;

/** Validates like the API server: schema keywords only, defaults applied in place. */
function validator() {
  const ajv = new Ajv({ strict: false, useDefaults: true, validateFormats: false, allErrors: true });
  return ajv.compile(schema);
}

function pool(spec: KObj): KObj {
  return { apiVersion: POOL_API_VERSION, kind: POOL_KIND, metadata: { name: 'p' }, spec };
}

test('LoadBalancerIPPool CRD: xlb.io/v1alpha1, cluster-scoped, status subresource', () => {
  assert.equal(crd.metadata.name, `${crd.spec.names.plural}.${crd.spec.group}`);
  assert.equal(`${crd.spec.group}/${version.name}`, POOL_API_VERSION);
  assert.equal(crd.spec.names.kind, POOL_KIND);
  assert.equal(crd.spec.scope, 'Cluster');
  assert.deepEqual(crd.spec.versions.map((v: KObj) => [v.served, v.storage]), [[true, true]]);
  assert.deepEqual(version.subresources, { status: {} });
});

test('the schema is structural: every node has a type, every object lists its properties', () => {
  const walk = (s: KObj, path: string): string[] => {
    const bad = s.type ? [] : [`${path}: no type`];
    if (s.type === 'object' && !s.properties && !s.additionalProperties && path !== '.metadata') bad.push(`${path}: object without properties`);
    for (const [k, v] of Object.entries((s.properties ?? {}) as Record<string, KObj>)) bad.push(...walk(v, `${path}.${k}`));
    if (s.items) bad.push(...walk(s.items, `${path}[]`));
    if (typeof s.additionalProperties === 'object') bad.push(...walk(s.additionalProperties, `${path}{}`));
    return bad;
  };
  assert.deepEqual(walk(schema, ''), []);
});

test('pools with CIDRs, ranges, IPv6, selectors and namespaces validate; defaults as documented', () => {
  const validate = validator();
  const p = pool({
    addresses: ['192.0.2.0/24', '198.51.100.10-198.51.100.20', '2001:db8::/120', '2001:db8:1::1-2001:db8:1::ff', '203.0.113.7'],
    serviceSelector: { matchLabels: { tier: 'web' }, matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] },
    namespaces: ['team-a'],
  });
  assert.equal(validate(p), true, JSON.stringify(validate.errors));
  assert.deepEqual([p.spec.autoAssign, p.spec.avoidBuggyIPs, p.spec.disabled], [true, false, false]);
  for (const a of p.spec.addresses) assert.equal(typeof parseRange(a), 'object', `the allocator reads ${a}`);
  const st = pool({ addresses: ['192.0.2.0/24'] });
  st.status = { used: 2, free: '254', conflicts: ['pool q overlaps this one'] };
  assert.equal(validate(st), true, JSON.stringify(validate.errors));
});

test('the schema refuses malformed pools', () => {
  const validate = validator();
  const refused = (spec: KObj) => !validate(pool(spec));
  assert.ok(refused({}), 'addresses required');
  assert.ok(refused({ addresses: [] }), 'at least one address');
  assert.ok(refused({ addresses: ['192.0.2.0/24 and more'] }), 'not an address');
  assert.ok(refused({ addresses: ['pool-a'] }), 'a name is not an address');
  assert.ok(refused({ addresses: ['192.0.2.0/24'], autoAssign: 'yes' }), 'autoAssign is a boolean');
  assert.ok(refused({ addresses: ['192.0.2.0/24'], serviceSelector: { matchExpressions: [{ key: 'a', operator: 'Equals' }] } }), 'operator enum');
  assert.ok(refused({ addresses: ['192.0.2.0/24'], namespaces: 'team-a' }), 'namespaces is a list');
  assert.ok(!validate({ apiVersion: POOL_API_VERSION, kind: POOL_KIND, metadata: { name: 'p' } }), 'spec required');
});
