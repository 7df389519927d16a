// An EndpointSlice as the sources keep it: its endpoints packed, four array slots each, instead
// of an object, an addresses array and a targetRef object per endpoint (~160 bytes an endpoint,
// 16 MB at 10,000 Services x 10 endpoints). What varies little between endpoints (the order of
// their keys, the conditions, the zone, the targetRef's kind and namespace) is one shared
// template; the address, the node name and the pod name are the very strings decode() made,
// so the model's BackendSpecs and the reconciler share them. An endpoint that does not fit a
// template (several addresses, hints, a hostname, anything else) is kept as it came.
//
// Readers never see the packing: ClusterStore.slices() unpacks (fresh objects each call, the
// same content, key order included, so JSON.stringify of a stored slice is that of the slice
// it was packed from; toJSON() does it).
import type { V1Endpoint } from '@kubernetes/client-node';
import type { V1EndpointSlice } from './types.js';

interface Template {
  /** the endpoint's keys, in order */
  keys: readonly string[];
  conditions?: Readonly<Record<string, boolean>>;
  condKeys?: readonly string[];
  zone?: string;
  /** the targetRef's keys, in order, and its kind and namespace */
  refKeys?: readonly string[];
  refKind?: string;
  refNs?: string;
  /** what identifies the template (see templateId) */
  id: string;
}

const EP_KEYS = new Set(['addresses', 'conditions', 'nodeName', 'zone', 'targetRef']);
const REF_KEYS = new Set(['kind', 'namespace', 'name']);
const COND_KEYS = new Set(['ready', 'serving', 'terminating']);
/** Templates are never dropped (slices hold their index): past this many, endpoints stay as they came. */
export const TEMPLATES_MAX = 65536;
const templates: Template[] = [];
const templateIndex = new Map<string, number>();
/** Slots per endpoint in PackedEndpoints.data: template (or -1), address (or the endpoint itself), nodeName, pod name. */
const STRIDE = 4;

/** The endpoints of one stored slice. */
export class PackedEndpoints {
  constructor(private readonly data: unknown[]) {}

  get length(): number {
    return this.data.length / STRIDE;
  }

  unpack(): V1Endpoint[] {
    const d = this.data;
    const out: V1Endpoint[] = new Array(d.length / STRIDE);
    for (let i = 0, j = 0; i < d.length; i += STRIDE, j++) {
      const t = d[i] as number;
      out[j] = t < 0 ? (d[i + 1] as V1Endpoint) : endpointOf(templates[t]!, d[i + 1] as string, d[i + 2] as string | undefined, d[i + 3] as string | undefined);
    }
    return out;
  }

  /** Whether this holds the same endpoints as `o`. */
  equals(o: PackedEndpoints): boolean {
    const a = this.data;
    const b = o.data;
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      if (a[i] === b[i]) continue;
      // endpoints kept as they came: by content
      if (i % STRIDE === 1 && a[i - 1] === -1 && JSON.stringify(a[i]) === JSON.stringify(b[i])) continue;
      return false;
    }
    return true;
  }

  toJSON(): V1Endpoint[] {
    return this.unpack();
  }
}

function endpointOf(t: Template, addr: string, nodeName: string | undefined, name: string | undefined): V1Endpoint {
  const ep: Record<string, unknown> = {};
  for (const k of t.keys) {
    if (k === 'addresses') ep.addresses = [addr];
    else if (k === 'conditions') ep.conditions = t.conditions;
    else if (k === 'nodeName') ep.nodeName = nodeName;
    else if (k === 'zone') ep.zone = t.zone;
    else {
      const ref: Record<string, string> = {};
      for (const rk of t.refKeys!) ref[rk] = rk === 'name' ? name! : rk === 'kind' ? t.refKind! : t.refNs!;
      ep.targetRef = ref;
    }
  }
  return ep as unknown as V1Endpoint;
}

const isStr = (v: unknown): v is string => typeof v === 'string';

/** The endpoint's template id, or undefined when it does not fit one. */
function templateId(ep: Record<string, unknown>): string | undefined {
  if (ep === null || typeof ep !== 'object' || Array.isArray(ep)) return undefined;
  const keys = Object.keys(ep);
  let cond = '';
  let refKeys: string[] = [];
  for (const k of keys) {
    const v = ep[k];
    if (!EP_KEYS.has(k)) return undefined;
    if (k === 'addresses') {
      if (!Array.isArray(v) || v.length !== 1 || !isStr(v[0])) return undefined;
    } else if (k === 'conditions') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
      for (const [ck, cv] of Object.entries(v)) {
        if (!COND_KEYS.has(ck) || typeof cv !== 'boolean') return undefined;
        cond += `${ck}=${cv},`;
      }
    } else if (k === 'targetRef') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
      refKeys = Object.keys(v);
      for (const rk of refKeys) if (!REF_KEYS.has(rk) || !isStr((v as Record<string, unknown>)[rk])) return undefined;
    } else if (!isStr(v)) {
      return undefined;
    }
  }
  const ref = ep.targetRef as Record<string, string> | undefined;
  return JSON.stringify([keys, cond, ep.zone ?? null, refKeys, ref?.kind ?? null, ref?.namespace ?? null]);
}

function templateFor(ep: Record<string, unknown>, id: string): number | undefined {
  const have = templateIndex.get(id);
  if (have !== undefined) return have;
  if (templates.length >= TEMPLATES_MAX) return undefined;
  const ref = ep.targetRef as Record<string, string> | undefined;
  const t: Template = { keys: Object.keys(ep), id };
  if (ep.conditions) {
    t.conditions = Object.freeze({ ...(ep.conditions as Record<string, boolean>) });
    t.condKeys = Object.keys(t.conditions);
  }
  if (isStr(ep.zone)) t.zone = ep.zone;
  if (ref) {
    t.refKeys = Object.keys(ref);
    if (ref.kind !== undefined) t.refKind = ref.kind;
    if (ref.namespace !== undefined) t.refNs = ref.namespace;
  }
  templates.push(t);
  templateIndex.set(id, templates.length - 1);
  return templates.length - 1;
}

/** Whether the endpoint fits template t exactly (the common case: the previous endpoint's template). */
function fits(t: Template, ep: Record<string, unknown>): boolean {
  if (ep === null || typeof ep !== 'object') return false;
  let n = 0;
  for (const k in ep) {
    if (t.keys[n++] !== k) return false;
    const v = ep[k];
    if (k === 'addresses') {
      if (!Array.isArray(v) || v.length !== 1 || !isStr(v[0])) return false;
    } else if (k === 'conditions') {
      if (v === null || typeof v !== 'object') return false;
      let c = 0;
      for (const ck in v as object) {
        if (t.condKeys![c++] !== ck || (v as Record<string, unknown>)[ck] !== t.conditions![ck]) return false;
      }
      if (c !== t.condKeys!.length) return false;
    } else if (k === 'nodeName') {
      if (!isStr(v)) return false;
    } else if (k === 'zone') {
      if (v !== t.zone) return false;
    } else if (k === 'targetRef') {
      if (v === null || typeof v !== 'object') return false;
      const r = v as Record<string, unknown>;
      let c = 0;
      for (const rk in r) if (t.refKeys![c++] !== rk || !isStr(r[rk])) return false;
      if (c !== t.refKeys!.length || r.kind !== t.refKind || r.namespace !== t.refNs) return false;
    } else {
      return false;
    }
  }
  return n === t.keys.length;
}

export function packEndpoints(eps: readonly V1Endpoint[]): PackedEndpoints {
  const data: unknown[] = new Array(eps.length * STRIDE);
  let last: number | undefined;
  for (let i = 0; i < eps.length; i++) {
    const ep = eps[i] as unknown as Record<string, unknown>;
    let t: number | undefined;
    if (last !== undefined && fits(templates[last]!, ep)) t = last;
    else {
      const id = templateId(ep);
      t = id === undefined ? undefined : templateFor(ep, id);
      if (t !== undefined) last = t;
    }
    const o = i * STRIDE;
    if (t === undefined) {
      data[o] = -1;
      data[o + 1] = ep;
      continue;
    }
    data[o] = t;
    data[o + 1] = (ep.addresses as string[] | undefined)?.[0];
    data[o + 2] = ep.nodeName;
    data[o + 3] = (ep.targetRef as { name?: string } | undefined)?.name;
  }
  return new PackedEndpoints(data);
}

/**
 * The slice as stored: a copy whose endpoints are packed (same key order). A slice already
 * packed, or whose endpoints are not a list, is returned as it is.
 */
export function packSlice(s: V1EndpointSlice): V1EndpointSlice {
  const eps = (s as { endpoints?: unknown }).endpoints;
  if (!Array.isArray(eps)) return s;
  const out = { ...s } as Record<string, unknown>;
  out.endpoints = packEndpoints(eps as V1Endpoint[]);
  return out as unknown as V1EndpointSlice;
}

/** The slice as readers see it: fresh plain objects. */
export function unpackSlice(s: V1EndpointSlice): V1EndpointSlice {
  const eps = (s as { endpoints?: unknown }).endpoints;
  if (!(eps instanceof PackedEndpoints)) return s;
  const out = { ...s } as Record<string, unknown>;
  out.endpoints = eps.unpack();
  return out as unknown as V1EndpointSlice;
}

/** Same content, for two slices either of which may be packed. */
export function sameSliceContent(a: V1EndpointSlice, b: V1EndpointSlice): boolean {
  if (a === b) return true;
  const ea = (a as { endpoints?: unknown }).endpoints;
  const eb = (b as { endpoints?: unknown }).endpoints;
  if (ea instanceof PackedEndpoints && eb instanceof PackedEndpoints) {
    if (!ea.equals(eb)) return false;
    // everything else by content; the endpoints are equal
    return JSON.stringify({ ...a, endpoints: 0 }) === JSON.stringify({ ...b, endpoints: 0 });
  }
  return JSON.stringify(a) === JSON.stringify(b);
}
