// Test programs for the native addon: counters in a PERCPU_ARRAY show which program ran,
// and how often, after a test run or real packets on a veth.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

enum { SLOT_XDP = 0, SLOT_XDP_V2 = 1, SLOT_TC_IN = 2, SLOT_TC_EG = 3, SLOT_MAX };

// PERCPU_ARRAY: slot -> packets seen
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, SLOT_MAX);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 slot) {
  __u64 *c = bpf_map_lookup_elem(&counters, &slot);
  if (c) *c += 1;  // per-CPU slot: no atomics needed
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx) {
  count(SLOT_XDP);
  return XDP_PASS;
}

// The replacement program for link updates: counts in the shared slot and its own one.
SEC("xdp")
int xdp_count_v2(struct xdp_md *ctx) {
  count(SLOT_XDP);
  count(SLOT_XDP_V2);
  return XDP_PASS;
}

SEC("tc")
int tc_ingress(struct __sk_buff *skb) {
  count(SLOT_TC_IN);
  return TC_ACT_OK;
}

SEC("tc")
int tc_egress(struct __sk_buff *skb) {
  count(SLOT_TC_EG);
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
