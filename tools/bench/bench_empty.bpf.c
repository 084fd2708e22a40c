// SPDX-License-Identifier: GPL-2.0
/* The floors for tools/bench/tc_cost, measured in the same run as ours:
 * - bench_empty_*: a tc program that does nothing and hands the packet on. Its run_time_ns /
 *   run_cnt is the cost of being called at all (and of bpf_stats' own clock reads).
 * - bench_count_*: the cheapest program that counts anything: it reads the IPv4 header and
 *   adds the packet to one per-CPU counter. What it costs above the empty program is what
 *   touching the packet and one counter costs on the machine, whatever the program. */
#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define TC_ACT_UNSPEC (-1)
#define ETH_HLEN 14
#define ETH_P_IP 0x0800

struct bench_counter {
  __u64 packets;
  __u64 bytes;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, struct bench_counter);
} bench_counts SEC(".maps");

static __always_inline int count(struct __sk_buff* skb, __u32 direction) {
  void* data = (void*)(long)skb->data;
  void* data_end = (void*)(long)skb->data_end;
  const struct iphdr* ip = data + ETH_HLEN;
  if (skb->protocol != bpf_htons(ETH_P_IP) || (void*)(ip + 1) > data_end || ip->version != 4)
    return TC_ACT_UNSPEC;
  struct bench_counter* c = bpf_map_lookup_elem(&bench_counts, &direction);
  if (c) {
    c->packets += 1;
    c->bytes += skb->len;
  }
  return TC_ACT_UNSPEC;
}

SEC("tc")
int bench_count_ingress(struct __sk_buff* skb) {
  return count(skb, 0);
}

SEC("tc")
int bench_count_egress(struct __sk_buff* skb) {
  return count(skb, 1);
}

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
