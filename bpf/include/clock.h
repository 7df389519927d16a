/* The datapath's clock: CLOCK_MONOTONIC ns, coarse, read through a per-CPU cache (the clock
 * map in maps.h). Conntrack, affinity and the flow cache stamp and compare with it. */
#ifndef XLB_INC_CLOCK_H
#define XLB_INC_CLOCK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "maps.h"

#define NSEC 1000000000ULL

/* CT, affinity and timeouts count in seconds, so a tick's resolution is plenty. Even the
 * coarse clock is a helper call (~15 ns, a sixth of the CT-hit path when measured); jiffies
 * is one inlined load. So the coarse time is read once per tick per CPU and kept beside the
 * jiffies value it belongs to: still CLOCK_MONOTONIC ns (user space compares stamps with its
 * own clock), at most a tick or two behind. */
static __always_inline __u64 xlb_now(void)
{
	__u32 zero = 0;
	struct xlb_clock *c = bpf_map_lookup_elem(&clock, &zero);
	__u64 j = bpf_jiffies64();

	if (!c)
		return bpf_ktime_get_coarse_ns();
	if (c->jiffies != j) {
		c->jiffies = j;
		c->ns = bpf_ktime_get_coarse_ns();
	}
	return c->ns;
}

#endif
