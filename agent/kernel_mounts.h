// What the BPF datapath needs from the kernel before it loads anything: capabilities, kernel
// BTF, tracefs, bpffs and a cgroup2 directory. Each check fails with a message naming what is
// missing (the capability, the file system, the path, the errno), so an operator can fix it.
#pragma once

#include <string>

#include "common/result.h"

namespace regionpulse {

// Fails unless the effective set holds CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (CAP_SYS_ADMIN
// stands in for CAP_BPF and CAP_PERFMON, as the kernel allows). Names every missing one.
Status CheckDatapathCapabilities();

// Fails when the kernel has no BTF (/sys/kernel/btf/vmlinux): the programs are CO-RE.
Status CheckKernelBtf();

// Mounts tracefs at /sys/kernel/tracing and bpffs at /sys/fs/bpf when absent (both may be
// absent inside `ip netns exec`, which remounts /sys). Mounts are left in place: they are
// what the kernel would have mounted anyway, and other tools expect them.
Status EnsureTracefs();
Status EnsureBpffs();

// An open O_DIRECTORY fd on a cgroup v2 directory for sock_ops: `path` when given, else the
// root of an existing cgroup2 mount, else a cgroup2 mount made for the purpose and detached
// at once (the fd keeps the cgroup open, nothing stays mounted). The caller closes the fd.
Result<int> OpenCgroup2(const std::string& path);

}  // namespace regionpulse
