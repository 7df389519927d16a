/* Header parsing into struct xlb_pkt: every bound checked, every malformed case mapped to a
 * drop reason, everything that is not IPv4 TCP/UDP/ICMP reported as "pass". */
#ifndef XLB_INC_PARSE_H
#define XLB_INC_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/in.h>
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

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

enum { FRAG_NONE = 0, FRAG_FIRST = 1, FRAG_LATER = 2 };

struct xlb_pkt {
	__u32 l3_off;
	__u32 l4_off;
	__u32 csum_off;               /* L4 checksum offset (TCP 16, UDP 6, ICMP 2 into L4) */
	__u32 len;                    /* bytes after the Ethernet header per tot_len */
	__be32 saddr;
	__be32 daddr;
	__be16 sport;                 /* ICMP: id for echo, 0 otherwise */
	__be16 dport;
	__be16 ip_id;
	__u8 proto;
	__u8 ttl;
	__u8 tcp_flags;               /* FIN 1, SYN 2, RST 4, PSH 8, ACK 16 */
	__u8 frag;
	__u8 icmp_type;
	__u8 has_l4;                  /* L4 header present in this packet (not a later fragment) */
};

enum { PARSE_OK = 0, PARSE_PASS = -1 };   /* > 0: enum xlb_drop_reason */

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_ACK 0x10

/* Ports of a later fragment come from its first fragment (frags map), if seen. */
static __always_inline int parse_frag_later(struct xlb_pkt *p)
{
	struct xlb_frag_key k = { .saddr = p->saddr, .daddr = p->daddr, .id = p->ip_id,
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
	struct xlb_frag_key k = { .saddr = p->saddr, .daddr = p->daddr, .id = p->ip_id,
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
	} else {
		struct icmphdr *ih = ctx_ptr_pull(c, p->l4_off, sizeof(*ih));

		if (!ih || room < sizeof(*ih))
			return XLB_DROP_TRUNCATED;
		p->icmp_type = ih->type;
		p->csum_off = p->l4_off + 2;
	}
	return PARSE_OK;
}

/* Returns PARSE_OK, PARSE_PASS (not ours) or a drop reason. */
static __always_inline int parse_pkt(const struct xlb_ctx *c, struct xlb_pkt *p)
{
	struct ethhdr *eth = ctx_ptr(c, 0, sizeof(*eth));
	struct iphdr *ip;
	__u32 ihl, tot;
	__u16 fo;

	if (!eth)
		return XLB_DROP_TRUNCATED;
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
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->proto = ip->protocol;
	p->ttl = ip->ttl;
	p->ip_id = ip->id;
	fo = bpf_ntohs(ip->frag_off);
	if (tot < ihl || tot > ctx_len(c) - ETH_HLEN || !ctx_ptr_pull(c, ETH_HLEN, ihl))
		return XLB_DROP_TRUNCATED;
	p->l3_off = ETH_HLEN;
	p->l4_off = ETH_HLEN + ihl;
	p->len = tot;
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP && p->proto != IPPROTO_ICMP)
		return PARSE_PASS;
	p->frag = (fo & IP_OFFSET) ? FRAG_LATER : (fo & IP_MF) ? FRAG_FIRST : FRAG_NONE;
	if (p->frag == FRAG_LATER) {
		if (p->proto == IPPROTO_ICMP)
			return PARSE_PASS;
		return parse_frag_later(p);
	}
	p->has_l4 = 1;
	return parse_l4(c, p);
}

#endif
