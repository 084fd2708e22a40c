// The WireGuard test fixture itself: two namespaces joined by a veth underlay and a
// wireguard-go tunnel named cilium_wg0 on both sides, torn down without leftovers.
#include "tests/support/wireguard_link.h"

#include <gtest/gtest.h>

#include "tests/support/test_network.h"

namespace regionpulse {
namespace {

using test::NetworkNamespace;
using test::RunOrThrow;
using test::RunPrefix;
using test::RunStatus;
using test::VethPair;
using test::WireguardLink;

TEST(WireguardLink, CarriesIpv4AndIpv6BetweenNamespacesAndLeavesNothingBehind) {
  {
    NetworkNamespace a("wg-a");
    NetworkNamespace b("wg-b");
    VethPair underlay(a, b, "rpwgu0", "rpwgu1", 92);
    WireguardLink link({a.name(), "10.192.0.1/24", "fd92:192::1/64", underlay.a().ipv4, 51820, {}},
                       {b.name(), "10.192.0.2/24", "fd92:192::2/64", underlay.b().ipv4, 51821, {}});
    EXPECT_EQ(RunStatus(a.Exec() + "ping -c 1 -W 2 " + link.b_ipv4()), 0);
    EXPECT_EQ(RunStatus(a.Exec() + "ping -6 -c 1 -W 2 " + link.b_ipv6()), 0);
    const std::string info = RunOrThrow(a.Exec() + "ip -d link show cilium_wg0");
    EXPECT_NE(info.find("tun"), std::string::npos) << info;

    link.RecreateSideA();
    EXPECT_EQ(RunStatus(b.Exec() + "ping -c 1 -W 2 " + link.a_ipv4()), 0);
  }
  EXPECT_EQ(RunOrThrow("ip netns list | grep " + RunPrefix() + "-wg- || true"), "");
}

}  // namespace
}  // namespace regionpulse
