/* The per-packet decision shared by both entry points: conntrack hit (forward or reply),
 * else a new flow to a Service. Returns a verdict; the entry point maps it to XDP/tc codes. */
#ifndef XLB_INC_FLOW_H
#define XLB_INC_FLOW_H

#include "addr.h"
#include "clock.h"
#include "ct.h"
#include "ctx.h"
#include "fcache.h"
#include "icmperr.h"
#include "lb.h"
#include "maps.h"
#include "nat.h"
#include "nfct.h"
#include "parse.h"
#include "reject.h"

enum xlb_verdict {
	V_PASS = 0,       /* not ours, untouched */
	V_DROP,           /* counted already */
	V_REJECT,         /* packet replaced by a reject reply to its sender */
	V_LOCAL,          /* translated; destination is on this node: up the stack */
	V_REMOTE,         /* translated; must leave the node again (XDP: FIB + redirect) */
	V_HAIRPIN,        /* translated; back into the pod it came from (tc) */
	V_REPLY,          /* reverse-translated reply, not SNATed: forwarded past netfilter (nfct.h) */
	V_LOCAL_STACK,    /* translated; local backend of a flow netfilter tracks (XLB_CT_F_STACK):
			   * up the stack, never by redirect */
	V_TC,             /* XDP only: untouched, a reply xlb_tc_dev at this device sends on */
};

#define SNAT_PROBES 16

static __always_inline int flow_drop(__u32 reason)
{
	drop_count(reason);
	return V_DROP;
}

static __always_inline int flow_ttl_ok(const struct xlb_pkt *p)
{
	return p->ttl > 1;
}

/* A new flow's source must be an address a reply may go to (RFC 1122 3.2.1.3, 3.3.6): not
 * 0.0.0.0/8, loopback, multicast, class E (with 255.255.255.255) or the broadcast address of
 * a node device's subnet (node_addrs, flagged by the agent). The kernel drops such sources as
 * martians before kube-proxy's rules see them; a reject, or a translated flow whose replies
 * go back to one, would make xlb a reflector. */
static __always_inline int flow_src_ok(const struct xlb_pkt *p)
{
	__u32 a = bpf_ntohl(p->saddr.w[3]) >> 24;
	struct xlb_node_addr_value *na;

	if (p->v6) {
		/* IPv6: the unspecified address, loopback, multicast, and v4-mapped sources (never
		 * on the wire, RFC 4291 2.5.5.2) */
		if (addr_is4(&p->saddr) || (bpf_ntohl(p->saddr.w[0]) >> 24) == 0xff)
			return 0;
		return (p->saddr.w[0] | p->saddr.w[1] | p->saddr.w[2]) ||
		       bpf_ntohl(p->saddr.w[3]) > 1;
	}
	if (a == 0 || a == 127 || a >= 224)
		return 0;
	na = bpf_map_lookup_elem(&node_addrs, &p->saddr);
	return !na || !(na->flags & XLB_NODE_ADDR_F_BROADCAST);
}

/* Whether an established flow stays on its backend. TCP connections drain on a backend that
 * left the Service or stopped serving (as kube-proxy's conntrack keeps them); a UDP flow
 * moves at once, as kube-proxy deletes the UDP conntrack entries of such endpoints: a client
 * that keeps its socket (a DNS resolver) would otherwise talk to a dead pod for as long as it
 * keeps talking. */
static __always_inline int flow_be_keeps(const struct xlb_backend *be, const struct xlb_pkt *p)
{
	return p->proto != IPPROTO_UDP || be->state != XLB_BE_DRAINING;
}

/* Whether a reply from this source port may be one xlb_tc_host translates (stack_ports). */
static __always_inline int flow_stack_port(__be16 port)
{
	__u32 w = bpf_ntohs(port) >> 6;
	__u64 *bits = bpf_map_lookup_elem(&stack_ports, &w);

	return bits && ((*bits >> (bpf_ntohs(port) & 63)) & 1);
}

/* A local backend's port got a request up the stack: its replies are looked up at egress. */
static __always_inline void flow_stack_port_set(__be16 port)
{
	__u32 w = bpf_ntohs(port) >> 6;
	__u64 bit = 1ULL << (bpf_ntohs(port) & 63);
	__u64 *bits = bpf_map_lookup_elem(&stack_ports, &w);

	/* read first: the word is written once per port, not once per flow */
	if (bits && !(*bits & bit))
		__sync_fetch_and_or(bits, bit);
}

/* The cached rewrite for this packet, or -1 to take the ct path. An entry is used only while
 * fresh, of the current generation, and (forward) while its backend still exists as cached. */
static __always_inline int flow_cached(const struct xlb_ctx *c, struct xlb_pkt *p,
				       const struct xlb_config *cfg)
{
	struct xlb_flow_cache_entry *e;

	if (!fc_cacheable(p, cfg) || !flow_ttl_ok(p))
		return -1;
	e = fc_find(c, p, cfg);
	/* XDP leaves non-SNATed replies to tc (flow_process_fam), whose hits share the cache */
	if (!e || (!c->tc && e->verdict == V_REPLY))
		return -1;
	if (e->backend_id) {
		/* not lb_backend: e->dst is a backend's address, never all zero, so a slot that
		 * holds it holds a backend */
		struct xlb_backend *be = bpf_map_lookup_elem(&backends, &e->backend_id);

		if (!be || !addr_eq8(&be->addr, &e->dst) || be->port != e->dport ||
		    !flow_be_keeps(be, p))
			return -1;
	}
	lb_account(e->svc_id, p->len, 0);
	if (!c->tc) {
		if (p->v6 ? nat_xdp_rewrite(c, p, 1, e->rewrite & FC_DST, &e->dst, e->dport,
					    e->rewrite & FC_SRC, &e->src, e->sport, e->sum_l3,
					    e->sum_l4) :
			    nat_xdp_rewrite(c, p, 0, e->rewrite & FC_DST, &e->dst, e->dport,
					    e->rewrite & FC_SRC, &e->src, e->sport, e->sum_l3,
					    e->sum_l4))
			return flow_drop(XLB_DROP_TRUNCATED);
		return e->verdict;
	}
	if ((e->rewrite & FC_DST) && nat_end(c, p, 1, &e->dst, e->dport))
		return flow_drop(XLB_DROP_TRUNCATED);
	if ((e->rewrite & FC_SRC) && nat_end(c, p, 0, &e->src, e->sport))
		return flow_drop(XLB_DROP_TRUNCATED);
	return e->verdict;
}

/* Translate a packet of an established flow, forward direction. */
static __always_inline int flow_fwd(const struct xlb_ctx *c, struct xlb_pkt *p,
				    const struct xlb_ct_key *k, struct xlb_ct_value *v,
				    const struct xlb_backend *be, const struct xlb_config *cfg,
				    __u64 now)
{
	struct xlb_flow_cache_entry *e = fc_cacheable(p, cfg) ? fc_slot(c, p, cfg) : 0;
	__u32 svc_id = v->svc_id;
	__u8 flags = v->flags;
	int verdict;

	ct_touch(k, v, p, be, now);
	lb_account(svc_id, p->len, 0);
	if (nat_forward(c, p, be, v))
		return flow_drop(XLB_DROP_TRUNCATED);
	if (flags & XLB_CT_F_HAIRPIN) {
		verdict = V_HAIRPIN;
	} else if (flags & XLB_CT_F_STACK) {
		/* again on every uncached packet: a stack_ports newer than the flow (an upgrade)
		 * learns its port before most of its replies leave */
		flow_stack_port_set(be->port);
		verdict = V_LOCAL_STACK;
	} else {
		verdict = (flags & XLB_CT_F_LOCAL_BE) ? V_LOCAL : V_REMOTE;
	}
	e = fc_begin(e, k, v, p, cfg, now);
	if (e)
		fc_set_fwd(e, v, be, flags, verdict, p->v6);
	return verdict;
}

/* cache: 0 at egress, whose rewrite ingress hooks must never find in the flow cache (a reply
 * of a XLB_CT_F_STACK flow is translated only after netfilter). */
static __always_inline int flow_reply(const struct xlb_ctx *c, struct xlb_pkt *p,
				      const struct xlb_ct_key *k, struct xlb_ct_value *v,
				      const struct xlb_config *cfg, __u64 now, int cache)
{
	struct xlb_flow_cache_entry *e;
	struct xlb_ct_value nv = *v;
	int verdict;

	if (!flow_ttl_ok(p))
		return flow_drop(XLB_DROP_TTL);
	e = cache && fc_cacheable(p, cfg) ? fc_slot(c, p, cfg) : 0;
	ct_touch(k, v, p, 0, now);
	lb_account(nv.svc_id, p->len, 0);
	if (nat_reply(c, p, &nv))
		return flow_drop(XLB_DROP_TRUNCATED);
	if (nv.flags & XLB_CT_F_HAIRPIN)
		verdict = V_HAIRPIN;
	else /* an SNATed reply goes back to an external client; otherwise to its client */
		verdict = (nv.flags & XLB_CT_F_SNAT) ? V_REMOTE : V_REPLY;
	e = fc_begin(e, k, v, p, cfg, now);
	if (e)
		fc_set_reply(e, &nv, verdict, p->v6);
	return verdict;
}

/* Whether the agent left this SNAT port out (snat_skip: a port the node itself uses). */
static __always_inline int flow_snat_skipped(__u16 port)
{
	__u32 w = port >> 6;
	__u64 *bits = bpf_map_lookup_elem(&snat_skip, &w);

	return bits && ((*bits >> (port & 63)) & 1);
}

/* Reply entry for a SNAT flow: up to SNAT_PROBES ports of the SNAT range, each drawn at
 * random so flows spread over the whole range (a fixed stride from the flow hash made flows
 * probe the same few ports), skipping ports the node uses; the first probe keeps the
 * client's port for hairpin. A port is taken when its reply slot is free, its flow expired
 * (never-established flows expire after tcp_syn_timeout), or it is the same client's. */
static __always_inline int flow_snat_insert(struct xlb_ct_key *rk, struct xlb_ct_value *rv,
					    struct xlb_ct_value *fv, const struct xlb_config *cfg,
					    const struct xlb_pkt *p, int keep_port, __u64 now)
{
	__u32 range = cfg->snat_port_max - cfg->snat_port_min + 1;

	for (int i = 0; i < SNAT_PROBES; i++) {
		struct xlb_ct_value *old;
		__u16 hp = cfg->snat_port_min + bpf_get_prandom_u32() % range;
		__be16 port = (i == 0 && keep_port) ? p->sport : bpf_htons(hp);

		if (!(i == 0 && keep_port) && flow_snat_skipped(hp))
			continue;
		rk->dport = port;
		fv->nat_port = port;
		if (!bpf_map_update_elem(&ct, rk, rv, BPF_NOEXIST))
			return 0;
		old = bpf_map_lookup_elem(&ct, rk);
		if (old && (ct_expired(cfg, old, now) ||
			    (addr_eq(&old->orig_addr, &rv->orig_addr) &&
			     old->orig_port == rv->orig_port))) {
			bpf_map_update_elem(&ct, rk, rv, BPF_ANY);
			return 0;
		}
	}
	return -1;
}

/* Both CT entries of a new flow. */
static __always_inline int flow_ct_create(const struct xlb_pkt *p, const struct xlb_ct_key *fk,
					  struct xlb_ct_value *fv, const struct xlb_backend *be,
					  const struct xlb_config *cfg, __u64 now)
{
	struct xlb_ct_key rk = { .saddr = be->addr, .sport = be->port, .proto = p->proto };
	struct xlb_ct_value rv = {
		.nat_addr = fk->daddr, .nat_port = fk->dport,
		.orig_addr = fk->saddr, .orig_port = fk->sport,
		.backend_id = fv->backend_id, .svc_id = fv->svc_id, .state = fv->state,
		.flags = fv->flags | XLB_CT_F_REPLY, .last_seen = now, .created = now,
	};

	if (fv->flags & XLB_CT_F_SNAT) {
		rk.daddr = fv->nat_addr;
		if (flow_snat_insert(&rk, &rv, fv, cfg, p, fv->flags & XLB_CT_F_HAIRPIN, now))
			return XLB_DROP_SNAT_EXHAUSTED;
	} else {
		rk.daddr = fk->saddr;
		rk.dport = fk->sport;
		bpf_map_update_elem(&ct, &rk, &rv, BPF_ANY);
	}
	if (bpf_map_update_elem(&ct, fk, fv, BPF_ANY))
		return XLB_DROP_CT_FULL;
	return 0;
}

/* Whether (and to what) the source is translated for a new flow. */
static __always_inline int flow_snat_addr(struct xlb_ct_value *fv, const struct xlb_pkt *p,
					  const struct xlb_svc_value *svc,
					  const struct xlb_backend *be,
					  const struct xlb_config *cfg, __u8 scope)
{
	if (be->flags & XLB_BE_F_LOCAL)
		fv->flags |= XLB_CT_F_LOCAL_BE;
	if (scope == XLB_SCOPE_INTERNAL) {
		if (!addr_eq(&be->addr, &p->saddr))
			return 0;
		fv->flags |= XLB_CT_F_SNAT | XLB_CT_F_HAIRPIN;
		fv->nat_addr = p->v6 ? cfg->hairpin_addr6 : cfg->hairpin_addr;
	} else {
		fv->flags |= XLB_CT_F_EXTERNAL;
		if ((svc->flags & XLB_SVC_F_LOCAL) || (be->flags & XLB_BE_F_LOCAL))
			return 0;
		fv->flags |= XLB_CT_F_SNAT;
		fv->nat_addr = p->v6 ? cfg->snat_addr6 : cfg->snat_addr;
	}
	/* an address of the packet's family, set */
	if (p->v6)
		return addr_zero(&fv->nat_addr) || addr_is4(&fv->nat_addr) ? XLB_DROP_NO_CONFIG : 0;
	return fv->nat_addr.w[3] ? 0 : XLB_DROP_NO_CONFIG;
}

/* old: the flow's closed or expired forward entry, when the client reuses its tuple. */
static __always_inline int flow_new(const struct xlb_ctx *c, struct xlb_pkt *p,
				    const struct xlb_ct_key *k, const struct xlb_config *cfg,
				    __u8 scope, struct xlb_ct_value *old, __u64 now)
{
	struct xlb_svc_value *svc = lb_lookup(p, scope, cfg);
	struct xlb_ct_value fv = { .state = ct_initial_state(p), .last_seen = now, .created = now };
	struct xlb_backend *be;
	int r, stack, reuse = old != 0;

	if (!svc)
		return V_PASS;
	if (nfct_defer(c, p, cfg)) {
		if (old)
			ct_retire(k, old, lb_backend(old->backend_id));
		return V_PASS;
	}
	if (!flow_src_ok(p))
		return flow_drop(XLB_DROP_BAD_SOURCE);
	if (!p->has_l4) {
		/* a later fragment whose flow is gone or moved: its datagram went elsewhere, so it
		 * is never balanced anew; passed untouched and counted, as an untracked one */
		drop_count(XLB_DROP_FRAG_UNTRACKED);
		return V_PASS;
	}
	if (!flow_ttl_ok(p))
		return flow_drop(XLB_DROP_TTL);
	if (!lb_src_allowed(p, svc))
		return flow_drop(XLB_DROP_SRC_RANGE);
	if (!svc->count) {
		if (svc->flags & XLB_SVC_F_LOCAL)
			return flow_drop(XLB_DROP_NO_LOCAL_ENDPOINTS);
		/* One reason per packet: an RST is never answered (dropped as no_endpoints), a
		 * reply that cannot be built is reject_failed, a reply sent is no_endpoints. */
		if (p->proto == IPPROTO_TCP && (p->tcp_flags & TCPF_RST))
			return flow_drop(XLB_DROP_NO_ENDPOINTS);
		if (reject_pkt(c, p))
			return flow_drop(XLB_DROP_REJECT_FAILED);
		drop_count(XLB_DROP_NO_ENDPOINTS);
		return V_REJECT;
	}
	if (!reuse && ct_admit(cfg))
		return flow_drop(XLB_DROP_CT_FULL);
	fv.svc_id = svc->svc_id;
	fv.backend_id = lb_select(p, svc, cfg, now);
	be = fv.backend_id ? lb_backend(fv.backend_id) : 0;
	/* a backend of the other family cannot take the packet (no NAT46); 0.0.0.0 is none */
	if (!be || !be->port || addr_is4(&be->addr) == p->v6 || (!p->v6 && !be->addr.w[3]))
		return flow_drop(XLB_DROP_NO_BACKEND);
	r = flow_snat_addr(&fv, p, svc, be, cfg, scope);
	/* XDP sends every request for a local backend up the stack (V_LOCAL), after which
	 * netfilter tracks the flow: both entries are made XLB_CT_F_STACK here, as
	 * flow_mark_stack would make them after the translation, at the cost of two more ct
	 * lookups per new flow. Fixtures check the NAT decision alone (flow_mark_stack). */
	stack = !c->tc && !(cfg->flags & XLB_CFG_F_FIXTURE) &&
		(fv.flags & (XLB_CT_F_LOCAL_BE | XLB_CT_F_SNAT | XLB_CT_F_HAIRPIN)) == XLB_CT_F_LOCAL_BE;
	if (stack)
		fv.flags |= XLB_CT_F_STACK;
	if (!r)
		r = flow_ct_create(p, k, &fv, be, cfg, now);
	if (r)
		return flow_drop(r);
	if (!reuse)
		ct_admitted();
	if (p->frag == FRAG_FIRST)
		parse_frag_first(p);
	lb_account(fv.svc_id, p->len, 1);
	if (nat_forward(c, p, be, &fv))
		return flow_drop(XLB_DROP_TRUNCATED);
	if (stack) {
		/* the port flow_mark_stack arms the egress with: the backend's, now p->dport */
		flow_stack_port_set(be->port);
		return V_LOCAL_STACK;
	}
	if (fv.flags & XLB_CT_F_HAIRPIN)
		return V_HAIRPIN;
	return (fv.flags & XLB_CT_F_LOCAL_BE) ? V_LOCAL : V_REMOTE;
}

/* An error from a local backend about a flow netfilter tracks (XLB_CT_F_STACK) goes up the
 * stack untouched, as the flow's replies do, for netfilter to relate to the connection it
 * knows in backend form; the egress translates it (flow_host_icmp). */
static __always_inline int flow_icmp(const struct xlb_ctx *c, struct xlb_pkt *p)
{
	struct xlb_icmp_res res = {};
	struct xlb_inner in = {};
	struct xlb_ct_key k = {};
	struct xlb_ct_value *v;
	int r;

	if (!icmp_is_error(p))
		return V_PASS;
	r = icmp_error_flow(c, p, &in, &k, &v);
	if (r > 0)
		return V_PASS;
	if (r < 0)
		return flow_drop(XLB_DROP_ICMP_INNER);
	if ((v->flags & (XLB_CT_F_REPLY | XLB_CT_F_STACK)) == (XLB_CT_F_REPLY | XLB_CT_F_STACK))
		return V_PASS;
	if (icmp_error_nat(c, p, &in, &k, v, &res))
		return flow_drop(XLB_DROP_ICMP_INNER);
	if (res.snat)
		return V_REMOTE;
	return V_LOCAL;
}

/* Carry-over (DESIGN §5): a start that replaced the ct map (another layout) copies the old
 * map's flows into the new one, switches the links to its programs, then copies once more the
 * flows the previous programs made meanwhile. Until that last copy a packet of such a flow meets
 * no entry here: translated anew it could reach another backend, passed untranslated the stack
 * or the client would answer it with a reset, and the connection is lost. So while
 * config.carry_until (CLOCK_MONOTONIC seconds, a bound the agent clears after its copy) lies
 * ahead, a TCP packet that misses and is no SYN is dropped and counted (ct_carry) when the
 * previous programs may have translated its flow: a request to a frontend, anything from a pod
 * (a local backend's reply), a reply to the SNAT address within the SNAT ports, and at egress a
 * reply from a local backend's port (flow_host_reply). TCP sends it again after the copy. A SYN
 * starts a new flow as always; UDP is never held (a datagram at worst meets another backend). */
static __always_inline int flow_carrying(const struct xlb_config *cfg, const struct xlb_pkt *p,
					 __u64 now)
{
	return cfg->carry_until && p->proto == IPPROTO_TCP &&
	       (p->tcp_flags & (TCPF_SYN | TCPF_ACK)) != TCPF_SYN && now / NSEC < cfg->carry_until;
}

static __always_inline int flow_carry_held(const struct xlb_pkt *p, const struct xlb_config *cfg,
					   __u8 scope)
{
	const struct xlb_addr *snat = p->v6 ? &cfg->snat_addr6 : &cfg->snat_addr;
	__u16 port = bpf_ntohs(p->dport);

	if (scope == XLB_SCOPE_INTERNAL || lb_lookup(p, scope, cfg))
		return 1;
	return addr_eq(&p->daddr, snat) && port >= cfg->snat_port_min && port <= cfg->snat_port_max;
}

/* Egress of pod veths and node devices: a reply the node itself sends from a Service endpoint
 * in its own namespace (a hostNetwork pod, the API server), which crosses no ingress hook, and
 * a reply of a flow whose request went up the stack (XLB_CT_F_STACK), which netfilter has
 * routed in its backend form. Both are reverse-translated here, after netfilter; anything
 * else, and whatever does not parse, passes untouched (the node's own traffic is not ours to
 * judge). */
/* Whether the egress translates the reply of this entry: a flow netfilter tracks, or one whose
 * backend is the node itself. */
static __always_inline int flow_host_owns(const struct xlb_ct_key *k, const struct xlb_ct_value *v)
{
	if (!(v->flags & XLB_CT_F_REPLY))
		return 0;
	return (v->flags & XLB_CT_F_STACK) || bpf_map_lookup_elem(&node_addrs, &k->saddr);
}

/* An ICMP error at the egress about a flow whose replies it translates (a local backend's,
 * left untouched at its veth by flow_icmp): translated as those replies are. */
static __always_inline int flow_host_icmp(const struct xlb_ctx *c, struct xlb_pkt *p)
{
	struct xlb_icmp_res res = {};
	struct xlb_inner in = {};
	struct xlb_ct_key k = {};
	struct xlb_ct_value *v;

	/* k.sport: the quoted request's destination port, the backend's */
	if (!icmp_is_error(p) || icmp_error_flow(c, p, &in, &k, &v) || !flow_stack_port(k.sport) ||
	    !flow_host_owns(&k, v))
		return V_PASS;
	return icmp_error_nat(c, p, &in, &k, v, &res) ? flow_drop(XLB_DROP_ICMP_INNER) : V_LOCAL;
}

static __always_inline int flow_host_reply_fam(const struct xlb_ctx *c, struct xlb_pkt *p,
					       const struct xlb_config *cfg)
{
	struct xlb_ct_key k;
	struct xlb_ct_value *v;

	if (parse_pkt(c, p) != PARSE_OK)
		return V_PASS;
	if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6)
		return flow_host_icmp(c, p);
	if ((p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP) || p->udp0 ||
	    !flow_stack_port(p->sport))
		return V_PASS;
	ct_key_of(&k, p);
	v = bpf_map_lookup_elem(&ct, &k);
	if (!v && flow_carrying(cfg, p, xlb_now()))
		return flow_drop(XLB_DROP_CT_CARRY);
	if (!v || !flow_host_owns(&k, v))
		return V_PASS;
	if (p->frag == FRAG_FIRST)
		parse_frag_first(p);
	return flow_reply(c, p, &k, v, cfg, xlb_now(), 0);
}

/* Per family, as flow_process. */
static __always_inline int flow_host_reply(const struct xlb_ctx *c, struct xlb_pkt *p,
					   const struct xlb_config *cfg)
{
	if (parse_is6(c)) {
		p->v6 = 1;
		return flow_host_reply_fam(c, p, cfg);
	}
	p->v6 = 0;
	return flow_host_reply_fam(c, p, cfg);
}

/* The decision for a packet of the family flow_process() set in p->v6. */
static __always_inline int flow_process_fam(const struct xlb_ctx *c, struct xlb_pkt *p,
					    const struct xlb_config *cfg, __u8 scope)
{
	struct xlb_ct_key k;
	struct xlb_ct_value *v;
	struct xlb_backend *be;
	int r;
	__u64 now;

	r = parse_pkt(c, p);
	if (r == PARSE_PASS)
		return V_PASS;
	if (r == XLB_DROP_FRAG_UNTRACKED) {
		drop_count(r);                /* counted, passed untouched: never translated */
		return V_PASS;
	}
	if (r)
		return flow_drop(r);
	if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6)
		return flow_icmp(c, p);
	r = flow_cached(c, p, cfg);
	if (r >= 0)
		return r;
	ct_key_of(&k, p);
	v = bpf_map_lookup_elem(&ct, &k);
	/* IPv6 UDP with checksum zero (RFC 8200 8.1: the receiver discards it): dropped and
	 * counted when it belongs to a flow or frontend of ours, passed untouched otherwise */
	if (p->udp0)
		return (v || lb_lookup(p, scope, cfg)) ? flow_drop(XLB_DROP_BAD_CSUM) : V_PASS;
	now = xlb_now();
	if (v) {
		/* a flow's datagram can fragment at any time, in either direction: its later
		 * fragments find their ports through the first, whichever path takes it */
		if (p->frag == FRAG_FIRST)
			parse_frag_first(p);
		if (v->flags & XLB_CT_F_REPLY) {
			/* netfilter tracks the flow: the reply goes up the stack in backend form,
			 * to be reverse-translated where it leaves (flow_host_reply). XDP cannot
			 * send a reply into a pod's veth past netfilter: tc at the device does. */
			if (v->flags & XLB_CT_F_STACK)
				return V_PASS;
			if (!c->tc && !(v->flags & XLB_CT_F_SNAT))
				return V_TC;
			return nfct_reply_theirs(c, p, cfg) ? V_PASS : flow_reply(c, p, &k, v, cfg, now, 1);
		}
		if (!ct_expired(cfg, v, now) && !ct_reopened(v, p)) {
			if (!flow_ttl_ok(p))
				return flow_drop(XLB_DROP_TTL);
			be = lb_backend(v->backend_id);
			if (be && flow_be_keeps(be, p))
				return flow_fwd(c, p, &k, v, be, cfg, now);
			if (be) {
				/* the flow moves: the old backend's reply entry goes with it */
				struct xlb_ct_key rk;

				ct_peer_key(&rk, &k, v, be);
				bpf_map_delete_elem(&ct, &rk);
			}
		}
	} else if (flow_carrying(cfg, p, now) && flow_carry_held(p, cfg, scope)) {
		return flow_drop(XLB_DROP_CT_CARRY);
	}
	return flow_new(c, p, &k, cfg, scope, v, now);
}

/* A translated packet to a local backend went up the stack (no peer redirect): netfilter now
 * tracks its flow in backend form, so both entries get XLB_CT_F_STACK and every later packet
 * goes the same way (V_LOCAL_STACK forward, V_PASS reply). p holds the translated header;
 * local backends are never SNATed, so the reply entry's key is p reversed. Anything else
 * (a translated ICMP error) finds no such entry. Part of the delivery, which fixtures turn
 * off (XLB_CFG_F_FIXTURE: they check the NAT decision alone); rows without it check this. */
static __always_inline void flow_mark_stack(const struct xlb_pkt *p, const struct xlb_config *cfg)
{
	struct xlb_ct_key rk = { .saddr = p->daddr, .daddr = p->saddr, .sport = p->dport,
				 .dport = p->sport, .proto = p->proto };
	struct xlb_ct_key fk = { .proto = p->proto };
	struct xlb_ct_value *v;

	/* the port first, fixtures too: it arms the egress, which fixture rows check */
	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP)
		flow_stack_port_set(p->dport);
	if (cfg->flags & XLB_CFG_F_FIXTURE)
		return;
	v = bpf_map_lookup_elem(&ct, &rk);
	if (!v || (v->flags & (XLB_CT_F_SNAT | XLB_CT_F_STACK)) != 0 ||
	    (v->flags & (XLB_CT_F_REPLY | XLB_CT_F_LOCAL_BE)) != (XLB_CT_F_REPLY | XLB_CT_F_LOCAL_BE))
		return;
	v->flags |= XLB_CT_F_STACK;
	fk.saddr = v->orig_addr;
	fk.sport = v->orig_port;
	fk.daddr = v->nat_addr;
	fk.dport = v->nat_port;
	v = bpf_map_lookup_elem(&ct, &fk);
	if (v && !(v->flags & XLB_CT_F_REPLY))
		v->flags |= XLB_CT_F_STACK;
}

/* The whole decision for one packet, with the config the entry point looked up. One decision
 * for both families, inlined once: the verifier tracks p->v6 (struct xlb_pkt) and walks each
 * family's paths alone. clang does not drop the other family's branches: &p->saddr reaches a
 * helper (flow_src_ok), so it reloads p->v6 after calls. Inlining this once per family
 * doubled xlb_xdp and measured no faster (test/bench/datapath.ts); a copy of the address
 * for that lookup (or the ct key's) lets clang split p, which takes xlb_xdp past 512 bytes
 * of stack. The hit path's per-family savings are in fcache.h (IPv4: last address words and
 * the entry's family; IPv6: the header's addresses in 8-byte halves) and nat.h instead. */
static __always_inline int flow_process(const struct xlb_ctx *c, struct xlb_pkt *p,
					const struct xlb_config *cfg, __u8 scope)
{
	p->v6 = parse_is6(c);
	return flow_process_fam(c, p, cfg, scope);
}

#endif
