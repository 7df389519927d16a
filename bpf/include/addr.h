/* struct xlb_addr (16 bytes, bpf/xlb_maps.h) from and to the packet's addresses: IPv4 as
 * v4-mapped (::ffff:a.b.c.d, the address in w[3]), IPv6 as is; comparisons and the fold the
 * hashes use, the same for both families. */
#ifndef XLB_INC_ADDR_H
#define XLB_INC_ADDR_H

#include <bpf/bpf_endian.h>
#include "xlb_maps.h"

static __always_inline void addr4_set(struct xlb_addr *a, __be32 v4)
{
	a->w[0] = 0;
	a->w[1] = 0;
	a->w[2] = bpf_htonl(0xffff);
	a->w[3] = v4;
}

static __always_inline int addr_eq(const struct xlb_addr *a, const struct xlb_addr *b)
{
	return !((a->w[0] ^ b->w[0]) | (a->w[1] ^ b->w[1]) | (a->w[2] ^ b->w[2]) |
		 (a->w[3] ^ b->w[3]));
}

/* addr_eq of two addresses at 8-aligned offsets of 8-aligned objects (map values, struct
 * xlb_flow_cache_entry): two 8-byte compares instead of four 4-byte ones. */
typedef __u64 __attribute__((may_alias)) addr_half;

static __always_inline int addr_eq8(const struct xlb_addr *a, const struct xlb_addr *b)
{
	const addr_half *x = (const addr_half *)a, *y = (const addr_half *)b;

	return !((x[0] ^ y[0]) | (x[1] ^ y[1]));
}

static __always_inline int addr_zero(const struct xlb_addr *a)
{
	return !(a->w[0] | a->w[1] | a->w[2] | a->w[3]);
}

/* Whether a holds an IPv4 address (v4-mapped). */
static __always_inline int addr_is4(const struct xlb_addr *a)
{
	return !(a->w[0] | a->w[1]) && a->w[2] == bpf_htonl(0xffff);
}

/* 32 bits of the address for hashing: an IPv4 address itself (the ::ffff word cancels), so
 * IPv4 hashes are what they were before IPv6 (src/datapath/codecs.ts flowHash mirrors it). */
static __always_inline __u32 addr_fold(const struct xlb_addr *a)
{
	return a->w[0] ^ a->w[1] ^ a->w[2] ^ a->w[3] ^ bpf_htonl(0xffff);
}

#endif
