/* BPF side of region classification: the LPM tries from remote address to region id, filled
 * by user space from the configured region CIDRs. Included by every program that needs it;
 * the agent loads the tries once and shares them between objects (bpf_map__reuse_fd). */
#ifndef REGIONPULSE_REGION_LPM_BPF_H
#define REGIONPULSE_REGION_LPM_BPF_H

#include "regionpulse_shared.h"

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, RP_MAX_REGION_CIDRS);
  __uint(map_flags, BPF_F_NO_PREALLOC); /* LPM tries require it */
  __type(key, struct rp_lpm_v4_key);
  __type(value, __u32);
} rp_regions_v4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, RP_MAX_REGION_CIDRS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct rp_lpm_v6_key);
  __type(value, __u32);
} rp_regions_v6 SEC(".maps");

/* addr: IPv4 address in network byte order. Returns the region id, 0 when none matches. */
static __always_inline __u32 rp_region_of_v4(__be32 addr) {
  struct rp_lpm_v4_key key = {.prefixlen = 32};
  __builtin_memcpy(key.addr, &addr, 4);
  __u32* region = bpf_map_lookup_elem(&rp_regions_v4, &key);
  return (region && *region < RP_MAX_REGIONS) ? *region : 0;
}

/* addr: 16 bytes of IPv6 address. IPv4-mapped addresses (::ffff:a.b.c.d, dual-stack
 * sockets) are classified by their IPv4 address. */
static __always_inline __u32 rp_region_of_v6(const __u32 addr[4]) {
  if (addr[0] == 0 && addr[1] == 0 && addr[2] == bpf_htonl(0xffff)) return rp_region_of_v4(addr[3]);
  struct rp_lpm_v6_key key = {.prefixlen = 128};
  __builtin_memcpy(key.addr, addr, 16);
  __u32* region = bpf_map_lookup_elem(&rp_regions_v6, &key);
  return (region && *region < RP_MAX_REGIONS) ? *region : 0;
}

#endif /* REGIONPULSE_REGION_LPM_BPF_H */
