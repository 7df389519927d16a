/* Layouts shared by the BPF programs, native/ and src/datapath/codecs.ts (which checks every
 * size and offset here against the object's BTF at load time). Only structs, enums and the
 * overridable size constants live here; the map definitions are in include/maps.h.
 *
 * Byte order: addresses and ports are network order (as on the wire); every other field is
 * host order. Addresses are 16 bytes, IPv4 as v4-mapped (::ffff:a.b.c.d): an IPv6 frontend or
 * backend is a non-mapped address in the same maps. */
#ifndef XLB_MAPS_H
#define XLB_MAPS_H

#include <linux/types.h>

/* Default map sizes; the loader overrides max_entries per map (LoadOptions.maxEntries). */
#ifndef XLB_MAX_SERVICES
#define XLB_MAX_SERVICES 65536      /* services entries and svc_id space (stats index) */
#endif
#ifndef XLB_MAX_BACKENDS
#define XLB_MAX_BACKENDS 262144
#endif
#ifndef XLB_MAX_SLOTS
#define XLB_MAX_SLOTS 1048576
#endif
#ifndef XLB_MAX_CT
#define XLB_MAX_CT 262144           /* two entries per flow (forward + reply) */
#endif
#ifndef XLB_MAX_AFFINITY
#define XLB_MAX_AFFINITY 65536
#endif
#ifndef XLB_MAX_SRC_RANGES
#define XLB_MAX_SRC_RANGES 16384
#endif
#ifndef XLB_MAX_NODE_ADDRS
#define XLB_MAX_NODE_ADDRS 64
#endif
#ifndef XLB_MAX_FRAGS
#define XLB_MAX_FRAGS 8192
#endif
#ifndef XLB_MAX_POD_IFS
#define XLB_MAX_POD_IFS 16384
#endif
#ifndef XLB_FLOW_CACHE_SIZE
#define XLB_FLOW_CACHE_SIZE 8192     /* per CPU, a power of two (config.flow_cache_mask + 1) */
#endif
#ifndef XLB_MAX_SOCK_REV
#define XLB_MAX_SOCK_REV 65536       /* socket LB: per-socket entries (LRU) */
#endif
#ifndef XLB_MAGLEV_M
#define XLB_MAGLEV_M 16381           /* inner template size; the real M is config.maglev_m */
#endif

struct xlb_addr {
	__be32 w[4];                  /* IPv4: w[0]=w[1]=0, w[2]=htonl(0xffff), w[3]=addr */
};

enum xlb_scope {
	XLB_SCOPE_EXTERNAL = 0,       /* arrived on a node device (XDP) */
	XLB_SCOPE_INTERNAL = 1,       /* sent by a pod on this node (tc) */
};

enum xlb_svc_flags {
	XLB_SVC_F_MAGLEV = 1 << 0,    /* Maglev table, else random slot */
	XLB_SVC_F_LOCAL = 1 << 1,     /* eTP/iTP Local: keep client source; no endpoints -> drop */
	XLB_SVC_F_SRC_RANGES = 1 << 2,/* check src_ranges (loadBalancerSourceRanges) */
	XLB_SVC_F_NODEPORT = 1 << 3,  /* informational: wildcard NodePort entry */
};

/* services: one entry per frontend; the wildcard NodePort entry has addr all-zero. */
struct xlb_svc_key {
	struct xlb_addr addr;
	__be16 port;
	__u8 proto;                   /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 scope;                   /* enum xlb_scope */
};

struct xlb_svc_value {
	__u32 svc_id;                 /* unique per frontend, 1..XLB_MAX_SERVICES-1 */
	__u32 count;                  /* selectable backends in slots; 0 = reject/drop */
	__u32 flags;                  /* enum xlb_svc_flags */
	__u32 affinity_timeout;       /* seconds; 0 = no sessionAffinity */
};

enum xlb_backend_state {
	XLB_BE_ACTIVE = 0,
	XLB_BE_TERMINATING = 1,
	XLB_BE_DRAINING = 2,
};

enum xlb_backend_flags {
	XLB_BE_F_LOCAL = 1 << 0,      /* runs on this node: external flows need no SNAT */
};

struct xlb_backend {
	struct xlb_addr addr;
	__be16 port;
	__u8 state;                   /* enum xlb_backend_state */
	__u8 flags;                   /* enum xlb_backend_flags */
};

struct xlb_slot_key {
	__u32 svc_id;
	__u32 slot;                   /* 0..count-1 */
};

struct xlb_revnat {
	struct xlb_addr addr;         /* frontend address (all-zero for NodePort: per flow in CT) */
	__be16 port;
	__u16 pad;
};

struct xlb_ct_key {
	struct xlb_addr saddr;
	struct xlb_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

enum xlb_ct_state {
	XLB_CT_SYN = 0,               /* TCP: only the client's SYN seen (netfilter SYN_SENT) */
	XLB_CT_ESTABLISHED = 1,       /* TCP: the client's ACK completed the handshake */
	XLB_CT_FIN = 2,               /* TCP: FIN seen */
	XLB_CT_CLOSED = 3,            /* TCP: RST seen */
	XLB_CT_UDP = 4,
	XLB_CT_SYN_RECV = 5,          /* TCP: the backend's SYN-ACK seen, the client's ACK not yet
				       * (netfilter SYN_RECV; tcp_syn_timeout like XLB_CT_SYN) */
	XLB_CT_UDP_NEW = 6,           /* UDP: no reply yet (udp_new_timeout, as netfilter's
				       * unreplied UDP); the first reply makes it XLB_CT_UDP */
};

enum xlb_ct_flags {
	XLB_CT_F_REPLY = 1 << 0,      /* reply entry (backend -> client); else forward */
	XLB_CT_F_SNAT = 1 << 1,       /* source translated (remote backend or hairpin) */
	XLB_CT_F_HAIRPIN = 1 << 2,    /* pod reached itself through its Service */
	XLB_CT_F_EXTERNAL = 1 << 3,   /* created by XDP (external scope) */
	XLB_CT_F_LOCAL_BE = 1 << 4,   /* backend on this node */
	XLB_CT_F_STACK = 1 << 5,      /* local backend, request delivered up the stack: netfilter
				       * tracks the flow in backend form, so the reply goes up the
				       * stack untouched and is reverse-translated at egress */
};

/* Forward entry (key = packet as the client sent it): backend_id, and for SNAT the node
 * address/port used (nat_*). Reply entry (key = reply as the backend sends it): nat_* is
 * the frontend address/port to restore as source, orig_* the client address/port to
 * restore as destination (only rewritten when SNAT). Both: the frontend (orig dst) is kept
 * per flow, so the NodePort wildcard entry needs no per-address revnat. */
struct xlb_ct_value {
	struct xlb_addr nat_addr;
	struct xlb_addr orig_addr;
	__be16 nat_port;
	__be16 orig_port;
	__u32 backend_id;
	__u32 svc_id;
	__u8 state;                   /* enum xlb_ct_state */
	__u8 flags;                   /* enum xlb_ct_flags */
#ifdef XLB_CT_EXTRA
	__u8 extra;                   /* test builds only: a field a newer layout adds (the */
	__u8 pad1;                    /* struct keeps its size: the stack has no room to spare) */
#else
	__u16 pad;
#endif
	__u64 last_seen;              /* bpf_ktime_get_ns() */
	__u64 created;
};

/* ct_fill[0].count: flows created by the datapath (atomic add); ct_fill[1].count: flows
 * released by the agent's CT sweep (written only by user space). live = [0] - [1]. */
struct xlb_ct_fill {
	__u64 count;
};

struct xlb_affinity_key {
	__u32 svc_id;
	__u32 pad;
	struct xlb_addr client;
};

struct xlb_affinity_value {
	__u32 backend_id;
	__u32 pad;
	__u64 last_used;              /* bpf_ktime_get_ns() */
};

/* LPM key: prefixlen counts svc_id's 32 bits plus address bits (v4-mapped: 96 + v4 len;
 * IPv6: the prefix length over all 128 bits). */
struct xlb_src_range_key {
	__u32 prefixlen;
	__u32 svc_id;
	struct xlb_addr addr;
};

enum xlb_node_addr_flags {
	XLB_NODE_ADDR_F_BROADCAST = 1 << 0, /* a node device's subnet broadcast address: never a
					     * NodePort address, never a source we answer */
};

struct xlb_node_addr_value {
	__u32 flags;                  /* enum xlb_node_addr_flags */
};

/* pod_ifs: host-side pod interfaces by ifindex (the ones the agent attached xlb_tc to). */
enum xlb_pod_if_flags {
	XLB_POD_IF_F_PEER = 1 << 0,   /* a veth whose peer is the pod's: bpf_redirect_peer works */
};

struct xlb_pod_if_value {
	__u32 flags;                  /* enum xlb_pod_if_flags */
};

/* if_macs: an interface's own MAC by ifindex (node devices and pod interfaces), the source
 * MAC of replies xlb sends back where a packet came from (rejects, hairpin). */
struct xlb_if_mac {
	__u8 mac[6];
	__u16 pad;
};

struct xlb_svc_stats {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
};

/* Fragment tracking: the first fragment records its ports so later ones follow it. Both
 * families: addresses as in every key (IPv4 v4-mapped), id the IPv4 header's 16-bit id (in
 * the first two bytes, network order) or the IPv6 fragment header's 32-bit one. */
struct xlb_frag_key {
	struct xlb_addr saddr;
	struct xlb_addr daddr;
	__be32 id;
	__u8 proto;
	__u8 pad[3];
};

struct xlb_frag_value {
	__be16 sport;
	__be16 dport;
};

/* Counted outcomes that are not per-service traffic; index into the per-CPU drops array. */
enum xlb_drop_reason {
	XLB_DROP_NONE = 0,
	XLB_DROP_TRUNCATED = 1,       /* header shorter than it claims / than the packet */
	XLB_DROP_BAD_IHL = 2,         /* IPv4 IHL/version, IPv6 version: a header we cannot read */
	XLB_DROP_TTL = 3,             /* TTL / hop limit <= 1 on a packet we would forward */
	XLB_DROP_NO_ENDPOINTS = 4,    /* count 0: rejected (RST / ICMP port unreachable) */
	XLB_DROP_NO_LOCAL_ENDPOINTS = 5, /* count 0 with eTP/iTP Local: dropped */
	XLB_DROP_SRC_RANGE = 6,       /* source not in loadBalancerSourceRanges */
	XLB_DROP_NO_BACKEND = 7,      /* slot/Maglev entry empty or backend missing */
	XLB_DROP_CT_FULL = 8,         /* new flow refused: conntrack at its limit */
	XLB_DROP_FRAG_UNTRACKED = 9,  /* non-first fragment without its first: passed untouched */
	XLB_DROP_SNAT_EXHAUSTED = 10, /* no free SNAT port after bounded probing */
	XLB_DROP_REJECT_FAILED = 11,  /* could not build the reject reply (options, too short) */
	XLB_DROP_NO_CONFIG = 12,
	XLB_DROP_FIB = 13,            /* FIB lookup says blackhole/unreachable/prohibit */
	XLB_DROP_ICMP_INNER = 14,     /* ICMP error about a NATed flow, inner header unusable */
	XLB_DROP_BAD_SOURCE = 15,     /* new flow from a source no reply may go to (flow_src_ok) */
	XLB_DROP_BAD_CSUM = 16,       /* IPv6 UDP with checksum zero to a flow of ours (RFC 8200 8.1) */
	XLB_DROP_CT_CARRY = 17,       /* TCP packet of a flow not yet carried over from a replaced ct
				       * (config.carry_until): held, TCP sends it again (flow.h) */
	XLB_DROP__MAX = 18,
};

enum xlb_config_flags {
	XLB_CFG_F_FIXTURE = 1 << 0,   /* tests only: no FIB lookup/redirect; forwards -> XDP_PASS */
	XLB_CFG_F_REDIRECT = 1 << 1,  /* XDP: FIB lookup + redirect for remote backends/replies */
	XLB_CFG_F_PEER = 1 << 2,      /* tc: translated packets for local pods go straight into
				       * the pod (bpf_redirect_peer), past the host's routing and
				       * netfilter FORWARD (--local-delivery peer) */
	XLB_CFG_F_NFCT = 1 << 3,      /* a new flow netfilter conntrack tracks is left to the
				       * stack (switching on beside kube-proxy; bpf/include/nfct.h) */
	XLB_CFG_F_DRAIN = 1 << 4,     /* switching off: new flows go to the stack, xlb's
				       * conntrack hits are still translated (nfct.h) */
};

struct xlb_config {
	__u32 flags;                  /* enum xlb_config_flags */
	__u16 nodeport_min;
	__u16 nodeport_max;
	__u32 maglev_m;               /* Maglev table size (prime), <= inner map max_entries */
	__u32 ct_limit;               /* flows admitted before new ones are dropped */
	__u32 hash_seed;
	__u32 tcp_syn_timeout;        /* seconds */
	__u32 tcp_est_timeout;
	__u32 tcp_fin_timeout;
	__u32 tcp_close_timeout;
	__u32 udp_timeout;
	__u16 snat_port_min;
	__u16 snat_port_max;
	struct xlb_addr snat_addr;    /* node address used as source toward remote backends */
	struct xlb_addr hairpin_addr; /* source a pod sees when it reaches itself (169.254.42.1) */
	__u32 flow_cache_gen;         /* 0: flow cache off; a new value invalidates every entry */
	__u32 flow_cache_mask;        /* flow_cache max_entries - 1 (a power of two minus one) */
	__u32 udp_new_timeout;        /* seconds: UDP flows that never got a reply */
	__u32 sock_flags;             /* enum xlb_sock_flags: socket-level load balancing */
	__u32 carry_until;            /* CLOCK_MONOTONIC seconds: until then the flows of a replaced
				       * ct may not all be in this one yet (flow_carry_held); 0: off */
	__u64 netns_cookie;           /* the node's own network namespace (socket LB, host mode) */
	struct xlb_addr snat_addr6;   /* IPv6 twin of snat_addr (the node's IPv6 address) */
	struct xlb_addr hairpin_addr6;/* IPv6 twin of hairpin_addr (100::42:1, RFC 6666 discard
				       * prefix: never a real peer, routed by a pod's default route) */
};

/* Socket-level load balancing (bpf/include/sock.h). */
enum xlb_sock_flags {
	XLB_SOCK_F_ALL = 1 << 0,      /* every socket in the cgroup, not only the node's namespace */
};

enum xlb_sock_dir {
	XLB_SOCK_REV = 0,             /* key = backend, value = the frontend the socket asked for */
	XLB_SOCK_FWD = 1,             /* key = frontend, value = the backend chosen (sendmsg) */
};

/* sock_rev: per socket (cookie), one entry per address it reached through a frontend. */
struct xlb_sock_key {
	__u64 cookie;                 /* bpf_get_socket_cookie() */
	struct xlb_addr addr;
	__be16 port;
	__u8 proto;
	__u8 dir;                     /* enum xlb_sock_dir */
	__u32 pad;
};

struct xlb_sock_value {
	struct xlb_addr addr;
	__be16 port;
	__u16 pad;
	__u32 svc_id;
	__u32 backend_id;
};

/* announce: LoadBalancer addresses this node answers ARP (IPv4) or NDP (IPv6) for
 * (bpf/include/announce.h), keyed by the address (IPv4 v4-mapped). The agent renews
 * `expires` with its Lease, never past the moment it would stop holding it: an entry the
 * agent stopped renewing (lost Lease, agent killed) is no longer answered. */
#ifndef XLB_MAX_ANNOUNCE
#define XLB_MAX_ANNOUNCE 4096
#endif

enum xlb_announce_flags {
	XLB_ANNOUNCE_F_ARP = 1 << 0,  /* answer ARP requests for the address */
	XLB_ANNOUNCE_F_NDP = 1 << 1,  /* answer IPv6 neighbour solicitations for the address */
};

struct xlb_announce_value {
	__u32 ifindex;                /* the device whose subnet holds the address: only there */
	__u32 flags;                  /* enum xlb_announce_flags */
	__u64 expires;                /* CLOCK_MONOTONIC ns: not answered from then on */
};

/* announce_stats: per-CPU counters (index enum xlb_announce_counter). */
enum xlb_announce_counter {
	XLB_ANNOUNCE_ARP_REPLIES = 0, /* ARP replies sent */
	XLB_ANNOUNCE_ARP_EXPIRED = 1, /* requests for an address whose entry expired: not answered */
	XLB_ANNOUNCE_NDP_REPLIES = 2, /* neighbour advertisements sent */
	XLB_ANNOUNCE_NDP_EXPIRED = 3, /* solicitations for an address whose entry expired: not answered */
	XLB_ANNOUNCE__MAX = 4,
};

#endif
