/* ICMP and ICMPv6 errors (destination unreachable incl. fragmentation needed, Packet Too
 * Big, time exceeded) about a translated flow: the quoted header is translated the way the
 * opposite direction of the flow is, and the outer addresses follow, so the original sender sees an error about the packet
 * it actually sent (PMTU discovery keeps working through the NAT). */
#ifndef XLB_INC_ICMPERR_H
#define XLB_INC_ICMPERR_H

#include "addr.h"
#include "ctx.h"
#include "lb.h"
#include "maps.h"
#include "nat.h"
#include "parse.h"

struct xlb_icmp_res {
	__u32 backend_local;          /* the error now goes to a backend on this node */
	__u32 snat;                   /* the error now goes to a client through SNAT */
};

/* Errors about a packet: IPv4 destination unreachable (fragmentation needed included) and
 * time exceeded; ICMPv6 destination unreachable, Packet Too Big and time exceeded. */
static __always_inline int icmp_is_error(const struct xlb_pkt *p)
{
	if (p->v6)
		return p->icmp_type == ICMPV6_DEST_UNREACH || p->icmp_type == ICMPV6_PKT_TOOBIG ||
		       p->icmp_type == ICMPV6_TIME_EXCEED;
	return p->icmp_type == ICMP_DEST_UNREACH || p->icmp_type == ICMP_TIME_EXCEEDED;
}

/* The n bytes at off lie inside the outer datagram (tot_len): bytes after it are padding
 * or garbage, which a rewrite must not touch (the ICMP checksum does not cover them). */
static __always_inline int icmp_within(const struct xlb_pkt *p, __u32 off, __u32 n)
{
	return off + n <= p->l3_off + p->len;
}

/* The quoted IP header: addresses into k (reversed: the CT key of the quoted packet's peer),
 * offsets and protocol into in. 0, 1 (not TCP/UDP: not ours) or -1 (unusable). A quoted
 * IPv6 header followed by extension headers is not ours either. */
static __always_inline int icmp_inner_ip(const struct xlb_ctx *c, const struct xlb_pkt *p,
					 struct xlb_inner *in, struct xlb_ct_key *k)
{
	in->icmp_csum = p->csum_off;
	in->ip_off = p->l4_off + 8;
	in->v6 = p->v6;
	if (p->v6) {
		struct ipv6hdr *ip6 = icmp_within(p, in->ip_off, IP6_HLEN) ?
				      ctx_ptr_pull(c, in->ip_off, sizeof(*ip6)) : 0;

		if (!ip6)
			return -1;
		in->l4_off = in->ip_off + IP6_HLEN;
		in->proto = ip6->nexthdr;
		__builtin_memcpy(&k->saddr, &ip6->daddr, 16);
		__builtin_memcpy(&k->daddr, &ip6->saddr, 16);
	} else {
		struct iphdr *ip = ctx_ptr_pull(c, in->ip_off, sizeof(*ip));
		__u32 ihl;

		if (!ip)
			return -1;
		ihl = ip->ihl * 4;
		if (ihl < 20 || !icmp_within(p, in->ip_off, ihl))
			return -1;
		in->l4_off = in->ip_off + ihl;
		in->proto = ip->protocol;
		addr4_set(&k->saddr, ip->daddr);
		addr4_set(&k->daddr, ip->saddr);
	}
	return in->proto == IPPROTO_TCP || in->proto == IPPROTO_UDP ? 0 : 1;
}

/* Parse the quoted header; key = the quoted packet reversed (= the CT key of its peer). */
static __always_inline int icmp_inner(const struct xlb_ctx *c, const struct xlb_pkt *p,
				      struct xlb_inner *in, struct xlb_ct_key *k)
{
	int r = icmp_inner_ip(c, p, in, k);
	__be16 *ports;

	if (r)
		return r;
	k->proto = in->proto;
	ports = icmp_within(p, in->l4_off, 4) ? ctx_ptr_pull(c, in->l4_off, 4) : 0;
	if (!ports)
		return -1;
	k->sport = ports[1];
	k->dport = ports[0];
	in->l4_csum = in->l4_off + (in->proto == IPPROTO_TCP ? 16 : 6);
	/* a quote is the header and 8 bytes: a TCP checksum is usually not in it */
	if (!icmp_within(p, in->l4_csum, 2) || !ctx_ptr_pull(c, in->l4_csum, 2))
		in->l4_csum = 0;
	return 0;
}

/* The quoted packet was a reply we translated (source = frontend): make it the backend's. */
static __always_inline int icmp_nat_fwd(const struct xlb_ctx *c, struct xlb_pkt *p,
					const struct xlb_inner *in, const struct xlb_ct_key *k,
					const struct xlb_ct_value *v, struct xlb_icmp_res *res)
{
	struct xlb_backend *be = lb_backend(v->backend_id);

	if (!be)
		return -1;
	if (nat_inner_addr(c, in, 0, &k->daddr, &be->addr) ||
	    nat_inner_port(c, in, 0, k->dport, be->port))
		return -1;
	if (v->flags & XLB_CT_F_SNAT) {
		if (nat_inner_addr(c, in, 1, &k->saddr, &v->nat_addr) ||
		    nat_inner_port(c, in, 1, k->sport, v->nat_port))
			return -1;
	}
	if (nat_addr(c, p, 1, &p->daddr, &be->addr))
		return -1;
	p->daddr = be->addr;
	res->backend_local = !!(be->flags & XLB_BE_F_LOCAL);
	return 0;
}

/* The quoted packet was one we forwarded to a backend: make it what the client sent. */
static __always_inline int icmp_nat_reply(const struct xlb_ctx *c, struct xlb_pkt *p,
					  const struct xlb_inner *in, const struct xlb_ct_key *k,
					  const struct xlb_ct_value *v, struct xlb_icmp_res *res)
{
	/* the backend itself reports the error: it must appear to come from the frontend */
	if (addr_eq(&p->saddr, &k->saddr)) {
		if (nat_addr(c, p, 0, &p->saddr, &v->nat_addr))
			return -1;
		p->saddr = v->nat_addr;
	}
	if (nat_inner_addr(c, in, 1, &k->saddr, &v->nat_addr) ||
	    nat_inner_port(c, in, 1, k->sport, v->nat_port))
		return -1;
	if (!(v->flags & XLB_CT_F_SNAT))
		return 0;
	if (nat_inner_addr(c, in, 0, &k->daddr, &v->orig_addr) ||
	    nat_inner_port(c, in, 0, k->dport, v->orig_port))
		return -1;
	if (nat_addr(c, p, 1, &p->daddr, &v->orig_addr))
		return -1;
	p->daddr = v->orig_addr;
	res->snat = 1;
	return 0;
}

/* The CT entry of the flow the error is about (*v), with the quote parsed into in and k.
 * 1: not about a flow of ours; 0: found; <0: unusable. */
static __always_inline int icmp_error_flow(const struct xlb_ctx *c, const struct xlb_pkt *p,
					   struct xlb_inner *in, struct xlb_ct_key *k,
					   struct xlb_ct_value **v)
{
	int r = icmp_inner(c, p, in, k);

	if (r)
		return r;
	*v = bpf_map_lookup_elem(&ct, k);
	return *v ? 0 : 1;
}

/* Translate an error about the flow of v (icmp_error_flow): 0, or <0: drop. */
static __always_inline int icmp_error_nat(const struct xlb_ctx *c, struct xlb_pkt *p,
					  const struct xlb_inner *in, const struct xlb_ct_key *k,
					  const struct xlb_ct_value *v, struct xlb_icmp_res *res)
{
	if (v->flags & XLB_CT_F_REPLY)
		return icmp_nat_reply(c, p, in, k, v, res);
	return icmp_nat_fwd(c, p, in, k, v, res);
}

#endif
