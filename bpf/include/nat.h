/* Address/port rewrites with their checksum updates, for the outer packet (nat_*, either
 * family: nat4_/nat6_ for the address itself) and for the header quoted inside an ICMP error
 * (nat_inner_*), whose changes also move the ICMP checksum. Later fragments carry no L4
 * header: only the address and IPv4 checksum change (the L4 checksum lives in the first
 * fragment and was adjusted there). IPv6 has no header checksum: its address changes move
 * the L4 checksum only (pseudo header; ICMPv6 has one too). */
#ifndef XLB_INC_NAT_H
#define XLB_INC_NAT_H

#include "addr.h"
#include "csum.h"
#include "ctx.h"
#include "parse.h"
#include "xlb_maps.h"

#define IP_SADDR_OFF 12
#define IP_DADDR_OFF 16
#define IP_CSUM_OFF 10

/* Checksum flags of the packet's L4 header. ICMPv6 has a pseudo header (ICMP has none). */
static __always_inline int nat_l4_how(const struct xlb_pkt *p)
{
	return (p->proto == IPPROTO_UDP ? CSUM_L4_UDP : 0) | (p->v6 ? CSUM_L4_V6 : 0);
}

static __always_inline int nat4_addr(const struct xlb_ctx *c, const struct xlb_pkt *p, int dst,
				     __be32 from, __be32 to)
{
	if (ctx_store4(c, p->l3_off + (dst ? IP_DADDR_OFF : IP_SADDR_OFF), to))
		return -1;
	if (csum_l3_replace(c, p->l3_off + IP_CSUM_OFF, from, to, 4))
		return -1;
	if (!p->has_l4 || p->proto == IPPROTO_ICMP)
		return 0;
	return csum_l4_replace(c, p->csum_off, from, to, 4, CSUM_L4_PSEUDO | nat_l4_how(p));
}

/* No IPv6 header checksum: only the L4 one (TCP, UDP, ICMPv6: all over the pseudo header). */
static __always_inline int nat6_addr(const struct xlb_ctx *c, const struct xlb_pkt *p, int dst,
				     const struct xlb_addr *from, const struct xlb_addr *to)
{
	__u32 off = p->l3_off + (dst ? IP6_DADDR_OFF : IP6_SADDR_OFF);
	__u32 delta = csum_delta16(from->w, to->w);
	struct xlb_addr a = *to;

	if (ctx_store16(c, off, &a))
		return -1;
	if (!p->has_l4)
		return 0;
	return csum_l4_diff(c, p->csum_off, delta, CSUM_L4_PSEUDO | nat_l4_how(p));
}

/* dst != 0: destination address, else source. */
static __always_inline int nat_addr(const struct xlb_ctx *c, const struct xlb_pkt *p, int dst,
				    const struct xlb_addr *from, const struct xlb_addr *to)
{
	if (addr_eq(from, to))
		return 0;
	if (p->v6)
		return nat6_addr(c, p, dst, from, to);
	return nat4_addr(c, p, dst, from->w[3], to->w[3]);
}

static __always_inline int nat_port(const struct xlb_ctx *c, const struct xlb_pkt *p, int dst,
				    __be16 from, __be16 to)
{
	if (from == to || !p->has_l4 || (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP))
		return 0;
	if (ctx_store2(c, p->l4_off + (dst ? 2 : 0), to))
		return -1;
	return csum_l4_replace(c, p->csum_off, from, to, 2, nat_l4_how(p));
}

/* One end of the packet (dst: destination, else source) to address a and port, in the
 * packet and in its xlb_pkt copy. */
static __always_inline int nat_end(const struct xlb_ctx *c, struct xlb_pkt *p, int dst,
				   const struct xlb_addr *a, __be16 port)
{
	struct xlb_addr *pa = dst ? &p->daddr : &p->saddr;
	__be16 *pp = dst ? &p->dport : &p->sport;

	if (nat_addr(c, p, dst, pa, a) || nat_port(c, p, dst, *pp, port))
		return -1;
	*pa = *a;
	*pp = port;
	return 0;
}

/* Forward direction: destination to the backend, source to the SNAT address if any. */
static __always_inline int nat_forward(const struct xlb_ctx *c, struct xlb_pkt *p,
				       const struct xlb_backend *be, const struct xlb_ct_value *v)
{
	if (nat_end(c, p, 1, &be->addr, be->port))
		return -1;
	if (!(v->flags & XLB_CT_F_SNAT))
		return 0;
	return nat_end(c, p, 0, &v->nat_addr, v->nat_port);
}

/* Reply direction: source back to the frontend, destination back to the client if SNATed. */
static __always_inline int nat_reply(const struct xlb_ctx *c, struct xlb_pkt *p,
				     const struct xlb_ct_value *v)
{
	if (nat_end(c, p, 0, &v->nat_addr, v->nat_port))
		return -1;
	if (!(v->flags & XLB_CT_F_SNAT))
		return 0;
	return nat_end(c, p, 1, &v->orig_addr, v->orig_port);
}

/* One end (address and port) of nat_xdp_rewrite: the fields in the packet and in its xlb_pkt
 * copy (an IPv4 one changes only the last word of its v4-mapped addresses). to_addr is at an
 * 8-aligned offset (the flow cache entry's), so an IPv6 address is read in two halves and
 * written so into the header (unaligned packet stores). */
static __always_inline void nat_xdp_end(int v6, __u8 *field, __be16 *hdr_port,
					struct xlb_addr *addr, __be16 *port,
					const struct xlb_addr *to_addr, __be16 to_port)
{
	if (v6) {
		const addr_half *h = (const addr_half *)to_addr;
		addr_half h0 = h[0], h1 = h[1];

		((addr_half *)field)[0] = h0;
		((addr_half *)field)[1] = h1;
		addr->w[0] = h0;
		addr->w[1] = h0 >> 32;
		addr->w[2] = h1;
		addr->w[3] = h1 >> 32;
	} else {
		*(__be32 *)field = to_addr->w[3];
		addr->w[3] = to_addr->w[3];
	}
	*hdr_port = to_port;
	*port = to_port;
}

/* XDP only, whole TCP/UDP packets only (the flow cache's hit path): new destination and/or
 * source address and port written through header pointers, and the checksums moved by the
 * changes' sums, computed once when the entry was made (fc_sums in fcache.h): sum_l3 for
 * the addresses (IPv4 header), sum_l4 for addresses and ports (L4, pseudo header). Same
 * results as nat_end. v6 is a constant at each call (p->v6 tested by the caller), so each
 * family gets its own copy. */
static __always_inline int nat_xdp_rewrite(const struct xlb_ctx *c, struct xlb_pkt *p, int v6,
					   int dst, const struct xlb_addr *daddr, __be16 dport,
					   int src, const struct xlb_addr *saddr, __be16 sport,
					   __u16 sum_l3, __u16 sum_l4)
{
	__u8 *ip = v6 ? ctx_ptr(c, ETH_HLEN, IP6_HLEN) : ctx_ptr(c, ETH_HLEN, sizeof(struct iphdr));
	__be16 *ports = ctx_ptr(c, p->l4_off, 4);
	__u16 *l4sum = ctx_ptr(c, p->csum_off, 2);
	__u16 sum;

	if (!ip || !ports || !l4sum)
		return -1;
	if (dst)
		nat_xdp_end(v6, ip + (v6 ? IP6_DADDR_OFF : IP_DADDR_OFF), &ports[1], &p->daddr,
			    &p->dport, daddr, dport);
	if (src)
		nat_xdp_end(v6, ip + (v6 ? IP6_SADDR_OFF : IP_SADDR_OFF), &ports[0], &p->saddr,
			    &p->sport, saddr, sport);
	if (!v6) {
		__u16 *check = (__u16 *)(ip + IP_CSUM_OFF);

		*check = ~csum_fold32((__u16)~*check + sum_l3);
	}
	sum = *l4sum;
	if (p->proto == IPPROTO_UDP && sum == 0)
		return 0;             /* UDP without a checksum stays without (IPv4 only) */
	sum = ~csum_fold32((__u16)~sum + sum_l4);
	if (p->proto == IPPROTO_UDP && sum == 0)
		sum = 0xffff;
	*l4sum = sum;
	return 0;
}

/* Where the header quoted by an ICMP error sits, and which of its checksums exist. */
struct xlb_inner {
	__u32 icmp_csum;              /* outer ICMP(v6) checksum offset */
	__u32 ip_off;
	__u32 l4_off;
	__u32 l4_csum;                /* 0: not inside the quoted bytes */
	__u8 proto;
	__u8 v6;
};

/* Replace a field inside the ICMP payload and carry the change into the ICMP checksum (a
 * payload change for ICMPv6 too: its pseudo header holds the outer addresses only). */
static __always_inline int nat_inner_store(const struct xlb_ctx *c, const struct xlb_inner *in,
					   __u32 off, __u32 from, __u32 to, int size)
{
	if (size == 4 ? ctx_store4(c, off, to) : ctx_store2(c, off, to))
		return -1;
	return csum_l3_replace(c, in->icmp_csum, from, to, size);
}

/* Patch a checksum inside the ICMP payload for a change of delta (csum_delta*). */
static __always_inline int nat_inner_sum(const struct xlb_ctx *c, const struct xlb_inner *in,
					 __u32 sum_off, __u32 delta, int udp)
{
	__u16 sum, nsum;

	if (ctx_load2(c, sum_off, &sum))
		return 0;        /* checksum not quoted: nothing to keep consistent */
	if (udp && sum == 0)
		return 0;
	nsum = ~csum_fold32((__u16)~sum + delta);
	if (udp && nsum == 0)
		nsum = 0xffff;
	return nat_inner_store(c, in, sum_off, sum, nsum, 2);
}

/* A quoted IPv6 address: 16 bytes, the ICMPv6 checksum follows as for any payload. */
static __always_inline int nat6_inner_store(const struct xlb_ctx *c, const struct xlb_inner *in,
					    __u32 off, const struct xlb_addr *from,
					    const struct xlb_addr *to)
{
	struct xlb_addr a = *to;

	if (ctx_store16(c, off, &a))
		return -1;
	return csum_l4_diff(c, in->icmp_csum, csum_delta16(from->w, to->w), 0);
}

static __always_inline int nat_inner_addr(const struct xlb_ctx *c, const struct xlb_inner *in,
					  int dst, const struct xlb_addr *from,
					  const struct xlb_addr *to)
{
	int udp = in->proto == IPPROTO_UDP;

	if (addr_eq(from, to))
		return 0;
	if (in->v6) {
		if (nat6_inner_store(c, in, in->ip_off + (dst ? IP6_DADDR_OFF : IP6_SADDR_OFF),
				     from, to))
			return -1;
		if (!in->l4_csum)
			return 0;
		return nat_inner_sum(c, in, in->l4_csum, csum_delta16(from->w, to->w), udp);
	}
	if (nat_inner_store(c, in, in->ip_off + (dst ? IP_DADDR_OFF : IP_SADDR_OFF), from->w[3],
			    to->w[3], 4))
		return -1;
	if (nat_inner_sum(c, in, in->ip_off + IP_CSUM_OFF, csum_delta4(from->w[3], to->w[3]), 0))
		return -1;
	if (!in->l4_csum)
		return 0;
	return nat_inner_sum(c, in, in->l4_csum, csum_delta4(from->w[3], to->w[3]), udp);
}

static __always_inline int nat_inner_port(const struct xlb_ctx *c, const struct xlb_inner *in,
					  int dst, __be16 from, __be16 to)
{
	if (from == to)
		return 0;
	if (nat_inner_store(c, in, in->l4_off + (dst ? 2 : 0), from, to, 2))
		return -1;
	if (!in->l4_csum)
		return 0;
	return nat_inner_sum(c, in, in->l4_csum, csum_delta2(from, to), in->proto == IPPROTO_UDP);
}

#endif
