/* Header parsing into the family-tagged struct xlb_pkt: every bound checked, every malformed
 * case mapped to a drop reason, everything that is not IPv4 or IPv6 TCP/UDP/ICMP(v6) reported
 * as "pass".
 *
 * IPv6 extension headers: up to XLB_EXTHDR_MAX hop-by-hop, routing, destination options and
 * fragment headers are walked to the upper-layer header. A fragment header makes the packet
 * a fragment as in IPv4: the first fragment (offset 0) carries the ports and records them
 * (frags, keyed by the 32-bit identification), later fragments of a tracked datagram follow
 * it (the walk ends at their fragment header: what follows is data), untracked ones are
 * passed untouched and counted (frag_untracked). Headers after a fragment header (inside the
 * fragmentable part) are walked in the first fragment only: a later fragment of such a
 * datagram names one of them, not TCP/UDP, and is passed untouched as untracked. A routing header
 * with segments left (the destination is not the final one), AH, ESP, "no next header", more
 * extension headers than the bound, or headers beyond XLB_L4_MAX: the walk cannot finish
 * and the packet passes untouched, never to a wrong backend. An extension header or the L4
 * header that the payload length cuts short: truncated drop. ICMPv6 other than errors
 * (neighbour discovery, router advertisements, echo) passes untouched in flow.h. */
#ifndef XLB_INC_PARSE_H
#define XLB_INC_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/in.h>
#include "addr.h"
#include "ctx.h"
#include "maps.h"

/* linux/icmp.h drags in libc socket headers that do not build for -target bpf. */
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 un;
};
#define ICMP_DEST_UNREACH 3
#define ICMP_PORT_UNREACH 3
#define ICMP_FRAG_NEEDED 4
#define ICMP_TIME_EXCEEDED 11
#define ICMP_ECHO 8

#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_PORT_UNREACH 4

#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60

#define XLB_EXTHDR_MAX 3              /* IPv6 extension headers walked (4: xlb_xdp exceeds the
				       * verifier's 1M-instruction budget) */
#define XLB_L4_MAX 256                /* IPv6: L4 header must start before this offset */
#define IP6_HLEN 40
#define IP6_SADDR_OFF 8
#define IP6_DADDR_OFF 24
#define IP6_MF 0x0001
#define IP6_OFFSET 0xfff8

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

enum { FRAG_NONE = 0, FRAG_FIRST = 1, FRAG_LATER = 2 };

/* v6 first, in an 8-aligned struct: the verifier tracks a byte at an 8-aligned stack offset
 * as a value, so once a path has tested the family every later test on it is decided, and
 * IPv4 packets never walk the IPv6 branches (at any other offset it forgets the value). */
struct xlb_pkt {
	__u8 v6;                      /* family: 0 IPv4, 1 IPv6 */
	__u8 udp0;                    /* IPv6 UDP with checksum zero (invalid, RFC 8200 8.1) */
	__u16 pad;
	__u32 l3_off;
	__u32 l4_off;
	__u32 csum_off;               /* L4 checksum offset (TCP 16, UDP 6, ICMP 2 into L4) */
	__u32 len;                    /* bytes after the Ethernet header per tot_len / 40 + payload */
	struct xlb_addr saddr;        /* IPv4 v4-mapped, as in every map key */
	struct xlb_addr daddr;
	__be32 frag_id;               /* IPv4 id (first two bytes) or IPv6 fragment id */
	__be16 sport;                 /* ICMP: id for echo, 0 otherwise */
	__be16 dport;
	__u8 proto;                   /* IPPROTO_TCP / _UDP / _ICMP / _ICMPV6 */
	__u8 ttl;                     /* TTL / hop limit */
	__u8 tcp_flags;               /* FIN 1, SYN 2, RST 4, PSH 8, ACK 16 */
	__u8 frag;
	__u8 icmp_type;
	__u8 has_l4;                  /* L4 header present in this packet (not a later fragment) */
} __attribute__((aligned(8)));

enum { PARSE_OK = 0, PARSE_PASS = -1 };   /* > 0: enum xlb_drop_reason */

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_ACK 0x10

/* Ports of a later fragment come from its first fragment (frags map), if seen. */
static __always_inline int parse_frag_later(struct xlb_pkt *p)
{
	struct xlb_frag_key k = { .saddr = p->saddr, .daddr = p->daddr, .id = p->frag_id,
				  .proto = p->proto };
	struct xlb_frag_value *v = bpf_map_lookup_elem(&frags, &k);

	if (!v)
		return XLB_DROP_FRAG_UNTRACKED;
	p->sport = v->sport;
	p->dport = v->dport;
	return PARSE_OK;
}

static __always_inline void parse_frag_first(struct xlb_pkt *p)
{
	struct xlb_frag_key k = { .saddr = p->saddr, .daddr = p->daddr, .id = p->frag_id,
				  .proto = p->proto };
	struct xlb_frag_value v = { .sport = p->sport, .dport = p->dport };

	bpf_map_update_elem(&frags, &k, &v, BPF_ANY);
}

static __always_inline int parse_l4(const struct xlb_ctx *c, struct xlb_pkt *p)
{
	/* The L4 header must lie inside the datagram (the IP total length), not merely inside
	 * the frame: bytes after tot_len are link padding or garbage the stack trims away. */
	__u32 room = p->len - (p->l4_off - p->l3_off);

	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = ctx_ptr_pull(c, p->l4_off, sizeof(*th));

		if (!th || th->doff < 5 || room < (__u32)th->doff * 4)
			return XLB_DROP_TRUNCATED;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		p->csum_off = p->l4_off + 16;
	} else if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = ctx_ptr_pull(c, p->l4_off, sizeof(*uh));

		if (!uh || room < sizeof(*uh))
			return XLB_DROP_TRUNCATED;
		p->sport = uh->source;
		p->dport = uh->dest;
		p->csum_off = p->l4_off + 6;
		p->udp0 = p->v6 && !uh->check;
	} else {
		struct icmphdr *ih = ctx_ptr_pull(c, p->l4_off, sizeof(*ih));

		if (!ih || room < sizeof(*ih))
			return XLB_DROP_TRUNCATED;
		p->icmp_type = ih->type;
		p->csum_off = p->l4_off + 2;
	}
	return PARSE_OK;
}

/* Later fragments and first ones alike: the L4 header, or the ports of the first fragment. */
static __always_inline int parse_upper(const struct xlb_ctx *c, struct xlb_pkt *p)
{
	if (p->frag == FRAG_LATER) {
		if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6)
			return PARSE_PASS;
		return parse_frag_later(p);
	}
	p->has_l4 = 1;
	return parse_l4(c, p);
}

/* One IPv6 extension header at *off (the walk's rule: the header comment). Returns 0 and
 * moves *off and *nh past it, 1 at the upper-layer header, or PARSE_PASS / a drop reason. */
static __always_inline int parse6_ext(const struct xlb_ctx *c, struct xlb_pkt *p, __u32 *off,
				      __u8 *nh)
{
	__u8 *h;
	__u16 fo;

	if (*nh == IPPROTO_TCP || *nh == IPPROTO_UDP || *nh == IPPROTO_ICMPV6)
		return 1;
	if (*nh != NEXTHDR_HOP && *nh != NEXTHDR_ROUTING && *nh != NEXTHDR_DEST &&
	    *nh != NEXTHDR_FRAGMENT)
		return PARSE_PASS;
	if (*off > XLB_L4_MAX)
		return PARSE_PASS;
	if (*off + 8 > p->l3_off + p->len)
		return XLB_DROP_TRUNCATED;
	h = ctx_ptr_pull(c, *off, 8);
	if (!h)
		return XLB_DROP_TRUNCATED;
	if (*nh == NEXTHDR_FRAGMENT) {
		fo = bpf_ntohs(*(__be16 *)(h + 2));
		p->frag = (fo & IP6_OFFSET) ? FRAG_LATER : (fo & IP6_MF) ? FRAG_FIRST : FRAG_NONE;
		p->frag_id = *(__be32 *)(h + 4);
		*nh = h[0];
		*off += 8;
		/* a later fragment carries no header after this one, only data */
		return p->frag == FRAG_LATER;
	}
	/* a routing header with segments left: the destination is a waypoint, not ours */
	if (*nh == NEXTHDR_ROUTING && h[3])
		return PARSE_PASS;
	*nh = h[0];
	*off += ((__u32)h[1] + 1) * 8;
	return 0;
}

/* v as a number the verifier knows only as 0..65535: written to and read back from two bytes
 * of the stack at an offset that is no multiple of 8, which it does not track. Each path of
 * the extension header walk ends with its own exact offset; without this, every one of them
 * would carry on through the rest of the program as a state of its own (xlb_xdp then exceeds
 * the verifier's budget). */
static __always_inline __u32 parse_opaque16(__u32 v)
{
	volatile __u16 b[4] __attribute__((aligned(8)));

	b[1] = v;
	return b[1];
}

static __always_inline int parse6(const struct xlb_ctx *c, struct xlb_pkt *p)
{
	struct ipv6hdr *ip6 = ctx_ptr_pull(c, ETH_HLEN, sizeof(*ip6));
	__u32 off = ETH_HLEN + IP6_HLEN;
	__u8 nh;
	int r;

	if (!ip6)
		return XLB_DROP_TRUNCATED;
	if (ip6->version != 6)
		return XLB_DROP_BAD_IHL;
	p->len = IP6_HLEN + bpf_ntohs(ip6->payload_len);
	p->ttl = ip6->hop_limit;
	nh = ip6->nexthdr;
	__builtin_memcpy(&p->saddr, &ip6->saddr, 16);
	__builtin_memcpy(&p->daddr, &ip6->daddr, 16);
	if (p->len > ctx_len(c) - ETH_HLEN)
		return XLB_DROP_TRUNCATED;
	p->l3_off = ETH_HLEN;
#pragma unroll
	for (int i = 0; i < XLB_EXTHDR_MAX; i++) {
		r = parse6_ext(c, p, &off, &nh);
		if (r)
			break;
	}
	if (!r && (nh == IPPROTO_TCP || nh == IPPROTO_UDP || nh == IPPROTO_ICMPV6))
		r = 1;                        /* the last header walked led to the upper layer */
	if (r != 1)
		return r ? r : PARSE_PASS;    /* 0: still inside extension headers */
	off = parse_opaque16(off);
	if (off > XLB_L4_MAX)
		return PARSE_PASS;
	if (off > p->l3_off + p->len)
		return XLB_DROP_TRUNCATED;
	p->proto = nh;
	p->l4_off = off;
	return parse_upper(c, p);
}

/* Whether the frame is IPv6 (an untagged one: see parse_pkt), for the family of xlb_pkt. */
static __always_inline int parse_is6(const struct xlb_ctx *c)
{
	struct ethhdr *eth = ctx_ptr(c, 0, sizeof(*eth));

	return eth && eth->h_proto == bpf_htons(ETH_P_IPV6) && !ctx_vlan_tagged(c);
}

/* Returns PARSE_OK, PARSE_PASS (not ours) or a drop reason. p->v6 says the family: set by the
 * caller (parse_is6), so each family's copy of the caller knows it as a constant. */
static __always_inline int parse_pkt(const struct xlb_ctx *c, struct xlb_pkt *p)
{
	struct ethhdr *eth = ctx_ptr(c, 0, sizeof(*eth));
	struct iphdr *ip;
	__u32 ihl, tot;
	__u16 fo;

	if (!eth)
		return XLB_DROP_TRUNCATED;
	if (p->v6)
		return parse6(c, p);
	/* a VLAN tag in the frame or (tc) beside it: not the device's own frame (ctx_vlan_tagged) */
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ctx_vlan_tagged(c))
		return PARSE_PASS;
	ip = ctx_ptr_pull(c, ETH_HLEN, sizeof(*ip));
	if (!ip)
		return XLB_DROP_TRUNCATED;
	if (ip->version != 4 || ip->ihl < 5)
		return XLB_DROP_BAD_IHL;
	/* read everything now: a pull below invalidates ip */
	ihl = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	addr4_set(&p->saddr, ip->saddr);
	addr4_set(&p->daddr, ip->daddr);
	p->proto = ip->protocol;
	p->ttl = ip->ttl;
	p->frag_id = ip->id;
	fo = bpf_ntohs(ip->frag_off);
	if (tot < ihl || tot > ctx_len(c) - ETH_HLEN || !ctx_ptr_pull(c, ETH_HLEN, ihl))
		return XLB_DROP_TRUNCATED;
	p->l3_off = ETH_HLEN;
	p->l4_off = ETH_HLEN + ihl;
	p->len = tot;
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP && p->proto != IPPROTO_ICMP)
		return PARSE_PASS;
	p->frag = (fo & IP_OFFSET) ? FRAG_LATER : (fo & IP_MF) ? FRAG_FIRST : FRAG_NONE;
	return parse_upper(c, p);
}

#endif
