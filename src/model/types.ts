// Desired state: what model.translate() produces from Kubernetes objects and what the
// reconciler writes into the maps. Plain data only.

import type { Family } from './ip.js';

export type { Family };
export type Protocol = 'TCP' | 'UDP';
export type FrontendType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalIP';
/** internal: traffic from pods on this node (tc); external: traffic arriving on a device (XDP). */
export type Scope = 'external' | 'internal';
/**
 * active: ready. terminating: serving and terminating (used only when no active one exists).
 * draining: neither (not ready, or terminating and not serving) - never chosen for a new flow,
 * but kept so that established flows stay on it while the endpoint exists.
 */
export type BackendState = 'active' | 'terminating' | 'draining';

export interface BackendSpec {
  /** canonical text: IPv4 dotted quad or RFC 5952 IPv6, of the frontend's family */
  addr: string;
  port: number;
  state: BackendState;
  /** chosen for new flows of this frontend (after policy, readiness fallback, topology hints) */
  selectable: boolean;
  /** the endpoint runs on this node */
  local: boolean;
  /** Maglev weight, >= 1 */
  weight: number;
  nodeName?: string;
  zone?: string;
  /** e.g. pod name, for display */
  target?: string;
}

export interface FrontendSpec {
  /** stable identity: service|portName|proto|type|addr:port|scope */
  id: string;
  /** namespace/name */
  service: string;
  portName: string;
  type: FrontendType;
  /** null for NodePort: every node address of the family */
  addr: string | null;
  /** the frontend's and its backends' address family; translate() always sets it, absent = 4 */
  family?: Family;
  port: number;
  proto: Protocol;
  scope: Scope;
  /** shared by the Service's frontends with the same traffic policy; frozen */
  backends: readonly BackendSpec[];
  /** sessionAffinity ClientIP timeout in seconds; 0 = no affinity */
  affinityTimeoutSec: number;
  /** loadBalancerSourceRanges as CIDRs; empty = every source */
  sourceRanges: string[];
  /** eTP/iTP Local: only node-local backends, client source address kept (no SNAT) */
  localOnly: boolean;
  /** Maglev (external) rather than random slots (internal) for new flows */
  maglev: boolean;
}

export interface ServiceSpec {
  /** namespace/name */
  key: string;
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  frontends: FrontendSpec[];
  /** LoadBalancer + eTP Local */
  healthCheckNodePort?: number;
  /** endpoints on this node that are ready (for healthCheckNodePort answers) */
  localReadyEndpoints: number;
  /** non-fatal problems with this Service (unsupported protocol on one port, ...) */
  warnings: string[];
}

export interface NodeInfo {
  name: string;
  /** InternalIP / ExternalIP addresses */
  addresses: string[];
  zone?: string;
  labels: Record<string, string>;
}

export type TranslateResult =
  | { ok: true; service: ServiceSpec }
  /**
   * skipped: why the Service creates no datapath state. invalid: the object itself is wrong
   * (a user error worth a warning), as opposed to a Service xlb deliberately leaves alone.
   */
  | { ok: false; skipped: string; invalid?: boolean };
