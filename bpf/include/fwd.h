/* Forwarding of translated packets (IPv4 and IPv6: AF_INET / AF_INET6 FIB lookups) that must leave the node again (remote backends with
 * SNAT, their replies back to the client, rejects, and from a pod's veth its flows to remote
 * backends), from a node device: FIB lookup, TTL
 * decrement, MAC rewrite, redirect; in XDP (xlb_xdp) or at tc ingress (xlb_tc_dev). Local
 * backends are never redirected: XDP_REDIRECT into a veth only works when the peer (inside
 * the pod) runs NAPI (an XDP program or GRO enabled there), which a CNI does not promise; the
 * translated packet goes up the stack instead, which routes it to the pod.
 *
 * Out of the ingress device we redirect too, never XDP_TX: a veth queues XDP_TX frames on its
 * peer but kicks the peer's NAPI only when the peer runs an XDP program, so with a GRO-only
 * peer the frames sit in the ring until unrelated traffic wakes it (flows stall at random).
 * A redirect is flushed at the end of every NAPI poll, which schedules the peer's NAPI
 * whenever it has one (GRO suffices; without any, the veth drops the frame and counts it).
 * On a NIC both are native paths.
 *
 * XDP needs complete L4 checksums from the device, as a NIC gives. A veth whose peer
 * transmits with checksum offload (CHECKSUM_PARTIAL: the field holds only the pseudo-header
 * sum) does not, and XDP cannot see that state: the incremental update is then wrong and a
 * redirected frame, which drops the skb's offload state, arrives with a bad checksum. At tc
 * the skb helpers know the state and keep it right, which is one reason veth devices run the
 * tc entry (the agent's --device-mode auto). */
#ifndef XLB_INC_FWD_H
#define XLB_INC_FWD_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include "csum.h"
#include "ctx.h"
#include "maps.h"
#include "nat.h"
#include "parse.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* Whether a forwarding mode (XLB_CFG_F_REDIRECT, XLB_CFG_F_PEER) is on in the config the
 * entry point looked up; fixtures turn every one off so they check the NAT decision alone. */
static __always_inline int fwd_on(const struct xlb_config *cfg, __u32 flag)
{
	return (cfg->flags & flag) && !(cfg->flags & XLB_CFG_F_FIXTURE);
}

/* TTL or hop limit minus one (IPv6: no header checksum to follow). */
static __always_inline int fwd_ttl_dec(const struct xlb_ctx *c, const struct xlb_pkt *p)
{
	__u16 *w = ctx_ptr(c, p->l3_off + 8, 2);   /* ttl + protocol word */
	__u16 old;

	if (p->v6) {
		__u8 *hl = ctx_ptr(c, p->l3_off + 7, 1);
		__u8 v;

		if (!hl)
			return -1;
		v = *hl - 1;
		if (c->tc)
			return bpf_skb_store_bytes(c->ctx, p->l3_off + 7, &v, 1, 0);
		*hl = v;
		return 0;
	}
	if (!w)
		return -1;
	old = *w;
	((__u8 *)w)[0] -= 1;
	return csum_l3_replace(c, p->l3_off + IP_CSUM_OFF, old, *w, 2);
}

/* FIB lookup for a translated packet; 0 with f filled (next hop's MACs, egress ifindex) or
 * a BPF_FIB_LKUP_RET_* code. tot_len 0 (tc) makes the kernel check the MTU against the skb
 * itself, which is right for GSO skbs; XDP frames are single packets and pass their length. */
static __always_inline int fwd_fib(void *ctx, const struct xlb_pkt *p, __u32 ifindex, __u16 tot_len,
				   struct bpf_fib_lookup *f)
{
	f->l4_protocol = p->proto;
	f->sport = p->sport;
	f->dport = p->dport;
	f->tot_len = tot_len;
	if (p->v6) {
		f->family = AF_INET6;
		__builtin_memcpy(f->ipv6_src, &p->saddr, 16);
		__builtin_memcpy(f->ipv6_dst, &p->daddr, 16);
	} else {
		f->family = AF_INET;
		f->ipv4_src = p->saddr.w[3];
		f->ipv4_dst = p->daddr.w[3];
	}
	f->ifindex = ifindex;
	return bpf_fib_lookup(ctx, f, sizeof(*f), 0);
}

static __always_inline int fwd_fib_refused(int rc)
{
	return rc == BPF_FIB_LKUP_RET_BLACKHOLE || rc == BPF_FIB_LKUP_RET_UNREACHABLE ||
	       rc == BPF_FIB_LKUP_RET_PROHIBIT;
}

/* TTL decrement and next-hop MACs; 0 when the packet is ready to leave. */
static __always_inline int fwd_rewrite(const struct xlb_ctx *c, const struct xlb_pkt *p,
				       const struct bpf_fib_lookup *f)
{
	struct ethhdr *eth;

	if (fwd_ttl_dec(c, p))
		return -1;
	eth = ctx_ptr(c, 0, ETH_HLEN);
	if (!eth)
		return -1;
	__builtin_memcpy(eth->h_dest, f->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, f->smac, ETH_ALEN);
	return 0;
}

static __always_inline int fwd_fib_xdp(struct xdp_md *ctx, const struct xlb_ctx *c,
				       const struct xlb_pkt *p)
{
	struct bpf_fib_lookup f = {};
	int rc = fwd_fib(ctx, p, ctx->ingress_ifindex, p->len, &f);

	if (fwd_fib_refused(rc)) {
		drop_count(XLB_DROP_FIB);
		return XDP_DROP;
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_PASS;      /* e.g. no neighbour yet: the stack resolves it */
	if (fwd_rewrite(c, p, &f))
		return XDP_DROP;
	return bpf_redirect(f.ifindex, 0);
}

/* tc on a node device, or on a pod's veth for a pod's flow to a remote backend (xlb_tc: past
 * netfilter, as its replies come back): the same lookup, but a missing neighbour is resolved by the kernel
 * (bpf_redirect_neigh) instead of handing an SNATed packet to the stack; anything else the
 * FIB cannot answer (fragmentation needed, a route through another table) goes up the stack.
 * The skb keeps its checksum state (CHECKSUM_PARTIAL included) through the redirect. */
static __always_inline int fwd_fib_tc(struct __sk_buff *skb, const struct xlb_ctx *c,
				      const struct xlb_pkt *p)
{
	struct bpf_fib_lookup f = {};
	struct bpf_redir_neigh nh = {};
	int rc = fwd_fib(skb, p, skb->ifindex, 0, &f);

	if (fwd_fib_refused(rc)) {
		drop_count(XLB_DROP_FIB);
		return TC_ACT_SHOT;
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* the lookup left the next hop (gateway or destination) in ipv4/ipv6_dst */
		if (fwd_ttl_dec(c, p))
			return TC_ACT_SHOT;
		if (p->v6) {
			nh.nh_family = AF_INET6;
			__builtin_memcpy(nh.ipv6_nh, f.ipv6_dst, 16);
		} else {
			nh.nh_family = AF_INET;
			nh.ipv4_nh = f.ipv4_dst;
		}
		return bpf_redirect_neigh(f.ifindex, &nh, sizeof(nh), 0);
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return TC_ACT_OK;
	if (fwd_rewrite(c, p, &f))
		return TC_ACT_SHOT;
	return bpf_redirect(f.ifindex, 0);
}

/* tc, --local-delivery peer: a translated packet for a pod on this node goes straight into
 * the pod's namespace (bpf_redirect_peer to the host side of its veth), instead of up the
 * host stack to be routed there: no host routing, netfilter FORWARD or second backlog pass.
 * Only to interfaces the agent listed in pod_ifs as veths (a redirect_peer to anything else
 * is dropped by the kernel) and only when the FIB resolves the pod's neighbour; otherwise,
 * and by default, the stack delivers it. The FIB lookup is done on the translated header,
 * so the route the stack would take is the one taken; the TTL is decremented as forwarding
 * would. Policy enforced in the host's FORWARD path (iptables-based NetworkPolicy) does not
 * see these packets: the reason this is an opt-in. */
static __always_inline int fwd_peer_tc(struct __sk_buff *skb, const struct xlb_ctx *c,
				       const struct xlb_pkt *p, const struct xlb_config *cfg)
{
	struct bpf_fib_lookup f = {};
	struct xlb_pod_if_value *pif;

	if (!fwd_on(cfg, XLB_CFG_F_PEER))
		return TC_ACT_OK;
	if (fwd_fib(skb, p, skb->ifindex, 0, &f) != BPF_FIB_LKUP_RET_SUCCESS)
		return TC_ACT_OK;
	pif = bpf_map_lookup_elem(&pod_ifs, &f.ifindex);
	if (!pif || !(pif->flags & XLB_POD_IF_F_PEER) || f.ifindex == skb->ifindex)
		return TC_ACT_OK;
	if (fwd_rewrite(c, p, &f))
		return TC_ACT_SHOT;
	return bpf_redirect_peer(f.ifindex, 0);
}

/* A reply built in place (reject) goes back out of the device it came in on. */
/* tc: a reply xlb reverse-translated (not SNATed) goes to its client by FIB, past netfilter.
 * Netfilter saw the request only after xlb's DNAT, so the reply in its Service-address form
 * matches none of its entries: it would classify it INVALID (kube-proxy's rule drops that)
 * or pick it up mid-stream as a connection of its own, which later sends a client reusing
 * that port to the node itself instead of to kube-proxy's DNAT (a reset after switching off).
 * Into a pod by redirect_peer when that is on; where the FIB cannot answer, the stack. XDP
 * passes replies to the stack (it cannot redirect into a pod's veth, fwd.h above). */
static __always_inline int fwd_reply_tc(struct __sk_buff *skb, const struct xlb_ctx *c,
					const struct xlb_pkt *p, const struct xlb_config *cfg)
{
	int r = fwd_peer_tc(skb, c, p, cfg);

	if (r != TC_ACT_OK || !fwd_on(cfg, XLB_CFG_F_REDIRECT))
		return r;
	return fwd_fib_tc(skb, c, p);
}

static __always_inline int fwd_back_xdp(struct xdp_md *ctx)
{
	return bpf_redirect(ctx->ingress_ifindex, 0);
}

/* The same from tc ingress: redirect to the device's egress. The reply is complete (its
 * checksums computed in full); the skb's checksum state is the request's, which only a veth
 * can make CHECKSUM_PARTIAL, and then every receiver treats the packet as verified. */
static __always_inline int fwd_back_tc(struct __sk_buff *skb)
{
	return bpf_redirect(skb->ifindex, 0);
}

#endif
