/* Structs and constants shared by the BPF programs and the C++ that reads their maps.
 * Fixed-width types and explicit padding only: the C++ side static_asserts the sizes. */
#ifndef REGIONPULSE_BPF_SHARED_H
#define REGIONPULSE_BPF_SHARED_H

#ifdef __BPF__
/* vmlinux.h provides __u32 and friends in BPF builds. */
#else
#include <linux/types.h>
#endif

/* Which way a packet crossed the interface, and what was counted of it. */
enum rp_direction {
  RP_DIR_INGRESS = 0,
  RP_DIR_EGRESS = 1,
  RP_DIR_COUNT = 2,
};

struct rp_counter {
  __u64 packets;
  __u64 bytes;
};

/* ---- STAMP probes (RFC 8762 + RFC 8972 TLVs) and the kernel-stamp TLV --------------------
 * The STAMP base packet follows the UDP header: 44 bytes in unauthenticated mode, 112 in
 * authenticated mode, for both Session-Sender and Session-Reflector packets. The kernel-stamp
 * TLV is the first TLV after the base packet, so the tc programs find it at one of two fixed
 * offsets and recognise it by type and magic. All fields are in network byte order.
 * Which slot a tc program writes follows from direction and which UDP port is the reflector
 * port: egress+dst -> t1 (sender out), ingress+dst -> t2 (reflector in),
 * egress+src -> t3 (reflector out), ingress+src -> t4 (sender in). */
#define RP_STAMP_BASE_UNAUTH 44
#define RP_STAMP_BASE_AUTH 112
#define RP_STAMP_DEFAULT_PORT 862     /* IANA STAMP port; configurable */
#define RP_TLV_TYPE_KERNEL_STAMPS 250 /* RFC 8972 experimental range 240-251 */
#define RP_KSTAMP_MAGIC 0x52504b31    /* "RPK1" */
#define RP_KSTAMP_SLOTS 4

/* Packed: on the wire t[] starts at offset 12 (RP_KSTAMP_TLV_LEN 44); natural alignment would
 * have put it at 16. */
struct __attribute__((packed)) rp_kstamp_tlv {
  __u8 flags;                /* RFC 8972 U/M/I/R flags; 0 when sent */
  __u8 type;                 /* RP_TLV_TYPE_KERNEL_STAMPS */
  __be16 length;             /* length of the value: 40 */
  __be32 magic;              /* RP_KSTAMP_MAGIC */
  __be32 reserved;           /* 0 */
  __be64 t[RP_KSTAMP_SLOTS]; /* bpf_ktime_get_ns() at t1..t4; 0 = not stamped */
};
#define RP_KSTAMP_TLV_LEN 44   /* sizeof(struct rp_kstamp_tlv) */
#define RP_KSTAMP_VALUE_LEN 40 /* RP_KSTAMP_TLV_LEN minus the 4-byte TLV header */

/* ---- Regions ------------------------------------------------------------------------------
 * Region ids are 1-based positions in the configured region table; 0 means "no region
 * matched". The LPM tries map a remote address to its region id (value: __u32). */
#define RP_MAX_REGIONS 64 /* ids 0..63 */
#define RP_MAX_REGION_CIDRS 4096

struct rp_lpm_v4_key {
  __u32 prefixlen; /* bits, 0..32 */
  __u8 addr[4];    /* network byte order */
};

struct rp_lpm_v6_key {
  __u32 prefixlen; /* bits, 0..128 */
  __u8 addr[16];
};

/* tunnel_tc.bpf.c: packets and bytes per remote region and direction, indexed by
 * region * RP_DIR_COUNT + direction. */
#define RP_REGION_TRAFFIC_SLOTS (RP_MAX_REGIONS * RP_DIR_COUNT)

/* The last address looked up on a CPU and its region. A tunnel carries few remote addresses
 * at a time and packets of one flow arrive back to back, so this usually answers instead of
 * the LPM trie walk (several cold cache lines). The tries are filled before the programs are
 * attached and not changed afterwards, so an entry never goes stale. */
struct rp_region_lookup_cache {
  __u32 v4_valid;
  __be32 v4_addr;
  __u32 v4_region;
  __u32 v6_valid;
  __u32 v6_addr[4];
  __u32 v6_region;
  __u32 pad[7]; /* to 64 bytes: the counters start on their own cache line */
};

/* Everything the per-packet path writes for one CPU: entry N of the array rp_tc_cpu_state
 * belongs to CPU N. As few cache lines as possible per packet: a cold line costs far more
 * than the program's instructions (docs/benchmarks.md). */
struct rp_tc_cpu_state {
  struct rp_region_lookup_cache cache;
  struct rp_counter traffic[RP_REGION_TRAFFIC_SLOTS];
  /* Never written: the kernel does not align array entries to cache lines, so this keeps the
   * next CPU's hot lines from sharing one with this CPU's counters. */
  __u8 pad_to_next_cpu[64];
};

/* tunnel_tc.bpf.c: per-CPU array of RP_STAT_COUNT __u64 event counters. */
enum rp_tc_stat {
  RP_STAT_STAMP_T1 = 0, /* RP_STAT_STAMP_T1 + slot: kernel stamps written into probes */
  RP_STAT_STAMP_T2 = 1,
  RP_STAT_STAMP_T3 = 2,
  RP_STAT_STAMP_T4 = 3,
  RP_STAT_PROBE_NO_TLV = 4,     /* UDP on the probe port without our TLV (foreign, short) */
  RP_STAT_STAMP_FAILED = 5,     /* a helper refused to write: packet left as it was */
  RP_STAT_SLOT_ALREADY_SET = 6, /* the slot held a stamp already (second tunnel device) */
  RP_STAT_COUNT = 7,
};

/* ---- TCP signals (tcp_signals.bpf.c) ------------------------------------------------------
 * Per remote region: a per-CPU array indexed by region id. */
struct rp_tcp_region_counters {
  __u64 retransmits;
  __u64 srtt_us_sum; /* smoothed RTT samples, microseconds */
  __u64 srtt_samples;
  __u64 resets; /* RST received, or sent on a connection that was established */
  __u64 failed_connects;
  __u64 established;
};

/* Replication flows: a flow is a set of TCP ports towards one remote region. The hash
 * rp_flow_ports maps {port, remote region} to the flow index + 1; a connection belongs to the
 * flow if its remote or its local port is in the set. */
#define RP_MAX_FLOWS 64
#define RP_MAX_FLOW_PORTS 1024

struct rp_flow_port_key {
  __u16 port; /* host byte order */
  __u16 pad;  /* 0 */
  __u32 region;
};

/* One flow's hot counters: a per-CPU array indexed by flow index (sock_ops RTT callbacks run
 * once per round trip of every connection, so these must not bounce a shared cache line
 * between CPUs). */
struct rp_flow_counters {
  /* Bytes acknowledged on connections of the flow that have closed, from establishment to
   * close (only those with an entry in rp_flow_sockets). Live connections are read from the
   * sockets themselves by user space (sock_diag), which adds both. */
  __u64 closed_bytes_acked;
  __u64 srtt_us_sum;
  __u64 srtt_samples;
  __u64 retransmits;
  __u64 established;     /* connections of the flow that reached ESTABLISHED */
  __u64 failed_connects; /* connects of the flow that never got there (SYN_SENT -> CLOSE) */
  __u64 resets;          /* RST received or sent on an established connection of the flow */
};

/* One flow's progress clock, in a shared array: it must be one value across CPUs. Written
 * only when it moves by more than RP_PROGRESS_GRANULARITY_NS. */
struct rp_flow_progress {
  __u64 last_progress_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) when bytes_acked last grew */
};
#define RP_PROGRESS_GRANULARITY_NS 1000000ULL /* 1 ms: windows are 1 s */

/* Established connections of replication flows, by socket cookie: where user space learns
 * which flow a live socket belongs to, how many bytes it had acknowledged when it was
 * established (it counts only what came after), and its addresses, by which it asks the
 * kernel for the socket's tcp_info (an exact sock_diag lookup). Added on establishment and
 * removed when the socket closes, at which point its bytes move into
 * rp_flow_counters.closed_bytes_acked. */
#define RP_MAX_FLOW_SOCKETS 16384 /* the loader sets the configured size */
struct rp_flow_socket {
  __u32 flow;        /* flow index + 1 */
  __u16 family;      /* AF_INET or AF_INET6 */
  __u16 local_port;  /* host byte order */
  __u16 remote_port; /* host byte order */
  __u16 pad;
  __u32 bound_ifindex;        /* SO_BINDTODEVICE, else 0 */
  __u32 local_addr[4];        /* network byte order; IPv4 in [0] */
  __u32 remote_addr[4];       /* likewise */
  __u64 baseline_bytes_acked; /* tcp_sock bytes_acked at establishment */
};

/* Per-socket state in socket local storage (sock_ops). */
struct rp_sock_state {
  __u32 region;
  __u32 flow;                 /* flow index + 1, 0 = none */
  __u64 bytes_acked;          /* tcp_sock bytes_acked at the last event (moves the progress clock) */
  __u64 baseline_bytes_acked; /* at establishment */
  __u64 last_sample_ns;       /* bpf_ktime_get_ns() of the last RTT sample taken */
  __u32 established;          /* reached ESTABLISHED and not yet closed */
  __u32 in_flow_sockets;      /* has an entry in rp_flow_sockets (it may be full) */
};

/* sock_ops RTT callbacks come about once per round trip (tcp_rtt_estimator makes one when
 * snd_una passes the sequence noted at the previous one), thousands a second on a busy
 * short-RTT connection. The kernel's srtt is already smoothed, so one sample per connection
 * and millisecond loses nothing and keeps the other callbacks to one storage lookup. No
 * callback follows the ACK that ends a burst when everything was already in flight at the
 * previous one, so callbacks cannot tell a flow's acknowledged bytes nor whether it went
 * idle: user space reads those from the live sockets at every window close (sock_diag), and
 * the callbacks keep only the progress clock to the millisecond while data moves. */
#define RP_RTT_SAMPLE_INTERVAL_NS 1000000ULL

#endif /* REGIONPULSE_BPF_SHARED_H */
