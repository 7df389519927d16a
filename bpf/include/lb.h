/* Service lookup and backend choice for new flows: frontend match (exact, then NodePort
 * wildcard on node addresses), source ranges, sessionAffinity, Maglev or random slot; and the
 * backends they choose (lb_backend). Both families: the packet's addresses are xlb_addrs. */
#ifndef XLB_INC_LB_H
#define XLB_INC_LB_H

#include "addr.h"
#include "clock.h"
#include "maps.h"
#include "parse.h"

/* A backend that exists: ids index an ARRAY, where "absent" is all zero. */
static __always_inline struct xlb_backend *lb_backend(__u32 id)
{
	struct xlb_backend *be = bpf_map_lookup_elem(&backends, &id);

	if (!be || addr_zero(&be->addr))
		return 0;
	return be;
}

static __always_inline int lb_nodeport_range(__be16 port, const struct xlb_config *cfg)
{
	__u16 h = bpf_ntohs(port);

	return h >= cfg->nodeport_min && h <= cfg->nodeport_max;
}

/* The NodePort entry for k's port and protocol: the all-zero address for IPv4, all ones for
 * IPv6 (both families share the map; src/datapath/codecs.ts encodeFrontendAddr), so a
 * dual-stack NodePort reaches each family's own backends. */
static __always_inline struct xlb_svc_value *lb_nodeport_entry(struct xlb_svc_key *k, int v6)
{
	__builtin_memset(&k->addr, v6 ? 0xff : 0, sizeof(k->addr));
	return bpf_map_lookup_elem(&services, k);
}

/* The NodePort entry, for a port in the NodePort range. */
static __always_inline struct xlb_svc_value *lb_lookup_nodeport(struct xlb_svc_key *k,
								const struct xlb_config *cfg, int v6)
{
	return lb_nodeport_range(k->port, cfg) ? lb_nodeport_entry(k, v6) : 0;
}

static __always_inline struct xlb_svc_value *lb_lookup(const struct xlb_pkt *p, __u8 scope,
						       const struct xlb_config *cfg)
{
	struct xlb_svc_key k = { .addr = p->daddr, .port = p->dport, .proto = p->proto,
				 .scope = scope };
	struct xlb_svc_value *v;
	struct xlb_node_addr_value *na;

	v = bpf_map_lookup_elem(&services, &k);
	if (v)
		return v;
	/* the port range first: a packet that is nothing of ours (most a node passes) then costs
	 * no node_addrs lookup unless its port is in the NodePort range */
	if (!lb_nodeport_range(k.port, cfg))
		return 0;
	na = bpf_map_lookup_elem(&node_addrs, &k.addr);
	if (!na || (na->flags & XLB_NODE_ADDR_F_BROADCAST))
		return 0;
	return lb_nodeport_entry(&k, p->v6);
}

static __always_inline int lb_src_allowed(const struct xlb_pkt *p, const struct xlb_svc_value *svc)
{
	struct xlb_src_range_key k = { .prefixlen = 32 + 128, .svc_id = svc->svc_id,
				       .addr = p->saddr };

	if (!(svc->flags & XLB_SVC_F_SRC_RANGES))
		return 1;
	return bpf_map_lookup_elem(&src_ranges, &k) != 0;
}

/* murmur3's finaliser: cheap, well mixed; src/datapath/codecs.ts flowHash() mirrors it. */
static __always_inline __u32 lb_mix(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

static __always_inline __u32 lb_flow_hash(const struct xlb_pkt *p, __u32 seed)
{
	__u32 h = seed;

	h = lb_mix(h ^ addr_fold(&p->saddr));
	h = lb_mix(h ^ addr_fold(&p->daddr));
	h = lb_mix(h ^ ((__u32)p->sport << 16 | p->dport));
	return lb_mix(h ^ p->proto);
}

static __always_inline __u32 lb_pick_maglev(const struct xlb_pkt *p, const struct xlb_svc_value *svc,
					     const struct xlb_config *cfg)
{
	void *table = bpf_map_lookup_elem(&maglev, &svc->svc_id);
	__u32 idx, *id;

	if (!table || !cfg->maglev_m)
		return 0;
	idx = lb_flow_hash(p, cfg->hash_seed) % cfg->maglev_m;
	id = bpf_map_lookup_elem(table, &idx);
	return id ? *id : 0;
}

static __always_inline __u32 lb_pick_slot(const struct xlb_svc_value *svc)
{
	struct xlb_slot_key k = { .svc_id = svc->svc_id, .slot = bpf_get_prandom_u32() % svc->count };
	__u32 *id = bpf_map_lookup_elem(&slots, &k);

	return id ? *id : 0;
}

/* An affinity entry still fresh and pointing at a backend that may take new flows. */
static __always_inline __u32 lb_affinity_get(const struct xlb_affinity_key *k,
					     const struct xlb_svc_value *svc, __u64 now)
{
	struct xlb_affinity_value *a = bpf_map_lookup_elem(&affinity, k);
	struct xlb_backend *be;

	if (!a || (now > a->last_used && now - a->last_used > (__u64)svc->affinity_timeout * NSEC))
		return 0;
	be = lb_backend(a->backend_id);
	if (!be || be->state == XLB_BE_DRAINING)
		return 0;
	return a->backend_id;
}

/* backend_id for a new flow (0: none usable), remembered for the affinity client in ak (its
 * svc_id and client filled in). count > 0 is checked by the caller. */
static __always_inline __u32 lb_select_as(const struct xlb_pkt *p, const struct xlb_svc_value *svc,
					   const struct xlb_config *cfg, const struct xlb_affinity_key *ak,
					   __u64 now)
{
	struct xlb_affinity_value av = { .last_used = now };
	__u32 id;

	if (svc->affinity_timeout) {
		id = lb_affinity_get(ak, svc, now);
		if (id)
			goto remember;
	}
	id = (svc->flags & XLB_SVC_F_MAGLEV) ? lb_pick_maglev(p, svc, cfg) : lb_pick_slot(svc);
	if (!id || !svc->affinity_timeout)
		return id;
remember:
	av.backend_id = id;
	bpf_map_update_elem(&affinity, ak, &av, BPF_ANY);
	return id;
}

/* The packet path: affinity by the client's address. */
static __always_inline __u32 lb_select(const struct xlb_pkt *p, const struct xlb_svc_value *svc,
				       const struct xlb_config *cfg, __u64 now)
{
	struct xlb_affinity_key ak = { .svc_id = svc->svc_id, .client = p->saddr };

	return lb_select_as(p, svc, cfg, &ak, now);
}

static __always_inline void lb_account(__u32 svc_id, __u32 bytes, int new_flow)
{
	struct xlb_svc_stats *s = bpf_map_lookup_elem(&stats, &svc_id);

	if (!s)
		return;
	s->packets += 1;
	s->bytes += bytes;
	s->new_flows += new_flow;
}

#endif
