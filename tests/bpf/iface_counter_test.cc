// The minimal BPF program loads from its skeleton, attaches to a veth inside a network
// namespace with a tcx link, and counts the packets a ping sends and receives.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/tcx_uapi.h"
#include "iface_counter.skel.h"
#include "tests/bpf/iface_counter.h"
#include "tests/support/test_network.h"

namespace regionpulse {
namespace {

using test::NetworkNamespace;
using test::RunOrThrow;
using test::ScopedNetnsEntry;
using test::VethPair;

rp_counter ReadCounter(int map_fd, uint32_t ifindex, uint32_t direction) {
  const int cpus = libbpf_num_possible_cpus();
  std::vector<rp_counter> per_cpu(cpus);
  rp_iface_key key{ifindex, direction};
  rp_counter total{};
  if (bpf_map_lookup_elem(map_fd, &key, per_cpu.data()) == 0) {
    for (const auto& c : per_cpu) {
      total.packets += c.packets;
      total.bytes += c.bytes;
    }
  }
  return total;
}

TEST(IfaceCounter, CountsPingPacketsOnAVethInANamespace) {
  NetworkNamespace a("cnt-a");
  NetworkNamespace b("cnt-b");
  VethPair veth(a, b, "rpcnt0", "rpcnt1", 91);

  iface_counter* skel = iface_counter__open_and_load();
  ASSERT_NE(skel, nullptr) << "loading iface_counter: " << strerror(errno);

  int ingress_link = -1;
  int egress_link = -1;
  unsigned ifindex = 0;
  {
    ScopedNetnsEntry inside(a.name());
    ifindex = if_nametoindex("rpcnt0");
    ASSERT_NE(ifindex, 0u);
    ingress_link =
        bpf_link_create(bpf_program__fd(skel->progs.rp_count_ingress), ifindex, kTcxIngress, nullptr);
    egress_link = bpf_link_create(bpf_program__fd(skel->progs.rp_count_egress), ifindex, kTcxEgress, nullptr);
  }
  ASSERT_GE(ingress_link, 0) << "tcx ingress attach on rpcnt0: " << strerror(errno);
  ASSERT_GE(egress_link, 0) << "tcx egress attach on rpcnt0: " << strerror(errno);

  RunOrThrow(a.Exec() + "ping -c 5 -i 0.05 -W 1 -q " + veth.b().ipv4);

  const int map_fd = bpf_map__fd(skel->maps.rp_iface_counters);
  const rp_counter out = ReadCounter(map_fd, ifindex, RP_DIR_EGRESS);
  const rp_counter in = ReadCounter(map_fd, ifindex, RP_DIR_INGRESS);
  // 5 echo requests out and 5 replies in, plus possibly ARP/ND.
  EXPECT_GE(out.packets, 5u);
  EXPECT_GE(in.packets, 5u);
  EXPECT_LE(out.packets, 12u);
  EXPECT_GE(out.bytes, 5u * 84u);  // 84-byte IPv4 ICMP echo + Ethernet header

  close(ingress_link);
  close(egress_link);
  iface_counter__destroy(skel);
}

}  // namespace
}  // namespace regionpulse
