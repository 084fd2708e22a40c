// Prebuilt rtnetlink requests for removing our clsact filters and qdisc, and the forked
// reaper process that sends them when the agent dies.
#include "agent/clsact_reaper.h"

#include "common/component_logger.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace regionpulse {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  return ComponentLogger("datapath");
}

// A kernel that answers rtnetlink at all answers within milliseconds; the bound only keeps a
// wedged reaper from living forever.
constexpr time_t kReplyTimeoutSeconds = 5;
// How long Disarm waits for the child to exit before killing it.
constexpr int kExitWaitMilliseconds = 2000;

// Sequence numbers of the plan's requests (each goes over its own socket; they only make
// the replies checkable).
constexpr uint32_t kSeqDeleteIngress = 1;
constexpr uint32_t kSeqDeleteEgress = 2;
constexpr uint32_t kSeqDumpIngress = 3;
constexpr uint32_t kSeqDumpEgress = 4;
constexpr uint32_t kSeqDeleteQdisc = 5;

uint32_t ClsactParent(ClsactDirection direction) {
  return TC_H_MAKE(TC_H_CLSACT, direction == kClsactIngress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
}

// nlmsghdr + tcmsg, then optionally TCA_KIND with its NUL (as libbpf adds it).
NetlinkRequest BuildTcRequest(uint16_t type, uint16_t flags, uint32_t sequence, const tcmsg& tc,
                              const char* kind) {
  NetlinkRequest request;
  request.sequence = sequence;
  uint32_t length = NLMSG_LENGTH(sizeof(tcmsg));
  if (kind != nullptr) {
    const size_t kind_size = std::strlen(kind) + 1;
    nlattr attribute{};
    attribute.nla_len = static_cast<uint16_t>(NLA_HDRLEN + kind_size);
    attribute.nla_type = TCA_KIND;
    uint8_t* at = request.bytes.data() + NLMSG_ALIGN(length);
    std::memcpy(at, &attribute, sizeof(attribute));
    std::memcpy(at + NLA_HDRLEN, kind, kind_size);
    length = NLMSG_ALIGN(length) + NLA_ALIGN(attribute.nla_len);
  }
  nlmsghdr header{};
  header.nlmsg_len = length;
  header.nlmsg_type = type;
  header.nlmsg_flags = flags;
  header.nlmsg_seq = sequence;
  std::memcpy(request.bytes.data(), &header, sizeof(header));
  std::memcpy(request.bytes.data() + NLMSG_HDRLEN, &tc, sizeof(tc));
  request.length = length;
  return request;
}

// Sends one request over a fresh socket and reads the first datagram of the reply.
// Returns 0 and fills `reply`, or the errno of the socket call that failed.
int Exchange(const NetlinkRequest& request, NetlinkReply& reply) noexcept {
  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return errno;
  timeval timeout{kReplyTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, request.bytes.data(), request.length, 0, reinterpret_cast<const sockaddr*>(&kernel),
             sizeof(kernel)) < 0) {
    const int err = errno;
    close(fd);
    return err;
  }
  // Acks are under 100 bytes; of a dump only the first message's header matters (a longer
  // datagram is truncated, the header stays whole).
  alignas(nlmsghdr) uint8_t buffer[4096];
  ssize_t received;
  do {
    received = recv(fd, buffer, sizeof(buffer), 0);
  } while (received < 0 && errno == EINTR);
  const int err = received < 0 ? errno : 0;
  close(fd);
  if (err != 0) return err;
  reply = ClassifyReply(buffer, static_cast<size_t>(received), request.sequence);
  return 0;
}

// 0 when the kernel acknowledged the request, else the positive errno.
int AckErrnum(const NetlinkRequest& request) noexcept {
  NetlinkReply reply;
  const int err = Exchange(request, reply);
  if (err != 0) return err;
  if (reply.kind == NetlinkReplyKind::kAck) return 0;
  if (reply.kind == NetlinkReplyKind::kError) return reply.errnum;
  return EPROTO;
}

// Closes every descriptor but `keep`: the agent's BPF links, maps and sockets must not
// outlive it in the reaper (a tcx link held here would stay attached after a crash).
void CloseAllExcept(int keep, long open_max) noexcept {
  const auto keep_fd = static_cast<unsigned>(keep);
  bool closed = keep_fd == 0 || close_range(0, keep_fd - 1, 0) == 0;
  closed = closed && close_range(keep_fd + 1, ~0U, 0) == 0;
  if (closed) return;
  // close_range is Linux 5.9+; before that, one close per possible descriptor.
  for (long fd = 0; fd < open_max; ++fd) {
    if (fd != keep) close(static_cast<int>(fd));
  }
}

// The child: only async-signal-safe calls from here on (the parent may have had other
// threads holding the allocator's or spdlog's locks at the moment of the fork).
[[noreturn]] void ReaperMain(const ClsactCleanupPlan& plan, int disarm_fd, long open_max) noexcept {
  // A Ctrl-C or SIGTERM to the process group reaches the agent and us at once: we must still
  // be here if the agent's own cleanup does not finish.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, nullptr);
  sigaction(SIGTERM, &ignore, nullptr);
  sigaction(SIGHUP, &ignore, nullptr);
  sigaction(SIGPIPE, &ignore, nullptr);
  CloseAllExcept(disarm_fd, open_max);
  prctl(PR_SET_NAME, "rp-clsact-reap", 0, 0, 0);
  char byte;
  ssize_t n;
  do {
    n = read(disarm_fd, &byte, 1);
  } while (n < 0 && errno == EINTR);
  // End of file with no byte: the agent died without disarming us.
  if (n == 0) RunClsactCleanup(plan);
  _exit(0);
}

// Waits up to kExitWaitMilliseconds for the child, then kills it, and reaps it.
void ReapChild(pid_t pid, const char* why) {
  // glibc 2.36's <sys/pidfd.h> lacks extern "C", so C++ reaches pidfd_open (Linux 5.3) by
  // number; without it, the blocking waitpid below still reaps the child.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd exited{pidfd, POLLIN, 0};
    int ready;
    do {
      ready = poll(&exited, 1, kExitWaitMilliseconds);
    } while (ready < 0 && errno == EINTR);
    close(pidfd);
    if (ready == 0) {
      Log()->warn("clsact reaper {} did not exit after {}; killing it", pid, why);
      kill(pid, SIGKILL);
    }
  }
  int status = 0;
  pid_t waited;
  do {
    waited = waitpid(pid, &status, 0);
  } while (waited < 0 && errno == EINTR);
  // ECHILD: SIGCHLD is ignored in this process, so the kernel reaped it already.
  if (waited == pid && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    Log()->warn("clsact reaper {} ended with status {:#x} after {}", pid, status, why);
  }
}

}  // namespace

Result<NetlinkRequest> BuildDeleteFilterRequest(uint32_t ifindex, ClsactDirection direction, uint32_t handle,
                                                uint32_t priority, uint32_t sequence) {
  if (priority == 0 || priority > 0xFFFF) {
    return Error{"clsact filter priority " + std::to_string(priority) +
                     " (0 would flush every filter on the chain; at most 65535)",
                 EINVAL};
  }
  if (handle == 0) return Error{"clsact filter handle 0 would delete every filter at its priority", EINVAL};
  tcmsg tc{};
  tc.tcm_family = AF_UNSPEC;
  tc.tcm_ifindex = static_cast<int>(ifindex);
  tc.tcm_handle = handle;
  tc.tcm_parent = ClsactParent(direction);
  tc.tcm_info = TC_H_MAKE(priority << 16, htons(ETH_P_ALL));
  return BuildTcRequest(RTM_DELTFILTER, NLM_F_REQUEST | NLM_F_ACK, sequence, tc, "bpf");
}

NetlinkRequest BuildDumpFiltersRequest(uint32_t ifindex, ClsactDirection direction, uint32_t sequence) {
  tcmsg tc{};
  tc.tcm_family = AF_UNSPEC;
  tc.tcm_ifindex = static_cast<int>(ifindex);
  tc.tcm_parent = ClsactParent(direction);
  return BuildTcRequest(RTM_GETTFILTER, NLM_F_REQUEST | NLM_F_DUMP, sequence, tc, nullptr);
}

NetlinkRequest BuildDeleteClsactRequest(uint32_t ifindex, uint32_t sequence) {
  tcmsg tc{};
  tc.tcm_family = AF_UNSPEC;
  tc.tcm_ifindex = static_cast<int>(ifindex);
  tc.tcm_parent = TC_H_CLSACT;
  tc.tcm_handle = TC_H_MAKE(TC_H_CLSACT, 0);
  return BuildTcRequest(RTM_DELQDISC, NLM_F_REQUEST | NLM_F_ACK, sequence, tc, "clsact");
}

NetlinkReply ClassifyReply(const uint8_t* data, size_t length, uint32_t sequence) {
  NetlinkReply reply;
  nlmsghdr header;
  if (length < sizeof(header)) return reply;
  std::memcpy(&header, data, sizeof(header));
  if (header.nlmsg_len < sizeof(header) || header.nlmsg_len > length || header.nlmsg_seq != sequence) {
    return reply;
  }
  const size_t payload = header.nlmsg_len - NLMSG_HDRLEN;
  int error = 0;
  switch (header.nlmsg_type) {
    case NLMSG_ERROR:
      if (payload < sizeof(int)) return reply;
      std::memcpy(&error, data + NLMSG_HDRLEN, sizeof(error));
      if (error == 0) {
        reply.kind = NetlinkReplyKind::kAck;
      } else {
        reply.kind = NetlinkReplyKind::kError;
        reply.errnum = -error;
      }
      return reply;
    case NLMSG_DONE:
      // The dump's own error, if it ended on one (older kernels send no payload).
      if (payload >= sizeof(int)) std::memcpy(&error, data + NLMSG_HDRLEN, sizeof(error));
      if (error < 0) {
        reply.kind = NetlinkReplyKind::kError;
        reply.errnum = -error;
      } else {
        reply.kind = NetlinkReplyKind::kDumpDone;
      }
      return reply;
    case RTM_NEWTFILTER:
      reply.kind = NetlinkReplyKind::kFilter;
      return reply;
    default:
      return reply;
  }
}

Result<ClsactCleanupPlan> MakeClsactCleanupPlan(uint32_t ifindex, uint32_t handle, uint32_t priority,
                                                bool remove_qdisc_if_unused) {
  ClsactCleanupPlan plan;
  plan.ifindex = ifindex;
  plan.remove_qdisc_if_unused = remove_qdisc_if_unused;
  for (const ClsactDirection direction : {kClsactIngress, kClsactEgress}) {
    auto request =
        BuildDeleteFilterRequest(ifindex, direction, handle, priority,
                                 direction == kClsactIngress ? kSeqDeleteIngress : kSeqDeleteEgress);
    if (!request.ok()) return request.error();
    plan.delete_filter[direction] = *request;
    plan.dump_filters[direction] = BuildDumpFiltersRequest(
        ifindex, direction, direction == kClsactIngress ? kSeqDumpIngress : kSeqDumpEgress);
  }
  plan.delete_qdisc = BuildDeleteClsactRequest(ifindex, kSeqDeleteQdisc);
  return plan;
}

ClsactCleanupOutcome RunClsactCleanup(const ClsactCleanupPlan& plan) noexcept {
  ClsactCleanupOutcome outcome;
  for (const ClsactDirection direction : {kClsactIngress, kClsactEgress}) {
    outcome.filter_errnum[direction] = AckErrnum(plan.delete_filter[direction]);
  }
  if (!plan.remove_qdisc_if_unused) return outcome;
  for (const ClsactDirection direction : {kClsactIngress, kClsactEgress}) {
    NetlinkReply reply;
    int err = Exchange(plan.dump_filters[direction], reply);
    if (err == 0 && reply.kind == NetlinkReplyKind::kFilter) {
      outcome.qdisc = QdiscCleanup::kStillInUse;
      return outcome;
    }
    if (err == 0 && reply.kind == NetlinkReplyKind::kError) err = reply.errnum;
    if (err == 0 && reply.kind != NetlinkReplyKind::kDumpDone) err = EPROTO;
    if (err != 0) {
      outcome.qdisc = QdiscCleanup::kFailed;
      outcome.qdisc_errnum = err;
      return outcome;
    }
  }
  const int err = AckErrnum(plan.delete_qdisc);
  // ENOENT: no clsact there any more; ENODEV: the interface is gone and took it along.
  if (err == 0 || err == ENOENT || err == ENODEV) {
    outcome.qdisc = QdiscCleanup::kRemoved;
  } else {
    outcome.qdisc = QdiscCleanup::kFailed;
    outcome.qdisc_errnum = err;
  }
  return outcome;
}

Result<std::unique_ptr<ClsactReaper>> ClsactReaper::Start(const ClsactCleanupPlan& plan,
                                                          const std::string& ifname) {
  // A socket pair rather than a pipe: Disarm can then write with MSG_NOSIGNAL, so a reaper
  // that somebody killed costs an EPIPE, not a SIGPIPE that would end the agent.
  int channel[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel) != 0) {
    return Error{"socket pair for the clsact reaper of " + ifname, errno};
  }
  const long open_max = sysconf(_SC_OPEN_MAX);
  // _Fork, not fork: it runs no pthread_atfork handlers (libraries such as gRPC register
  // some that take locks), and it is async-signal-safe. It copies only the calling thread,
  // with that thread's network namespace.
  const pid_t pid = _Fork();
  if (pid < 0) {
    const int err = errno;
    close(channel[0]);
    close(channel[1]);
    return Error{"forking the clsact reaper of " + ifname, err};
  }
  if (pid == 0) ReaperMain(plan, channel[0], open_max);
  close(channel[0]);
  return std::unique_ptr<ClsactReaper>(new ClsactReaper(pid, channel[1]));
}

void ClsactReaper::Disarm() {
  if (disarm_fd_ < 0) return;
  const char disarm = 'D';
  ssize_t sent;
  do {
    sent = send(disarm_fd_, &disarm, 1, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  // sent < 0: the child is gone already; reaping it is all that is left.
  close(disarm_fd_);
  disarm_fd_ = -1;
  ReapChild(pid_, "disarming");
}

void ClsactReaper::HandOverCleanup() {
  if (disarm_fd_ < 0) return;
  close(disarm_fd_);
  disarm_fd_ = -1;
  ReapChild(pid_, "handing the cleanup over");
}

ClsactReaper::~ClsactReaper() {
  Disarm();
}

}  // namespace regionpulse
