/* XDP forwarding of translated packets that must leave the node again (remote backends with
 * SNAT, their replies back to the client, rejects): FIB lookup, TTL decrement, MAC rewrite,
 * redirect. Local backends are never redirected from XDP: XDP_REDIRECT into a veth only works
 * when the peer (inside the pod) runs NAPI (an XDP program or GRO enabled there), which a CNI
 * does not promise; the translated packet goes up the stack instead, which routes it to the pod.
 *
 * Out of the ingress device we redirect too, never XDP_TX: a veth queues XDP_TX frames on its
 * peer but kicks the peer's NAPI only when the peer runs an XDP program, so with a GRO-only
 * peer the frames sit in the ring until unrelated traffic wakes it (flows stall at random).
 * A redirect is flushed at the end of every NAPI poll, which schedules the peer's NAPI
 * whenever it has one (GRO suffices; without any, the veth drops the frame and counts it).
 * On a NIC both are native paths.
 *
 * Devices must hand XDP complete L4 checksums, as a NIC does. A veth whose peer transmits with
 * checksum offload (CHECKSUM_PARTIAL: the field holds only the pseudo-header sum) does not, and
 * XDP cannot see that state: the incremental update is then wrong and a redirected frame,
 * which drops the skb's offload state, arrives with a bad checksum. */
#ifndef XLB_INC_FWD_H
#define XLB_INC_FWD_H

#include "nat.h"

#ifndef AF_INET
#define AF_INET 2
#endif

static __always_inline int fwd_ttl_dec(const struct xlb_ctx *c, const struct xlb_pkt *p)
{
	__u16 *w = ctx_ptr(c, p->l3_off + 8, 2);   /* ttl + protocol word */
	__u16 old;

	if (!w)
		return -1;
	old = *w;
	((__u8 *)w)[0] -= 1;
	return csum_l3_replace(c, p->l3_off + IP_CSUM_OFF, old, *w, 2);
}

static __always_inline int fwd_fib_xdp(struct xdp_md *ctx, const struct xlb_ctx *c,
				       const struct xlb_pkt *p)
{
	struct bpf_fib_lookup f = {};
	struct ethhdr *eth;
	int rc;

	f.family = AF_INET;
	f.l4_protocol = p->proto;
	f.sport = p->sport;
	f.dport = p->dport;
	f.tot_len = p->len;
	f.ipv4_src = p->saddr;
	f.ipv4_dst = p->daddr;
	f.ifindex = ctx->ingress_ifindex;
	rc = bpf_fib_lookup(ctx, &f, sizeof(f), 0);
	if (rc == BPF_FIB_LKUP_RET_BLACKHOLE || rc == BPF_FIB_LKUP_RET_UNREACHABLE ||
	    rc == BPF_FIB_LKUP_RET_PROHIBIT) {
		drop_count(XLB_DROP_FIB);
		return XDP_DROP;
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_PASS;      /* e.g. no neighbour yet: the stack resolves it */
	if (fwd_ttl_dec(c, p))
		return XDP_DROP;
	eth = ctx_ptr(c, 0, ETH_HLEN);
	if (!eth)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, f.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, f.smac, ETH_ALEN);
	return bpf_redirect(f.ifindex, 0);
}

/* A reply built in place (reject) goes back out of the device it came in on. */
static __always_inline int fwd_back_xdp(struct xdp_md *ctx)
{
	return bpf_redirect(ctx->ingress_ifindex, 0);
}

#endif
