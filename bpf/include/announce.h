/* Announcing LoadBalancer addresses on the local network: an ARP request (IPv4) or IPv6
 * neighbour solicitation for an address in the announce map, arriving on the device the entry
 * names and before the entry expires, is answered in place with this device's MAC (XDP_TX /
 * redirect back out at tc). Everything else passes untouched: non-ARP frames, ARP replies,
 * gratuitous ARP (sender = target), other ICMPv6 (NA, RS, RA), solicitations that fail
 * RFC 4861 validation (hop limit not 255, code not 0), requests for other addresses, and
 * requests for an expired entry (its node may have lost the address: never answer then). */
#ifndef XLB_INC_ANNOUNCE_H
#define XLB_INC_ANNOUNCE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ctx.h"
#include "maps.h"
#include "csum.h"
#include "parse.h"

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

/* The entry to answer a request for a with, or NULL: absent, another device, not announced
 * by this protocol (flag), expired (counted under `expired`). */
static __always_inline struct xlb_announce_value *announce_entry(const struct xlb_ctx *c, const struct xlb_addr *a,
								 __u32 flag, __u32 expired)
{
	struct xlb_announce_value *v = bpf_map_lookup_elem(&announce, a);

	if (!v || v->ifindex != ctx_ifindex(c) || !(v->flags & flag))
		return 0;
	/* The exact clock, not xlb_now(): it may lag a tick, and only requests for our addresses pay. */
	if (bpf_ktime_get_ns() >= v->expires) {
		announce_count(expired);
		return 0;
	}
	return v;
}

static __always_inline struct xlb_announce_value *announce_entry4(const struct xlb_ctx *c, const __u8 *tpa)
{
	struct xlb_addr a = { .w = { 0, 0, bpf_htonl(0xffff), 0 } };

	__builtin_memcpy(&a.w[3], tpa, 4);
	return announce_entry(c, &a, XLB_ANNOUNCE_F_ARP, XLB_ANNOUNCE_ARP_EXPIRED);
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
	if (!announce_entry4(c, q->tpa))
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

#define NDISC_NEIGHBOUR_SOLICITATION 135
#define NDISC_NEIGHBOUR_ADVERTISEMENT 136
#define ND_OPT_TARGET_LL_ADDR 2
#define ND_NA_FLAG_SOLICITED 0x40000000
#define ND_NA_FLAG_OVERRIDE 0x20000000

/* A neighbour solicitation or advertisement without options (RFC 4861 4.3, 4.4). */
struct xlb_nd6 {
	struct ethhdr eth;
	struct ipv6hdr ip6;
	__u8 type;
	__u8 code;
	__sum16 csum;
	__be32 flags;                 /* NA: R, S, O; NS: reserved */
	struct xlb_addr target;
} __attribute__((packed));

/* The advertisement we send: one target link-layer address option (8 bytes). */
struct xlb_na6 {
	struct xlb_nd6 nd;
	__u8 opt_type;
	__u8 opt_len;                 /* in units of 8 bytes */
	__u8 mac[ETH_ALEN];
} __attribute__((packed));

#define XLB_NA6_ICMP_LEN (sizeof(struct xlb_na6) - sizeof(struct ethhdr) - sizeof(struct ipv6hdr))

/* A solicitation RFC 4861 7.1.1 lets us act on (no extension headers: the kernel would take
 * those), from a unicast MAC; the target is checked against the announce map. */
static __always_inline struct xlb_nd6 *announce_ns6(const struct xlb_ctx *c)
{
	struct xlb_nd6 *q = ctx_ptr(c, 0, sizeof(struct xlb_nd6));

	if (!q || q->eth.h_proto != bpf_htons(ETH_P_IPV6) || ctx_vlan_tagged(c))
		return 0;
	if (q->ip6.version != 6 || q->ip6.nexthdr != IPPROTO_ICMPV6 || q->ip6.hop_limit != 255 ||
	    bpf_ntohs(q->ip6.payload_len) < sizeof(struct xlb_nd6) - ETH_HLEN - sizeof(struct ipv6hdr))
		return 0;
	if (q->type != NDISC_NEIGHBOUR_SOLICITATION || q->code != 0 || (q->eth.h_source[0] & 1))
		return 0;
	return q;
}

/* Turn the solicitation in r (already resized to the advertisement) into the advertisement
 * (RFC 4861 7.2.4): from the target to the solicitor (its address `to`, MAC `to_mac`),
 * Solicited and Override; to all nodes without Solicited when the solicitor has no address
 * yet (DAD). Written in place: the programs have no stack left for a copy. */
static __always_inline void announce_na6(struct xlb_na6 *r, const struct xlb_addr *to, const __u8 *to_mac,
					 const __u8 *mac)
{
	struct { __be32 len, nexthdr; } ph = { bpf_htonl(XLB_NA6_ICMP_LEN), bpf_htonl(IPPROTO_ICMPV6) };
	struct xlb_addr all_nodes = { .w = { bpf_htonl(0xff020000), 0, 0, bpf_htonl(1) } };
	/* 33:33 and the group's low 32 bits (RFC 2464 7) */
	__u8 all_nodes_mac[ETH_ALEN] = { 0x33, 0x33, 0, 0, 0, 1 };
	int dad = !(to->w[0] | to->w[1] | to->w[2] | to->w[3]);

	__builtin_memcpy(&r->nd.ip6.saddr, &r->nd.target, 16);
	__builtin_memcpy(r->nd.eth.h_dest, dad ? all_nodes_mac : to_mac, ETH_ALEN);
	__builtin_memcpy(&r->nd.ip6.daddr, dad ? &all_nodes : to, 16);
	__builtin_memcpy(r->nd.eth.h_source, mac, ETH_ALEN);
	r->nd.ip6.payload_len = bpf_htons(XLB_NA6_ICMP_LEN);
	r->nd.type = NDISC_NEIGHBOUR_ADVERTISEMENT;
	r->nd.csum = 0;
	r->nd.flags = bpf_htonl(dad ? ND_NA_FLAG_OVERRIDE : ND_NA_FLAG_SOLICITED | ND_NA_FLAG_OVERRIDE);
	r->opt_type = ND_OPT_TARGET_LL_ADDR;
	r->opt_len = 1;
	__builtin_memcpy(r->mac, mac, ETH_ALEN);
	/* Pseudo header: both addresses (contiguous in the packet), then length and next header. */
	r->nd.csum = csum_buf(&r->nd.type, XLB_NA6_ICMP_LEN,
			      bpf_csum_diff(0, 0, (__be32 *)&ph, sizeof(ph),
					    bpf_csum_diff(0, 0, (__be32 *)((__u8 *)r + ETH_HLEN + 8), 32, 0)));
}

/* The frame resized to the advertisement: a solicitation from DAD carries no source
 * link-layer option, so it is 8 bytes shorter; one with more options is longer. */
static __always_inline struct xlb_na6 *announce_resize(const struct xlb_ctx *c)
{
	if (c->tc) {
		if (bpf_skb_change_tail(c->ctx, sizeof(struct xlb_na6), 0))
			return 0;
		return ctx_ptr_pull(c, 0, sizeof(struct xlb_na6));
	}
	if (bpf_xdp_adjust_tail(c->ctx, (int)sizeof(struct xlb_na6) - (int)ctx_len(c)))
		return 0;
	return ctx_ptr(c, 0, sizeof(struct xlb_na6));
}

/* 1 when the packet now holds the neighbour advertisement, to be sent back out of the device
 * it came in on. */
static __always_inline int announce_ndp(const struct xlb_ctx *c)
{
	struct xlb_nd6 *q = announce_ns6(c);
	struct xlb_addr target, from;
	__u8 from_mac[ETH_ALEN];
	struct xlb_if_mac *m;
	struct xlb_na6 *r;
	__u32 ifindex;

	if (!q)
		return 0;
	__builtin_memcpy(&target, &q->target, 16);
	__builtin_memcpy(&from, &q->ip6.saddr, 16);
	__builtin_memcpy(from_mac, q->eth.h_source, ETH_ALEN);
	if (!announce_entry(c, &target, XLB_ANNOUNCE_F_NDP, XLB_ANNOUNCE_NDP_EXPIRED))
		return 0;
	ifindex = ctx_ifindex(c);
	m = bpf_map_lookup_elem(&if_macs, &ifindex);
	if (!m)
		return 0;
	r = announce_resize(c);
	if (!r)
		return 0;
	announce_na6(r, &from, from_mac, m->mac);
	announce_count(XLB_ANNOUNCE_NDP_REPLIES);
	return 1;
}

/* 1 when the packet now holds an ARP reply or neighbour advertisement to send back out. */
static __always_inline int announce_reply(const struct xlb_ctx *c)
{
	return announce_arp(c) || announce_ndp(c);
}

#endif
