/* The one shim that lets XDP and tc share every helper: packet access by offset. Reads use
 * direct packet access in both; writes go through bpf_skb_store_bytes/_csum_replace in tc
 * (they keep skb->csum and CHECKSUM_PARTIAL right) and through plain stores in XDP. The
 * `tc` field is a constant at each entry point, so clang drops the other branch. */
#ifndef XLB_INC_CTX_H
#define XLB_INC_CTX_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "xlb_maps.h"

#define ETH_HLEN 14
/* Highest offset any header we touch can start at: eth + IPv4 with options + ICMP + inner IPv4
 * with options + 8 bytes, or IPv6 with extension headers up to XLB_L4_MAX (parse.h) + ICMPv6
 * + inner IPv6 + 8 bytes. Masking offsets with it gives the verifier a bounded range. */
#define XLB_OFF_MASK 0x1ff

struct xlb_ctx {
	void *ctx;
	int tc;
};

/* The empty asm hides the ctx pointer's value from clang, so it cannot keep &skb->data in a
 * register across a helper call (the verifier rejects loads through a modified ctx pointer). */
static __always_inline struct __sk_buff *ctx_skb(const struct xlb_ctx *c)
{
	struct __sk_buff *skb = c->ctx;

	asm volatile("" : "+r"(skb));
	return skb;
}

static __always_inline void *ctx_data(const struct xlb_ctx *c)
{
	if (c->tc)
		return (void *)(long)ctx_skb(c)->data;
	return (void *)(long)((struct xdp_md *)c->ctx)->data;
}

static __always_inline void *ctx_end(const struct xlb_ctx *c)
{
	if (c->tc)
		return (void *)(long)ctx_skb(c)->data_end;
	return (void *)(long)((struct xdp_md *)c->ctx)->data_end;
}

/* Pointer to len bytes at off, or NULL when the packet is shorter. */
static __always_inline void *ctx_ptr(const struct xlb_ctx *c, __u32 off, __u32 len)
{
	void *data = ctx_data(c), *end = ctx_end(c);

	off &= XLB_OFF_MASK;
	if (data + off + len > end)
		return 0;
	return data + off;
}

/* Bytes in the packet: in tc the skb may be non-linear (a TCP segment from a local socket
 * keeps only its headers in the linear part), so data_end is not the end of the packet. */
static __always_inline __u32 ctx_len(const struct xlb_ctx *c)
{
	if (c->tc)
		return ctx_skb(c)->len;
	return ctx_end(c) - ctx_data(c);
}

/* The interface the packet arrived on. */
static __always_inline __u32 ctx_ifindex(const struct xlb_ctx *c)
{
	if (c->tc)
		return ctx_skb(c)->ifindex;
	return ((struct xdp_md *)c->ctx)->ingress_ifindex;
}

/* Whether the packet carries a VLAN tag outside its data. Only frames of the device itself are
 * ours: one tagged for a VLAN (802.1Q or 802.1ad) is a frame of a VLAN interface, and with no
 * such interface it belongs to no address of this node; it is passed untouched for the stack
 * to deliver to its VLAN device (which runs its own hook on the untagged packet) or drop.
 * XDP sees the tag in the frame (an 802.1Q/802.1ad ethertype, which parse_pkt passes); at tc
 * the kernel has already moved it out of the packet (skb_vlan_untag) into skb->vlan_tci, so
 * the frame looks untagged and only vlan_present tells. A NIC that strips tags on receive
 * (rx VLAN offload) hides them from XDP too: such a device needs rxvlan off or
 * --device-mode tc. */
static __always_inline int ctx_vlan_tagged(const struct xlb_ctx *c)
{
	return c->tc && ctx_skb(c)->vlan_present;
}

/* ctx_ptr for parsing: in tc, pull the bytes into the linear part when the packet has them
 * but the head does not (rare: headers are normally linear). Invalidates older pointers. */
static __always_inline void *ctx_ptr_pull(const struct xlb_ctx *c, __u32 off, __u32 len)
{
	void *p = ctx_ptr(c, off, len);

	if (p || !c->tc || off + len > ctx_len(c))
		return p;
	if (bpf_skb_pull_data(c->ctx, off + len))
		return 0;
	return ctx_ptr(c, off, len);
}

static __always_inline int ctx_store4(const struct xlb_ctx *c, __u32 off, __u32 v)
{
	__u32 *p;

	if (c->tc)
		return bpf_skb_store_bytes(c->ctx, off, &v, 4, 0);
	p = ctx_ptr(c, off, 4);
	if (!p)
		return -1;
	*p = v;
	return 0;
}

static __always_inline int ctx_store2(const struct xlb_ctx *c, __u32 off, __u16 v)
{
	__u16 *p;

	if (c->tc)
		return bpf_skb_store_bytes(c->ctx, off, &v, 2, 0);
	p = ctx_ptr(c, off, 2);
	if (!p)
		return -1;
	*p = v;
	return 0;
}

/* An IPv6 address from v, a stack copy (bpf_skb_store_bytes reads it). */
static __always_inline int ctx_store16(const struct xlb_ctx *c, __u32 off, const struct xlb_addr *v)
{
	struct xlb_addr *p;

	if (c->tc)
		return bpf_skb_store_bytes(c->ctx, off, v, 16, 0);
	p = ctx_ptr(c, off, 16);
	if (!p)
		return -1;
	*p = *v;
	return 0;
}

static __always_inline int ctx_load2(const struct xlb_ctx *c, __u32 off, __u16 *v)
{
	__u16 *p = ctx_ptr(c, off, 2);

	if (!p)
		return -1;
	*v = *p;
	return 0;
}

static __always_inline int ctx_load4(const struct xlb_ctx *c, __u32 off, __u32 *v)
{
	__u32 *p = ctx_ptr(c, off, 4);

	if (!p)
		return -1;
	*v = *p;
	return 0;
}

/* XDP metadata from xlb_xdp to xlb_tc_dev on the same device: "done, tc has nothing to add".
 * Set on every packet XDP passes that tc would look up in vain (not ours, or already
 * translated), so tc skips them; a packet without it (tc device mode, a driver without XDP
 * metadata, a reply XDP leaves to tc) gets tc's full decision. */
#define XLB_XDP_META_DONE 0x786c6264  /* "xlbd" */

static __always_inline void ctx_xdp_mark_done(struct xdp_md *ctx)
{
	__u32 *m;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*m)))
		return;
	m = (void *)(long)ctx->data_meta;
	/* the verifier needs the bound even though adjust_meta just made room */
	if ((void *)(m + 1) <= (void *)(long)ctx->data)
		*m = XLB_XDP_META_DONE;
}

static __always_inline int ctx_tc_xdp_done(struct __sk_buff *skb)
{
	__u32 *m = (void *)(long)skb->data_meta;

	return (void *)(m + 1) <= (void *)(long)skb->data && *m == XLB_XDP_META_DONE;
}

#endif
