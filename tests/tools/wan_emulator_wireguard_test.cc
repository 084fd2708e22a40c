// A real WireGuard tunnel (wireguard-go) between two namespaces whose underlay goes through
// regionpulse-wan in a hub namespace, as the lab wires it: each side's endpoint for the other
// is the emulator, and a ping across the tunnel takes at least twice the configured delay.
// Needs root (namespaces, TUN): ctest label "root".
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "tests/support/test_network.h"
#include "tests/support/wireguard_link.h"
#include "tests/tools/wan_emulator_harness.h"

namespace regionpulse {
namespace {

using test::EmulatorProcess;
using test::LinkCounter;
using test::ScratchDirectory;
using test::WaitUntilServing;

using ::testing::HasSubstr;

struct PingSummary {
  double min_ms = 0;
  double avg_ms = 0;
  double max_ms = 0;
};

// "rtt min/avg/max/mdev = 40.3/40.6/41.2/0.2 ms" from iputils ping.
std::optional<PingSummary> ParsePing(const std::string& output) {
  // Not std::regex: GCC 12 reports a false maybe-uninitialized in it under -fsanitize.
  const size_t at = output.find("min/avg/max");
  if (at == std::string::npos) return std::nullopt;
  const size_t equals = output.find('=', at);
  PingSummary summary;
  if (equals == std::string::npos || std::sscanf(output.c_str() + equals + 1, " %lf/%lf/%lf", &summary.min_ms,
                                                 &summary.avg_ms, &summary.max_ms) != 3) {
    return std::nullopt;
  }
  return summary;
}

TEST(WanEmulatorWireguard, PingAcrossTheTunnelTakesTwiceTheEmulatedDelay) {
  test::NetworkNamespace hub("wanhub");
  test::NetworkNamespace node_a("wana");
  test::NetworkNamespace node_b("wanb");
  const std::string prefix = test::RunPrefix();
  // Hub 10.231.0.1 <-> a 10.231.0.2; hub 10.232.0.1 <-> b 10.232.0.2.
  test::VethPair underlay_a(hub, node_a, prefix + "ha", prefix + "a0", 231);
  test::VethPair underlay_b(hub, node_b, prefix + "hb", prefix + "b0", 232);

  // a listens on 51821 and sends to hub:51820; b listens on 51820 and sends to hub:51821.
  // The emulator binds the wildcard address, so each side is answered from the hub address
  // on its own veth: the endpoint it was configured with.
  ScratchDirectory scratch("wan");
  const std::string socket_path = scratch.path() + "/ctl.sock";
  const std::string config =
      scratch.Write("wan.yaml",
                    "listen_address: 0.0.0.0\n"
                    "control_socket: " +
                        socket_path +
                        "\n"
                        "seed: 5\n"
                        "nodes:\n"
                        "  - {name: a, region: us-east-1, endpoint: 10.231.0.2:51821}\n"
                        "  - {name: b, region: eu-west-1, endpoint: 10.232.0.2:51820}\n"
                        "links:\n"
                        "  - {a: a, b: b, port_for_a: 51820, port_for_b: 51821}\n"
                        "impairments:\n"
                        "  - {between: [us-east-1, eu-west-1], delay: 20ms}\n");
  EmulatorProcess emulator(scratch.path() + "/wan.log", {"--config", config}, hub.name());
  ASSERT_TRUE(WaitUntilServing(socket_path, emulator)) << emulator.Output();

  test::WireguardSide side_a;
  side_a.netns = node_a.name();
  side_a.tunnel_ipv4 = "10.233.0.1/24";
  side_a.underlay_ip = "10.232.0.1";  // where b reaches a: the emulator, on b's veth
  side_a.listen_port = 51821;
  test::WireguardSide side_b;
  side_b.netns = node_b.name();
  side_b.tunnel_ipv4 = "10.233.0.2/24";
  side_b.underlay_ip = "10.231.0.1";  // where a reaches b: the emulator, on a's veth
  side_b.listen_port = 51820;
  // Returns once a ping crosses the tunnel both ways, through the emulator.
  test::WireguardLink tunnel(side_a, side_b);

  const std::string ping = node_a.Exec() + "ping -n -q -c 10 -i 0.2 -W 2 " + tunnel.b_ipv4();
  auto delayed = ParsePing(test::RunOrThrow(ping));
  ASSERT_TRUE(delayed);
  std::printf("ping across the tunnel, 20 ms each way: min %.2f / avg %.2f / max %.2f ms\n", delayed->min_ms,
              delayed->avg_ms, delayed->max_ms);
  EXPECT_GE(delayed->min_ms, 40.0) << "a round trip crosses the 20 ms emulated delay twice";
  EXPECT_LT(delayed->avg_ms, 55.0);

  // The same tunnel without delay: the 40 ms above came from the emulator.
  ASSERT_TRUE(wan::SendControlCommand(socket_path, "set-both us-east-1 eu-west-1 delay=0")->ok);
  auto direct = ParsePing(test::RunOrThrow(ping));
  ASSERT_TRUE(direct);
  std::printf("ping across the tunnel, no delay: min %.2f / avg %.2f / max %.2f ms\n", direct->min_ms,
              direct->avg_ms, direct->max_ms);
  EXPECT_LT(direct->avg_ms, 10.0);

  // Loss of everything one way cuts the tunnel; reset brings it back.
  ASSERT_TRUE(wan::SendControlCommand(socket_path, "set eu-west-1 us-east-1 loss=100%")->ok);
  EXPECT_NE(test::RunStatus(node_a.Exec() + "ping -n -q -c 3 -i 0.2 -W 1 " + tunnel.b_ipv4()), 0);
  ASSERT_TRUE(wan::SendControlCommand(socket_path, "reset")->ok);
  auto restored = ParsePing(test::RunOrThrow(ping));
  ASSERT_TRUE(restored);
  EXPECT_GE(restored->min_ms, 40.0);

  // WireGuard never went around the emulator, and never sent from an unexpected address.
  auto stats = wan::SendControlCommand(socket_path, "stats");
  ASSERT_TRUE(stats.ok() && stats->ok);
  EXPECT_EQ(LinkCounter(stats->body, "a", "b", "dropped_foreign"), 0u) << stats->body;
  EXPECT_EQ(LinkCounter(stats->body, "b", "a", "dropped_foreign"), 0u) << stats->body;
  EXPECT_GE(LinkCounter(stats->body, "a", "b", "forwarded").value_or(0), 10u) << stats->body;
}

}  // namespace
}  // namespace regionpulse
