// SPDX-License-Identifier: GPL-2.0
/* Test-only minimal tc program (iface_counter_test.cc): counts packets and bytes per interface
 * and direction. It exercises the build pipeline (vmlinux.h, CO-RE, skeleton) and the tcx
 * attach path, and never changes a packet's fate. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "iface_counter.h"

#define TC_ACT_UNSPEC (-1)

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, RP_MAX_INTERFACES* RP_DIR_COUNT);
  __type(key, struct rp_iface_key);
  __type(value, struct rp_counter);
} rp_iface_counters SEC(".maps");

static __always_inline int count(struct __sk_buff* skb, __u32 direction) {
  struct rp_iface_key key = {.ifindex = skb->ifindex, .direction = direction};
  struct rp_counter* c = bpf_map_lookup_elem(&rp_iface_counters, &key);
  if (c) {
    c->packets += 1;
    c->bytes += skb->len;
  } else {
    struct rp_counter init = {.packets = 1, .bytes = skb->len};
    bpf_map_update_elem(&rp_iface_counters, &key, &init, BPF_NOEXIST);
  }
  /* TC_ACT_UNSPEC is also TCX_NEXT: the next program (Cilium's) still runs. */
  return TC_ACT_UNSPEC;
}

SEC("tc")
int rp_count_ingress(struct __sk_buff* skb) {
  return count(skb, RP_DIR_INGRESS);
}

SEC("tc")
int rp_count_egress(struct __sk_buff* skb) {
  return count(skb, RP_DIR_EGRESS);
}

char LICENSE[] SEC("license") = "GPL";
