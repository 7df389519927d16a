/* Incremental Internet checksums (RFC 1624) through the ctx shim. tc uses the skb helpers so
 * CHECKSUM_PARTIAL (pseudo-header-only sums from local sockets) and CHECKSUM_COMPLETE stay
 * right; XDP sees full checksums from the wire and patches them in place. */
#ifndef XLB_INC_CSUM_H
#define XLB_INC_CSUM_H

#include "ctx.h"

static __always_inline __u16 csum_fold32(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* One's complement change (~from + to) of a 4- or 2-byte field, unfolded (< 2^18). */
static __always_inline __u32 csum_delta4(__u32 from, __u32 to)
{
	return (~from & 0xffff) + (~from >> 16) + (to & 0xffff) + (to >> 16);
}

static __always_inline __u32 csum_delta2(__u16 from, __u16 to)
{
	return (__u16)~from + to;
}

static __always_inline __u16 csum_upd4(__u16 sum, __u32 from, __u32 to)
{
	return ~csum_fold32((__u16)~sum + csum_delta4(from, to));
}

static __always_inline __u16 csum_upd2(__u16 sum, __u16 from, __u16 to)
{
	return ~csum_fold32((__u16)~sum + csum_delta2(from, to));
}

/* CSUM_L4_V6: an IPv6 packet, whose skb->csum (CHECKSUM_COMPLETE) a pseudo-header change
 * must leave alone, as no IP header checksum moves the other way (BPF_F_IPV6). */
enum { CSUM_L4_PSEUDO = 1, CSUM_L4_UDP = 2, CSUM_L4_V6 = 4 };

/* Change of a 16-byte address (an IPv6 address: four 4-byte deltas), unfolded (< 2^20). */
static __always_inline __u32 csum_delta16(const __be32 *from, const __be32 *to)
{
	return csum_delta4(from[0], to[0]) + csum_delta4(from[1], to[1]) +
	       csum_delta4(from[2], to[2]) + csum_delta4(from[3], to[3]);
}

/* Change of an address: an IPv4 one (v4-mapped) is its last word, an IPv6 one all four. */
static __always_inline __u32 csum_delta_addr(int v6, const struct xlb_addr *from,
					     const struct xlb_addr *to)
{
	return v6 ? csum_delta16(from->w, to->w) : csum_delta4(from->w[3], to->w[3]);
}

/* Patch the L4 checksum at csum_off for a change of delta (csum_delta*). L4 fields that are
 * part of the pseudo header pass CSUM_L4_PSEUDO; UDP passes CSUM_L4_UDP (a zero sum means
 * "none" and stays zero; a computed zero is sent as 0xffff). */
static __always_inline int csum_l4_diff(const struct xlb_ctx *c, __u32 csum_off, __u32 delta,
					int how)
{
	__u16 sum, nsum;

	if (c->tc) {
		__u64 f = 0;

		if (how & CSUM_L4_PSEUDO)
			f |= BPF_F_PSEUDO_HDR;
		if (how & CSUM_L4_UDP)
			f |= BPF_F_MARK_MANGLED_0;
		if (how & CSUM_L4_V6)
			f |= BPF_F_IPV6;
		return bpf_l4_csum_replace(c->ctx, csum_off, 0, delta, f);
	}
	if (ctx_load2(c, csum_off, &sum))
		return -1;
	if ((how & CSUM_L4_UDP) && sum == 0)
		return 0;
	nsum = ~csum_fold32((__u16)~sum + csum_fold32(delta));
	if ((how & CSUM_L4_UDP) && nsum == 0)
		nsum = 0xffff;
	return ctx_store2(c, csum_off, nsum);
}

/* csum_l4_diff for a 4- or 2-byte field that changed from `from` to `to`. */
static __always_inline int csum_l4_replace(const struct xlb_ctx *c, __u32 csum_off, __u32 from,
					   __u32 to, int size, int how)
{
	return csum_l4_diff(c, csum_off, size == 4 ? csum_delta4(from, to) :
				       csum_delta2(from, to), how);
}

/* IPv4 header (and ICMP, which has no pseudo header) checksums. */
static __always_inline int csum_l3_replace(const struct xlb_ctx *c, __u32 csum_off, __u32 from,
					   __u32 to, int size)
{
	__u16 sum;

	if (c->tc)
		return bpf_l3_csum_replace(c->ctx, csum_off, from, to, size);
	if (ctx_load2(c, csum_off, &sum))
		return -1;
	sum = size == 4 ? csum_upd4(sum, from, to) : csum_upd2(sum, from, to);
	return ctx_store2(c, csum_off, sum);
}

/* Full checksum of a stack buffer whose length is a multiple of 4 (headers we build). */
static __always_inline __u16 csum_buf(void *buf, __u32 len, __u32 seed)
{
	return ~csum_fold32(bpf_csum_diff(0, 0, buf, len, seed));
}

#endif
