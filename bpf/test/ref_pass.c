/* Reference for the datapath benchmark: the least an XDP program on this path does (parse
 * Ethernet + IPv4 with bounds checks) before XDP_PASS. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("xdp")
int ref_pass(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	volatile __u32 sink;

	if ((void *)(ip + 1) > end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl < 5)
		return XDP_PASS;
	sink = ip->daddr ^ ip->saddr;
	(void)sink;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
