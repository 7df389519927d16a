/* Map definitions (BTF-style, pinned by name). Layouts are in xlb_maps.h; sizes are the
 * overridable XLB_MAX_* constants, and the loader may override max_entries per map. */
#ifndef XLB_INC_MAPS_H
#define XLB_INC_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "xlb_maps.h"

/* Frontends: {addr, port, proto, scope} -> svc_id/count/flags. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct xlb_svc_key);
	__type(value, struct xlb_svc_value);
	__uint(max_entries, XLB_MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} services SEC(".maps");

/* backend_id -> address, port, state. An ARRAY because the lookup is on every CT hit and
 * array lookups are inlined; an all-zero entry is "no backend" (deleting = writing zeros),
 * and id 0 is never used (empty slot). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_backend);
	__uint(max_entries, XLB_MAX_BACKENDS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backends SEC(".maps");

/* {svc_id, slot} -> backend_id: random choice among the selectable backends. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct xlb_slot_key);
	__type(value, __u32);
	__uint(max_entries, XLB_MAX_SLOTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} slots SEC(".maps");

/* Inner Maglev table template; BPF_F_INNER_MAP lets each table have its own size M. */
struct xlb_maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, XLB_MAGLEV_M);
	__uint(map_flags, BPF_F_INNER_MAP);
};

/* svc_id -> Maglev table (ARRAY of backend_id, size config.maglev_m). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, XLB_MAX_SERVICES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct xlb_maglev_inner);
} maglev SEC(".maps");

/* svc_id -> frontend address/port, for display; the datapath keeps each flow's frontend in CT. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct xlb_revnat);
	__uint(max_entries, XLB_MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} revnat SEC(".maps");

/* Connection tracking: forward and reply entries per flow. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xlb_ct_key);
	__type(value, struct xlb_ct_value);
	__uint(max_entries, XLB_MAX_CT);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct SEC(".maps");

/* Admission counter for CT (see struct xlb_ct_fill). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_ct_fill);
	__uint(max_entries, 2);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_fill SEC(".maps");

/* sessionAffinity ClientIP: {svc_id, client} -> backend. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xlb_affinity_key);
	__type(value, struct xlb_affinity_value);
	__uint(max_entries, XLB_MAX_AFFINITY);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} affinity SEC(".maps");

/* loadBalancerSourceRanges: {svc_id, prefix} -> allow. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct xlb_src_range_key);
	__type(value, __u8);
	__uint(max_entries, XLB_MAX_SRC_RANGES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} src_ranges SEC(".maps");

/* Pod interfaces that may receive packets by bpf_redirect_peer (fwd_peer_tc). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct xlb_pod_if_value);
	__uint(max_entries, XLB_MAX_POD_IFS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pod_ifs SEC(".maps");

/* ifindex -> the interface's own MAC (struct xlb_if_mac), for replies (reply_macs). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct xlb_if_mac);
	__uint(max_entries, XLB_MAX_POD_IFS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} if_macs SEC(".maps");

/* SNAT ports the agent leaves out (ports the node listens on, its local port range, reserved
 * ports): bit (port & 63) of word port >> 6. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 65536 / 64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} snat_skip SEC(".maps");

/* Source ports of local backends that got a request up the stack (flow_mark_stack), by bit
 * as snat_skip: xlb_tc_host looks up ct only for a TCP/UDP packet from such a port, so the
 * node's own traffic at a device's egress costs no hash lookup. Set by the datapath, never
 * cleared (a stale bit costs that lookup, nothing else); private to the datapath. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 65536 / 64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stack_ports SEC(".maps");

/* Addresses that are "this node" for NodePort. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct xlb_addr);
	__type(value, struct xlb_node_addr_value);
	__uint(max_entries, XLB_MAX_NODE_ADDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} node_addrs SEC(".maps");

/* Per-service counters by svc_id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_svc_stats);
	__uint(max_entries, XLB_MAX_SERVICES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

/* Per-reason counters (enum xlb_drop_reason). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, XLB_DROP__MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} drops SEC(".maps");

/* Ports of fragmented datagrams, keyed by the IP id (first fragment writes, rest read). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xlb_frag_key);
	__type(value, struct xlb_frag_value);
	__uint(max_entries, XLB_MAX_FRAGS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} frags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} config SEC(".maps");

/* Per-CPU cache of the coarse clock, refreshed once per jiffy (see xlb_now). Not state:
 * struct xlb_clock is private to the datapath. */
struct xlb_clock {
	__u64 jiffies;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_clock);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} clock SEC(".maps");

/* Per-CPU flow cache (fcache.h; used by flow_cached in flow.h): the rewrite an established flow's packets get,
 * in a direct-mapped ARRAY slot chosen by the flow hash, so the hit path reads one slot of
 * this CPU's array instead of hashing into ct (a hash map lookup is most of the hit path's
 * cost). ct stays the state: an entry lives 100 ms, is only made for flows whose state
 * packets without SYN/FIN/RST cannot change, and dies with config.flow_cache_gen. Private to
 * the datapath: the agent only sizes it and sets the generation. */
struct xlb_flow_cache_entry {
	struct xlb_ct_key key;        /* the ct key the entry was made from */
	struct xlb_addr src;          /* new source (rewrite & FC_SRC) */
	struct xlb_addr dst;          /* new destination (rewrite & FC_DST) */
	__be16 sport;
	__be16 dport;
	__u32 backend_id;             /* forward entries: the backend must still be dst:dport */
	__u32 svc_id;
	__u32 gen;                    /* config.flow_cache_gen when made */
	__u8 verdict;                 /* enum xlb_verdict of the slow path */
	__u8 rewrite;                 /* FC_SRC | FC_DST */
	__u8 v6;                      /* family of the key (an IPv4 hit compares last words) */
	__u8 pad;
	__u16 sum_l3;                 /* the rewrite's checksum changes, folded (fc_sums): */
	__u16 sum_l4;                 /* addresses (IPv4 header), addresses and ports (L4) */
	__u64 expires;                /* xlb_now() ns */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_flow_cache_entry);
	__uint(max_entries, XLB_FLOW_CACHE_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_cache SEC(".maps");

/* Socket LB: per-socket reverse (backend -> frontend, for recvmsg/getpeername) and forward
 * (frontend -> backend, so an unconnected UDP socket keeps its backend) entries. LRU: a closed
 * socket's entries are never read again and age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xlb_sock_key);
	__type(value, struct xlb_sock_value);
	__uint(max_entries, XLB_MAX_SOCK_REV);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sock_rev SEC(".maps");

/* LoadBalancer addresses this node announces: addr -> device, flags, expiry (announce.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct xlb_addr);
	__type(value, struct xlb_announce_value);
	__uint(max_entries, XLB_MAX_ANNOUNCE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} announce SEC(".maps");

/* Per-CPU announce counters (enum xlb_announce_counter). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, XLB_ANNOUNCE__MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} announce_stats SEC(".maps");

/* The datapath config (NULL only before the loader wrote it): one lookup per packet, which
 * the entry point passes down. */
static __always_inline struct xlb_config *config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&config, &zero);
}

static __always_inline void drop_count(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&drops, &reason);

	if (c)
		*c += 1;
}

#endif
