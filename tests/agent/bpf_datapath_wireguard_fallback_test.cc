// Auto-detection precedence on real interfaces: wg* devices are attached only while no Cilium
// tunnel device exists in the namespace (counting cilium_vxlan and a wg0 carrying the same
// packets would double every region counter). The names are the real ones, so everything runs
// in a private network namespace.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/bpf_datapath.h"
#include "agent/tcx_uapi.h"
#include "tests/agent/namespace_traffic.h"
#include "tests/support/test_network.h"

namespace regionpulse {
namespace {

using test::NetworkNamespace;
using test::PollUntil;
using test::RunOrThrow;
using test::ScopedNetnsEntry;

std::set<std::string> AttachedNames(const BpfDatapath& datapath) {
  std::set<std::string> names;
  for (const auto& attachment : datapath.Attachments()) names.insert(attachment.name);
  return names;
}

std::string Describe(const std::set<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += name + " ";
  return text.empty() ? "(nothing)" : text;
}

class DatapathWireguardFallbackTest : public ::testing::TestWithParam<bool /* prefer_tcx */> {
 protected:
  std::unique_ptr<BpfDatapath> StartInNamespace() {
    DatapathConfig config;  // no explicit list: auto-detection
    config.region_cidrs = {{"10.198.0.0/24", 1}};
    config.prefer_tcx = GetParam();
    ScopedNetnsEntry inside(ns_.name());
    auto started = BpfDatapath::Start(config);
    if (!started.ok()) throw std::runtime_error(started.error().ToString());
    return std::move(started).value();
  }
  // A WireGuard-like device: TUN is what wireguard-go creates (L3-only, ARPHRD_NONE).
  void AddWireguardLike(const std::string& name) {
    RunOrThrow(ns_.Exec() + "ip tuntap add dev " + name + " mode tun");
    RunOrThrow(ns_.Exec() + "ip link set " + name + " up");
  }
  void AddCiliumVxlan() {
    RunOrThrow(ns_.Exec() + "ip link add cilium_vxlan type vxlan id 42 dstport 8472 dev lo");
    RunOrThrow(ns_.Exec() + "ip link set cilium_vxlan up");
  }
  // Names of our programs (rp_tc_*) on a device: tcx programs through BPF_PROG_QUERY (Debian's
  // bpftool 7.1 does not list tcx), clsact filters through tc.
  std::vector<std::string> OurProgramsOn(const std::string& name) {
    std::vector<std::string> ours;
    {
      ScopedNetnsEntry inside(ns_.name());
      const unsigned ifindex = if_nametoindex(name.c_str());
      if (ifindex == 0) throw std::runtime_error("no interface " + name + " in " + ns_.name());
      for (const bpf_attach_type tcx_attach_type : {kTcxIngress, kTcxEgress}) {
        std::vector<uint32_t> ids(64);
        uint32_t count = static_cast<uint32_t>(ids.size());
        uint32_t flags = 0;
        if (bpf_prog_query(static_cast<int>(ifindex), tcx_attach_type, 0, &flags, ids.data(), &count) != 0) {
          throw std::runtime_error("querying the tcx programs of " + name + ": " + strerror(errno));
        }
        for (uint32_t i = 0; i < count; ++i) {
          const int fd = bpf_prog_get_fd_by_id(ids[i]);
          if (fd < 0) continue;  // detached meanwhile
          bpf_prog_info info{};
          uint32_t len = sizeof(info);
          if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && std::string(info.name).rfind("rp_tc_", 0) == 0)
            ours.push_back(info.name);
          close(fd);
        }
      }
    }
    for (const char* direction : {"ingress", "egress"}) {
      const std::string filters = RunOrThrow(ns_.Exec() + "tc filter show dev " + name + " " + direction);
      if (filters.find("rp_tc_") != std::string::npos) ours.push_back(std::string("clsact ") + direction);
    }
    return ours;
  }
  bool NothingOfOursOn(const std::string& name) { return OurProgramsOn(name).empty(); }
  // Ingress and egress attached, by whichever mechanism.
  bool OursOn(const std::string& name) { return OurProgramsOn(name).size() == 2; }

  NetworkNamespace ns_{"wgfb"};
};

TEST_P(DatapathWireguardFallbackTest, WireguardDetachedWhileACiliumTunnelDeviceExists) {
  AddWireguardLike("wg0");
  auto datapath = StartInNamespace();
  ASSERT_EQ(AttachedNames(*datapath), std::set<std::string>{"wg0"})
      << "no Cilium device: wg0 is the fallback";
  EXPECT_TRUE(datapath->Attachments().at(0).l3_only);
  EXPECT_TRUE(OursOn("wg0"));

  AddCiliumVxlan();
  ASSERT_TRUE(PollUntil([&] { return AttachedNames(*datapath) == std::set<std::string>{"cilium_vxlan"}; }))
      << "attached: " << Describe(AttachedNames(*datapath));
  EXPECT_TRUE(NothingOfOursOn("wg0")) << "wg0 still carries our programs next to cilium_vxlan";
  EXPECT_TRUE(OursOn("cilium_vxlan"));

  // A wg* device created while cilium_vxlan exists is left alone; it is picked up with wg0
  // when the last Cilium device goes. Its notification is awaited through the next link's:
  // notifications are handled in order, so once cilium_wg0 is attached, wg1 was seen.
  AddWireguardLike("wg1");
  AddWireguardLike("cilium_wg0");
  ASSERT_TRUE(PollUntil([&] {
    return AttachedNames(*datapath) == std::set<std::string>{"cilium_vxlan", "cilium_wg0"};
  })) << "attached: "
      << Describe(AttachedNames(*datapath));
  EXPECT_TRUE(NothingOfOursOn("wg1"));

  RunOrThrow(ns_.Exec() + "ip link del cilium_vxlan");
  ASSERT_TRUE(PollUntil([&] { return AttachedNames(*datapath) == std::set<std::string>{"cilium_wg0"}; }))
      << "attached: " << Describe(AttachedNames(*datapath));
  EXPECT_TRUE(NothingOfOursOn("wg0")) << "cilium_wg0 still exists: no fallback yet";

  RunOrThrow(ns_.Exec() + "ip link del cilium_wg0");
  ASSERT_TRUE(PollUntil([&] {
    return AttachedNames(*datapath) == std::set<std::string>{"wg0", "wg1"};
  })) << "the last Cilium device went, the wg* ones were not attached again: "
      << Describe(AttachedNames(*datapath));
  EXPECT_TRUE(OursOn("wg0"));
  EXPECT_TRUE(OursOn("wg1"));

  datapath.reset();
  EXPECT_TRUE(NothingOfOursOn("wg0"));
  EXPECT_TRUE(NothingOfOursOn("wg1"));
}

TEST_P(DatapathWireguardFallbackTest, StartsOnTheCiliumDeviceAloneWhenBothExist) {
  AddWireguardLike("wg0");  // listed before cilium_vxlan (lower ifindex)
  AddCiliumVxlan();
  auto datapath = StartInNamespace();
  EXPECT_EQ(AttachedNames(*datapath), std::set<std::string>{"cilium_vxlan"});
  EXPECT_TRUE(NothingOfOursOn("wg0"));
}

INSTANTIATE_TEST_SUITE_P(TcxAndClsact, DatapathWireguardFallbackTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "Tcx" : "Clsact");
                         });

}  // namespace
}  // namespace regionpulse
