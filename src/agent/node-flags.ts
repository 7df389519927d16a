// V8 flags the agent process runs with. One list for every way it starts: the image's
// ENTRYPOINT (deploy/Containerfile) and the `xlb` shebang (src/cli/main.ts) spell it out, a
// unit test holds them to this list, and the tests and the agent bench start agents with it.
//
// --max-semi-space-size=2 (MB): a full sync of 10,000 Services allocates mostly short-lived
// objects, and V8's default 16 MB semi-spaces let the young generation take ~30 MB more RSS
// for them. Measured with test/bench/agent.ts (10,000 Services x 10 endpoints): RSS after
// cold programming 224 -> 192 MB, cold programming time and change latency unchanged.
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

// Environment the agent process starts with, spelled out the same places (the image's ENV, the
// shebang's `env -S NAME=VALUE`), held to this list by the same test.
//
// MALLOC_ARENA_MAX=1: glibc gives every thread that allocates its own malloc arena (V8's
// platform threads, libuv's pool running map batches and the object load, the manifest parse
// workers). At a cold start the parse and the datapath load overlap, and their freed pages
// stayed fragmented across the arenas past malloc_trim. glibc reads this once, at the first
// allocation that needs another arena, so it must be in the environment at exec (mallopt at
// run time is too late). Measured with `node dist/test/bench/agent.js --source=manifests`
// (10,000 Services x 10 endpoints, the same tree, alternating runs): default -> 2 arenas: RSS
// 298-302 -> 224-234 MB, start time unchanged (8.1-9.5 s). 2 -> 1: the second arena, which the
// manifest parse workers fill, still held ~35 MB resident at steady state (the kube source,
// without workers, ~10 MB) that no malloc_trim gave back. With the sources' packed slices
// (load 7-15, alternating runs): manifests RSS 180-181 (2 arenas) -> 147-148 MB (1), kube
// ~158 -> 147-148 MB; manifests start 19.9-21.5 s (2) vs 21.1-24.5 s (1), within this host's
// noise but perhaps ~1-2 s: the parse workers share one malloc lock with the main thread.
export const AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '1' };

/** The environment to start an agent process with: this one's plus AGENT_ENV. */
export function agentEnv(): NodeJS.ProcessEnv {
  return { ...process.env, ...AGENT_ENV };
}
