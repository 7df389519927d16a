// Compiles fine but the verifier must reject it: packet read without a bounds check.
// test/native checks that the load error carries the verifier's reason.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int t_unchecked(struct xdp_md *ctx) {
  unsigned char *data = (unsigned char *)(long)ctx->data;
  return data[20] == 6 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
