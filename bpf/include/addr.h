/* struct xlb_addr (16 bytes, bpf/xlb_maps.h) from and to the packet's addresses: IPv4 as
 * v4-mapped (::ffff:a.b.c.d, the address in w[3]). The v6 twins copy all four words. */
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

#endif
