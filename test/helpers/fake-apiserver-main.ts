// The wire-level fake API server as a process of its own, so it can run inside a node's
// network namespace next to an agent (which reaches it on that namespace's 127.0.0.1, or on
// the node's address given as the first argument).
// Prints one JSON line {url, kubeconfig}; then takes newline-delimited JSON commands on stdin
//   {"op":"apply","resource":"services","obj":{...}}  {"op":"remove","resource":...,"name":...,"namespace":...}
//   {"op":"listDelay","resource":"endpointslices","ms":3000}
//   {"op":"get","resource":"services","name":...,"namespace":...}  {"op":"all","resource":"events"}
//   {"op":"writes","resource":"services"}: the write requests (create, update, patch) so far
// answering "ok" (get, all and writes: "ok " and the JSON) or "error: ..." per line. Exits when stdin closes.
import { createInterface } from 'node:readline';
import { FakeApiServer, type Resource } from './fake-apiserver.js';

// argv[2], optional: HOST:PORT to listen on (e.g. a node's address, so other nodes reach it)
const [host, port] = (process.argv[2] ?? '').split(':');
const api = await FakeApiServer.start({ bookmarkIntervalMs: 1000, host: host || undefined, port: port ? Number(port) : undefined });
const kubeconfig = await api.writeKubeconfig();
process.stdout.write(JSON.stringify({ url: api.url, kubeconfig }) + '\n');
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  try {
    const c = JSON.parse(line) as { op: string; resource: Resource; obj?: Record<string, any>; name?: string; namespace?: string; ms?: number };
    if (c.op === 'apply') api.apply(c.resource, c.obj!);
    else if (c.op === 'remove') api.remove(c.resource, c.name!, c.namespace);
    else if (c.op === 'listDelay') api.setListDelay(c.resource, c.ms ?? 0);
    else if (c.op === 'get') return void process.stdout.write(`ok ${JSON.stringify(api.get(c.resource, c.name!, c.namespace) ?? null)}\n`);
    else if (c.op === 'all') return void process.stdout.write(`ok ${JSON.stringify(api.all(c.resource))}\n`);
    else if (c.op === 'writes') {
      const w = api.requests.filter((r) => r.resource === c.resource && ['create', 'update', 'patch'].includes(r.verb));
      return void process.stdout.write(`ok ${JSON.stringify(w)}\n`);
    } else throw new Error(`unknown op ${c.op}`);
    process.stdout.write('ok\n');
  } catch (e) {
    process.stdout.write(`error: ${(e as Error).message}\n`);
  }
});
rl.on('close', () => void api.stop().then(() => process.exit(0)));
