// ClsactReaper: removes our clsact filters (and the clsact qdisc, when we created it and
// nothing else hangs off it) after the agent process dies without running its destructors.
// The rtnetlink requests are built beforehand, in the parent, so the forked child needs no
// allocator, no logger and no libbpf: only raw async-signal-safe system calls.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"

namespace regionpulse {

// One prebuilt rtnetlink request. 64 bytes hold the largest one (RTM_DELQDISC with
// TCA_KIND "clsact": 16 + 20 + 12).
struct NetlinkRequest {
  alignas(4) std::array<uint8_t, 64> bytes{};
  uint32_t length = 0;
  uint32_t sequence = 0;
};

// Which side of clsact a request is about (index into the per-direction arrays below).
enum ClsactDirection : size_t { kClsactIngress = 0, kClsactEgress = 1 };

// RTM_DELTFILTER for one filter, exactly as libbpf's bpf_tc_detach sends it: parent
// TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS|EGRESS), tcm_handle = handle,
// tcm_info = TC_H_MAKE(priority << 16, htons(ETH_P_ALL)), TCA_KIND "bpf", NLM_F_ACK.
// priority and handle must be non-zero: the kernel reads priority 0 as "flush the whole
// chain" and handle 0 as "every filter at this priority", which would take foreign filters.
Result<NetlinkRequest> BuildDeleteFilterRequest(uint32_t ifindex, ClsactDirection direction, uint32_t handle,
                                                uint32_t priority, uint32_t sequence);
// RTM_GETTFILTER dump of every filter on one side of clsact (any priority, chain, kind).
NetlinkRequest BuildDumpFiltersRequest(uint32_t ifindex, ClsactDirection direction, uint32_t sequence);
// RTM_DELQDISC for clsact, as libbpf's bpf_tc_hook_destroy(INGRESS|EGRESS) sends it. The
// kernel refuses it (EINVAL) when the qdisc there is not a clsact.
NetlinkRequest BuildDeleteClsactRequest(uint32_t ifindex, uint32_t sequence);

// What the first rtnetlink message of a reply says.
enum class NetlinkReplyKind {
  kAck,        // NLMSG_ERROR with error 0
  kError,      // NLMSG_ERROR with an error, or NLMSG_DONE carrying a dump error
  kFilter,     // RTM_NEWTFILTER: the dump found a filter
  kDumpDone,   // NLMSG_DONE without a filter before it
  kMalformed,  // too short, or not a reply to `sequence`
};
struct NetlinkReply {
  NetlinkReplyKind kind = NetlinkReplyKind::kMalformed;
  int errnum = 0;  // for kError: the positive errno
};
// Reads the first message in `data`. A dump whose first message is a filter has at least
// one; a dump whose first message is NLMSG_DONE has none, so one datagram decides.
NetlinkReply ClassifyReply(const uint8_t* data, size_t length, uint32_t sequence);

// Everything the cleanup sends for one interface, prebuilt.
struct ClsactCleanupPlan {
  uint32_t ifindex = 0;
  // Only when our bpf_tc_hook_create made the qdisc (it did not exist before us).
  bool remove_qdisc_if_unused = false;
  std::array<NetlinkRequest, 2> delete_filter{};  // [kClsactIngress], [kClsactEgress]
  std::array<NetlinkRequest, 2> dump_filters{};
  NetlinkRequest delete_qdisc{};
};
Result<ClsactCleanupPlan> MakeClsactCleanupPlan(uint32_t ifindex, uint32_t handle, uint32_t priority,
                                                bool remove_qdisc_if_unused);

enum class QdiscCleanup {
  kNotOurs,     // it existed before us: left alone
  kRemoved,     // ours and empty: deleted (or it was gone already)
  kStillInUse,  // ours, but another filter hangs off it: left for its owner
  kFailed,      // a request failed: see qdisc_errnum
};
struct ClsactCleanupOutcome {
  // 0 when removed, else the positive errno (ENOENT: it was not there).
  std::array<int, 2> filter_errnum{};
  QdiscCleanup qdisc = QdiscCleanup::kNotOurs;
  int qdisc_errnum = 0;
};
// Sends the plan in the calling thread's network namespace over fresh NETLINK_ROUTE sockets
// (one per request, so no reply to an earlier one can be mistaken for the next):
// our two filters, then, for a qdisc we created, the two dumps and the qdisc delete when both
// are empty. Async-signal-safe (socket/setsockopt/sendto/recv/close only, stack buffers):
// the reaper runs it in a forked child of a multi-threaded process. Between the dumps and the
// delete another program could add a filter; rtnetlink has no conditional delete.
ClsactCleanupOutcome RunClsactCleanup(const ClsactCleanupPlan& plan) noexcept;

// One process per clsact attachment, forked from the thread that attached (it inherits that
// thread's network namespace), blocked in read() on a pipe whose write end only the agent
// holds. Disarm() (the agent's clean path, after it removed the filters itself) writes one
// byte: the child exits without touching anything and is waited for. If the agent dies
// instead, the kernel closes the write end, read() returns end-of-file, and the child runs
// RunClsactCleanup(plan) and exits.
//
// Per attachment rather than one per process: each child needs only its own prebuilt plan
// and the namespace it was forked in (attachments of one process can live in different
// namespaces), so there is no command channel to keep consistent, and its lifetime is the
// attachment's. Attachments are few (the tunnel devices), so are the processes.
class ClsactReaper {
 public:
  static Result<std::unique_ptr<ClsactReaper>> Start(const ClsactCleanupPlan& plan,
                                                     const std::string& ifname);
  ~ClsactReaper();  // Disarm()
  ClsactReaper(const ClsactReaper&) = delete;
  ClsactReaper& operator=(const ClsactReaper&) = delete;

  // Tells the child to exit without cleaning up and reaps it; idempotent.
  void Disarm();
  // Closes the channel without the disarm byte, so the child cleans up exactly as after a
  // crash, and reaps it. For when this thread cannot reach the attachment's namespace.
  void HandOverCleanup();
  pid_t pid() const { return pid_; }

 private:
  ClsactReaper(pid_t pid, int disarm_fd) : pid_(pid), disarm_fd_(disarm_fd) {}
  pid_t pid_;
  int disarm_fd_;
};

}  // namespace regionpulse
