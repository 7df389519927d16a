/* Rejecting a flow to a Service without endpoints, as kube-proxy's REJECT does: a TCP RST
 * (or RST|ACK) for TCP, ICMP port unreachable for UDP, sent back to the client. The reply is
 * built on the stack and replaces the packet. Packets with IP options are not rejected (the
 * quoted header would need them) but dropped with XLB_DROP_REJECT_FAILED. */
#ifndef XLB_INC_REJECT_H
#define XLB_INC_REJECT_H

#include <linux/if_ether.h>
#include <linux/ip.h>
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

#define RST_LEN (ETH_HLEN + 20 + 20)
#define ICMP_REJ_LEN (ETH_HLEN + 20 + 8 + 20 + 8)

struct xlb_pseudo {
	__be32 saddr;
	__be32 daddr;
	__u8 zero;
	__u8 proto;
	__be16 len;
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

static __always_inline int reject_emit(const struct xlb_ctx *c, struct xlb_reply *r, __u32 len)
{
	void *dst;

	if (reject_resize(c, len))
		return -1;
	if (c->tc)
		return bpf_skb_store_bytes(c->ctx, 0, &r->eth, len, 0);
	dst = ctx_ptr(c, 0, len);
	if (!dst)
		return -1;
	if (len == RST_LEN)
		__builtin_memcpy(dst, &r->eth, RST_LEN);
	else
		__builtin_memcpy(dst, &r->eth, ICMP_REJ_LEN);
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

static __always_inline int reject4_tcp(const struct xlb_ctx *c, const struct xlb_pkt *p)
{
	struct xlb_reply r = {};
	struct xlb_pseudo ph = { .proto = IPPROTO_TCP, .len = bpf_htons(20) };
	struct ethhdr *eth = ctx_ptr(c, 0, ETH_HLEN);
	struct iphdr *ip = ctx_ptr(c, ETH_HLEN, 20);
	struct tcphdr *th = ctx_ptr(c, ETH_HLEN + 20, 20);
	__u32 seg;

	if (!eth || !ip || !th || reply_macs(c, eth, &r.eth))
		return -1;
	reject4_l3(&r, eth, ip, IPPROTO_TCP, 40);
	r.l4.tcp.source = th->dest;
	r.l4.tcp.dest = th->source;
	r.l4.tcp.doff = 5;
	r.l4.tcp.rst = 1;
	if (th->ack) {
		r.l4.tcp.seq = th->ack_seq;
	} else {
		seg = p->len - 20 - th->doff * 4 + th->syn + th->fin;
		r.l4.tcp.ack_seq = bpf_htonl(bpf_ntohl(th->seq) + seg);
		r.l4.tcp.ack = 1;
	}
	ph.saddr = r.ip.saddr;
	ph.daddr = r.ip.daddr;
	r.l4.tcp.check = csum_buf(&r.l4.tcp, 20, bpf_csum_diff(0, 0, (void *)&ph, sizeof(ph), 0));
	return reject_emit(c, &r, RST_LEN);
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
	return reject_emit(c, &r, ICMP_REJ_LEN);
}

/* 0 when the packet now holds the reply, to be sent back where it came from. */
static __always_inline int reject_pkt(const struct xlb_ctx *c, const struct xlb_pkt *p)
{
	if (p->l4_off != ETH_HLEN + 20 || !p->has_l4)
		return -1;
	if (p->proto == IPPROTO_TCP)
		return (p->tcp_flags & TCPF_RST) ? -1 : reject4_tcp(c, p);
	if (p->proto == IPPROTO_UDP)
		return reject4_udp(c);
	return -1;
}

#endif
