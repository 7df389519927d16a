// A Service's IP families: spec.ipFamilies, spec.ipFamilyPolicy and spec.clusterIPs, checked
// with the rules the API server applies (ValidateServiceClusterIPsRelatedFields and the
// registry's initIPFamilyFields), and resolved to the families the Service is served in.
// Objects from a real API server arrive with all three filled in; manifests may leave them out.
import type { V1ServiceSpec } from '@kubernetes/client-node';
import { FAMILY_NAME, ipFamily, type Family } from './ip.js';

export const IP_FAMILY_POLICIES = ['SingleStack', 'PreferDualStack', 'RequireDualStack'] as const;
export type IPFamilyPolicy = (typeof IP_FAMILY_POLICIES)[number];

const FAMILY_OF: Record<string, Family> = { IPv4: 4, IPv6: 6 };

/** spec.clusterIPs, else [spec.clusterIP], without empty entries. */
export function clusterIPsOf(spec: V1ServiceSpec): string[] {
  const ips = spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [];
  return ips.filter((a) => a !== '');
}

function ipFamiliesProblem(spec: V1ServiceSpec): string | null {
  const fams = spec.ipFamilies;
  if (fams === undefined || fams === null) return null;
  if (!Array.isArray(fams)) return 'spec.ipFamilies is not a list';
  const seen = new Set<string>();
  for (const [i, f] of fams.entries()) {
    if (!(f in FAMILY_OF)) return `spec.ipFamilies[${i}] ${JSON.stringify(f)} is not IPv4 or IPv6`;
    if (seen.has(f)) return `spec.ipFamilies[${i}] ${f} is listed twice`;
    seen.add(f);
  }
  return null;
}

function clusterIPsProblem(spec: V1ServiceSpec, ips: string[]): string | null {
  if (spec.clusterIP && spec.clusterIPs?.length && spec.clusterIPs[0] !== spec.clusterIP) {
    return `spec.clusterIPs[0] ${JSON.stringify(spec.clusterIPs[0])} must match spec.clusterIP ${JSON.stringify(spec.clusterIP)}`;
  }
  if (ips.length > 2) return 'spec.clusterIPs may hold at most 2 addresses (one per IP family)';
  if (ips.includes('None')) return ips.length > 1 || ips[0] !== 'None' ? "spec.clusterIPs: 'None' must be the first and only value" : null;
  if (ips.length === 2 && ipFamily(ips[0]!) === ipFamily(ips[1]!)) {
    return 'spec.clusterIPs may hold no more than one address of each IP family';
  }
  for (const [i, ip] of ips.entries()) {
    const want = spec.ipFamilies?.[i];
    const got = ipFamily(ip);
    if (want && got && FAMILY_OF[want] !== got) {
      return `spec.clusterIPs[${i}] ${ip} is ${FAMILY_NAME[got]}, but spec.ipFamilies[${i}] is ${want}`;
    }
  }
  return null;
}

/** Why ipFamilies/ipFamilyPolicy/clusterIPs are inconsistent; null when they are not (addresses are checked elsewhere). */
export function familiesProblem(spec: V1ServiceSpec): string | null {
  const policy = spec.ipFamilyPolicy;
  if (policy !== undefined && policy !== null && !(IP_FAMILY_POLICIES as readonly string[]).includes(policy)) {
    return `spec.ipFamilyPolicy ${JSON.stringify(policy)} is not one of ${IP_FAMILY_POLICIES.join(', ')}`;
  }
  const ips = clusterIPsOf(spec);
  const bad = ipFamiliesProblem(spec) ?? clusterIPsProblem(spec, ips);
  if (bad) return bad;
  if (policy === 'SingleStack' && ((spec.ipFamilies?.length ?? 0) > 1 || ips.length > 1)) {
    return `spec.ipFamilyPolicy must be RequireDualStack or PreferDualStack when ${ips.length > 1 ? 'spec.clusterIPs holds' : 'spec.ipFamilies lists'} two IP families`;
  }
  return null;
}

/** The policy as the API server defaults it: two families given -> RequireDualStack, else SingleStack. */
export function familyPolicy(spec: V1ServiceSpec): IPFamilyPolicy {
  if (spec.ipFamilyPolicy && (IP_FAMILY_POLICIES as readonly string[]).includes(spec.ipFamilyPolicy)) return spec.ipFamilyPolicy as IPFamilyPolicy;
  return (spec.ipFamilies?.length ?? 0) > 1 || clusterIPsOf(spec).length > 1 ? 'RequireDualStack' : 'SingleStack';
}

/**
 * The families a (valid) Service is served in, primary first: spec.ipFamilies as the API server
 * wrote them, then the families of its clusterIPs. RequireDualStack always has both; so has
 * PreferDualStack when ipFamilies is left out (a manifest: no API server to fill it in).
 * SingleStack keeps one. Nothing given: IPv4.
 */
export function serviceFamilies(spec: V1ServiceSpec): Family[] {
  const out: Family[] = [];
  const add = (f: Family | null | undefined) => { if (f && !out.includes(f)) out.push(f); };
  const listed = Array.isArray(spec.ipFamilies) ? spec.ipFamilies : [];
  for (const f of listed) add(FAMILY_OF[f]);
  for (const ip of clusterIPsOf(spec)) add(ipFamily(ip));
  if (out.length === 0) add(4);
  const policy = familyPolicy(spec);
  if (policy === 'RequireDualStack' || (policy === 'PreferDualStack' && listed.length === 0)) add(out[0] === 4 ? 6 : 4);
  return policy === 'SingleStack' ? out.slice(0, 1) : out;
}
