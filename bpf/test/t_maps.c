// Test object for the native addon: one map of each type the agent uses, and a struct
// whose BTF layout test/native checks through BpfObject.btfStruct().
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct t_val {
  __u64 packets;
  __u32 backend_id;
  __u16 port;
  __u8 flags;
  __u8 pad;
};

struct t_lpm_key {
  __u32 prefixlen;
  __u8 addr[4];
};

// HASH: u32 -> struct t_val (also the btfStruct subject)
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16);
  __type(key, __u32);
  __type(value, struct t_val);
} t_hash SEC(".maps");

// ARRAY: u32 -> u64
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 8);
  __type(key, __u32);
  __type(value, __u64);
} t_array SEC(".maps");

// LRU_HASH: u64 -> u32, small so eviction is observable
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 64);
  __type(key, __u64);
  __type(value, __u32);
} t_lru SEC(".maps");

// LPM_TRIE: IPv4 prefix -> u32
struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 16);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct t_lpm_key);
  __type(value, __u32);
} t_lpm SEC(".maps");

// PERCPU_ARRAY: u32 -> u64 per CPU
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
} t_percpu SEC(".maps");

// Inner-map template shared by both map-in-map outers.
struct t_inner {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
};

// ARRAY_OF_MAPS: u32 -> inner array
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, 4);
  __type(key, __u32);
  __array(values, struct t_inner);
} t_aom SEC(".maps");

// HASH_OF_MAPS: u32 -> inner array
struct {
  __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
  __uint(max_entries, 4);
  __type(key, __u32);
  __array(values, struct t_inner);
} t_hom SEC(".maps");

// Reads through every map kind so the object is what a real datapath looks like.
SEC("xdp")
int t_touch(struct xdp_md *ctx) {
  __u32 k = 0;
  struct t_val *v = bpf_map_lookup_elem(&t_hash, &k);
  void *inner = bpf_map_lookup_elem(&t_aom, &k);
  if (v && inner) return XDP_DROP;
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
