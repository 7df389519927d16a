/* Rejecting a flow to a Service without endpoints, as kube-proxy's REJECT does: a TCP RST
 * (or RST|ACK) for TCP, ICMP / ICMPv6 port unreachable for UDP, sent back to the client. The
 * reply is built on the stack and replaces the packet. Packets with IPv4 options or IPv6
 * extension headers are not rejected (the quoted header would need them) but dropped with
 * XLB_DROP_REJECT_FAILED. */
#ifndef XLB_INC_REJECT_H
#define XLB_INC_REJECT_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include "csum.h"
#include "ctx.h"
#include "maps.h"
#include "parse.h"

/* pad puts the IP header at a 4-byte boundary of the stack buffer. */
struct xlb_reply {
	__u16 pad;
	struct ethhdr eth;
	struct iphdr ip;
	union {
		struct tcphdr tcp;
		struct {
			struct icmphdr hdr;
			struct iphdr oip;
			__u8 ol4[8];
		} icmp;
	} l4;
};

/* The IPv6 twin: the quote is the header and 8 bytes too. */
struct xlb_reply6 {
	__u16 pad;
	struct ethhdr eth;
	struct ipv6hdr ip6;
	union {
		struct tcphdr tcp;
		struct {
			struct icmphdr hdr;
			struct ipv6hdr oip;
			__u8 ol4[8];
		} icmp;
	} l4;
};

#define RST_LEN (ETH_HLEN + 20 + 20)
#define ICMP_REJ_LEN (ETH_HLEN + 20 + 8 + 20 + 8)
#define RST6_LEN (ETH_HLEN + 40 + 20)
#define ICMP6_REJ_LEN (ETH_HLEN + 40 + 8 + 40 + 8)

struct xlb_pseudo {
	__be32 saddr;
	__be32 daddr;
	__u8 zero;
	__u8 proto;
	__be16 len;
};

struct xlb_pseudo6 {
	struct in6_addr saddr;
	struct in6_addr daddr;
	__be32 len;
	__u8 zero[3];
	__u8 proto;
};

/* Resize the packet to len bytes (grow at the head in XDP when it is shorter). */
static __always_inline int reject_resize(const struct xlb_ctx *c, __u32 len)
{
	__u32 cur = ctx_end(c) - ctx_data(c);

	if (c->tc)
		return bpf_skb_change_tail(c->ctx, len, 0);
	if (cur > len)
		return bpf_xdp_adjust_tail(c->ctx, (int)len - (int)cur);
	if (cur < len)
		return bpf_xdp_adjust_head(c->ctx, (int)cur - (int)len);
	return 0;
}

/* eth: the reply's first byte (after its pad); len: one of the *_LEN above. */
static __always_inline int reject_emit(const struct xlb_ctx *c, void *eth, __u32 len)
{
	void *dst;

	if (reject_resize(c, len))
		return -1;
	if (c->tc)
		return bpf_skb_store_bytes(c->ctx, 0, eth, len, 0);
	dst = ctx_ptr(c, 0, len);
	if (!dst)
		return -1;
	/* constant sizes: the verifier needs them for the copy */
	if (len == RST_LEN)
		__builtin_memcpy(dst, eth, RST_LEN);
	else if (len == ICMP_REJ_LEN)
		__builtin_memcpy(dst, eth, ICMP_REJ_LEN);
	else if (len == RST6_LEN)
		__builtin_memcpy(dst, eth, RST6_LEN);
	else
		__builtin_memcpy(dst, eth, ICMP6_REJ_LEN);
	return 0;
}

/* MACs of a reply sent back where the packet came from: to its sender, from the interface's
 * own MAC (if_macs, written by the agent). Without an entry, from the address the frame was
 * sent to when that is unicast (the frame was addressed to this interface). Never from a
 * group (broadcast/multicast) address, and never to one: a group source MAC is invalid, and
 * answering it would reach every host of the segment. out may be in. */
static __always_inline int reply_macs(const struct xlb_ctx *c, const struct ethhdr *in,
				      struct ethhdr *out)
{
	__u32 ifindex = ctx_ifindex(c);
	struct xlb_if_mac *m = bpf_map_lookup_elem(&if_macs, &ifindex);
	__u8 smac[ETH_ALEN];

	if ((in->h_source[0] & 1) || (!m && (in->h_dest[0] & 1)))
		return -1;
	__builtin_memcpy(smac, m ? m->mac : in->h_dest, ETH_ALEN);
	__builtin_memcpy(out->h_dest, in->h_source, ETH_ALEN);
	__builtin_memcpy(out->h_source, smac, ETH_ALEN);
	return 0;
}

static __always_inline void reject4_l3(struct xlb_reply *r, const struct ethhdr *eth,
				       const struct iphdr *ip, __u8 proto, __u16 tot)
{
	r->eth.h_proto = bpf_htons(ETH_P_IP);
	r->ip.version = 4;
	r->ip.ihl = 5;
	r->ip.tot_len = bpf_htons(tot);
	r->ip.ttl = 64;
	r->ip.protocol = proto;
	r->ip.saddr = ip->daddr;
	r->ip.daddr = ip->saddr;
	r->ip.check = csum_buf(&r->ip, 20, 0);
}

/* The RST's TCP header for segment th (its IP header of hlen bytes, datagram len bytes). */
static __always_inline void reject_rst(struct tcphdr *rst, const struct tcphdr *th, __u32 len,
				       __u32 hlen)
{
	rst->source = th->dest;
	rst->dest = th->source;
	rst->doff = 5;
	rst->rst = 1;
	if (th->ack) {
		rst->seq = th->ack_seq;
	} else {
		__u32 seg = len - hlen - th->doff * 4 + th->syn + th->fin;

		rst->ack_seq = bpf_htonl(bpf_ntohl(th->seq) + seg);
		rst->ack = 1;
	}
}

static __always_inline int reject4_tcp(const struct xlb_ctx *c, const struct xlb_pkt *p)
{
	struct xlb_reply r = {};
	struct xlb_pseudo ph = { .proto = IPPROTO_TCP, .len = bpf_htons(20) };
	struct ethhdr *eth = ctx_ptr(c, 0, ETH_HLEN);
	struct iphdr *ip = ctx_ptr(c, ETH_HLEN, 20);
	struct tcphdr *th = ctx_ptr(c, ETH_HLEN + 20, 20);

	if (!eth || !ip || !th || reply_macs(c, eth, &r.eth))
		return -1;
	reject4_l3(&r, eth, ip, IPPROTO_TCP, 40);
	reject_rst(&r.l4.tcp, th, p->len, 20);
	ph.saddr = r.ip.saddr;
	ph.daddr = r.ip.daddr;
	r.l4.tcp.check = csum_buf(&r.l4.tcp, 20, bpf_csum_diff(0, 0, (void *)&ph, sizeof(ph), 0));
	return reject_emit(c, &r.eth, RST_LEN);
}

static __always_inline int reject4_udp(const struct xlb_ctx *c)
{
	struct xlb_reply r = {};
	struct ethhdr *eth = ctx_ptr(c, 0, ETH_HLEN);
	struct iphdr *ip = ctx_ptr(c, ETH_HLEN, 20);
	__u8 *l4 = ctx_ptr(c, ETH_HLEN + 20, 8);

	if (!eth || !ip || !l4 || reply_macs(c, eth, &r.eth))
		return -1;
	reject4_l3(&r, eth, ip, IPPROTO_ICMP, 20 + 8 + 20 + 8);
	r.l4.icmp.hdr.type = ICMP_DEST_UNREACH;
	r.l4.icmp.hdr.code = ICMP_PORT_UNREACH;
	__builtin_memcpy(&r.l4.icmp.oip, ip, 20);
	__builtin_memcpy(r.l4.icmp.ol4, l4, 8);
	r.l4.icmp.hdr.checksum = csum_buf(&r.l4.icmp, 36, 0);
	return reject_emit(c, &r.eth, ICMP_REJ_LEN);
}

static __always_inline void reject6_l3(struct xlb_reply6 *r, const struct ipv6hdr *ip6, __u8 proto,
				       __u16 plen)
{
	r->eth.h_proto = bpf_htons(ETH_P_IPV6);
	r->ip6.version = 6;
	r->ip6.payload_len = bpf_htons(plen);
	r->ip6.nexthdr = proto;
	r->ip6.hop_limit = 64;
	r->ip6.saddr = ip6->daddr;
	r->ip6.daddr = ip6->saddr;
}

/* The L4 checksum over the IPv6 pseudo header and len bytes at l4 (a multiple of 4). */
static __always_inline __u16 reject6_csum(const struct xlb_reply6 *r, void *l4, __u32 len)
{
	struct xlb_pseudo6 ph = { .saddr = r->ip6.saddr, .daddr = r->ip6.daddr,
				  .len = bpf_htonl(len), .proto = r->ip6.nexthdr };

	return csum_buf(l4, len, bpf_csum_diff(0, 0, (void *)&ph, sizeof(ph), 0));
}

static __always_inline int reject6_tcp(const struct xlb_ctx *c, const struct xlb_pkt *p)
{
	struct xlb_reply6 r = {};
	struct ethhdr *eth = ctx_ptr(c, 0, ETH_HLEN);
	struct ipv6hdr *ip6 = ctx_ptr(c, ETH_HLEN, IP6_HLEN);
	struct tcphdr *th = ctx_ptr(c, ETH_HLEN + IP6_HLEN, 20);

	if (!eth || !ip6 || !th || reply_macs(c, eth, &r.eth))
		return -1;
	reject6_l3(&r, ip6, IPPROTO_TCP, 20);
	reject_rst(&r.l4.tcp, th, p->len, IP6_HLEN);
	r.l4.tcp.check = reject6_csum(&r, &r.l4.tcp, 20);
	return reject_emit(c, &r.eth, RST6_LEN);
}

/* ICMPv6 destination unreachable, port unreachable (RFC 4443 3.1). */
static __always_inline int reject6_udp(const struct xlb_ctx *c)
{
	struct xlb_reply6 r = {};
	struct ethhdr *eth = ctx_ptr(c, 0, ETH_HLEN);
	struct ipv6hdr *ip6 = ctx_ptr(c, ETH_HLEN, IP6_HLEN);
	__u8 *l4 = ctx_ptr(c, ETH_HLEN + IP6_HLEN, 8);

	if (!eth || !ip6 || !l4 || reply_macs(c, eth, &r.eth))
		return -1;
	reject6_l3(&r, ip6, IPPROTO_ICMPV6, 8 + 40 + 8);
	r.l4.icmp.hdr.type = ICMPV6_DEST_UNREACH;
	r.l4.icmp.hdr.code = ICMPV6_PORT_UNREACH;
	__builtin_memcpy(&r.l4.icmp.oip, ip6, IP6_HLEN);
	__builtin_memcpy(r.l4.icmp.ol4, l4, 8);
	r.l4.icmp.hdr.checksum = reject6_csum(&r, &r.l4.icmp, 8 + 40 + 8);
	return reject_emit(c, &r.eth, ICMP6_REJ_LEN);
}

/* 0 when the packet now holds the reply, to be sent back where it came from. */
static __always_inline int reject_pkt(const struct xlb_ctx *c, const struct xlb_pkt *p)
{
	if (!p->has_l4)
		return -1;
	if (p->v6) {
		if (p->l4_off != ETH_HLEN + IP6_HLEN)
			return -1;
		if (p->proto == IPPROTO_TCP)
			return (p->tcp_flags & TCPF_RST) ? -1 : reject6_tcp(c, p);
		return p->proto == IPPROTO_UDP ? reject6_udp(c) : -1;
	}
	if (p->l4_off != ETH_HLEN + 20)
		return -1;
	if (p->proto == IPPROTO_TCP)
		return (p->tcp_flags & TCPF_RST) ? -1 : reject4_tcp(c, p);
	if (p->proto == IPPROTO_UDP)
		return reject4_udp(c);
	return -1;
}

#endif
