// Loading and checking deploy/: shared by the deploy*.test.ts files (not a test itself).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import * as k8s from '@kubernetes/client-node';
import { ConfigMap, Namespace, ServiceAccount } from 'kubernetes-models/v1';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';

export type KObj = Record<string, any>;

/** The repository root, from dist/test/unit/ or test/unit/. */
export const ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../' : '../../', import.meta.url));
export const DEPLOY = join(ROOT, 'deploy');

export interface Doc {
  file: string; // relative to deploy/
  obj: KObj;
}

export function yamlFiles(dir = DEPLOY): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(name)) out.push(p);
  }
  return out;
}

/** Every YAML document of a file; throws with the file name on a syntax error. */
export function loadYaml(path: string): KObj[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'));
  return docs.map((d) => {
    if (d.errors.length) throw new Error(`${relative(ROOT, path)}: ${d.errors[0]!.message}`);
    return d.toJS() as KObj;
  }).filter((o) => o !== null && o !== undefined);
}

/** The Kubernetes objects that `kubectl apply -k deploy/` applies, from the kustomization's list. */
export function baseObjects(): Doc[] {
  const kust = loadYaml(join(DEPLOY, 'kustomization.yaml'))[0]!;
  return (kust.resources as string[]).flatMap((f) => loadYaml(join(DEPLOY, f)).map((obj) => ({ file: f, obj })));
}

export function find(docs: Doc[], kind: string, name?: string): KObj {
  const d = docs.find((x) => x.obj.kind === kind && (name === undefined || x.obj.metadata?.name === name));
  if (!d) throw new Error(`no ${kind}${name ? ` ${name}` : ''} in deploy/`);
  return d.obj;
}

interface Validating {
  validate(): void;
}

const MODELS: Record<string, new (data: any) => Validating> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'apps/v1/DaemonSet': DaemonSet,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
};

/**
 * Validates against the Kubernetes OpenAPI schema (kubernetes-models' ajv validators): types,
 * enums, required fields. Returns the error text, or '' when valid.
 */
export function schemaErrors(obj: KObj): string {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!Model) return `no schema for ${obj.apiVersion} ${obj.kind}`;
  try {
    new Model(obj).validate();
    return '';
  } catch (e) {
    return (e as Error).message;
  }
}

interface Attr {
  baseName: string;
  type: string;
}

/**
 * Fields the API does not know (a misspelt `mountPropogation` passes the OpenAPI schema,
 * which allows extra properties, but `kubectl apply` rejects it). Walks the object with the
 * attribute maps of @kubernetes/client-node's generated models.
 */
export function unknownFields(value: unknown, type: string, path = ''): string[] {
  if (value === null || typeof value !== 'object') return [];
  let m: RegExpExecArray | null;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, m![1]!, `${path}[${i}]`)) : [];
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    return Object.entries(value).flatMap(([k, v]) => unknownFields(v, m![1]!, `${path}.${k}`));
  }
  const model = (k8s as unknown as Record<string, { getAttributeTypeMap?: () => Attr[] } | undefined>)[type];
  if (!model?.getAttributeTypeMap || Array.isArray(value)) return [];
  const attrs = model.getAttributeTypeMap();
  return Object.entries(value).flatMap(([k, v]) => {
    const a = attrs.find((x) => x.baseName === k);
    return a ? unknownFields(v, a.type, `${path}.${k}`) : [`${path}.${k}`];
  });
}

/** Applies an RFC 6902 patch (test and replace, the ops deploy/ uses) to a copy. */
export function applyJsonPatch(obj: KObj, ops: Array<{ op: string; path: string; value?: unknown }>): KObj {
  const out = structuredClone(obj);
  for (const o of ops) {
    const keys = o.path.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = keys.pop()!;
    const parent = keys.reduce<any>((acc, k) => (acc == null ? undefined : acc[k]), out);
    if (parent == null || !(last in parent)) throw new Error(`patch path ${o.path} does not exist`);
    if (o.op === 'test') {
      if (JSON.stringify(parent[last]) !== JSON.stringify(o.value)) throw new Error(`patch test failed at ${o.path}: ${JSON.stringify(parent[last])} != ${JSON.stringify(o.value)}`);
    } else if (o.op === 'replace') parent[last] = o.value;
    else throw new Error(`unsupported patch op ${o.op}`);
  }
  return out;
}
