// The datapath's pure pieces: region CIDR parsing, which interfaces are selected, how a link
// type maps to the program variant, and the capability check's message.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <linux/if_arp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "agent/interface_watcher.h"
#include "agent/kernel_mounts.h"
#include "agent/region_cidr.h"

namespace regionpulse {
namespace {

TEST(ParseCidr, ParsesIpv4AndIpv6AndClearsHostBits) {
  auto v4 = ParseCidr("10.1.77.9/16");
  ASSERT_TRUE(v4.ok()) << v4.error().ToString();
  EXPECT_FALSE(v4->ipv6);
  EXPECT_EQ(v4->prefix_length, 16u);
  EXPECT_EQ(v4->address[0], 10);
  EXPECT_EQ(v4->address[1], 1);
  EXPECT_EQ(v4->address[2], 0);
  EXPECT_EQ(v4->address[3], 0);

  auto v6 = ParseCidr("fd00:1:ffff::1/36");
  ASSERT_TRUE(v6.ok()) << v6.error().ToString();
  EXPECT_TRUE(v6->ipv6);
  EXPECT_EQ(v6->prefix_length, 36u);
  EXPECT_EQ(v6->address[4], 0xf0) << "bits after /36 cleared";
  EXPECT_EQ(v6->address[5], 0);
  EXPECT_EQ(v6->address[15], 0);

  auto all = ParseCidr("0.0.0.0/0");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->prefix_length, 0u);
}

TEST(ParseCidr, RejectsMalformedInputNamingIt) {
  for (const std::string bad : {"10.1.0.0", "10.1.0.0/33", "fd00::/129", "10.1.0/16", "10.1.0.0/",
                                "10.1.0.0/1x", "/8", "fd00::zz/64"}) {
    auto parsed = ParseCidr(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.error().message.find(bad), std::string::npos) << parsed.error().message;
  }
}

TEST(InterfaceSelected, AutoDetectsCiliumTunnelsAndWireguardInterfaces) {
  for (const std::string name : {"cilium_wg0", "cilium_vxlan", "cilium_geneve", "wg0", "wg-east"}) {
    EXPECT_TRUE(InterfaceSelected(name, {})) << name;
  }
  for (const std::string name :
       {"eth0", "lo", "cilium_host", "cilium_net", "lxc1234", "cilium_wg1", "vxlan0"}) {
    EXPECT_FALSE(InterfaceSelected(name, {})) << name;
  }
}

TEST(InterfaceSelected, AnExplicitListReplacesAutoDetection) {
  const std::vector<std::string> list = {"eth1", "tun7"};
  EXPECT_TRUE(InterfaceSelected("eth1", list));
  EXPECT_TRUE(InterfaceSelected("tun7", list));
  EXPECT_FALSE(InterfaceSelected("cilium_wg0", list));
  EXPECT_FALSE(InterfaceSelected("wg0", list));
}

TEST(LinkLayerOf, EthernetDevicesGetTheL2ProgramsAndTunnelsTheL3Ones) {
  EXPECT_EQ(LinkLayerOf(ARPHRD_ETHER), LinkLayer::kEthernet);  // veth, vxlan, geneve, eth
  EXPECT_EQ(LinkLayerOf(ARPHRD_NONE), LinkLayer::kL3Only);     // WireGuard, tun
  EXPECT_EQ(LinkLayerOf(ARPHRD_RAWIP), LinkLayer::kL3Only);
  EXPECT_EQ(LinkLayerOf(ARPHRD_LOOPBACK), LinkLayer::kUnsupported);
  EXPECT_EQ(LinkLayerOf(ARPHRD_IPGRE), LinkLayer::kUnsupported);
}

// Capabilities are per thread: a thread that drops CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN
// from its effective set sees the check fail, naming what is missing.
TEST(CheckDatapathCapabilities, NamesEveryMissingCapability) {
  std::string message;
  bool ok = true;
  std::thread([&] {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    ASSERT_EQ(syscall(SYS_capget, &header, data), 0);
    for (const int cap : {21 /* SYS_ADMIN */, 38 /* PERFMON */, 39 /* BPF */}) {
      data[cap / 32].effective &= ~(1u << (cap % 32));
    }
    ASSERT_EQ(syscall(SYS_capset, &header, data), 0);
    Status status = CheckDatapathCapabilities();
    ok = status.ok();
    if (!ok) message = status.error().ToString();
  }).join();
  ASSERT_FALSE(ok);
  EXPECT_NE(message.find("CAP_BPF"), std::string::npos) << message;
  EXPECT_NE(message.find("CAP_PERFMON"), std::string::npos) << message;
  EXPECT_EQ(message.find("CAP_NET_ADMIN"), std::string::npos) << message;
  EXPECT_TRUE(CheckDatapathCapabilities().ok()) << "the main thread keeps its capabilities";
}

}  // namespace
}  // namespace regionpulse
