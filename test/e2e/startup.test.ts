// Cold start from a manifests folder of thousands of Services (issue 14): the status API
// answers while the agent reads and programs, `xlb status` counts the progress, the agent
// logs it at most once a second, and every Service ends up in the maps.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { buildTopology, type Topology } from '../helpers/topology.js';
import { XlbCluster } from '../helpers/cluster.js';
import { sweepStale } from '../helpers/netns.js';
import { loadStatusProto } from '../../src/api/proto.js';
import type { StatusInfo__Output } from '../../src/api/generated/xlb/v1/StatusInfo.js';
import { fillerServices, toManifests } from '../bench/services.js';

const N = 5000;
let topo: Topology;
let c: XlbCluster;

before(async () => {
  await sweepStale('startup');
  topo = await buildTopology({ tag: 'startup', apps: ['app1'], podsPerNode: 1 });
  c = new XlbCluster(topo, 'startup');
});

after(async () => {
  await c?.teardown();
  await topo?.teardown();
});

function getStatus(socket: string): Promise<StatusInfo__Output | undefined> {
  const client = new (loadStatusProto().grpcObj.xlb.v1.Status)(`unix:${socket}`, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.GetStatus({}, { deadline: Date.now() + 2000 }, (err, res) => {
      client.close();
      resolve(err ? undefined : res);
    });
  }).then((r) => r as StatusInfo__Output | undefined);
}

test(`a cold start with ${N} Services: the API answers throughout and status shows the progress`, { timeout: 300_000 }, async () => {
  c.writeText('services.yaml', toManifests(fillerServices(N), []));
  const started = c.startAgent('node1', [], 240_000);
  let done = false;
  void started.finally(() => { done = true; }).catch(() => undefined);
  const seen: Array<{ stage: string; done: number; total: number }> = [];
  while (!done) {
    const s = await getStatus(c.socket('node1'));
    if (s?.progress) seen.push({ stage: s.progress.stage, done: s.progress.done, total: s.progress.total });
    await new Promise((r) => setTimeout(r, 50));
  }
  const h = await started;
  const stages = [...new Set(seen.map((p) => p.stage))];
  assert.ok(seen.some((p) => p.stage === 'programmed' && p.done < p.total && p.total === N),
    `programming progress seen mid-way (stages: ${stages.join(', ')}; ${seen.length} samples)`);
  const final = await getStatus(c.socket('node1'));
  assert.equal(final?.progress, null, 'no progress once started');
  const filled = final!.mapFill.find((m) => m.name === 'services')!.entries;
  // A ClusterIP has two frontends, internal (from pods) and external scope.
  assert.equal(filled, 2 * N, 'every Service is in the services map');

  const progressLines = h.log.map((l) => JSON.parse(l) as { msg: string; time: string }).filter((l) => l.msg?.startsWith('starting: '));
  assert.ok(progressLines.length >= 1, 'a progress line during the cold start');
  for (let i = 1; i < progressLines.length; i++) {
    assert.ok(Date.parse(progressLines[i]!.time) - Date.parse(progressLines[i - 1]!.time) >= 900, `progress lines at most once a second: ${progressLines.map((l) => `${l.time} ${l.msg}`).join('; ')}`);
  }
  assert.ok(!h.log.some((l) => l.includes('"service programmed"')), 'no line per Service during the cold start');
});
