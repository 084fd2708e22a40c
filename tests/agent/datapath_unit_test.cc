// The datapath's pure pieces: which interfaces are selected (Cilium tunnel devices before the
// wg* fallback), how a link type maps to the program variant, and the capability check's
// message. Region CIDR parsing is tested once, in tests/common/config_text_test.cc.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <linux/if_arp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/interface_selection.h"
#include "agent/interface_watcher.h"
#include "agent/kernel_mounts.h"

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

// In a private mount namespace (a forked child, so the host's mounts are untouched), with
// tracefs and bpffs unmounted: the datapath mounts them again, and finds a cgroup2 root even
// where none is mounted (as inside `ip netns exec`, which remounts /sys).
TEST(KernelMounts, MountsTracefsAndBpffsWhenAbsentAndFindsCgroup2) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      _exit(10);
    umount2("/sys/kernel/tracing", MNT_DETACH);
    umount2("/sys/fs/bpf", MNT_DETACH);
    struct statfs fs {};
    if (statfs("/sys/kernel/tracing", &fs) == 0 && fs.f_type == 0x74726163) _exit(11);  // still mounted
    if (!EnsureTracefs().ok()) _exit(12);
    if (statfs("/sys/kernel/tracing", &fs) != 0 || fs.f_type != 0x74726163) _exit(13);
    if (!EnsureBpffs().ok()) _exit(14);
    if (statfs("/sys/fs/bpf", &fs) != 0 || static_cast<unsigned long>(fs.f_type) != 0xcafe4a11ul) _exit(15);
    // No cgroup2 mount at all: a private one is mounted, opened and detached again.
    for (int i = 0; i < 8; ++i) umount2("/sys/fs/cgroup/unified", MNT_DETACH);
    umount2("/sys/fs/cgroup", MNT_DETACH);
    auto cgroup = OpenCgroup2("");
    if (!cgroup.ok()) _exit(16);
    if (fstatfs(*cgroup, &fs) != 0 || fs.f_type != 0x63677270) _exit(17);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 unshare, 11 tracefs not unmounted, 12-13 tracefs, 14-15 bpffs, "
                                       "16-17 cgroup2";
}

TEST(KernelMounts, OpenCgroup2RejectsADirectoryThatIsNotCgroup2) {
  auto opened = OpenCgroup2("/tmp");
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().message.find("/tmp"), std::string::npos) << opened.error().ToString();
}

}  // namespace
}  // namespace regionpulse
