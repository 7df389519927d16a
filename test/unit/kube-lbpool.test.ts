// Kube mode: LoadBalancerIPPools (xlb.io/v1alpha1, cluster-scoped) read by the kube source's
// reflector against the wire-level fake API server, so LoadBalancer Services carry their pool
// address (or the reason for none) exactly as in manifests mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { KubeSource } from '../../src/sources/kube.js';
import { noAddressReason } from '../../src/sources/lbpools.js';
import { FakeApiServer, type FakeApiServerOptions } from '../helpers/fake-apiserver.js';
import { ipPool, node, service, waitFor, type KObj } from '../helpers/manifests.js';

const silent = pino({ level: 'silent' });

function lb(name: string, created: string): KObj {
  const s = service(name, { type: 'LoadBalancer', clusterIP: `10.96.0.${name.length}` });
  s.metadata.creationTimestamp = created;
  return s;
}

async function setup(t: { after: (fn: () => Promise<void>) => void }, fake: FakeApiServerOptions = {}) {
  const api = await FakeApiServer.start(fake);
  api.apply('nodes', node('node-a'));
  const src = new KubeSource({
    connection: { kubeconfig: await api.writeKubeconfig() }, nodeName: 'node-a',
    backoff: { initialMs: 50, maxMs: 200, jitter: 0 }, log: silent,
  });
  const changes: string[] = [];
  src.on('change', (k, key) => changes.push(`${k} ${key}`));
  t.after(async () => {
    await src.stop();
    await api.stop();
  });
  return { api, src, changes };
}

const ingress = (src: KubeSource, key: string) => src.service(key)?.status?.loadBalancer?.ingress?.map((i) => `${i.ip}/${i.ipMode}`) ?? [];

test('pools from the API server assign addresses; a freed address goes to the Service that waited', async (t) => {
  const { api, src } = await setup(t);
  api.apply('loadbalancerippools', ipPool('demo', ['198.18.0.10-198.18.0.11']));
  api.apply('services', lb('alpha', '2026-01-01T00:00:00Z'));
  api.apply('services', lb('beta', '2026-01-02T00:00:00Z'));
  api.apply('services', lb('gamma', '2026-01-03T00:00:00Z'));
  api.apply('services', service('plain', { clusterIP: '10.96.0.99' }));
  await src.start();
  assert.ok(api.requests.some((r) => r.resource === 'loadbalancerippools' && r.verb === 'list'));
  assert.deepEqual(ingress(src, 'default/alpha'), ['198.18.0.10/VIP']);
  assert.deepEqual(ingress(src, 'default/beta'), ['198.18.0.11/VIP']);
  assert.deepEqual(ingress(src, 'default/gamma'), []);
  assert.equal(noAddressReason(src.service('default/gamma')!), 'no free IPv4 address in pool demo');
  assert.equal(src.service('default/plain')?.spec?.clusterIP, '10.96.0.99');

  // Deleting alpha (a watch event) frees an address for gamma, without a relist. (No status
  // was written here, so nothing is held: beta moves down to the lowest free address.)
  api.remove('services', 'alpha');
  await waitFor(() => ingress(src, 'default/gamma').length === 1, 'gamma gets the freed address');
  assert.deepEqual([...ingress(src, 'default/beta'), ...ingress(src, 'default/gamma')], ['198.18.0.10/VIP', '198.18.0.11/VIP']);
  assert.equal(api.count('services', 'list'), 1);
});

test('a pool edit through the watch re-emits only the Services whose address changed', async (t) => {
  const { api, src, changes } = await setup(t);
  api.apply('loadbalancerippools', ipPool('demo', ['198.18.0.10']));
  api.apply('services', lb('alpha', '2026-01-01T00:00:00Z'));
  api.apply('services', lb('beta', '2026-01-02T00:00:00Z'));
  await src.start();
  assert.deepEqual(ingress(src, 'default/beta'), []);
  changes.length = 0;
  api.apply('loadbalancerippools', ipPool('demo', ['198.18.0.10-198.18.0.11']));
  await waitFor(() => ingress(src, 'default/beta')[0] === '198.18.0.11/VIP', 'beta served after the pool grows');
  assert.deepEqual(ingress(src, 'default/alpha'), ['198.18.0.10/VIP']);
  assert.deepEqual(changes, ['service default/beta'], 'alpha kept its address: no change for it');
  api.remove('loadbalancerippools', 'demo');
  await waitFor(() => ingress(src, 'default/alpha').length === 0, 'no pool: no address');
});

test('without the CRD installed the source still starts; installing it later brings the pools', async (t) => {
  const { api, src } = await setup(t, { absent: ['loadbalancerippools'] });
  api.apply('services', lb('alpha', '2026-01-01T00:00:00Z'));
  await src.start();
  assert.deepEqual(ingress(src, 'default/alpha'), []);
  api.apply('loadbalancerippools', ipPool('demo', ['198.18.0.10']));
  api.setAbsent('loadbalancerippools', false);
  await waitFor(() => ingress(src, 'default/alpha')[0] === '198.18.0.10/VIP', 'pool read once the CRD is served', 5000);
});
