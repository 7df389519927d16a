/* xlb datapath: one object with every entry point, so XDP and tc share one set of maps
 * (one pin set, one layout check) without map reuse tricks between objects.
 *   xlb_xdp:    the node's external devices (external scope), in XDP.
 *   xlb_tc_dev: the same devices and the same decision at tc ingress, for devices where XDP
 *               costs more than it saves (a veth copies every cloned or non-linear skb into
 *               an XDP frame, and XDP cannot see CHECKSUM_PARTIAL); the agent picks one per
 *               device (--device-mode).
 *               Both answer ARP and NDP for the LoadBalancer addresses this node announces (announce.h).
 *   xlb_tc:     tc ingress of pod host-side veths, i.e. packets sent by pods (internal scope).
 *   xlb_tc_host: tc egress of pod host-side veths and node devices: replies from Service
 *               endpoints in the node's own namespace, which cross no ingress hook, and
 *               replies of flows netfilter tracks (XLB_CT_F_STACK), after it routed them.
 *   On XDP devices xlb_tc_dev runs at tc ingress as well: XDP leaves non-SNATed replies
 *   (a remote backend's to a local pod) to it, to be sent into the pod past netfilter, and
 *   marks every other packet it passes (XDP metadata, ctx_xdp_mark_done) so tc skips it.
 *   xlb_sock_*: cgroup sock_addr hooks, socket-level load balancing for the node's own
 *               namespace (and pods with --socket-lb all): connect4/6, sendmsg4/6 translate a
 *               frontend to a backend, recvmsg4/6 and getpeername4/6 show the frontend again;
 *               xlb_sock_udp_reap (iter/udp) destroys connected UDP sockets whose backend
 *               is gone. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "include/announce.h"
#include "include/ctx.h"
#include "include/flow.h"
#include "include/fwd.h"
#include "include/maps.h"
#include "include/reject.h"
#include "include/sock.h"

/* Up the stack, marked so xlb_tc_dev at this device's ingress does not decide again (a
 * delivery side effect: not in fixtures, whose rows compare the frame alone). */
static __always_inline int xdp_pass_done(struct xdp_md *ctx, const struct xlb_config *cfg)
{
	if (!(cfg->flags & XLB_CFG_F_FIXTURE))
		ctx_xdp_mark_done(ctx);
	return XDP_PASS;
}

static __always_inline int xdp_verdict(struct xdp_md *ctx, const struct xlb_ctx *c,
				       const struct xlb_pkt *p, const struct xlb_config *cfg, int v)
{
	switch (v) {
	case V_DROP:
		return XDP_DROP;
	case V_REJECT:
		return fwd_back_xdp(ctx);
	case V_REMOTE:
		return fwd_on(cfg, XLB_CFG_F_REDIRECT) ? fwd_fib_xdp(ctx, c, p) : XDP_PASS;
	case V_LOCAL:
		flow_mark_stack(p, cfg);
		return xdp_pass_done(ctx, cfg);
	case V_TC:
		return XDP_PASS;
	default:
		return xdp_pass_done(ctx, cfg);
	}
}

SEC("xdp")
int xlb_xdp(struct xdp_md *ctx)
{
	struct xlb_config *cfg = config_get();
	struct xlb_ctx c = { .ctx = ctx, .tc = 0 };
	struct xlb_pkt p = {};

	if (!cfg)
		return XDP_PASS;
	if (announce_reply(&c))
		return XDP_TX;
	return xdp_verdict(ctx, &c, &p, cfg, flow_process(&c, &p, cfg, XLB_SCOPE_EXTERNAL));
}

/* A translated packet for a local backend: by peer redirect when on and possible, else up the
 * stack, and then its flow stays there (flow_mark_stack). */
static __always_inline int tc_local(struct __sk_buff *skb, const struct xlb_ctx *c,
				    const struct xlb_pkt *p, const struct xlb_config *cfg)
{
	int r = fwd_peer_tc(skb, c, p, cfg);

	if (r == TC_ACT_OK)
		flow_mark_stack(p, cfg);
	return r;
}

static __always_inline int tc_dev_verdict(struct __sk_buff *skb, const struct xlb_ctx *c,
					  const struct xlb_pkt *p, const struct xlb_config *cfg, int v)
{
	switch (v) {
	case V_DROP:
		return TC_ACT_SHOT;
	case V_REJECT:
		return fwd_back_tc(skb);
	case V_REMOTE:
		return fwd_on(cfg, XLB_CFG_F_REDIRECT) ? fwd_fib_tc(skb, c, p) : TC_ACT_OK;
	case V_LOCAL:
		return tc_local(skb, c, p, cfg);
	case V_REPLY:
		return fwd_reply_tc(skb, c, p, cfg);
	default:
		return TC_ACT_OK;
	}
}

SEC("tc")
int xlb_tc_dev(struct __sk_buff *skb)
{
	struct xlb_config *cfg = config_get();
	struct xlb_ctx c = { .ctx = skb, .tc = 1 };
	struct xlb_pkt p = {};

	if (!cfg || ctx_tc_xdp_done(skb))
		return TC_ACT_OK;
	if (announce_reply(&c))
		return bpf_redirect(skb->ifindex, 0);
	return tc_dev_verdict(skb, &c, &p, cfg, flow_process(&c, &p, cfg, XLB_SCOPE_EXTERNAL));
}

/* Back into the pod it came from: to the pod's MAC from the host-side veth's own
 * (reply_macs), transmit on the same host-side veth. */
static __always_inline int tc_bounce(struct __sk_buff *skb, const struct xlb_ctx *c)
{
	struct ethhdr *eth = ctx_ptr(c, 0, ETH_HLEN);

	if (!eth || reply_macs(c, eth, eth)) {
		drop_count(XLB_DROP_REJECT_FAILED);
		return TC_ACT_SHOT;
	}
	return bpf_redirect(skb->ifindex, 0);
}

SEC("tc")
int xlb_tc(struct __sk_buff *skb)
{
	struct xlb_config *cfg = config_get();
	struct xlb_ctx c = { .ctx = skb, .tc = 1 };
	struct xlb_pkt p = {};

	if (!cfg)
		return TC_ACT_OK;
	switch (flow_process(&c, &p, cfg, XLB_SCOPE_INTERNAL)) {
	case V_DROP:
		return TC_ACT_SHOT;
	case V_HAIRPIN:
		return tc_bounce(skb, &c);
	case V_REJECT:
		/* the reply already has its MACs (reply_macs) */
		return bpf_redirect(skb->ifindex, 0);
	case V_LOCAL:
		return tc_local(skb, &c, &p, cfg);
	case V_REMOTE:
		/* by FIB past netfilter, as its replies come back (fwd_reply_tc): netfilter meeting
		 * the request alone would classify the client's next segment INVALID */
		return fwd_on(cfg, XLB_CFG_F_REDIRECT) ? fwd_fib_tc(skb, &c, &p) : TC_ACT_OK;
	case V_REPLY:
		return fwd_reply_tc(skb, &c, &p, cfg);
	default:
		return TC_ACT_OK;
	}
}

SEC("tc")
int xlb_tc_host(struct __sk_buff *skb)
{
	struct xlb_config *cfg = config_get();
	struct xlb_ctx c = { .ctx = skb, .tc = 1 };
	struct xlb_pkt p = {};

	if (!cfg)
		return TC_ACT_OK;
	return flow_host_reply(&c, &p, cfg) == V_DROP ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("cgroup/connect4")
int xlb_sock_connect4(struct bpf_sock_addr *ctx)
{
	return sock_forward(ctx, 0, 0);
}

SEC("cgroup/connect6")
int xlb_sock_connect6(struct bpf_sock_addr *ctx)
{
	return sock_forward(ctx, 0, 1);
}

SEC("cgroup/sendmsg4")
int xlb_sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_forward(ctx, 1, 0);
}

SEC("cgroup/sendmsg6")
int xlb_sock_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock_forward(ctx, 1, 1);
}

SEC("cgroup/recvmsg4")
int xlb_sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	return sock_reverse(ctx, 0);
}

SEC("cgroup/recvmsg6")
int xlb_sock_recvmsg6(struct bpf_sock_addr *ctx)
{
	return sock_reverse(ctx, 1);
}

SEC("cgroup/getpeername4")
int xlb_sock_getpeername4(struct bpf_sock_addr *ctx)
{
	return sock_reverse(ctx, 0);
}

SEC("cgroup/getpeername6")
int xlb_sock_getpeername6(struct bpf_sock_addr *ctx)
{
	return sock_reverse(ctx, 1);
}

SEC("iter/udp")
int xlb_sock_udp_reap(struct bpf_iter__udp *ctx)
{
	struct sock *sk = (struct sock *)ctx->udp_sk;

	if (sk && sock_udp_stale(sk))
		bpf_sock_destroy((struct sock_common *)sk);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
