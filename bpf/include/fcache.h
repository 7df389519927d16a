/* The per-CPU flow cache (struct xlb_flow_cache_entry and the flow_cache map in maps.h): the
 * rewrite an established flow's packets get, kept in a direct-mapped slot of this CPU's array
 * so the hit path reads one slot instead of hashing into ct. ct stays the state: an entry
 * lives FC_LIFETIME_NS, is made only for flows whose state packets without SYN/FIN/RST cannot
 * change, and dies with config.flow_cache_gen. Using an entry is flow_cached() in flow.h. */
#ifndef XLB_INC_FCACHE_H
#define XLB_INC_FCACHE_H

#include <linux/in.h>
#include "addr.h"
#include "clock.h"
#include "ctx.h"
#include "csum.h"
#include "ct.h"
#include "maps.h"
#include "parse.h"

#define FC_SRC 1
#define FC_DST 2
#define FC_LIFETIME_NS (NSEC / 10)

/* Packets whose ct handling is only "translate and count": no state change, no fragment
 * bookkeeping. A SYN, FIN or RST always takes the ct path, as does IPv6 UDP without a
 * checksum (dropped there). */
static __always_inline int fc_cacheable(const struct xlb_pkt *p, const struct xlb_config *cfg)
{
	return cfg->flow_cache_gen && p->frag == FRAG_NONE && !p->udp0 &&
	       (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) &&
	       !(p->tcp_flags & (TCPF_SYN | TCPF_FIN | TCPF_RST));
}

/* An IPv6 packet's addresses as its header holds them, source then destination, in 8-byte
 * halves (unaligned packet loads: xlb_pkt's copies sit at 4-aligned stack offsets, which the
 * verifier lets a program read only 4 bytes at a time), so the hit path folds and compares
 * them with half the loads. Read before any rewrite; NULL only if the header is not there. */
static __always_inline const addr_half *fc_addrs6(const struct xlb_ctx *c)
{
	return ctx_ptr(c, ETH_HLEN + IP6_SADDR_OFF, 2 * sizeof(struct xlb_addr));
}

/* addr_fold of an IPv6 address from its halves. */
static __always_inline __u32 fc_fold6(addr_half x, addr_half y)
{
	x ^= y;
	return (__u32)x ^ (__u32)(x >> 32) ^ bpf_htonl(0xffff);
}

/* This CPU's slot for the packet's tuple (before any rewrite). An IPv4 packet's addresses are
 * v4-mapped: the last word alone is an address's fold (addr_fold). */
static __always_inline struct xlb_flow_cache_entry *fc_slot(const struct xlb_ctx *c,
							    const struct xlb_pkt *p,
							    const struct xlb_config *cfg)
{
	__u32 h, fs = p->saddr.w[3], fd = p->daddr.w[3];
	__u32 idx;

	if (p->v6) {
		const addr_half *a = fc_addrs6(c);

		if (!a)
			return 0;
		fs = fc_fold6(a[0], a[1]);
		fd = fc_fold6(a[2], a[3]);
	}
	/* two multiplies, not lb_mix: a slot index needs spread, not a flow hash's strength */
	h = (fs * 0x9e3779b1) ^ fd;
	h = (h ^ ((__u32)p->sport << 16 | p->dport) ^ p->proto ^ cfg->hash_seed) * 0x85ebca6b;
	idx = (h ^ (h >> 15)) & cfg->flow_cache_mask;
	return bpf_map_lookup_elem(&flow_cache, &idx);
}

/* Whether the packet's addresses are the entry key's, an entry of the packet's family (e->v6,
 * checked first): an IPv4 entry's addresses are v4-mapped, so their last words tell; IPv6
 * compares the header's halves with the key's (at offset 0 of the 8-aligned entry). */
static __always_inline int fc_addrs_eq(const struct xlb_ctx *c, const struct xlb_pkt *p,
				       const struct xlb_ct_key *k)
{
	const addr_half *a, *b = (const addr_half *)k;

	if (!p->v6)
		return p->saddr.w[3] == k->saddr.w[3] && p->daddr.w[3] == k->daddr.w[3];
	a = fc_addrs6(c);
	return a && !((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]));
}

/* The packet's entry if it is of this tuple, of the current generation and fresh. */
static __always_inline struct xlb_flow_cache_entry *fc_find(const struct xlb_ctx *c,
							    const struct xlb_pkt *p,
							    const struct xlb_config *cfg)
{
	struct xlb_flow_cache_entry *e = fc_slot(c, p, cfg);

	if (!e || e->gen != cfg->flow_cache_gen || e->v6 != p->v6 || !fc_addrs_eq(c, p, &e->key) ||
	    e->key.sport != p->sport || e->key.dport != p->dport || e->key.proto != p->proto ||
	    xlb_now() > e->expires)
		return 0;
	return e;
}

/* Start an entry from the ct key; fc_set_fwd or fc_set_reply completes it. Only ct states
 * that a packet without SYN/FIN/RST keeps, with timeouts longer than the entry lives. */
static __always_inline struct xlb_flow_cache_entry *
fc_begin(struct xlb_flow_cache_entry *e, const struct xlb_ct_key *k, const struct xlb_ct_value *v,
	 const struct xlb_pkt *p, const struct xlb_config *cfg, __u64 now)
{
	if (!e || (v->state != XLB_CT_ESTABLISHED && v->state != XLB_CT_UDP &&
		   v->state != XLB_CT_UDP_NEW) ||
	    ct_timeout(cfg, v->state) <= FC_LIFETIME_NS)
		return 0;
	e->key = *k;
	e->v6 = p->v6;
	e->svc_id = v->svc_id;
	e->backend_id = 0;
	e->rewrite = 0;
	e->gen = cfg->flow_cache_gen;
	e->expires = now + FC_LIFETIME_NS;
	return e;
}

/* The checksum changes of the entry's rewrite (csum.h), folded: a packet the entry serves
 * carries the key's addresses and ports, so they are the same for every one of them, and a
 * folded sum moves a checksum as the unfolded one does (nat_xdp_rewrite applies them). */
static __always_inline void fc_sums(struct xlb_flow_cache_entry *e, int v6)
{
	__u32 d3 = 0, d4 = 0;

	if (e->rewrite & FC_DST) {
		d3 += csum_delta_addr(v6, &e->key.daddr, &e->dst);
		d4 += csum_delta2(e->key.dport, e->dport);
	}
	if (e->rewrite & FC_SRC) {
		d3 += csum_delta_addr(v6, &e->key.saddr, &e->src);
		d4 += csum_delta2(e->key.sport, e->sport);
	}
	e->sum_l3 = csum_fold32(d3);
	e->sum_l4 = csum_fold32(d3 + d4);
}

/* Forward: destination to the backend (checked again on every hit), source to the SNAT
 * address if the flow has one (flags: the ct entry's before this packet). */
static __always_inline void fc_set_fwd(struct xlb_flow_cache_entry *e, const struct xlb_ct_value *v,
				       const struct xlb_backend *be, __u8 flags, int verdict,
				       int v6)
{
	e->backend_id = v->backend_id;
	e->dst = be->addr;
	e->dport = be->port;
	e->rewrite = FC_DST;
	if (flags & XLB_CT_F_SNAT) {
		e->src = v->nat_addr;
		e->sport = v->nat_port;
		e->rewrite |= FC_SRC;
	}
	e->verdict = verdict;
	fc_sums(e, v6);
}

/* Reply: source back to the frontend, destination back to the client if SNATed. */
static __always_inline void fc_set_reply(struct xlb_flow_cache_entry *e, const struct xlb_ct_value *v,
					 int verdict, int v6)
{
	e->src = v->nat_addr;
	e->sport = v->nat_port;
	e->rewrite = FC_SRC;
	if (v->flags & XLB_CT_F_SNAT) {
		e->dst = v->orig_addr;
		e->dport = v->orig_port;
		e->rewrite |= FC_DST;
	}
	e->verdict = verdict;
	fc_sums(e, v6);
}

#endif
