/* Socket-level load balancing (cgroup sock_addr hooks): a frontend address becomes a backend
 * address when a socket connects (TCP, connected UDP) or sends (unconnected UDP), with the
 * packet path's lookup and selection (lb.h); recvmsg() and getpeername() show the frontend
 * again through sock_rev. No conntrack, no NAT: the socket itself is the flow, its packets
 * leave already addressed to the backend. Sockets of the node's own network namespace
 * (config.netns_cookie) are translated, or every socket with XLB_SOCK_F_ALL.
 *
 * Scope: the internal entries. A ClusterIP follows internalTrafficPolicy; a NodePort, LB IP or
 * externalIP reached from the node gets cluster-wide endpoints, as kube-proxy sends traffic of
 * a LOCAL source to the Service chain. Both families: the v6 hooks read and write user_ip6,
 * every key and value already holds 16-byte addresses. */
#ifndef XLB_INC_SOCK_H
#define XLB_INC_SOCK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "addr.h"
#include "clock.h"
#include "lb.h"
#include "maps.h"
#include "parse.h"

#define SOCK_PROCEED 1
#define SOCK_REJECT 0                 /* the syscall fails; errno from bpf_set_retval */
#define ECONNREFUSED 111
#define EPERM 1

/* The socket's destination in ctx, as an xlb_addr: connect6/sendmsg6/... (v6) read user_ip6,
 * whose v4-mapped form (::ffff:a.b.c.d from a dual-stack socket) is already how the maps key
 * an IPv4 address, so such a connect reaches the IPv4 Service it names, as Cilium does. */
static __always_inline void sock_addr_get(const struct bpf_sock_addr *ctx, struct xlb_addr *a, int v6)
{
	if (!v6) {
		addr4_set(a, ctx->user_ip4);
		return;
	}
	a->w[0] = ctx->user_ip6[0];
	a->w[1] = ctx->user_ip6[1];
	a->w[2] = ctx->user_ip6[2];
	a->w[3] = ctx->user_ip6[3];
}

static __always_inline void sock_addr_put(struct bpf_sock_addr *ctx, const struct xlb_addr *a, int v6)
{
	if (!v6) {
		ctx->user_ip4 = a->w[3];
		return;
	}
	ctx->user_ip6[0] = a->w[0];
	ctx->user_ip6[1] = a->w[1];
	ctx->user_ip6[2] = a->w[2];
	ctx->user_ip6[3] = a->w[3];
}

/* The frontend a socket addresses, if any: an exact entry, else the NodePort entry when the
 * address is this node's (node_addrs, or IPv4 loopback: `curl 127.0.0.1:NODEPORT`). IPv6 ::1
 * is no NodePort, as with kube-proxy: its localhost NodePorts ride on route_localnet, which
 * IPv6 does not have (its ip6tables rules skip ::1). */
static __always_inline struct xlb_svc_value *sock_lookup(const struct xlb_pkt *p,
							 const struct xlb_config *cfg)
{
	struct xlb_svc_key k = { .port = p->dport, .proto = p->proto, .scope = XLB_SCOPE_INTERNAL };

	if (p->v6 || (p->daddr.w[3] & bpf_htonl(0xff000000)) != bpf_htonl(0x7f000000))
		return lb_lookup(p, XLB_SCOPE_INTERNAL, cfg);
	return lb_lookup_nodeport(&k, cfg, 0);
}

static __always_inline int sock_reject(__u32 reason, int err)
{
	drop_count(reason);
	bpf_set_retval(-err);
	return SOCK_REJECT;
}

/* Affinity for a socket is per network namespace: the client address of an unconnected
 * socket is not known yet, and every socket of one namespace has the same one anyway. The
 * key's pad (1) keeps these apart from address keys. */
static __always_inline void sock_affinity_key(struct xlb_affinity_key *ak, __u32 svc_id, __u64 netns)
{
	ak->svc_id = svc_id;
	ak->pad = 1;
	ak->client.w[0] = (__u32)(netns >> 32);
	ak->client.w[1] = (__u32)netns;
	ak->client.w[2] = 0;
	ak->client.w[3] = 0;
}

static __always_inline void sock_key(struct xlb_sock_key *k, __u64 cookie, const struct xlb_addr *addr,
				     __be16 port, __u8 proto, __u8 dir)
{
	k->cookie = cookie;
	k->addr = *addr;
	k->port = port;
	k->proto = proto;
	k->dir = dir;
	k->pad = 0;
}

/* An unconnected UDP socket keeps the backend it got while that backend takes new flows, as
 * a conntrack entry keeps a packet flow on one. */
static __always_inline __u32 sock_sticky(const struct xlb_sock_key *fk, const struct xlb_svc_value *svc)
{
	struct xlb_sock_value *v = bpf_map_lookup_elem(&sock_rev, fk);
	struct xlb_backend *be;

	if (!v || v->svc_id != svc->svc_id)
		return 0;
	be = lb_backend(v->backend_id);
	if (!be || be->state == XLB_BE_DRAINING || !addr_eq(&be->addr, &v->addr) || be->port != v->port)
		return 0;
	return v->backend_id;
}

/* Both entries for a socket that reaches svc (at frontend addr:port) through be. */
static __always_inline void sock_remember(const struct xlb_sock_key *fk, const struct xlb_svc_value *svc,
					  __u32 id, const struct xlb_backend *be)
{
	struct xlb_sock_key rk = *fk;
	struct xlb_sock_value rv = { .addr = fk->addr, .port = fk->port, .svc_id = svc->svc_id, .backend_id = id };
	struct xlb_sock_value fv = { .addr = be->addr, .port = be->port, .svc_id = svc->svc_id, .backend_id = id };

	rk.addr = be->addr;
	rk.port = be->port;
	rk.dir = XLB_SOCK_REV;
	bpf_map_update_elem(&sock_rev, &rk, &rv, BPF_ANY);
	bpf_map_update_elem(&sock_rev, fk, &fv, BPF_ANY);
}

/* The source the packet path would check against loadBalancerSourceRanges: the bound address,
 * else the node's of the destination's family (what the kernel picks toward a Service from
 * the node's namespace). A dual-stack socket's IPv4 source shows v4-mapped. */
static __always_inline void sock_source(struct bpf_sock_addr *ctx, const struct xlb_config *cfg,
					int sendmsg, int v6, struct xlb_pkt *p)
{
	struct xlb_addr *s = &p->saddr;

	if (!v6)
		addr4_set(s, sendmsg ? ctx->msg_src_ip4 : ctx->sk ? ctx->sk->src_ip4 : 0);
	else if (sendmsg) {
		s->w[0] = ctx->msg_src_ip6[0];
		s->w[1] = ctx->msg_src_ip6[1];
		s->w[2] = ctx->msg_src_ip6[2];
		s->w[3] = ctx->msg_src_ip6[3];
	} else if (ctx->sk) {
		s->w[0] = ctx->sk->src_ip6[0];
		s->w[1] = ctx->sk->src_ip6[1];
		s->w[2] = ctx->sk->src_ip6[2];
		s->w[3] = ctx->sk->src_ip6[3];
	} else {
		__builtin_memset(s, 0, sizeof(*s));
	}
	if (p->v6 ? !addr_zero(s) : s->w[3] != 0)
		return;
	*s = p->v6 ? cfg->snat_addr6 : cfg->snat_addr;
}

/* A backend the socket can be pointed at: IPv4 for the v4 hooks; either family for the v6 ones
 * (a v4-mapped frontend has IPv4 backends, which a dual-stack socket reaches v4-mapped). */
static __always_inline int sock_backend_ok(const struct xlb_backend *be, int v6)
{
	if (!be || !be->port)
		return 0;
	return v6 ? !addr_zero(&be->addr) : addr_is4(&be->addr) && be->addr.w[3];
}

/* connect4/6 and sendmsg4/6: frontend -> backend in ctx, or the syscall fails at once. */
static __always_inline int sock_forward(struct bpf_sock_addr *ctx, int sendmsg, int v6)
{
	struct xlb_config *cfg = config_get();
	struct xlb_pkt p = {};
	struct xlb_svc_value *svc;
	struct xlb_affinity_key ak;
	struct xlb_sock_key fk;
	struct xlb_backend *be;
	__u64 netns, now;
	__u32 id = 0;
	int host;

	if (!cfg || (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP))
		return SOCK_PROCEED;
	netns = bpf_get_netns_cookie(ctx);
	host = cfg->netns_cookie && netns == cfg->netns_cookie;
	if (!host && !(cfg->sock_flags & XLB_SOCK_F_ALL))
		return SOCK_PROCEED;
	sock_addr_get(ctx, &p.daddr, v6);
	p.v6 = v6 && !addr_is4(&p.daddr);
	p.dport = (__be16)ctx->user_port;
	p.proto = ctx->protocol;
	svc = sock_lookup(&p, cfg);
	if (!svc)
		return SOCK_PROCEED;
	if (svc->flags & XLB_SVC_F_SRC_RANGES) {
		/* a pod's source is not known before it connects: its packets meet the ranges on
		 * the per-packet path, untranslated here */
		if (!host)
			return SOCK_PROCEED;
		sock_source(ctx, cfg, sendmsg, v6, &p);
		if (!lb_src_allowed(&p, svc))
			return sock_reject(XLB_DROP_SRC_RANGE, EPERM);
	}
	if (!svc->count)
		return sock_reject((svc->flags & XLB_SVC_F_LOCAL) ? XLB_DROP_NO_LOCAL_ENDPOINTS :
				   XLB_DROP_NO_ENDPOINTS, ECONNREFUSED);
	now = xlb_now();
	sock_key(&fk, bpf_get_socket_cookie(ctx), &p.daddr, p.dport, p.proto, XLB_SOCK_FWD);
	if (sendmsg)
		id = sock_sticky(&fk, svc);
	if (!id) {
		sock_affinity_key(&ak, svc->svc_id, netns);
		id = lb_select_as(&p, svc, cfg, &ak, now);
	}
	be = id ? lb_backend(id) : 0;
	if (!sock_backend_ok(be, v6))
		return sock_reject(XLB_DROP_NO_BACKEND, ECONNREFUSED);
	sock_remember(&fk, svc, id, be);
	lb_account(svc->svc_id, 0, 1);
	sock_addr_put(ctx, &be->addr, v6);
	ctx->user_port = (__u32)be->port;
	return SOCK_PROCEED;
}

/* recvmsg4/6 and getpeername4/6: a backend this socket reached through a frontend shows as that
 * frontend. */
static __always_inline int sock_reverse(struct bpf_sock_addr *ctx, int v6)
{
	struct xlb_sock_value *v;
	struct xlb_sock_key k;
	struct xlb_addr a;

	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return SOCK_PROCEED;
	sock_addr_get(ctx, &a, v6);
	sock_key(&k, bpf_get_socket_cookie(ctx), &a, (__be16)ctx->user_port, ctx->protocol, XLB_SOCK_REV);
	v = bpf_map_lookup_elem(&sock_rev, &k);
	if (v && (v6 || addr_is4(&v->addr))) {
		sock_addr_put(ctx, &v->addr, v6);
		ctx->user_port = (__u32)v->port;
	}
	return SOCK_PROCEED;
}

/* ---- connected UDP sockets whose backend went away (iter/udp, bpf_sock_destroy, 6.5+) ----
 * A connected UDP socket keeps the address connect() gave it; when that backend is removed,
 * it would go on sending there (DNS after a CoreDNS restart). The agent runs this iterator over
 * the UDP sockets of its namespace; each one that reached a frontend which no longer selects
 * its backend (removed from the Service, Service gone, id readdressed) is destroyed, so its next send or receive fails (ECONNABORTED) and
 * the application connects again, to a live backend. Kernel types below are CO-RE relocated
 * against the running kernel's BTF (only the fields read). */
struct sock_common {
	union {
		struct {
			__be32 skc_daddr;
			__be32 skc_rcv_saddr;
		};
	};
	union {
		struct {
			__be16 skc_dport;
			__u16 skc_num;
		};
	};
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct in6_addr skc_v6_daddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct udp_sock;
struct bpf_iter_meta;

struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
	__u32 uid;
	int bucket;
} __attribute__((preserve_access_index));

extern int bpf_sock_destroy(struct sock_common *sk) __weak __ksym;

#define SOCK_AF_INET 2
#define SOCK_AF_INET6 10
#define SOCK_ESTABLISHED 1            /* TCP_ESTABLISHED: a connected UDP socket */

#define SOCK_REAP_MAX_SLOTS 1024

/* Whether the frontend still selects the backend: its slots are read until one is missing
 * (a deleted Service has none). Backends are shared by address, so "still exists" is not
 * enough. Larger than we look through: kept. */
static __always_inline int sock_backend_selected(__u32 svc_id, __u32 id)
{
	struct xlb_slot_key sk = { .svc_id = svc_id };

	for (__u32 i = 0; i < SOCK_REAP_MAX_SLOTS; i++) {
		__u32 *s;

		sk.slot = i;
		s = bpf_map_lookup_elem(&slots, &sk);
		if (!s)
			return 0;
		if (*s == id)
			return 1;
	}
	return 1;
}

/* The peer of a connected UDP socket of either family; 0 for anything else. */
static __always_inline int sock_udp_peer(struct sock *sk, struct xlb_addr *a)
{
	if (sk->__sk_common.skc_state != SOCK_ESTABLISHED)
		return 0;
	if (sk->__sk_common.skc_family == SOCK_AF_INET) {
		addr4_set(a, sk->__sk_common.skc_daddr);
		return 1;
	}
	if (sk->__sk_common.skc_family != SOCK_AF_INET6)
		return 0;
	/* in6_addr's layout is ABI; only skc_v6_daddr's offset is relocated */
	return !bpf_probe_read_kernel(a, sizeof(*a), &sk->__sk_common.skc_v6_daddr);
}

static __always_inline int sock_udp_stale(struct sock *sk)
{
	struct xlb_sock_value *v;
	struct xlb_backend *be;
	struct xlb_sock_key k;
	struct xlb_addr a;

	if (!sock_udp_peer(sk, &a))
		return 0;
	sock_key(&k, bpf_get_socket_cookie(sk), &a, sk->__sk_common.skc_dport, IPPROTO_UDP, XLB_SOCK_REV);
	v = bpf_map_lookup_elem(&sock_rev, &k);
	if (!v)
		return 0;
	be = lb_backend(v->backend_id);
	if (!be || !addr_eq(&be->addr, &k.addr) || be->port != k.port)
		return 1;
	return !sock_backend_selected(v->svc_id, v->backend_id);
}

#endif
