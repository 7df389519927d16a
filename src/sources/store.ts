// The cache both sources fill: Services by key, EndpointSlices indexed by the Service they
// belong to, and the own Node. Every mutation reports which agent-visible keys changed, so a
// source can emit exactly one 'change' per affected Service or Node.
import {
  SERVICE_NAME_LABEL,
  objectKey,
  type ChangeKind,
  type ClusterView,
  type V1EndpointSlice,
  type V1Node,
  type V1Service,
} from './types.js';
import { packSlice, sameSliceContent, unpackSlice } from './packed.js';

export type Emit = (kind: ChangeKind, key: string) => void;

/**
 * How a store tells an update from a no-op. The API server bumps resourceVersion on every
 * write, so comparing it is exact and cheap; hand-written manifests carry no meaningful
 * resourceVersion, so their content is compared.
 */
export type Sameness = 'resourceVersion' | 'content';

function sameVersion(a: unknown, b: unknown): boolean {
  const ra = (a as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
  const rb = (b as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
  if (ra && rb) return ra === rb;
  return sameContent(a, b);
}

function sameContent(a: unknown, b: unknown): boolean {
  // the same object (a manifests file that did not change hands its objects again)
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

function sameSliceVersion(a: V1EndpointSlice, b: V1EndpointSlice): boolean {
  const ra = a.metadata?.resourceVersion;
  const rb = b.metadata?.resourceVersion;
  if (ra && rb) return ra === rb;
  return sameSliceContent(a, b);
}

export function sliceServiceKey(s: V1EndpointSlice): string | undefined {
  const svc = s.metadata?.labels?.[SERVICE_NAME_LABEL];
  return svc ? objectKey({ namespace: s.metadata?.namespace, name: svc }) : undefined;
}

export class ClusterStore implements ClusterView {
  private readonly svcs = new Map<string, V1Service>();
  private readonly sliceByKey = new Map<string, V1EndpointSlice>();
  /** a Service's slices: one or a few, so an array (a Map each cost ~400 bytes) */
  private readonly slicesBySvc = new Map<string, V1EndpointSlice[]>();
  private ownNode: V1Node | undefined;
  /** every Node a full list gave (manifests: the directory's), for announce eligibility */
  private nodeList: V1Node[] = [];
  private readonly same: (a: unknown, b: unknown) => boolean;
  private readonly sameSlice: (a: V1EndpointSlice, b: V1EndpointSlice) => boolean;

  constructor(
    readonly nodeName: string,
    private readonly emit: Emit,
    sameness: Sameness = 'resourceVersion',
  ) {
    this.same = sameness === 'content' ? sameContent : sameVersion;
    this.sameSlice = sameness === 'content' ? sameSliceContent : sameSliceVersion;
  }

  services(): V1Service[] {
    return [...this.svcs.values()];
  }
  service(key: string): V1Service | undefined {
    return this.svcs.get(key);
  }
  /** Fresh objects each call: the store keeps the endpoints packed (packed.ts). */
  slices(serviceKey: string): V1EndpointSlice[] {
    return (this.slicesBySvc.get(serviceKey) ?? []).map(unpackSlice);
  }
  node(): V1Node | undefined {
    return this.ownNode;
  }

  /** Every Node the last full list held. */
  nodes(): V1Node[] {
    return this.nodeList;
  }
  serviceKeys(): string[] {
    return [...this.svcs.keys()];
  }
  sliceKeys(): string[] {
    return [...this.sliceByKey.keys()];
  }

  /** `derived`: the object changed though its resourceVersion did not (a source-computed status). */
  upsertService(s: V1Service, derived = false): void {
    const key = objectKey(s.metadata);
    const old = this.svcs.get(key);
    if (old && (derived ? sameContent(old, s) : this.same(old, s))) return;
    this.svcs.set(key, s);
    this.emit('service', key);
  }

  deleteService(key: string): void {
    if (this.svcs.delete(key)) this.emit('service', key);
  }

  /** `s` is kept with its endpoints packed (a copy; packSlice() of it beforehand is shared as is). */
  upsertSlice(given: V1EndpointSlice): void {
    const s = packSlice(given);
    const key = objectKey(s.metadata);
    const old = this.sliceByKey.get(key);
    if (old && this.sameSlice(old, s)) return;
    const oldSvc = old && sliceServiceKey(old);
    const newSvc = sliceServiceKey(s);
    if (oldSvc && oldSvc !== newSvc) this.unindex(oldSvc, key);
    this.sliceByKey.set(key, s);
    if (newSvc) this.index(newSvc, key, s);
    if (oldSvc && oldSvc !== newSvc) this.emit('slices', oldSvc);
    if (newSvc) this.emit('slices', newSvc);
  }

  deleteSlice(key: string): void {
    const old = this.sliceByKey.get(key);
    if (!old) return;
    this.sliceByKey.delete(key);
    const svc = sliceServiceKey(old);
    if (svc) {
      this.unindex(svc, key);
      this.emit('slices', svc);
    }
  }

  setNode(n: V1Node | undefined): void {
    if (n && n.metadata?.name !== this.nodeName) return;
    if (!n && !this.ownNode) return;
    if (n && this.ownNode && this.same(this.ownNode, n)) return;
    this.ownNode = n;
    this.emit('node', this.nodeName);
  }

  /** Make the Services exactly `items`: what is missing is deleted (a relist after a gap). */
  replaceServices(items: V1Service[]): void {
    const keep = new Set(items.map((s) => objectKey(s.metadata)));
    for (const key of [...this.svcs.keys()]) if (!keep.has(key)) this.deleteService(key);
    for (const s of items) this.upsertService(s);
  }

  replaceSlices(items: V1EndpointSlice[]): void {
    const keep = new Set(items.map((s) => objectKey(s.metadata)));
    for (const key of [...this.sliceByKey.keys()]) if (!keep.has(key)) this.deleteSlice(key);
    for (const s of items) this.upsertSlice(s);
  }

  replaceNodes(items: V1Node[]): void {
    this.nodeList = items;
    this.setNode(items.find((n) => n.metadata?.name === this.nodeName));
  }

  private index(svc: string, key: string, s: V1EndpointSlice): void {
    const m = this.slicesBySvc.get(svc) ?? [];
    const i = m.findIndex((x) => objectKey(x.metadata) === key);
    if (i >= 0) m[i] = s; else m.push(s);
    this.slicesBySvc.set(svc, m);
  }

  private unindex(svc: string, key: string): void {
    const m = this.slicesBySvc.get(svc)?.filter((x) => objectKey(x.metadata) !== key);
    if (m?.length) this.slicesBySvc.set(svc, m); else this.slicesBySvc.delete(svc);
  }
}
