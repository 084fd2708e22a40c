// SPDX-License-Identifier: GPL-2.0
/* Passive TCP signals per remote region and per replication flow:
 * - tracepoint tcp/tcp_retransmit_skb: retransmits;
 * - tracepoints tcp/tcp_receive_reset and tcp/tcp_send_reset: resets of connections that were
 *   past the handshake (a refused connect is a failed connect, counted once, by sock_ops);
 * - cgroup sock_ops: connections established, failed connects, smoothed RTT, and for flows
 *   the time acknowledged bytes last advanced, the flow's live sockets by cookie (for user
 *   space, which reads their acknowledged bytes with sock_diag) and the bytes acknowledged
 *   by the ones that closed.
 *
 * The tracepoints and the cgroup2 root are shared by every agent on the host (the lab runs
 * one agent per network namespace), so only sockets of the agent's own network namespace
 * (rp_netns_cookie, set before load) are counted: the tracepoints compare the socket's
 * namespace cookie, sock_ops compares it when it first meets a socket and afterwards knows
 * its sockets by their storage in its own map. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "region_lpm.bpf.h"
#include "regionpulse_shared.h"

#define AF_INET 2
#define AF_INET6 10

/* Network namespace cookie of the agent; 0 counts sockets of every namespace. */
const volatile __u64 rp_netns_cookie = 0;

/* Flow connections rp_flow_sockets had no room for: user space then finds them by a dump. */
__u64 rp_flow_sockets_untracked = 0;

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, RP_MAX_REGIONS);
  __type(key, __u32);
  __type(value, struct rp_tcp_region_counters);
} rp_tcp_regions SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, RP_MAX_FLOW_PORTS);
  __type(key, struct rp_flow_port_key);
  __type(value, __u32); /* flow index + 1 */
} rp_flow_ports SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, RP_MAX_FLOWS);
  __type(key, __u32);
  __type(value, struct rp_flow_counters);
} rp_flow_counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, RP_MAX_FLOWS);
  __type(key, __u32);
  __type(value, struct rp_flow_progress);
} rp_flow_progress SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, RP_MAX_FLOW_SOCKETS);
  __type(key, __u64); /* socket cookie */
  __type(value, struct rp_flow_socket);
} rp_flow_sockets SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct rp_sock_state);
} rp_sock_states SEC(".maps");

static __always_inline struct rp_tcp_region_counters* region_counters(__u32 region) {
  return bpf_map_lookup_elem(&rp_tcp_regions, &region);
}

/* Flow index + 1 of a connection towards `region` with these ports (host order), or 0. */
static __always_inline __u32 flow_of(__u32 region, __u16 remote_port, __u16 local_port) {
  if (region == 0) return 0;
  struct rp_flow_port_key key = {.port = remote_port, .region = region};
  __u32* flow = bpf_map_lookup_elem(&rp_flow_ports, &key);
  if (!flow) {
    key.port = local_port;
    flow = bpf_map_lookup_elem(&rp_flow_ports, &key);
  }
  return (flow && *flow <= RP_MAX_FLOWS) ? *flow : 0;
}

/* `flow` is the flow index + 1; 0 (no flow) gives NULL. */
static __always_inline struct rp_flow_counters* flow_counters(__u32 flow) {
  if (flow == 0) return 0;
  __u32 index = flow - 1;
  return bpf_map_lookup_elem(&rp_flow_counters, &index);
}

static __always_inline struct rp_flow_progress* flow_progress(__u32 flow) {
  if (flow == 0) return 0;
  __u32 index = flow - 1;
  return bpf_map_lookup_elem(&rp_flow_progress, &index);
}

/* ---- tracepoints: the socket is a kernel pointer read with CO-RE ------------------------- */

struct sock_identity {
  __u32 region;
  __u16 remote_port;
  __u16 local_port;
  int state;
};

/* Returns 0 when the socket is ours to count and fills `id`. */
static __always_inline int identify(const struct sock* sk, struct sock_identity* id) {
  if (!sk) return -1;
  if (rp_netns_cookie && BPF_CORE_READ(sk, __sk_common.skc_net.net, net_cookie) != rp_netns_cookie) return -1;
  const __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  if (family == AF_INET) {
    id->region = rp_region_of_v4(BPF_CORE_READ(sk, __sk_common.skc_daddr));
  } else if (family == AF_INET6) {
    __u32 addr[4];
    BPF_CORE_READ_INTO(&addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
    id->region = rp_region_of_v6(addr);
  } else {
    return -1;
  }
  id->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  id->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
  id->state = BPF_CORE_READ(sk, __sk_common.skc_state);
  return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int rp_tcp_retransmit(struct trace_event_raw_tcp_retransmit_skb* ctx) {
  struct sock_identity id = {};
  if (identify(ctx->skaddr, &id)) return 0;
  struct rp_tcp_region_counters* c = region_counters(id.region);
  if (c) c->retransmits += 1;
  struct rp_flow_counters* f = flow_counters(flow_of(id.region, id.remote_port, id.local_port));
  if (f) f->retransmits += 1;
  return 0;
}

static __always_inline void count_reset(const struct sock* sk) {
  struct sock_identity id = {};
  if (identify(sk, &id)) return;
  /* SYN_SENT: a refused connect, counted as a failed connect by sock_ops. LISTEN and
   * SYN_RECV: no connection existed yet. */
  if (id.state != TCP_ESTABLISHED && id.state != TCP_FIN_WAIT1 && id.state != TCP_FIN_WAIT2 &&
      id.state != TCP_CLOSE_WAIT && id.state != TCP_CLOSING && id.state != TCP_LAST_ACK)
    return;
  struct rp_tcp_region_counters* c = region_counters(id.region);
  if (c) c->resets += 1;
  struct rp_flow_counters* f = flow_counters(flow_of(id.region, id.remote_port, id.local_port));
  if (f) f->resets += 1;
}

SEC("tracepoint/tcp/tcp_receive_reset")
int rp_tcp_receive_reset(struct trace_event_raw_tcp_event_sk* ctx) {
  count_reset(ctx->skaddr);
  return 0;
}

SEC("tracepoint/tcp/tcp_send_reset")
int rp_tcp_send_reset(struct trace_event_raw_tcp_send_reset* ctx) {
  count_reset(ctx->skaddr); /* NULL for resets sent without a socket: not a connection */
  return 0;
}

/* ---- sock_ops ------------------------------------------------------------------------------ */

static __always_inline __u32 region_of_sockops(struct bpf_sock_ops* skops) {
  if (skops->family == AF_INET) return rp_region_of_v4(skops->remote_ip4);
  if (skops->family == AF_INET6) {
    __u32 addr[4] = {skops->remote_ip6[0], skops->remote_ip6[1], skops->remote_ip6[2], skops->remote_ip6[3]};
    return rp_region_of_v6(addr);
  }
  return 0;
}

/* Moves the flow's progress clock when the socket's acknowledged bytes grew since its last
 * event. */
static __always_inline void note_progress(struct rp_sock_state* st, __u64 acked) {
  if (acked <= st->bytes_acked) return;
  st->bytes_acked = acked;
  struct rp_flow_progress* p = flow_progress(st->flow);
  if (!p) return;
  const __u64 now = bpf_ktime_get_ns();
  if (now - p->last_progress_ns > RP_PROGRESS_GRANULARITY_NS) p->last_progress_ns = now;
}

/* Socket storage is created only for sockets of our own network namespace (on connect and
 * on establishment). Later callbacks (RTT, about once per round trip; state changes) find a
 * socket by its storage in our map, so they need no namespace check: another agent's sockets
 * have no entry here, and the check's cold cache lines are saved on the RTT path. */
static __always_inline struct rp_sock_state* own_state(struct bpf_sock_ops* skops, int create) {
  /* One read of skops->sk: the verifier tracks the NULL check on that register only. */
  struct bpf_sock* sk = skops->sk;
  if (!sk) return 0;
  return bpf_sk_storage_get(&rp_sock_states, sk, 0, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
}

static __always_inline int in_own_netns(struct bpf_sock_ops* skops) {
  return !rp_netns_cookie || bpf_get_netns_cookie(skops) == rp_netns_cookie;
}

/* Connections to no configured region (most of a node's traffic) get no storage and no
 * callbacks: they cost nothing after the handshake. */
static __always_inline void on_connect(struct bpf_sock_ops* skops) {
  if (!in_own_netns(skops)) return;
  const __u32 region = region_of_sockops(skops);
  if (region == 0) return;
  struct rp_sock_state* st = own_state(skops, 1);
  if (!st) return;
  st->region = region;
  /* The source port is bound by now, so the flow is known before the handshake ends: a
   * connect that fails is counted against its flow too. */
  st->flow = flow_of(region, bpf_ntohl(skops->remote_port) & 0xffff, skops->local_port & 0xffff);
  /* Watch the handshake so a connect that never completes is seen (SYN_SENT -> CLOSE). */
  bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void on_established(struct bpf_sock_ops* skops) {
  if (!in_own_netns(skops)) return;
  const __u32 region = region_of_sockops(skops);
  if (region == 0) return;
  struct rp_tcp_region_counters* c = region_counters(region);
  if (c) c->established += 1;
  struct rp_sock_state* st = own_state(skops, 1);
  if (!st) return;
  bpf_sock_ops_cb_flags_set(
      skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_RTT_CB_FLAG | BPF_SOCK_OPS_STATE_CB_FLAG);
  st->region = region;
  st->flow = flow_of(region, bpf_ntohl(skops->remote_port) & 0xffff, skops->local_port & 0xffff);
  st->bytes_acked = skops->bytes_acked;
  st->baseline_bytes_acked = skops->bytes_acked;
  st->established = 1;
  struct rp_flow_counters* f = flow_counters(st->flow);
  if (!f) return;
  f->established += 1;
  /* Published for user space, which counts the live socket's bytes from this baseline on. A
   * full map leaves the socket to user space alone, from when it first sees it. */
  const __u64 cookie = bpf_get_socket_cookie(skops);
  struct rp_flow_socket entry = {
      .flow = st->flow,
      .family = skops->family,
      .local_port = skops->local_port,
      .remote_port = bpf_ntohl(skops->remote_port) & 0xffff,
      .baseline_bytes_acked = st->baseline_bytes_acked,
  };
  struct bpf_sock* sk = skops->sk;
  if (sk) entry.bound_ifindex = sk->bound_dev_if;
  if (skops->family == AF_INET) {
    entry.local_addr[0] = skops->local_ip4;
    entry.remote_addr[0] = skops->remote_ip4;
  } else {
    entry.local_addr[0] = skops->local_ip6[0];
    entry.local_addr[1] = skops->local_ip6[1];
    entry.local_addr[2] = skops->local_ip6[2];
    entry.local_addr[3] = skops->local_ip6[3];
    entry.remote_addr[0] = skops->remote_ip6[0];
    entry.remote_addr[1] = skops->remote_ip6[1];
    entry.remote_addr[2] = skops->remote_ip6[2];
    entry.remote_addr[3] = skops->remote_ip6[3];
  }
  st->in_flow_sockets = bpf_map_update_elem(&rp_flow_sockets, &cookie, &entry, BPF_ANY) == 0;
  if (!st->in_flow_sockets) __sync_fetch_and_add(&rp_flow_sockets_untracked, 1);
}

static __always_inline void on_rtt(struct bpf_sock_ops* skops) {
  struct rp_sock_state* st = own_state(skops, 0);
  if (!st) return;
  const __u64 now = bpf_ktime_get_ns();
  if (now - st->last_sample_ns < RP_RTT_SAMPLE_INTERVAL_NS) return;
  st->last_sample_ns = now;
  const __u64 srtt_us = skops->srtt_us >> 3; /* tcp_sock keeps srtt scaled by 8 */
  struct rp_tcp_region_counters* c = region_counters(st->region);
  if (c) {
    c->srtt_us_sum += srtt_us;
    c->srtt_samples += 1;
  }
  struct rp_flow_counters* f = flow_counters(st->flow);
  if (f) {
    f->srtt_us_sum += srtt_us;
    f->srtt_samples += 1;
    note_progress(st, skops->bytes_acked);
  }
}

static __always_inline void on_state_change(struct bpf_sock_ops* skops) {
  const __u32 old_state = skops->args[0];
  const __u32 new_state = skops->args[1];
  if (new_state != TCP_CLOSE) return;
  struct rp_sock_state* st = own_state(skops, 0);
  if (!st) return;
  if (old_state == TCP_SYN_SENT) {
    struct rp_tcp_region_counters* c = region_counters(st->region);
    if (c) c->failed_connects += 1;
    struct rp_flow_counters* f = flow_counters(st->flow);
    if (f) f->failed_connects += 1;
    return;
  }
  if (!st->established) return;
  st->established = 0;
  if (!st->in_flow_sockets) return;
  /* The socket leaves user space's view: its bytes from establishment to now become the
   * flow's closed bytes (user space reads these before it lists the live sockets, so a
   * socket closing in between is missed for one read, never counted twice). */
  note_progress(st, skops->bytes_acked);
  struct rp_flow_counters* f = flow_counters(st->flow);
  if (f) f->closed_bytes_acked += skops->bytes_acked - st->baseline_bytes_acked;
  const __u64 cookie = bpf_get_socket_cookie(skops);
  bpf_map_delete_elem(&rp_flow_sockets, &cookie);
  st->in_flow_sockets = 0;
}

SEC("sockops")
int rp_sock_ops(struct bpf_sock_ops* skops) {
  switch (skops->op) {
    case BPF_SOCK_OPS_TCP_CONNECT_CB:
      on_connect(skops);
      break;
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
    case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
      on_established(skops);
      break;
    case BPF_SOCK_OPS_RTT_CB:
      on_rtt(skops);
      break;
    case BPF_SOCK_OPS_STATE_CB:
      on_state_change(skops);
      break;
    default:
      break;
  }
  return 1; /* sock_ops: 1 = carry on; the return value never changes the connection here */
}

char LICENSE[] SEC("license") = "GPL";
