// Kernel mounts and capabilities the datapath needs, the parts that need root: tracefs, bpffs
// and cgroup2 mounted again in a private mount namespace, and the capability check naming
// what a thread lacks.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "agent/kernel_mounts.h"

namespace regionpulse {
namespace {

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

}  // namespace
}  // namespace regionpulse
