// SPDX-License-Identifier: GPL-2.0
/* The floor for tools/bench/tc_cost: a tc program that does nothing and hands the packet on.
 * Its run_time_ns / run_cnt, measured in the same run as ours, is the cost of being called at
 * all (and of bpf_stats' own clock reads), which ours is compared against. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#define TC_ACT_UNSPEC (-1)

SEC("tc")
int bench_empty_ingress(struct __sk_buff* skb) {
  return TC_ACT_UNSPEC;
}

SEC("tc")
int bench_empty_egress(struct __sk_buff* skb) {
  return TC_ACT_UNSPEC;
}

/* The same floor for sock_ops: runs for the callbacks ours enables on the same sockets. */
SEC("sockops")
int bench_empty_sock_ops(struct bpf_sock_ops* skops) {
  return 1;
}

char LICENSE[] SEC("license") = "GPL";
