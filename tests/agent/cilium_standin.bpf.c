// SPDX-License-Identifier: GPL-2.0
/* Test-only stand-in for Cilium's tc programs on a tunnel interface: counts the IPv4 packets it
 * sees per direction and, like Cilium's programs, ends the chain with a verdict
 * (TC_ACT_OK / TCX_PASS). The datapath tests attach it before ours and prove it still sees
 * every packet. Never loaded by the agent. */
#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "regionpulse_shared.h"

#define TC_ACT_OK 0
#define ETH_P_IP 0x0800

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, RP_DIR_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} standin_packets SEC(".maps");

static __always_inline int count(struct __sk_buff* skb, __u32 direction) {
  if (skb->protocol != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
  __u64* value = bpf_map_lookup_elem(&standin_packets, &direction);
  if (value) *value += 1;
  return TC_ACT_OK;
}

SEC("tc")
int standin_ingress(struct __sk_buff* skb) {
  return count(skb, RP_DIR_INGRESS);
}

SEC("tc")
int standin_egress(struct __sk_buff* skb) {
  return count(skb, RP_DIR_EGRESS);
}

char LICENSE[] SEC("license") = "GPL";
