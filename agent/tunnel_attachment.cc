// tcx links and clsact filters for the tunnel programs.
#include "agent/tunnel_attachment.h"

#include "agent/tcx_uapi.h"
#include "common/component_logger.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>

namespace regionpulse {
namespace {

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
    entered_ = original_ >= 0;
  }
  ~NetnsGuard() {
    if (original_ >= 0) {
      setns(original_, CLONE_NEWNET);
      close(original_);
    }
  }
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

  // False when the target could not be entered: requests by ifindex would then reach
  // whatever interface has that index in this thread's namespace.
  bool entered() const { return entered_; }

 private:
  int original_ = -1;
  bool entered_ = true;
};

const char* QdiscCleanupName(QdiscCleanup outcome) {
  switch (outcome) {
    case QdiscCleanup::kNotOurs:
      return "left alone (it was there before us)";
    case QdiscCleanup::kRemoved:
      return "removed (we created it and it is empty)";
    case QdiscCleanup::kStillInUse:
      return "left in place (we created it, but another filter uses it)";
    case QdiscCleanup::kFailed:
      return "could not be checked or removed";
  }
  return "?";
}

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
  ingress_link_fd_ = bpf_link_create(ingress_prog_fd, ifindex_, kTcxIngress, &opts);
  if (ingress_link_fd_ < 0) {
    const int err = errno;
    ingress_link_fd_ = -1;
    return Error{"tcx ingress link on " + ifname_ + " (ifindex " + std::to_string(ifindex_) + ")", err};
  }
  egress_link_fd_ = bpf_link_create(egress_prog_fd, ifindex_, kTcxEgress, &opts);
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
  // clsact may exist already (Cilium's, or left by an agent that could not clean up): then
  // it is not ours to remove. One we create here is removed with our filters, unless some
  // other filter hangs off it by then.
  int rc = bpf_tc_hook_create(&hook);
  if (rc != 0 && rc != -EEXIST) {
    return Error{"creating the clsact qdisc on " + ifname_ + " (needs CAP_NET_ADMIN)", -rc};
  }
  auto plan = MakeClsactCleanupPlan(ifindex_, kClsactHandle, kClsactPriority, rc == 0);
  if (!plan.ok()) return Error{"clsact cleanup for " + ifname_ + ": " + plan.error().message, EINVAL};
  clsact_cleanup_ = *plan;
  clsact_ = true;
  // Before the filters exist, so there is no moment when a crash would leave them.
  auto reaper = ClsactReaper::Start(clsact_cleanup_, ifname_);
  if (reaper.ok()) {
    reaper_ = std::move(reaper).value();
  } else {
    Log()->warn("{}: the clsact filters on {} stay if the agent crashes, until its next start replaces them",
                reaper.error().ToString(), ifname_);
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
  }
  return OkStatus();
}

void TunnelAttachment::DetachClsact() {
  if (!clsact_) return;
  clsact_ = false;
  NetnsGuard in_netns(netns_fd_);
  if (!in_netns.entered()) {
    // The reaper was forked in the attachment's namespace and is still there.
    if (reaper_) {
      Log()->warn("cannot enter the network namespace of {} to remove its clsact filters; the reaper does it",
                  ifname_);
      reaper_->HandOverCleanup();
    } else {
      Log()->warn("cannot enter the network namespace of {}: its clsact filters stay until the next start",
                  ifname_);
    }
    reaper_.reset();
    return;
  }
  const ClsactCleanupOutcome outcome = RunClsactCleanup(clsact_cleanup_);
  for (const ClsactDirection direction : {kClsactIngress, kClsactEgress}) {
    const int err = outcome.filter_errnum[direction];
    // ENOENT/EINVAL: the filter or its qdisc is not there (never attached, or removed by
    // someone else); ENODEV: the interface went away and took the filter with it.
    if (err != 0 && err != ENOENT && err != ENODEV && err != EINVAL) {
      const std::string where = direction == kClsactIngress ? "ingress" : "egress";
      Log()->warn("{}", Error{"removing the clsact " + where + " filter from " + ifname_, err}.ToString());
    }
  }
  if (outcome.qdisc == QdiscCleanup::kFailed) {
    const std::string what = "clsact qdisc on " + ifname_ + " " + QdiscCleanupName(outcome.qdisc);
    Log()->warn("{}", Error{what, outcome.qdisc_errnum}.ToString());
  } else {
    Log()->debug("clsact qdisc on {}: {}", ifname_, QdiscCleanupName(outcome.qdisc));
  }
  // Only now: had we died during the removal above, the reaper would have finished it.
  if (reaper_) reaper_->Disarm();
  reaper_.reset();
}

TunnelAttachment::~TunnelAttachment() {
  if (ingress_link_fd_ >= 0) close(ingress_link_fd_);
  if (egress_link_fd_ >= 0) close(egress_link_fd_);
  DetachClsact();
  if (netns_fd_ >= 0) close(netns_fd_);
}

}  // namespace regionpulse
