// BpfDatapath on a real WireGuard interface (wireguard-go, a TUN device, no Ethernet header)
// named cilium_wg0, found by auto-detection: stamps, counters, checksums the receiving stack
// accepts, and re-attachment when the interface is deleted and created again.
#include <gtest/gtest.h>

#include "agent/bpf_datapath.h"
#include "tests/agent/namespace_traffic.h"
#include "tests/support/test_network.h"
#include "tests/support/wireguard_link.h"

namespace regionpulse {
namespace {

using test::NetworkNamespace;
using test::PollUntil;
using test::RunOrThrow;
using test::ScopedNetnsEntry;
using test::VethPair;
using test::WireguardLink;

constexpr uint16_t kProbePort = 862;

std::unique_ptr<BpfDatapath> StartIn(const std::string& netns) {
  DatapathConfig config;  // no interfaces: auto-detect cilium_wg0
  config.probe_port = kProbePort;
  config.region_cidrs = {{"10.196.0.0/24", 1}, {"fd96:196::/64", 1}};
  config.flows = {{"replication", {5201}, 1, 0}};
  ScopedNetnsEntry inside(netns);
  auto started = BpfDatapath::Start(config);
  if (!started.ok())
    throw std::runtime_error("BpfDatapath::Start in " + netns + ": " + started.error().ToString());
  return std::move(started).value();
}

TEST(DatapathWireguard, StampsAndCountsOnCiliumWg0AndReattachesWhenItIsRecreated) {
  NetworkNamespace a("dwg-a");
  NetworkNamespace b("dwg-b");
  VethPair underlay(a, b, "rpdwu0", "rpdwu1", 96);
  WireguardLink link({a.name(), "10.196.0.1/24", "fd96:196::1/64", underlay.a().ipv4, 51830, {}},
                     {b.name(), "10.196.0.2/24", "fd96:196::2/64", underlay.b().ipv4, 51831, {}});
  auto sender = StartIn(a.name());
  auto reflector = StartIn(b.name());

  const auto attachments = sender->Attachments();
  ASSERT_EQ(attachments.size(), 1u) << "only cilium_wg0 matches auto-detection here";
  EXPECT_EQ(attachments[0].name, "cilium_wg0");
  EXPECT_TRUE(attachments[0].l3_only);

  const uint64_t csum_errors_a = test::UdpChecksumErrors(a.name());
  const uint64_t csum_errors_b = test::UdpChecksumErrors(b.name());
  for (const auto& target : {link.b_ipv4(), link.b_ipv6()}) {
    SCOPED_TRACE(target);
    const auto replies = test::ExchangeProbes(a.name(), b.name(), target, kProbePort, 20);
    ASSERT_EQ(replies.size(), 20u) << "every stamped probe and reply was accepted by the receiving stack";
    for (const auto& t : replies) {
      EXPECT_GT(t[0], 0u);
      EXPECT_LT(t[0], t[1]);
      EXPECT_LT(t[1], t[2]);
      EXPECT_LT(t[2], t[3]);
    }
  }
  EXPECT_EQ(test::UdpChecksumErrors(a.name()), csum_errors_a);
  EXPECT_EQ(test::UdpChecksumErrors(b.name()), csum_errors_b);

  // TCP over the tunnel with every 10th packet dropped on arrival at b.
  RunOrThrow(b.Exec() + "nft add table inet rptest");
  RunOrThrow(b.Exec() + "nft 'add chain inet rptest in { type filter hook input priority 0; }'");
  RunOrThrow(b.Exec() +
             "nft add rule inet rptest in iifname cilium_wg0 tcp dport 5201 numgen inc mod 10 == 0 drop");
  constexpr size_t kBytes = 2 << 20;
  EXPECT_EQ(test::TcpTransfer(a.name(), b.name(), link.b_ipv4(), 5201, kBytes), kBytes);
  ASSERT_TRUE(PollUntil([&] { return sender->FlowCountersNow().at(0).bytes_acked >= kBytes; }));
  const auto counters = sender->RegionCounters().at(1);
  EXPECT_GE(counters.tcp_established, 1u);
  EXPECT_GT(counters.tcp_retransmits, 0u);
  EXPECT_GT(counters.tx_bytes, kBytes);
  EXPECT_GT(counters.rx_packets, 0u);
  EXPECT_GT(sender->FlowCountersNow().at(0).retransmits, 0u);

  link.RecreateSideA();
  ASSERT_TRUE(PollUntil([&] {
    const auto now = sender->Attachments();
    return now.size() == 1 && now[0].ifindex != attachments[0].ifindex;
  })) << "cilium_wg0 re-created but not re-attached";
  const auto replies = test::ExchangeProbes(a.name(), b.name(), link.b_ipv4(), kProbePort, 5);
  ASSERT_EQ(replies.size(), 5u);
  for (const auto& t : replies) EXPECT_LT(t[0], t[3]) << "stamped after re-attachment";
}

}  // namespace
}  // namespace regionpulse
