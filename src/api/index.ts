// The agent's entry into src/api: what it implements (AgentView) and what it starts.
export type * from './view.js';
export { ViewError } from './view.js';
export { SortedIndex, selectServices } from './sorted.js';
export { readTcpAuth, startApiServer, type ApiServer, type ApiServerOptions, type TcpAuth } from './server.js';
export { HealthCheckServers, HealthTracker, proxyHealth, startHealthServer, type HealthServerOptions } from './health.js';
export { startMetricsServer, XlbMetrics } from './metrics.js';
export type { HttpEndpoint } from './http.js';
