// Which interfaces the datapath attaches to (Cilium tunnel devices before the wg* fallback,
// or exactly the configured list) and which program variant a link type gets. Pure.
#include <gtest/gtest.h>
#include <linux/if_arp.h>

#include <set>
#include <string>
#include <vector>

#include "agent/interface_selection.h"
#include "agent/interface_watcher.h"

namespace regionpulse {
namespace {

struct SelectionCase {
  const char* scenario;
  std::set<std::string> present;
  std::vector<std::string> explicit_names;
  SelectionMode mode;
  std::set<std::string> selected;
};

TEST(SelectInterfaces, CiliumTunnelDevicesFirstThenWireguardOnlyAsFallback) {
  const std::set<std::string> host = {"lo", "eth0", "cilium_host", "cilium_net", "lxc1234"};
  auto with = [&](std::initializer_list<std::string> more) {
    std::set<std::string> names = host;
    names.insert(more);
    return names;
  };
  const SelectionCase cases[] = {
      {"no tunnel device at all", host, {}, SelectionMode::kWireguardFallback, {}},
      {"plain WireGuard mesh", with({"wg0", "wg1"}), {}, SelectionMode::kWireguardFallback, {"wg0", "wg1"}},
      {"any wg prefix is WireGuard",
       with({"wgx", "wg-east"}),
       {},
       SelectionMode::kWireguardFallback,
       {"wg-east", "wgx"}},
      {"cilium_wg0 hides wg0 (same packets, counted once)",
       with({"cilium_wg0", "wg0"}),
       {},
       SelectionMode::kCiliumTunnels,
       {"cilium_wg0"}},
      {"cilium_vxlan hides every wg*",
       with({"cilium_vxlan", "wg0", "wg1"}),
       {},
       SelectionMode::kCiliumTunnels,
       {"cilium_vxlan"}},
      {"all three Cilium devices",
       with({"cilium_wg0", "cilium_vxlan", "cilium_geneve"}),
       {},
       SelectionMode::kCiliumTunnels,
       {"cilium_geneve", "cilium_vxlan", "cilium_wg0"}},
      {"cilium_wg01 is neither a Cilium device nor wg*",
       with({"cilium_wg01"}),
       {},
       SelectionMode::kWireguardFallback,
       {}},
      {"cilium_wg01 does not suppress the fallback",
       with({"cilium_wg01", "wg0"}),
       {},
       SelectionMode::kWireguardFallback,
       {"wg0"}},
      {"other cilium_ and vxlan names are not tunnels",
       with({"cilium_wg1", "vxlan0", "geneve0"}),
       {},
       SelectionMode::kWireguardFallback,
       {}},
      {"explicit wg0 while cilium_vxlan exists",
       with({"cilium_vxlan", "wg0"}),
       {"wg0"},
       SelectionMode::kExplicit,
       {"wg0"}},
      {"explicit list: exactly its present names",
       with({"cilium_wg0", "wg0", "tun7"}),
       {"eth0", "tun7", "eth9"},
       SelectionMode::kExplicit,
       {"eth0", "tun7"}},
      {"explicit list, none present", host, {"wg0"}, SelectionMode::kExplicit, {}},
  };
  for (const auto& c : cases) {
    const InterfaceSelection selection = SelectInterfaces(c.present, c.explicit_names);
    EXPECT_EQ(selection.mode, c.mode) << c.scenario;
    EXPECT_EQ(selection.names, c.selected) << c.scenario;
  }
}

TEST(SelectInterfaces, OnlyTheExactCiliumNamesAreCiliumTunnelDevices) {
  for (const std::string name : {"cilium_wg0", "cilium_vxlan", "cilium_geneve"}) {
    EXPECT_TRUE(IsCiliumTunnelDevice(name)) << name;
  }
  for (const std::string name : {"cilium_wg01", "cilium_wg", "cilium_host", "wg0", "cilium_vxlan0", ""}) {
    EXPECT_FALSE(IsCiliumTunnelDevice(name)) << name;
  }
  for (const std::string name : {"wg0", "wg", "wgx", "wg-east"}) {
    EXPECT_TRUE(IsWireguardFallbackCandidate(name)) << name;
  }
  for (const std::string name : {"cilium_wg0", "awg0", "Wg0", "", "w"}) {
    EXPECT_FALSE(IsWireguardFallbackCandidate(name)) << name;
  }
}

TEST(LinkLayerOf, EthernetDevicesGetTheL2ProgramsAndTunnelsTheL3Ones) {
  EXPECT_EQ(LinkLayerOf(ARPHRD_ETHER), LinkLayer::kEthernet);  // veth, vxlan, geneve, eth
  EXPECT_EQ(LinkLayerOf(ARPHRD_NONE), LinkLayer::kL3Only);     // WireGuard, tun
  EXPECT_EQ(LinkLayerOf(ARPHRD_RAWIP), LinkLayer::kL3Only);
  EXPECT_EQ(LinkLayerOf(ARPHRD_LOOPBACK), LinkLayer::kUnsupported);
  EXPECT_EQ(LinkLayerOf(ARPHRD_IPGRE), LinkLayer::kUnsupported);
}

}  // namespace
}  // namespace regionpulse
