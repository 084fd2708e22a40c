// SPDX-License-Identifier: GPL-2.0
/* tc programs for the tunnel interfaces (cilium_wg0, cilium_vxlan, cilium_geneve, wg*), ingress
 * and egress: write bpf_ktime_get_ns() into the kernel-stamp TLV of STAMP probes (t1..t4, see
 * regionpulse_shared.h) and count packets and bytes per remote region and direction.
 *
 * They never drop or change any other packet and always return TC_ACT_UNSPEC, which is also
 * TCX_NEXT: the next program on the interface (Cilium's) runs as if we were not there.
 *
 * Where the IP header starts is decided by the device, never by looking at the bytes: the
 * agent attaches the _l2 programs to devices with an Ethernet header (veth, vxlan, geneve,
 * eth) and the _l3 programs to devices without one (WireGuard, tun: ARPHRD_NONE); IPv4 versus
 * IPv6 comes from skb->protocol in both cases. */
#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "region_lpm.bpf.h"
#include "regionpulse_shared.h"

#define TC_ACT_UNSPEC (-1)
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IP_MF_AND_OFFSET 0x3fff
#define UDP_HLEN 8
#define UDP_CSUM_OFF 6
#define KSTAMP_SLOTS_OFF 12

/* The STAMP reflector port, host byte order; set by the agent before load. */
const volatile __u16 rp_probe_port = RP_STAMP_DEFAULT_PORT;
/* Where the IP header starts in the _l3 programs. 0 on real L3 devices. BPF_PROG_TEST_RUN
 * always builds an Ethernet frame for tc programs (it pushes ETH_HLEN back after
 * eth_type_trans), so the crafted-packet tests load a copy with ETH_HLEN here; skb->protocol
 * still comes from the kernel. */
const volatile __u32 rp_l3_header_offset = 0;

/* One entry per possible CPU, indexed by the CPU the program runs on (max_entries is set by
 * the loader). A plain array rather than a per-CPU one: the verifier turns a lookup in it into
 * address arithmetic on constants, while a per-CPU array's lookup first loads the CPU's
 * pointer from the map, one more cold cache line on every packet. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct rp_tc_cpu_state);
} rp_tc_cpu_state SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, RP_STAT_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} rp_tc_stats SEC(".maps");

/* The slow paths below are separate BPF functions (__noinline) so that the per-packet path of
 * the JIT-ed program stays a short straight run of instructions: a cold instruction cache line
 * costs as much as a cold data line. */
static __noinline __u32 region_of_v4_miss(struct rp_region_lookup_cache* cache, __be32 addr) {
  const __u32 region = rp_region_of_v4(addr);
  cache->v4_addr = addr;
  cache->v4_region = region;
  cache->v4_valid = 1;
  return region;
}

static __noinline __u32 region_of_v6_miss(struct rp_region_lookup_cache* cache, const __u32 addr[4]) {
  __u32 key[4] = {addr[0], addr[1], addr[2], addr[3]};
  const __u32 region = rp_region_of_v6(key);
  __builtin_memcpy(cache->v6_addr, key, 16);
  cache->v6_region = region;
  cache->v6_valid = 1;
  return region;
}

static __always_inline __u32 region_of_v4_cached(struct rp_region_lookup_cache* cache, __be32 addr) {
  if (cache->v4_valid && cache->v4_addr == addr) return cache->v4_region;
  return region_of_v4_miss(cache, addr);
}

static __always_inline __u32 region_of_v6_cached(struct rp_region_lookup_cache* cache, const __u32 addr[4]) {
  if (cache->v6_valid && cache->v6_addr[0] == addr[0] && cache->v6_addr[1] == addr[1] &&
      cache->v6_addr[2] == addr[2] && cache->v6_addr[3] == addr[3])
    return cache->v6_region;
  return region_of_v6_miss(cache, addr);
}

struct kstamp_head {
  __u8 flags;
  __u8 type;
  __be16 length;
  __be32 magic;
};

static __always_inline void stat_inc(__u32 which) {
  __u64* value = bpf_map_lookup_elem(&rp_tc_stats, &which);
  if (value) *value += 1;
}

static __always_inline void count_traffic(struct __sk_buff* skb, struct rp_tc_cpu_state* pc, __u32 region,
                                          __u32 direction) {
  const __u32 slot = region * RP_DIR_COUNT + direction;
  if (slot >= RP_REGION_TRAFFIC_SLOTS) return;
  struct rp_counter* c = &pc->traffic[slot];
  /* A GSO packet leaves as gso_segs packets on the wire: count those. */
  c->packets += skb->gso_segs > 1 ? skb->gso_segs : 1;
  c->bytes += skb->len;
}

static __always_inline int is_kstamp_tlv(struct __sk_buff* skb, __u32 offset) {
  struct kstamp_head head;
  if (bpf_skb_load_bytes(skb, offset, &head, sizeof(head))) return 0;
  return head.type == RP_TLV_TYPE_KERNEL_STAMPS && head.length == bpf_htons(RP_KSTAMP_VALUE_LEN) &&
         head.magic == bpf_htonl(RP_KSTAMP_MAGIC);
}

/* l4: offset of the UDP header. Writes the slot this hook owns when the packet is a probe
 * carrying our TLV and the slot is still empty; leaves every other packet untouched. */
static __noinline void stamp_probe(struct __sk_buff* skb, __u32 l4, int egress) {
  struct udphdr udp;
  if (bpf_skb_load_bytes(skb, l4, &udp, sizeof(udp))) return;

  __u32 slot;
  if (udp.dest == bpf_htons(rp_probe_port))
    slot = egress ? 0 : 1; /* t1: sender out, t2: reflector in */
  else if (udp.source == bpf_htons(rp_probe_port))
    slot = egress ? 2 : 3; /* t3: reflector out, t4: sender in */
  else
    return;

  /* The TLV is the first one after the base packet: 44 bytes unauthenticated, 112
   * authenticated. The UDP length must cover it; bpf_skb_load_bytes checks the skb. */
  const __u32 udp_len = bpf_ntohs(udp.len);
  /* A datagram longer than the packet is truncated or malformed: never stamp it. */
  if (l4 + udp_len > skb->len) return;
  __u32 tlv;
  if (udp_len >= UDP_HLEN + RP_STAMP_BASE_UNAUTH + RP_KSTAMP_TLV_LEN &&
      is_kstamp_tlv(skb, l4 + UDP_HLEN + RP_STAMP_BASE_UNAUTH)) {
    tlv = l4 + UDP_HLEN + RP_STAMP_BASE_UNAUTH;
  } else if (udp_len >= UDP_HLEN + RP_STAMP_BASE_AUTH + RP_KSTAMP_TLV_LEN &&
             is_kstamp_tlv(skb, l4 + UDP_HLEN + RP_STAMP_BASE_AUTH)) {
    tlv = l4 + UDP_HLEN + RP_STAMP_BASE_AUTH;
  } else {
    stat_inc(RP_STAT_PROBE_NO_TLV);
    return;
  }

  const __u32 slot_off = tlv + KSTAMP_SLOTS_OFF + slot * 8;
  __u64 old;
  if (bpf_skb_load_bytes(skb, slot_off, &old, sizeof(old))) return;
  /* First writer wins: a probe crossing two attached devices keeps the outermost-in-time
   * stamp, and a reflector's copy of t1/t2 is never overwritten on the way back. */
  if (old != 0) {
    stat_inc(RP_STAT_SLOT_ALREADY_SET);
    return;
  }
  __u64 now = bpf_cpu_to_be64(bpf_ktime_get_ns());
  /* Payload and checksum field change by opposite amounts, so skb->csum (CHECKSUM_COMPLETE)
   * stays right without BPF_F_RECOMPUTE_CSUM. With CHECKSUM_PARTIAL the kernel finishes the
   * sum over the new payload later and bpf_l4_csum_replace leaves the field alone. An IPv4
   * UDP checksum of 0 (none) stays 0 thanks to BPF_F_MARK_MANGLED_0; a computed 0 becomes
   * 0xffff as RFC 768 wants. */
  const __s64 diff = bpf_csum_diff((__be32*)&old, sizeof(old), (__be32*)&now, sizeof(now), 0);
  if (diff < 0 || bpf_skb_store_bytes(skb, slot_off, &now, sizeof(now), 0)) {
    stat_inc(RP_STAT_STAMP_FAILED);
    return;
  }
  if (bpf_l4_csum_replace(skb, l4 + UDP_CSUM_OFF, 0, diff, BPF_F_MARK_MANGLED_0)) {
    /* Put the zero back so the packet is exactly as it came. */
    bpf_skb_store_bytes(skb, slot_off, &old, sizeof(old), 0);
    stat_inc(RP_STAT_STAMP_FAILED);
    return;
  }
  stat_inc(RP_STAT_STAMP_T1 + slot);
}

/* Reads the fields it needs straight from the packet when the header is in the linear data
 * (the usual case: no copy, no helper call), else from a copy made by bpf_skb_load_bytes. */
static __always_inline int handle(struct __sk_buff* skb, __u32 l3, int egress) {
  const __u32 direction = egress ? RP_DIR_EGRESS : RP_DIR_INGRESS;
  /* tc programs run with migration disabled: the CPU stays the same for the whole run. */
  __u32 cpu = bpf_get_smp_processor_id();
  struct rp_tc_cpu_state* pc = bpf_map_lookup_elem(&rp_tc_cpu_state, &cpu);
  if (!pc) return TC_ACT_UNSPEC;
  void* data = (void*)(long)skb->data;
  void* data_end = (void*)(long)skb->data_end;
  if (skb->protocol == bpf_htons(ETH_P_IP)) {
    struct iphdr copy;
    const struct iphdr* ip = data + l3;
    if ((void*)(ip + 1) > data_end) {
      if (bpf_skb_load_bytes(skb, l3, &copy, sizeof(copy))) return TC_ACT_UNSPEC;
      ip = &copy;
    }
    if (ip->version != 4 || ip->ihl < 5) return TC_ACT_UNSPEC;
    count_traffic(skb, pc, region_of_v4_cached(&pc->cache, egress ? ip->daddr : ip->saddr), direction);
    /* Fragments: the TLV of a fragmented probe is not reliably in this skb. */
    if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(IP_MF_AND_OFFSET))) return TC_ACT_UNSPEC;
    stamp_probe(skb, l3 + ip->ihl * 4, egress);
  } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr copy;
    const struct ipv6hdr* ip6 = data + l3;
    if ((void*)(ip6 + 1) > data_end) {
      if (bpf_skb_load_bytes(skb, l3, &copy, sizeof(copy))) return TC_ACT_UNSPEC;
      ip6 = &copy;
    }
    if (ip6->version != 6) return TC_ACT_UNSPEC;
    const __u32* remote = egress ? ip6->daddr.in6_u.u6_addr32 : ip6->saddr.in6_u.u6_addr32;
    count_traffic(skb, pc, region_of_v6_cached(&pc->cache, remote), direction);
    /* Probes are sent without extension headers; anything else is only counted. */
    if (ip6->nexthdr != IPPROTO_UDP) return TC_ACT_UNSPEC;
    stamp_probe(skb, l3 + sizeof(*ip6), egress);
  }
  return TC_ACT_UNSPEC;
}

SEC("tc")
int rp_tc_ingress_l2(struct __sk_buff* skb) {
  return handle(skb, ETH_HLEN, 0);
}

SEC("tc")
int rp_tc_egress_l2(struct __sk_buff* skb) {
  return handle(skb, ETH_HLEN, 1);
}

SEC("tc")
int rp_tc_ingress_l3(struct __sk_buff* skb) {
  return handle(skb, rp_l3_header_offset, 0);
}

SEC("tc")
int rp_tc_egress_l3(struct __sk_buff* skb) {
  return handle(skb, rp_l3_header_offset, 1);
}

char LICENSE[] SEC("license") = "GPL";
