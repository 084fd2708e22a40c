// Capability checks and mount-or-explain for tracefs, bpffs and cgroup2.
#include "agent/kernel_mounts.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <vector>

namespace regionpulse {
namespace {

// From <linux/magic.h>; spelled out so the check does not depend on the header's age.
constexpr long kTracefsMagic = 0x74726163;
constexpr long kBpffsMagic = 0xcafe4a11;
constexpr long kCgroup2Magic = 0x63677270;

// Debian's 6.1 UAPI headers have these, but older ones lack CAP_BPF/CAP_PERFMON.
constexpr int kCapNetAdmin = 12;
constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

bool HasFsMagic(const char* path, long magic) {
  struct statfs fs {};
  return statfs(path, &fs) == 0 && static_cast<long>(fs.f_type) == magic;
}

Status MountIfAbsent(const char* path, const char* fstype, long magic, const char* why) {
  if (HasFsMagic(path, magic)) return OkStatus();
  if (mkdir(path, 0755) != 0 && errno != EEXIST) {
    return Error{std::string("creating mount point ") + path + " for " + fstype + " (" + why + ")", errno};
  }
  if (mount("none", path, fstype, 0, nullptr) != 0) {
    return Error{std::string(fstype) + " is not mounted at " + path + " and mounting it failed (" + why +
                     "; needs CAP_SYS_ADMIN in the mount namespace)",
                 errno};
  }
  return OkStatus();
}

}  // namespace

Status CheckDatapathCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) != 0) return Error{"reading own capabilities (capget)", errno};
  auto has = [&](int cap) { return (data[cap / 32].effective >> (cap % 32)) & 1u; };
  const bool sys_admin = has(kCapSysAdmin);
  std::vector<std::string> missing;
  if (!has(kCapBpf) && !sys_admin) missing.push_back("CAP_BPF (load programs, create maps)");
  if (!has(kCapNetAdmin)) missing.push_back("CAP_NET_ADMIN (attach tc/tcx programs, cgroup sock_ops)");
  if (!has(kCapPerfmon) && !sys_admin) missing.push_back("CAP_PERFMON (tracepoints, reading kernel memory)");
  if (missing.empty()) return OkStatus();
  std::string message = "the BPF datapath needs capabilities the process lacks:";
  for (const auto& m : missing) message += " " + m + ";";
  return Error{message, EPERM};
}

Status CheckKernelBtf() {
  if (access("/sys/kernel/btf/vmlinux", R_OK) == 0) return OkStatus();
  return Error{
      "kernel BTF /sys/kernel/btf/vmlinux is missing: the CO-RE BPF programs need a kernel built with "
      "CONFIG_DEBUG_INFO_BTF=y",
      errno};
}

Status EnsureTracefs() {
  return MountIfAbsent("/sys/kernel/tracing", "tracefs", kTracefsMagic,
                       "the tcp/tcp_retransmit_skb tracepoint is attached through it");
}

Status EnsureBpffs() {
  return MountIfAbsent("/sys/fs/bpf", "bpf", kBpffsMagic, "the BPF file system, expected by BPF tooling");
}

Result<int> OpenCgroup2(const std::string& path) {
  if (!path.empty()) {
    const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Error{"opening cgroup directory " + path + " for sock_ops", errno};
    if (!HasFsMagic(path.c_str(), kCgroup2Magic)) {
      close(fd);
      return Error{path + " is not on a cgroup v2 file system: sock_ops needs cgroup2", EINVAL};
    }
    return fd;
  }
  // An existing cgroup2 mount whose root is the hierarchy's root ("/" in mountinfo field 4).
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream after(line.substr(dash + 3));
    std::string fstype;
    after >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream before(line.substr(0, dash));
    std::string id, parent, devno, root, mount_point;
    before >> id >> parent >> devno >> root >> mount_point;
    if (root != "/") continue;
    const int fd = open(mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) return fd;
  }
  // None mounted (e.g. inside `ip netns exec`): mount one privately, keep an fd, detach.
  const std::string temp = "/run/regionpulse-cgroup2-" + std::to_string(getpid());
  if (mkdir(temp.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error{"no cgroup2 mounted, and creating " + temp + " to mount one failed", errno};
  }
  if (mount("none", temp.c_str(), "cgroup2", 0, nullptr) != 0) {
    const int err = errno;
    rmdir(temp.c_str());
    return Error{"no cgroup2 file system is mounted and mounting one at " + temp +
                     " failed (sock_ops needs cgroup v2; needs CAP_SYS_ADMIN)",
                 err};
  }
  const int fd = open(temp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const int err = errno;
  umount2(temp.c_str(), MNT_DETACH);
  rmdir(temp.c_str());
  if (fd < 0) return Error{"opening the cgroup2 root mounted at " + temp, err};
  return fd;
}

}  // namespace regionpulse
