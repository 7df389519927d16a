// The model's public surface: pure functions from Kubernetes objects to desired state.
export type * from './types.js';
export { translate, frontendId, DEFAULT_AFFINITY_TIMEOUT_SEC, type TranslateOptions } from './translate.js';
export { nodeInfo, nodePortAddresses, ZONE_LABEL } from './node.js';
export { validateService } from './validate.js';
export { maglevTable, maglevPermutation, isPrime, MAGLEV_DEFAULT_M, type MaglevBackend } from './maglev.js';
export { allocate, wantsAddress, type Allocation, type Assignment, type LoadBalancerIPPool } from './ipam.js';
