#include "agent/tcp_socket_dump.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <utility>

namespace regionpulse {
namespace {

// include/net/tcp_states.h: every state of a connection past the handshake that still has a
// full socket (TIME_WAIT sockets are mini-sockets without tcp_info).
constexpr uint32_t kConnectedStates = (1U << 1) /* ESTABLISHED */ | (1U << 4) /* FIN_WAIT1 */ |
                                      (1U << 5) /* FIN_WAIT2 */ | (1U << 8) /* CLOSE_WAIT */ |
                                      (1U << 9) /* LAST_ACK */ | (1U << 11) /* CLOSING */;

void Append(std::vector<uint8_t>* out, const void* data, size_t length) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + length);
}

}  // namespace

std::vector<uint8_t> PortFilterBytecode(const std::vector<uint16_t>& ports) {
  const std::set<uint16_t> unique(ports.begin(), ports.end());
  struct Test {
    uint8_t code;
    uint16_t port;
  };
  std::vector<Test> tests;
  for (const uint16_t port : unique) {
    tests.push_back({INET_DIAG_BC_S_EQ, port});
    tests.push_back({INET_DIAG_BC_D_EQ, port});
  }
  // t0 JMP t1 JMP ... tN: a test that matches steps onto the jump after it, which leaves the
  // program at its very end (accept); one that fails steps over the jump to the next test;
  // the last test's failure lands 4 bytes past the end (reject).
  constexpr uint16_t kTest = 2 * sizeof(inet_diag_bc_op);
  constexpr uint16_t kJump = sizeof(inet_diag_bc_op);
  const size_t total = tests.size() * kTest + (tests.size() - 1) * kJump;
  std::vector<uint8_t> code;
  code.reserve(total);
  for (size_t i = 0; i < tests.size(); ++i) {
    const inet_diag_bc_op test{tests[i].code, kTest, kTest + kJump};
    const inet_diag_bc_op operand{0, 0, tests[i].port};
    Append(&code, &test, sizeof(test));
    Append(&code, &operand, sizeof(operand));
    if (i + 1 < tests.size()) {
      const inet_diag_bc_op jump{INET_DIAG_BC_JMP, kJump, static_cast<uint16_t>(total - code.size())};
      Append(&code, &jump, sizeof(jump));
    }
  }
  return code;
}

Result<TcpSocketDump> TcpSocketDump::Open() {
  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0)
    return Error{"opening a sock_diag netlink socket (NETLINK_SOCK_DIAG) to read flow sockets", errno};
  // A dump that never answers must not hang the window close.
  timeval timeout{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return TcpSocketDump(fd);
}

TcpSocketDump::TcpSocketDump(TcpSocketDump&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), sequence_(other.sequence_) {}

TcpSocketDump& TcpSocketDump::operator=(TcpSocketDump&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    sequence_ = other.sequence_;
  }
  return *this;
}

TcpSocketDump::~TcpSocketDump() {
  if (fd_ >= 0) close(fd_);
}

Result<std::vector<TcpConnectionInfo>> TcpSocketDump::Connections(const std::vector<uint16_t>& ports) {
  std::vector<TcpConnectionInfo> result;
  if (ports.empty()) return result;
  const std::vector<uint8_t> bytecode = PortFilterBytecode(ports);
  for (const int family : {AF_INET, AF_INET6}) {
    if (Status s = DumpFamily(family, bytecode, &result); !s.ok()) return s.error();
  }
  return result;
}

Status TcpSocketDump::DumpFamily(int family, const std::vector<uint8_t>& bytecode,
                                 std::vector<TcpConnectionInfo>* out) {
  const char* family_name = family == AF_INET ? "IPv4" : "IPv6";
  const uint32_t sequence = ++sequence_;
  std::vector<uint8_t> request(
      NLMSG_SPACE(sizeof(inet_diag_req_v2)) + NLA_HDRLEN + NLA_ALIGN(bytecode.size()), 0);
  auto* header = reinterpret_cast<nlmsghdr*>(request.data());
  header->nlmsg_len = static_cast<uint32_t>(request.size());
  header->nlmsg_type = SOCK_DIAG_BY_FAMILY;
  header->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  header->nlmsg_seq = sequence;
  auto* req = static_cast<inet_diag_req_v2*>(NLMSG_DATA(header));
  req->sdiag_family = static_cast<uint8_t>(family);
  req->sdiag_protocol = IPPROTO_TCP;
  req->idiag_ext = 1U << (INET_DIAG_INFO - 1);
  req->idiag_states = kConnectedStates;
  auto* attr = reinterpret_cast<nlattr*>(request.data() + NLMSG_SPACE(sizeof(inet_diag_req_v2)));
  attr->nla_type = INET_DIAG_REQ_BYTECODE;
  attr->nla_len = static_cast<uint16_t>(NLA_HDRLEN + bytecode.size());
  std::memcpy(reinterpret_cast<uint8_t*>(attr) + NLA_HDRLEN, bytecode.data(), bytecode.size());

  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd_, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) <
      0) {
    return Error{std::string("requesting the ") + family_name + " TCP socket dump (sock_diag)", errno};
  }
  alignas(nlmsghdr) static thread_local std::array<uint8_t, 32768> buffer;
  for (;;) {
    const ssize_t n = recv(fd_, buffer.data(), buffer.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error{std::string("reading the ") + family_name + " TCP socket dump (sock_diag)", errno};
    }
    int length = static_cast<int>(n);
    for (auto* msg = reinterpret_cast<nlmsghdr*>(buffer.data()); NLMSG_OK(msg, length);
         msg = NLMSG_NEXT(msg, length)) {
      if (msg->nlmsg_seq != sequence) continue;  // a late reply to an abandoned dump
      if (msg->nlmsg_type == NLMSG_DONE) return OkStatus();
      if (msg->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(msg));
        return Error{std::string("the kernel refused the ") + family_name +
                         " TCP socket dump (sock_diag; a port filter it rejects, or no inet_diag)",
                     -err->error};
      }
      if (msg->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
      const auto* diag = static_cast<const inet_diag_msg*>(NLMSG_DATA(msg));
      TcpConnectionInfo info;
      info.cookie = (static_cast<uint64_t>(diag->id.idiag_cookie[1]) << 32) | diag->id.idiag_cookie[0];
      info.family = diag->idiag_family;
      std::memcpy(info.remote_address.data(), diag->id.idiag_dst, 16);
      info.local_port = ntohs(diag->id.idiag_sport);
      info.remote_port = ntohs(diag->id.idiag_dport);
      info.state = diag->idiag_state;
      int attr_length = static_cast<int>(msg->nlmsg_len - NLMSG_LENGTH(sizeof(*diag)));
      for (auto* a = reinterpret_cast<const rtattr*>(diag + 1); RTA_OK(a, attr_length);
           a = RTA_NEXT(a, attr_length)) {
        if (a->rta_type != INET_DIAG_INFO) continue;
        // An older kernel sends a shorter tcp_info: the fields it lacks stay 0.
        tcp_info tcp{};
        std::memcpy(&tcp, RTA_DATA(a), std::min<size_t>(RTA_PAYLOAD(a), sizeof(tcp)));
        info.bytes_acked = tcp.tcpi_bytes_acked;
        info.unacked_segments = tcp.tcpi_unacked;
        info.notsent_bytes = tcp.tcpi_notsent_bytes;
      }
      out->push_back(info);
    }
  }
}

}  // namespace regionpulse
