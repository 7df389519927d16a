/* Connection tracking: keys from packets, expiry by TCP/UDP state, state transitions, and
 * admission ("full") control. Each flow has a forward entry (as the client sends) and a reply
 * entry (as the backend answers). "Full" with an LRU map: the LRU would silently evict live
 * flows, so admission is counted instead: ct_fill[0] (flows the datapath created) minus
 * ct_fill[1] (flows the agent's sweep released) must stay below config.ct_limit, which the
 * loader sets with headroom below max_entries/2 so LRU eviction never has to take a live entry. */
#ifndef XLB_INC_CT_H
#define XLB_INC_CT_H

#include "addr.h"
#include "clock.h"
#include "maps.h"
#include "parse.h"

static __always_inline void ct_key_of(struct xlb_ct_key *k, const struct xlb_pkt *p)
{
	k->saddr = p->saddr;
	k->daddr = p->daddr;
	k->sport = p->sport;
	k->dport = p->dport;
	k->proto = p->proto;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
}

static __always_inline __u64 ct_timeout(const struct xlb_config *cfg, __u8 state)
{
	__u32 s;

	switch (state) {
	case XLB_CT_SYN:
	case XLB_CT_SYN_RECV: s = cfg->tcp_syn_timeout; break;
	case XLB_CT_ESTABLISHED: s = cfg->tcp_est_timeout; break;
	case XLB_CT_FIN: s = cfg->tcp_fin_timeout; break;
	case XLB_CT_CLOSED: s = cfg->tcp_close_timeout; break;
	case XLB_CT_UDP_NEW: s = cfg->udp_new_timeout; break;
	default: s = cfg->udp_timeout; break;
	}
	return (__u64)s * NSEC;
}

static __always_inline int ct_expired(const struct xlb_config *cfg, const struct xlb_ct_value *v,
				      __u64 now)
{
	/* a stamp ahead of the coarse clock (written by user space) is fresh, not wrapped */
	return now > v->last_seen && now - v->last_seen > ct_timeout(cfg, v->state);
}

/* New state after a packet with these TCP flags; reply says it came from the backend. A flow
 * is established only when the client's ACK completes the handshake (netfilter's SYN_SENT ->
 * SYN_RECV -> ESTABLISHED): a backend answers every SYN, spoofed ones too, so its SYN-ACK
 * alone would give a spoofed SYN flood the established timeout (hours) and fill the table. */
static __always_inline __u8 ct_next_state(__u8 st, const struct xlb_pkt *p, int reply)
{
	__u8 f = p->tcp_flags & (TCPF_SYN | TCPF_ACK);

	if (p->proto != IPPROTO_TCP)
		return (reply || st == XLB_CT_UDP) ? XLB_CT_UDP : XLB_CT_UDP_NEW;
	if (p->tcp_flags & TCPF_RST)
		return XLB_CT_CLOSED;
	if (p->tcp_flags & TCPF_FIN)
		return st == XLB_CT_CLOSED ? st : XLB_CT_FIN;
	if (st == XLB_CT_SYN && reply && f == (TCPF_SYN | TCPF_ACK))
		return XLB_CT_SYN_RECV;
	if (st == XLB_CT_SYN_RECV && !reply && f == TCPF_ACK)
		return XLB_CT_ESTABLISHED;
	return st;
}

/* A SYN on the tuple of a flow that closed is a new connection reusing the client's port (as
 * conntrack treats it): it is balanced anew rather than sent to the old flow's backend, which
 * may be one kept only to drain. A SYN while the flow is open is a retransmission: it stays. */
static __always_inline int ct_reopened(const struct xlb_ct_value *v, const struct xlb_pkt *p)
{
	return p->proto == IPPROTO_TCP && (p->tcp_flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN &&
	       (v->state == XLB_CT_FIN || v->state == XLB_CT_CLOSED);
}

static __always_inline __u8 ct_initial_state(const struct xlb_pkt *p)
{
	if (p->proto != IPPROTO_TCP)
		return XLB_CT_UDP_NEW;
	return (p->tcp_flags & TCPF_SYN) ? XLB_CT_SYN : XLB_CT_ESTABLISHED;
}

/* The other entry of the flow, rebuilt from this one, so state changes reach both. */
static __always_inline void ct_peer_key(struct xlb_ct_key *pk, const struct xlb_ct_key *k,
					const struct xlb_ct_value *v, const struct xlb_backend *be)
{
	pk->proto = k->proto;
	pk->pad[0] = pk->pad[1] = pk->pad[2] = 0;
	if (v->flags & XLB_CT_F_REPLY) {
		/* forward = client -> frontend */
		pk->saddr = v->orig_addr;
		pk->sport = v->orig_port;
		pk->daddr = v->nat_addr;
		pk->dport = v->nat_port;
		return;
	}
	/* reply = backend -> (snat address | client) */
	if (!be)
		return;
	pk->saddr = be->addr;
	pk->sport = be->port;
	if (v->flags & XLB_CT_F_SNAT) {
		pk->daddr = v->nat_addr;
		pk->dport = v->nat_port;
	} else {
		pk->daddr = k->saddr;
		pk->dport = k->sport;
	}
}

/* A closed or expired flow whose tuple a new connection reuses through the stack (nfct.h left
 * its SYN there): the rest of that connection must not meet the old flow's translation, in
 * either direction. The forward entry is aged out (the sweep releases it, and counts it); the
 * reply entry goes now, unless another flow took its SNAT port since. */
static __always_inline void ct_retire(const struct xlb_ct_key *k, struct xlb_ct_value *v,
				      const struct xlb_backend *be)
{
	struct xlb_ct_key rk;
	struct xlb_ct_value *rv;

	v->last_seen = 0;
	if (!be)
		return;
	ct_peer_key(&rk, k, v, be);
	rv = bpf_map_lookup_elem(&ct, &rk);
	if (rv && addr_eq(&rv->orig_addr, &k->saddr) && rv->orig_port == k->sport)
		bpf_map_delete_elem(&ct, &rk);
}

/* Refresh last_seen (at most every 100 ms, to keep the hit path from dirtying the line on
 * every packet) and apply state transitions to both entries. A half-open flow ages from its
 * last state change: the SYNs and SYN-ACKs a handshake that never completes retransmits (a
 * backend answering a spoofed SYN flood does for half a minute) do not keep it longer. */
static __always_inline void ct_touch(const struct xlb_ct_key *k, struct xlb_ct_value *v,
				    const struct xlb_pkt *p, const struct xlb_backend *be, __u64 now)
{
	__u8 st = ct_next_state(v->state, p, v->flags & XLB_CT_F_REPLY);

	if (now - v->last_seen > NSEC / 10 && v->state != XLB_CT_SYN && v->state != XLB_CT_SYN_RECV)
		v->last_seen = now;
	if (st != v->state) {
		struct xlb_ct_key pk;
		struct xlb_ct_value *pv;

		v->state = st;
		v->last_seen = now;
		ct_peer_key(&pk, k, v, be);
		pv = bpf_map_lookup_elem(&ct, &pk);
		if (pv) {
			pv->state = st;
			pv->last_seen = now;
		}
	}
}

/* Admission for a new flow: returns 0 when one more flow may be created. */
static __always_inline int ct_admit(const struct xlb_config *cfg)
{
	__u32 k0 = 0, k1 = 1;
	struct xlb_ct_fill *made = bpf_map_lookup_elem(&ct_fill, &k0);
	struct xlb_ct_fill *freed = bpf_map_lookup_elem(&ct_fill, &k1);

	if (!made || !freed)
		return -1;
	if (made->count - freed->count >= cfg->ct_limit)
		return -1;
	return 0;
}

static __always_inline void ct_admitted(void)
{
	__u32 k0 = 0;
	struct xlb_ct_fill *made = bpf_map_lookup_elem(&ct_fill, &k0);

	if (made)
		__sync_fetch_and_add(&made->count, 1);
}

#endif
