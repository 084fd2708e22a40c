// BpfDatapath on a VXLAN device named cilium_vxlan (an Ethernet-type tunnel, as in Cilium's
// tunnel mode), found by auto-detection: the L2 programs stamp probes on the overlay.
#include <gtest/gtest.h>

#include "agent/bpf_datapath.h"
#include "tests/agent/namespace_traffic.h"
#include "tests/support/test_network.h"

namespace regionpulse {
namespace {

using test::NetworkNamespace;
using test::RunOrThrow;
using test::ScopedNetnsEntry;
using test::VethPair;

TEST(DatapathVxlan, StampsProbesOnAnAutoDetectedCiliumVxlan) {
  NetworkNamespace a("dvx-a");
  NetworkNamespace b("dvx-b");
  VethPair underlay(a, b, "rpdvu0", "rpdvu1", 97);
  const std::pair<const NetworkNamespace*, std::string> sides[] = {{&a, underlay.b().ipv4},
                                                                   {&b, underlay.a().ipv4}};
  int host = 1;
  for (const auto& [ns, remote] : sides) {
    RunOrThrow(ns->Exec() + "ip link add cilium_vxlan type vxlan id 42 dstport 8472 remote " + remote);
    RunOrThrow(ns->Exec() + "ip addr add 10.197.0." + std::to_string(host++) + "/24 dev cilium_vxlan");
    RunOrThrow(ns->Exec() + "ip link set cilium_vxlan up");
  }

  DatapathConfig config;  // auto-detect: cilium_vxlan, not the underlay veth
  config.region_cidrs = {{"10.197.0.0/24", 1}};
  auto start_in = [&](const NetworkNamespace& ns) {
    ScopedNetnsEntry inside(ns.name());
    auto started = BpfDatapath::Start(config);
    if (!started.ok()) throw std::runtime_error(started.error().ToString());
    return std::move(started).value();
  };
  auto sender = start_in(a);
  auto reflector = start_in(b);
  const auto attachments = sender->Attachments();
  ASSERT_EQ(attachments.size(), 1u);
  EXPECT_EQ(attachments[0].name, "cilium_vxlan");
  EXPECT_FALSE(attachments[0].l3_only);

  const auto replies = test::ExchangeProbes(a.name(), b.name(), "10.197.0.2", 862, 10);
  ASSERT_EQ(replies.size(), 10u);
  for (const auto& t : replies) {
    EXPECT_GT(t[0], 0u);
    EXPECT_LT(t[0], t[1]);
    EXPECT_LT(t[1], t[2]);
    EXPECT_LT(t[2], t[3]);
  }
  EXPECT_GE(sender->RegionCounters().at(1).tx_packets, 10u);
}

}  // namespace
}  // namespace regionpulse
