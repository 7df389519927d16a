/* Address/port rewrites with their checksum updates, for the outer packet (nat4_*) and for
 * the header quoted inside an ICMP error (nat4_inner_*), whose changes also move the ICMP
 * checksum. Later fragments carry no L4 header: only the address and IP checksum change (the
 * L4 checksum lives in the first fragment and was adjusted there). */
#ifndef XLB_INC_NAT_H
#define XLB_INC_NAT_H

#include "csum.h"
#include "ctx.h"
#include "parse.h"
#include "xlb_maps.h"

#define IP_SADDR_OFF 12
#define IP_DADDR_OFF 16
#define IP_CSUM_OFF 10

static __always_inline int nat4_l4_how(__u8 proto)
{
	return proto == IPPROTO_UDP ? CSUM_L4_UDP : 0;
}

/* dst != 0: destination address, else source. */
static __always_inline int nat4_addr(const struct xlb_ctx *c, const struct xlb_pkt *p, int dst,
				     __be32 from, __be32 to)
{
	if (from == to)
		return 0;
	if (ctx_store4(c, p->l3_off + (dst ? IP_DADDR_OFF : IP_SADDR_OFF), to))
		return -1;
	if (csum_l3_replace(c, p->l3_off + IP_CSUM_OFF, from, to, 4))
		return -1;
	if (!p->has_l4 || p->proto == IPPROTO_ICMP)
		return 0;
	return csum_l4_replace(c, p->csum_off, from, to, 4, CSUM_L4_PSEUDO | nat4_l4_how(p->proto));
}

static __always_inline int nat4_port(const struct xlb_ctx *c, const struct xlb_pkt *p, int dst,
				     __be16 from, __be16 to)
{
	if (from == to || !p->has_l4 || p->proto == IPPROTO_ICMP)
		return 0;
	if (ctx_store2(c, p->l4_off + (dst ? 2 : 0), to))
		return -1;
	return csum_l4_replace(c, p->csum_off, from, to, 2, nat4_l4_how(p->proto));
}

/* Forward direction: destination to the backend, source to the SNAT address if any. */
static __always_inline int nat4_forward(const struct xlb_ctx *c, struct xlb_pkt *p,
					const struct xlb_backend *be, const struct xlb_ct_value *v)
{
	if (nat4_addr(c, p, 1, p->daddr, be->addr.w[3]) || nat4_port(c, p, 1, p->dport, be->port))
		return -1;
	p->daddr = be->addr.w[3];
	p->dport = be->port;
	if (!(v->flags & XLB_CT_F_SNAT))
		return 0;
	if (nat4_addr(c, p, 0, p->saddr, v->nat_addr.w[3]) ||
	    nat4_port(c, p, 0, p->sport, v->nat_port))
		return -1;
	p->saddr = v->nat_addr.w[3];
	p->sport = v->nat_port;
	return 0;
}

/* Reply direction: source back to the frontend, destination back to the client if SNATed. */
static __always_inline int nat4_reply(const struct xlb_ctx *c, struct xlb_pkt *p,
				      const struct xlb_ct_value *v)
{
	if (nat4_addr(c, p, 0, p->saddr, v->nat_addr.w[3]) ||
	    nat4_port(c, p, 0, p->sport, v->nat_port))
		return -1;
	p->saddr = v->nat_addr.w[3];
	p->sport = v->nat_port;
	if (!(v->flags & XLB_CT_F_SNAT))
		return 0;
	if (nat4_addr(c, p, 1, p->daddr, v->orig_addr.w[3]) ||
	    nat4_port(c, p, 1, p->dport, v->orig_port))
		return -1;
	p->daddr = v->orig_addr.w[3];
	p->dport = v->orig_port;
	return 0;
}

/* One end (address and port) of nat4_xdp_rewrite: the header fields, the xlb_pkt copy, and
 * the change added to the IP (d3) and L4 (d4) checksum deltas. */
static __always_inline void nat4_xdp_end(__be32 *hdr_addr, __be16 *hdr_port, __be32 *addr, __be16 *port,
					 __be32 to_addr, __be16 to_port, __u32 *d3, __u32 *d4)
{
	*d3 += csum_delta4(*addr, to_addr);
	*d4 += csum_delta2(*port, to_port);
	*hdr_addr = to_addr;
	*hdr_port = to_port;
	*addr = to_addr;
	*port = to_port;
}

/* XDP only, whole TCP/UDP packets only (the flow cache's hit path): new destination and/or
 * source address and port written through two header pointers, each checksum adjusted once
 * for all the changes instead of once per field. Same results as nat4_addr + nat4_port. */
static __always_inline int nat4_xdp_rewrite(const struct xlb_ctx *c, struct xlb_pkt *p,
					    int dst, __be32 daddr, __be16 dport,
					    int src, __be32 saddr, __be16 sport)
{
	struct iphdr *ip = ctx_ptr(c, ETH_HLEN, sizeof(*ip));
	__be16 *ports = ctx_ptr(c, p->l4_off, 4);
	__u16 *l4sum = ctx_ptr(c, p->csum_off, 2);
	__u32 d3 = 0, d4 = 0;
	__u16 sum;

	if (!ip || !ports || !l4sum)
		return -1;
	if (dst)
		nat4_xdp_end(&ip->daddr, &ports[1], &p->daddr, &p->dport, daddr, dport, &d3, &d4);
	if (src)
		nat4_xdp_end(&ip->saddr, &ports[0], &p->saddr, &p->sport, saddr, sport, &d3, &d4);
	ip->check = ~csum_fold32((__u16)~ip->check + d3);
	sum = *l4sum;
	if (p->proto == IPPROTO_UDP && sum == 0)
		return 0;             /* UDP without a checksum stays without */
	sum = ~csum_fold32((__u16)~sum + d3 + d4);
	if (p->proto == IPPROTO_UDP && sum == 0)
		sum = 0xffff;
	*l4sum = sum;
	return 0;
}

/* Where the header quoted by an ICMP error sits, and which of its checksums exist. */
struct xlb_inner {
	__u32 icmp_csum;              /* outer ICMP checksum offset */
	__u32 ip_off;
	__u32 l4_off;
	__u32 l4_csum;                /* 0: not inside the quoted bytes */
	__u8 proto;
};

/* Replace a field inside the ICMP payload and carry the change into the ICMP checksum. */
static __always_inline int nat4_inner_store(const struct xlb_ctx *c, const struct xlb_inner *in,
					    __u32 off, __u32 from, __u32 to, int size)
{
	if (size == 4 ? ctx_store4(c, off, to) : ctx_store2(c, off, to))
		return -1;
	return csum_l3_replace(c, in->icmp_csum, from, to, size);
}

/* Patch a checksum inside the ICMP payload for a field change of size bytes. */
static __always_inline int nat4_inner_sum(const struct xlb_ctx *c, const struct xlb_inner *in,
					  __u32 sum_off, __u32 from, __u32 to, int size, int udp)
{
	__u16 sum, nsum;

	if (ctx_load2(c, sum_off, &sum))
		return 0;        /* checksum not quoted: nothing to keep consistent */
	if (udp && sum == 0)
		return 0;
	nsum = size == 4 ? csum_upd4(sum, from, to) : csum_upd2(sum, from, to);
	if (udp && nsum == 0)
		nsum = 0xffff;
	return nat4_inner_store(c, in, sum_off, sum, nsum, 2);
}

static __always_inline int nat4_inner_addr(const struct xlb_ctx *c, const struct xlb_inner *in,
					   int dst, __be32 from, __be32 to)
{
	if (from == to)
		return 0;
	if (nat4_inner_store(c, in, in->ip_off + (dst ? IP_DADDR_OFF : IP_SADDR_OFF), from, to, 4))
		return -1;
	if (nat4_inner_sum(c, in, in->ip_off + IP_CSUM_OFF, from, to, 4, 0))
		return -1;
	if (!in->l4_csum)
		return 0;
	return nat4_inner_sum(c, in, in->l4_csum, from, to, 4, in->proto == IPPROTO_UDP);
}

static __always_inline int nat4_inner_port(const struct xlb_ctx *c, const struct xlb_inner *in,
					   int dst, __be16 from, __be16 to)
{
	if (from == to)
		return 0;
	if (nat4_inner_store(c, in, in->l4_off + (dst ? 2 : 0), from, to, 2))
		return -1;
	if (!in->l4_csum)
		return 0;
	return nat4_inner_sum(c, in, in->l4_csum, from, to, 2, in->proto == IPPROTO_UDP);
}

#endif
