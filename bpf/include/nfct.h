/* The hitless switch between kube-proxy and xlb: which packets without an xlb conntrack entry
 * xlb leaves to the stack (netfilter and kube-proxy's rules) instead of starting a flow.
 *   XLB_CFG_F_DRAIN: switching off. Every new flow goes to the stack; flows in xlb's conntrack
 *     keep being translated until they close or the agent's --drain-timeout passes.
 *   XLB_CFG_F_NFCT: switching on. A packet whose tuple netfilter conntrack holds as a NATed
 *     connection (kube-proxy's, from before the switch; either direction) is left to it.
 * The conntrack lookup kfuncs (5.18+, nf_conntrack loaded) are weak: on a kernel without
 * them the object loads, the agent's probe leaves XLB_CFG_F_NFCT clear, and every packet of
 * a Service without an xlb entry starts a flow as before. Both families. */
#ifndef XLB_INC_NFCT_H
#define XLB_INC_NFCT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "ctx.h"
#include "maps.h"
#include "parse.h"

/* struct bpf_ct_opts as the first kernels with these kfuncs define it (12 bytes; later
 * kernels accept this size too). netns_id -1: the namespace of the device (or socket). */
struct xlb_ct_opts {
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 dir;
	__u8 reserved[2];
};

#define XLB_CT_OPTS_SZ 12
#define XLB_CURRENT_NETNS (-1)

/* The one field read, relocated against the running kernel (CO-RE). A complete struct, not a
 * forward declaration, also because libbpf matches a kfunc's prototype against the kernel's
 * kind by kind, and a FWD is not a STRUCT there. */
struct nf_conn {
	unsigned long status;
} __attribute__((preserve_access_index));

/* IPS_DST_NAT: netfilter rewrote the destination (kube-proxy's DNAT to an endpoint). */
#define XLB_IPS_DST_NAT (1UL << 5)

extern struct nf_conn *bpf_xdp_ct_lookup(struct xdp_md *ctx, struct bpf_sock_tuple *tuple,
					 __u32 tuple_sz, struct xlb_ct_opts *opts,
					 __u32 opts_sz) __weak __ksym;
extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *ctx, struct bpf_sock_tuple *tuple,
					 __u32 tuple_sz, struct xlb_ct_opts *opts,
					 __u32 opts_sz) __weak __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __weak __ksym;

/* libbpf 1.2+ defines it; the same test for older headers: a weak ksym the kernel lacks
 * resolves to 0, so the verifier sees the call behind it as dead code. */
#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!(sym))
#endif

/* Whether netfilter conntrack holds this packet's tuple (either direction) as a connection it
 * destination-NATed: one kube-proxy serves. Entries without NAT are not kube-proxy's: netfilter
 * also picks up xlb's own flows mid-stream (the translated request, the reverse-translated
 * reply), and a client that reuses such a tuple's port must still start an xlb flow, not be
 * handed to a stack that would deliver it, untranslated, to the node itself. */
static __always_inline int nfct_natted(const struct xlb_ctx *c, const struct xlb_pkt *p)
{
	struct bpf_sock_tuple t = {};
	struct xlb_ct_opts o = { .netns_id = XLB_CURRENT_NETNS, .l4proto = p->proto };
	struct nf_conn *ct;
	int natted;

	__u32 sz;

	if (p->v6) {
		__builtin_memcpy(t.ipv6.saddr, p->saddr.w, sizeof(t.ipv6.saddr));
		__builtin_memcpy(t.ipv6.daddr, p->daddr.w, sizeof(t.ipv6.daddr));
		t.ipv6.sport = p->sport;
		t.ipv6.dport = p->dport;
		sz = sizeof(t.ipv6);
	} else {
		t.ipv4.saddr = p->saddr.w[3];
		t.ipv4.daddr = p->daddr.w[3];
		t.ipv4.sport = p->sport;
		t.ipv4.dport = p->dport;
		sz = sizeof(t.ipv4);
	}
	/* the kernel tells the family by the tuple's size */
	if (c->tc) {
		if (!bpf_ksym_exists(bpf_skb_ct_lookup))
			return 0;
		ct = bpf_skb_ct_lookup(ctx_skb(c), &t, sz, &o, XLB_CT_OPTS_SZ);
	} else {
		if (!bpf_ksym_exists(bpf_xdp_ct_lookup))
			return 0;
		ct = bpf_xdp_ct_lookup(c->ctx, &t, sz, &o, XLB_CT_OPTS_SZ);
	}
	if (!ct)
		return 0;
	natted = (ct->status & XLB_IPS_DST_NAT) != 0;
	bpf_ct_release(ct);
	return natted;
}

/* Whether a packet of a Service frontend that xlb's conntrack does not know is left to the
 * stack instead of starting an xlb flow. */
static __always_inline int nfct_defer(const struct xlb_ctx *c, const struct xlb_pkt *p,
				      const struct xlb_config *cfg)
{
	if (cfg->flags & XLB_CFG_F_DRAIN)
		return 1;
	return (cfg->flags & XLB_CFG_F_NFCT) && nfct_natted(c, p);
}

/* While draining, a hit on one of xlb's reply entries whose tuple netfilter holds as NATed is
 * kube-proxy's: its masquerade, which cannot see xlb's SNAT ports, picked a port that an xlb
 * flow's entry still holds (closed, not yet expired). Left to netfilter, not reverse-NATed to
 * xlb's old client. Only then, as the lookup costs a kfunc call per packet. */
static __always_inline int nfct_reply_theirs(const struct xlb_ctx *c, const struct xlb_pkt *p,
					     const struct xlb_config *cfg)
{
	__u32 both = XLB_CFG_F_DRAIN | XLB_CFG_F_NFCT;

	return (cfg->flags & both) == both && nfct_natted(c, p);
}

#endif
