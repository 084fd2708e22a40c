/* The map key of iface_counter.bpf.c, shared by the program and its test: packets and bytes
 * per interface and direction. */
#ifndef REGIONPULSE_TESTS_IFACE_COUNTER_H
#define REGIONPULSE_TESTS_IFACE_COUNTER_H

#include "bpf/regionpulse_shared.h"

struct rp_iface_key {
  __u32 ifindex;
  __u32 direction; /* enum rp_direction */
};

#define RP_MAX_INTERFACES 64

#endif /* REGIONPULSE_TESTS_IFACE_COUNTER_H */
