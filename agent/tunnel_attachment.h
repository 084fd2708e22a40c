// TunnelAttachment: one interface's ingress and egress programs, attached for as long as the
// object lives. tcx links where the kernel has tcx (owned by file descriptors, so even a crash
// leaves nothing behind), else clsact filters through bpf_tc_attach (removed by the
// destructor; a crashed agent's filters are replaced at its next start).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "result.h"

namespace regionpulse {

// Our filters' place on clsact: priority 1 runs before filters at higher numbers (Cilium's
// legacy tc programs); the handle says whose filter it is ("RP").
inline constexpr uint32_t kClsactPriority = 1;
inline constexpr uint32_t kClsactHandle = 0x5250;

class TunnelAttachment {
 public:
  // Attaches ingress_prog_fd and egress_prog_fd to ifindex in the calling thread's network
  // namespace. With prefer_tcx, tries tcx first (placed before every program already there,
  // so a Cilium program that ends the chain cannot hide packets from ours) and falls back
  // to clsact when the kernel has no tcx; otherwise uses clsact.
  static Result<std::unique_ptr<TunnelAttachment>> Attach(const std::string& ifname, uint32_t ifindex,
                                                          int ingress_prog_fd, int egress_prog_fd,
                                                          bool prefer_tcx);
  ~TunnelAttachment();
  TunnelAttachment(const TunnelAttachment&) = delete;
  TunnelAttachment& operator=(const TunnelAttachment&) = delete;

  const std::string& ifname() const { return ifname_; }
  uint32_t ifindex() const { return ifindex_; }
  bool tcx() const { return tcx_; }

 private:
  TunnelAttachment(std::string ifname, uint32_t ifindex) : ifname_(std::move(ifname)), ifindex_(ifindex) {}
  Status AttachTcx(int ingress_prog_fd, int egress_prog_fd);
  Status AttachClsact(int ingress_prog_fd, int egress_prog_fd);
  void DetachClsact();

  std::string ifname_;
  uint32_t ifindex_;
  bool tcx_ = false;
  int ingress_link_fd_ = -1;
  int egress_link_fd_ = -1;
  bool clsact_ingress_ = false;
  bool clsact_egress_ = false;
  // The network namespace the clsact filters live in: netlink requests to remove them must be
  // made from there, whichever thread destroys the attachment.
  int netns_fd_ = -1;
};

}  // namespace regionpulse
