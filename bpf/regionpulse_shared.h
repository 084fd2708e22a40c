/* Structs and constants shared by the BPF programs and the C++ that reads their maps.
 * Fixed-width types and explicit padding only: the C++ side static_asserts the sizes. */
#ifndef REGIONPULSE_BPF_SHARED_H
#define REGIONPULSE_BPF_SHARED_H

#ifdef __BPF__
/* vmlinux.h provides __u32 and friends in BPF builds. */
#else
#include <linux/types.h>
#endif

/* iface_counter.bpf.c: packets and bytes seen per interface and direction. */
enum rp_direction {
  RP_DIR_INGRESS = 0,
  RP_DIR_EGRESS = 1,
  RP_DIR_COUNT = 2,
};

struct rp_iface_key {
  __u32 ifindex;
  __u32 direction; /* enum rp_direction */
};

struct rp_counter {
  __u64 packets;
  __u64 bytes;
};

#define RP_MAX_INTERFACES 64

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

struct rp_kstamp_tlv {
  __u8 flags;             /* RFC 8972 U/M/I/R flags; 0 when sent */
  __u8 type;              /* RP_TLV_TYPE_KERNEL_STAMPS */
  __be16 length;          /* length of the value: 40 */
  __be32 magic;           /* RP_KSTAMP_MAGIC */
  __be32 reserved;        /* 0 */
  __be64 t[RP_KSTAMP_SLOTS]; /* bpf_ktime_get_ns() at t1..t4; 0 = not stamped */
};
#define RP_KSTAMP_TLV_LEN 44       /* sizeof(struct rp_kstamp_tlv) */
#define RP_KSTAMP_VALUE_LEN 40     /* RP_KSTAMP_TLV_LEN minus the 4-byte TLV header */

#endif /* REGIONPULSE_BPF_SHARED_H */
