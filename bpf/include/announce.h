/* Announcing LoadBalancer addresses on the local network: an ARP request for an address in
 * the announce map, arriving on the device the entry names and before the entry expires, is
 * answered in place with this device's MAC (XDP_TX / redirect back out at tc). Everything
 * else passes untouched: non-ARP frames, ARP replies, gratuitous ARP (sender = target),
 * requests for other addresses, and requests for an expired entry (its node may have lost
 * the address: never answer then). NDP (IPv6) is for later; the key is already 16 bytes. */
#ifndef XLB_INC_ANNOUNCE_H
#define XLB_INC_ANNOUNCE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ctx.h"
#include "maps.h"

/* linux/if_arp.h drags in libc socket headers that do not build for -target bpf. */
#define ARPHRD_ETHER 1
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2

/* An Ethernet ARP packet for IPv4. */
struct xlb_arp4 {
	struct ethhdr eth;
	__be16 ar_hrd;
	__be16 ar_pro;
	__u8 ar_hln;
	__u8 ar_pln;
	__be16 ar_op;
	__u8 sha[ETH_ALEN];
	__u8 spa[4];
	__u8 tha[ETH_ALEN];
	__u8 tpa[4];
} __attribute__((packed));

static __always_inline void announce_count(__u32 counter)
{
	__u64 *n = bpf_map_lookup_elem(&announce_stats, &counter);

	if (n)
		*n += 1;
}

/* The entry to answer a's request with, or NULL: absent, another device, not ARP, expired. */
static __always_inline struct xlb_announce_value *announce_entry(const struct xlb_ctx *c, const __u8 *tpa)
{
	struct xlb_addr a = { .w = { 0, 0, bpf_htonl(0xffff), 0 } };
	struct xlb_announce_value *v;

	__builtin_memcpy(&a.w[3], tpa, 4);
	v = bpf_map_lookup_elem(&announce, &a);
	if (!v || v->ifindex != ctx_ifindex(c) || !(v->flags & XLB_ANNOUNCE_F_ARP))
		return 0;
	/* The exact clock, not xlb_now(): it may lag a tick, and only ARP for our addresses pays. */
	if (bpf_ktime_get_ns() >= v->expires) {
		announce_count(XLB_ANNOUNCE_ARP_EXPIRED);
		return 0;
	}
	return v;
}

/* 1 when the packet now holds the ARP reply, to be sent back out of the device it came in on. */
static __always_inline int announce_arp(const struct xlb_ctx *c)
{
	struct xlb_arp4 *q = ctx_ptr(c, 0, sizeof(struct xlb_arp4));
	struct xlb_arp4 r;
	struct xlb_if_mac *m;
	__u32 ifindex;

	if (!q || q->eth.h_proto != bpf_htons(ETH_P_ARP) || ctx_vlan_tagged(c))
		return 0;
	if (q->ar_hrd != bpf_htons(ARPHRD_ETHER) || q->ar_pro != bpf_htons(ETH_P_IP) ||
	    q->ar_hln != ETH_ALEN || q->ar_pln != 4 || q->ar_op != bpf_htons(ARPOP_REQUEST))
		return 0;
	/* A gratuitous ARP (another host announcing the address) is news, not a question; a
	 * requester with a group MAC cannot be answered. */
	if (!__builtin_memcmp(q->spa, q->tpa, 4) || (q->sha[0] & 1) || (q->eth.h_source[0] & 1))
		return 0;
	if (!announce_entry(c, q->tpa))
		return 0;
	ifindex = ctx_ifindex(c);
	m = bpf_map_lookup_elem(&if_macs, &ifindex);
	if (!m)
		return 0;
	/* Re-read: the lookups above may not keep q valid for the verifier in tc. */
	q = ctx_ptr(c, 0, sizeof(struct xlb_arp4));
	if (!q)
		return 0;
	r = *q;
	__builtin_memcpy(r.eth.h_dest, q->eth.h_source, ETH_ALEN);
	__builtin_memcpy(r.eth.h_source, m->mac, ETH_ALEN);
	r.ar_op = bpf_htons(ARPOP_REPLY);
	__builtin_memcpy(r.sha, m->mac, ETH_ALEN);
	__builtin_memcpy(r.spa, q->tpa, 4);
	__builtin_memcpy(r.tha, q->sha, ETH_ALEN);
	__builtin_memcpy(r.tpa, q->spa, 4);
	if (c->tc) {
		if (bpf_skb_store_bytes(c->ctx, 0, &r, sizeof(r), 0))
			return 0;
	} else {
		__builtin_memcpy(q, &r, sizeof(r));
	}
	announce_count(XLB_ANNOUNCE_ARP_REPLIES);
	return 1;
}

#endif
