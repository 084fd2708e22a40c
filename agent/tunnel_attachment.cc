// tcx links and clsact filters for the tunnel programs.
#include "agent/tunnel_attachment.h"

#include "component_logger.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>

namespace regionpulse {
namespace {

// Debian's UAPI headers (6.1) predate tcx (Linux 6.6); the values are the kernel's ABI.
constexpr int kBpfTcxIngress = 46;
constexpr int kBpfTcxEgress = 47;
constexpr uint32_t kBpfFBefore = 1U << 3;  // BPF_F_BEFORE: with no relative program, the head

std::shared_ptr<spdlog::logger> Log() {
  return ComponentLogger("datapath");
}

// Enters a network namespace (by fd) on this thread for the scope, when it is not current.
class NetnsGuard {
 public:
  explicit NetnsGuard(int target_fd) {
    if (target_fd < 0) return;
    original_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (original_ >= 0 && setns(target_fd, CLONE_NEWNET) != 0) {
      close(original_);
      original_ = -1;
    }
  }
  ~NetnsGuard() {
    if (original_ >= 0) {
      setns(original_, CLONE_NEWNET);
      close(original_);
    }
  }
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

 private:
  int original_ = -1;
};

}  // namespace

Result<std::unique_ptr<TunnelAttachment>> TunnelAttachment::Attach(const std::string& ifname,
                                                                   uint32_t ifindex, int ingress_prog_fd,
                                                                   int egress_prog_fd, bool prefer_tcx) {
  std::unique_ptr<TunnelAttachment> attachment(new TunnelAttachment(ifname, ifindex));
  if (prefer_tcx) {
    Status tcx = attachment->AttachTcx(ingress_prog_fd, egress_prog_fd);
    if (tcx.ok()) return attachment;
    // EINVAL: the kernel does not know the tcx attach types (before 6.6). Anything else
    // (the interface vanished, no permission) would fail on clsact too.
    if (tcx.error().errnum != EINVAL) return tcx.error();
    Log()->info("tcx not available on {} ({}), using clsact", ifname, tcx.error().ToString());
  }
  Status clsact = attachment->AttachClsact(ingress_prog_fd, egress_prog_fd);
  if (!clsact.ok()) return clsact.error();
  return attachment;
}

Status TunnelAttachment::AttachTcx(int ingress_prog_fd, int egress_prog_fd) {
  LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = kBpfFBefore);
  ingress_link_fd_ =
      bpf_link_create(ingress_prog_fd, ifindex_, static_cast<bpf_attach_type>(kBpfTcxIngress), &opts);
  if (ingress_link_fd_ < 0) {
    const int err = errno;
    ingress_link_fd_ = -1;
    return Error{"tcx ingress link on " + ifname_ + " (ifindex " + std::to_string(ifindex_) + ")", err};
  }
  egress_link_fd_ =
      bpf_link_create(egress_prog_fd, ifindex_, static_cast<bpf_attach_type>(kBpfTcxEgress), &opts);
  if (egress_link_fd_ < 0) {
    const int err = errno;
    egress_link_fd_ = -1;
    close(ingress_link_fd_);
    ingress_link_fd_ = -1;
    return Error{"tcx egress link on " + ifname_ + " (ifindex " + std::to_string(ifindex_) + ")", err};
  }
  tcx_ = true;
  return OkStatus();
}

Status TunnelAttachment::AttachClsact(int ingress_prog_fd, int egress_prog_fd) {
  netns_fd_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex_), .attach_point = BPF_TC_INGRESS);
  // clsact may exist already (Cilium's, or ours from an earlier run): that is fine. It is
  // never removed by us, since other programs' filters may hang off it.
  int rc = bpf_tc_hook_create(&hook);
  if (rc != 0 && rc != -EEXIST) {
    return Error{"creating the clsact qdisc on " + ifname_ + " (needs CAP_NET_ADMIN)", -rc};
  }
  for (const auto point : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
    hook.attach_point = point;
    const char* where = point == BPF_TC_INGRESS ? "ingress" : "egress";
    // A filter left by a crashed agent has our handle and priority: replace it.
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = point == BPF_TC_INGRESS ? ingress_prog_fd : egress_prog_fd,
                .flags = BPF_TC_F_REPLACE, .handle = kClsactHandle, .priority = kClsactPriority);
    rc = bpf_tc_attach(&hook, &opts);
    if (rc != 0) {
      DetachClsact();
      return Error{std::string("clsact ") + where + " filter on " + ifname_, -rc};
    }
    (point == BPF_TC_INGRESS ? clsact_ingress_ : clsact_egress_) = true;
  }
  return OkStatus();
}

void TunnelAttachment::DetachClsact() {
  NetnsGuard in_netns(netns_fd_);
  for (const auto point : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
    bool& attached = point == BPF_TC_INGRESS ? clsact_ingress_ : clsact_egress_;
    if (!attached) continue;
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex_), .attach_point = point);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kClsactHandle, .priority = kClsactPriority);
    const int rc = bpf_tc_detach(&hook, &opts);
    // ENOENT/ENODEV: the interface went away and took the filter with it.
    if (rc != 0 && rc != -ENOENT && rc != -ENODEV && rc != -EINVAL) {
      Log()->warn("removing clsact filter from {}: {}", ifname_, Error{"", -rc}.ToString());
    }
    attached = false;
  }
}

TunnelAttachment::~TunnelAttachment() {
  if (ingress_link_fd_ >= 0) close(ingress_link_fd_);
  if (egress_link_fd_ >= 0) close(egress_link_fd_);
  DetachClsact();
  if (netns_fd_ >= 0) close(netns_fd_);
}

}  // namespace regionpulse
