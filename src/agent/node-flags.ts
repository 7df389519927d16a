// V8 flags the agent process runs with. One list for every way it starts: the image's
// ENTRYPOINT (deploy/Containerfile) and the `xlb` shebang (src/cli/main.ts) spell it out, a
// unit test holds them to this list, and the tests and the agent bench start agents with it.
//
// --max-semi-space-size=2 (MB): a full sync of 10,000 Services allocates mostly short-lived
// objects, and V8's default 16 MB semi-spaces let the young generation take ~30 MB more RSS
// for them. Measured with test/bench/agent.ts (10,000 Services x 10 endpoints): RSS after
// cold programming 224 -> 192 MB, cold programming time and change latency unchanged.
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
