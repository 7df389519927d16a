/* Conntrack sweep in the kernel: one walk of the pinned ct map (bpf_for_each_map_elem, 5.13+)
 * that deletes flows whose entries all expired and leaves, in ct_sweep_state, only what the
 * agent needs: counts (flows released for ct_fill[1], entries deleted, entries scanned, SNAT
 * ports held) and a bitmap of the backend ids live entries name. The agent no longer copies
 * the whole table into JS and groups it every sweep (src/datapath/ctgc.ts: sweepConntrack is
 * the fallback where this object does not load).
 *
 * A tc program run once per sweep by BPF_PROG_TEST_RUN (its packet is ignored), not an
 * iterator (iter/bpf_map_elem): tracing programs, iterators among them, are refused by some
 * kernels (EPERM at load on the 6.18 "fc" kernel this was written on), while every kernel
 * that runs xlb's tc programs runs this one. A separate object from xlb.o: it reuses xlb.o's
 * pinned maps (maps.h, loaded with the same pin path and max_entries), and a kernel that
 * cannot load it loses only this.
 *
 * Grouping is the JS sweep's (ctgc.ts groupFlows): a flow is its forward entry (key = client
 * tuple) and the reply entries whose orig/nat name that tuple. Each element:
 *   - live (not expired): its backend id is reported, SNAT reply entries counted;
 *   - expired reply entry: looks up its forward entry (rebuilt from orig/nat, no backend
 *     needed); if that is live the flow is; otherwise both go, and the flow is released
 *     once, by the successful delete of the reply entry (a second visit, or a delete the
 *     datapath did meanwhile, gets -ENOENT and releases nothing);
 *   - expired forward entry: its reply entry (ct_peer_key, needs the backend) decides and
 *     acts when it exists; a forward entry alone (reply retired by ct_retire, evicted, or
 *     never made) goes, released by its own successful delete. A forward entry whose backend
 *     is gone (reaped) cannot name its reply entry: it is counted as unresolved and the agent
 *     runs its own whole-table sweep that time (rare: a backend is reaped only once no live
 *     entry names it, so both entries were normally deleted by the sweep before).
 * Deleting the element being visited is safe for the walk: the element's next pointer stays
 * valid under RCU (hlist_nulls_del_rcu), and the walk moves on from it. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "include/addr.h"
#include "include/ct.h"
#include "include/maps.h"

/* Written by the agent before each pass: the time to judge expiry by (CLOCK_MONOTONIC ns, as
 * last_seen) and each state's timeout in ns (index = enum xlb_ct_state; 7+ = closed's). */
struct xlb_sweep_args {
	__u64 now;
	__u64 timeout[8];
};

/* The pass's result. */
struct xlb_sweep_result {
	__u64 kept;                   /* entries this pass left (scanned = kept + deleted) */
	__u64 deleted;                /* entries this pass deleted */
	__u64 released;               /* flows released (for ct_fill[1]) */
	__u64 snat_ports;             /* reply entries of SNATed, non-hairpin live flows */
	__u64 unresolved;             /* expired forward entries whose backend is gone: their
				       * reply entry cannot be found from them, so the agent
				       * sweeps the table itself this time (ctgc.ts) */
};

#define XLB_BE_WORDS (XLB_MAX_BACKENDS / 64) /* a power of two */
_Static_assert((XLB_BE_WORDS & (XLB_BE_WORDS - 1)) == 0, "XLB_MAX_BACKENDS / 64 must be a power of two");

/* One pass at a time (the agent never overlaps sweeps); the agent zeroes it before each. */
struct xlb_sweep_state {
	struct xlb_sweep_args a;
	struct xlb_sweep_result r;
	__u64 be_live[XLB_BE_WORDS];  /* backend ids live entries name */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xlb_sweep_state);
	__uint(max_entries, 1);
} ct_sweep_state SEC(".maps");

static __always_inline int sweep_expired(const struct xlb_sweep_args *a, const struct xlb_ct_value *v)
{
	__u64 t = a->timeout[v->state < 7 ? v->state : 7];

	/* a stamp ahead of now (the datapath wrote it after the pass began) is fresh */
	return a->now > v->last_seen && a->now - v->last_seen > t;
}

static __always_inline int sweep_same_flow(const struct xlb_ct_key *fk, const struct xlb_ct_value *rv)
{
	return (rv->flags & XLB_CT_F_REPLY) && addr_eq(&rv->orig_addr, &fk->saddr) &&
	       addr_eq(&rv->nat_addr, &fk->daddr) && rv->orig_port == fk->sport &&
	       rv->nat_port == fk->dport;
}

static long sweep_one(void *map, struct xlb_ct_key *k, struct xlb_ct_value *v, void *unused)
{
	struct xlb_sweep_state *s;
	struct xlb_ct_key pk;
	struct xlb_ct_value *pv;
	__u32 id, zero = 0;

	/* an ARRAY lookup (inlined); the callback's context may only point to the stack */
	s = bpf_map_lookup_elem(&ct_sweep_state, &zero);
	if (!s)
		return 1;
	if (!sweep_expired(&s->a, v))
		goto live;
	if (v->flags & XLB_CT_F_REPLY) {
		ct_peer_key(&pk, k, v, 0);
		pv = bpf_map_lookup_elem(&ct, &pk);
		if (pv && !(pv->flags & XLB_CT_F_REPLY) && !sweep_expired(&s->a, pv))
			goto live;
		if (pv && !(pv->flags & XLB_CT_F_REPLY) && bpf_map_delete_elem(&ct, &pk) == 0)
			s->r.deleted++;
		if (bpf_map_delete_elem(&ct, k) == 0) {
			s->r.deleted++;
			s->r.released++;
		}
		return 0;
	}
	/* expired forward entry: its reply entry, when there is one, decides */
	if (v->backend_id) {
		struct xlb_backend *be = bpf_map_lookup_elem(&backends, &v->backend_id);

		if (!be || !(be->addr.w[0] | be->addr.w[1] | be->addr.w[2] | be->addr.w[3] | be->port)) {
			/* which reply entry is its own is unknown here: left to the agent */
			s->r.unresolved++;
			s->r.kept++;
			return 0;
		}
		ct_peer_key(&pk, k, v, be);
		pv = bpf_map_lookup_elem(&ct, &pk);
		if (pv && sweep_same_flow(k, pv)) {
			if (!sweep_expired(&s->a, pv))
				goto live;
			return 0; /* counted when the reply entry deletes it */
		}
	}
	if (bpf_map_delete_elem(&ct, k) == 0) {
		s->r.deleted++;
		s->r.released++;
	}
	return 0;

live:
	s->r.kept++;
	id = v->backend_id;
	if (id) {
		__u64 w = id / 64;

		asm volatile("" : "+r"(w)); /* checked as is: clang would fold the check into the shift */
		if (w < XLB_BE_WORDS)
			s->be_live[w] |= 1ULL << (id & 63);
	}
	if ((v->flags & (XLB_CT_F_REPLY | XLB_CT_F_SNAT | XLB_CT_F_HAIRPIN)) == (XLB_CT_F_REPLY | XLB_CT_F_SNAT))
		s->r.snat_ports++;
	return 0;
}

/* Returns the entries walked (>= 0), or -1 without its state. */
SEC("tc")
int xlb_ct_sweep(struct __sk_buff *skb)
{
	__u32 zero = 0;

	if (!bpf_map_lookup_elem(&ct_sweep_state, &zero))
		return -1;
	return bpf_for_each_map_elem(&ct, sweep_one, &zero, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
