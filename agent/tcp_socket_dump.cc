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
#include <span>
#include <string>
#include <utility>

#include "agent/netlink_parse.h"

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

// One inet_diag request, with the port filter when there is one.
void AppendRequest(std::vector<uint8_t>* out, const inet_diag_req_v2& req, uint16_t flags, uint32_t sequence,
                   const std::vector<uint8_t>* bytecode) {
  const size_t attr_space = bytecode ? NLA_HDRLEN + NLA_ALIGN(bytecode->size()) : 0;
  const size_t start = out->size();
  out->resize(start + NLMSG_SPACE(sizeof(inet_diag_req_v2)) + attr_space, 0);
  auto* header = reinterpret_cast<nlmsghdr*>(out->data() + start);
  header->nlmsg_len = static_cast<uint32_t>(out->size() - start);
  header->nlmsg_type = SOCK_DIAG_BY_FAMILY;
  header->nlmsg_flags = flags;
  header->nlmsg_seq = sequence;
  std::memcpy(NLMSG_DATA(header), &req, sizeof(req));
  if (bytecode) {
    auto* attr = reinterpret_cast<nlattr*>(out->data() + start + NLMSG_SPACE(sizeof(inet_diag_req_v2)));
    attr->nla_type = INET_DIAG_REQ_BYTECODE;
    attr->nla_len = static_cast<uint16_t>(NLA_HDRLEN + bytecode->size());
    std::memcpy(reinterpret_cast<uint8_t*>(attr) + NLA_HDRLEN, bytecode->data(), bytecode->size());
  }
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
  const uint32_t sequence = ++sequence_;
  std::vector<uint8_t> request;
  inet_diag_req_v2 req{};
  req.sdiag_family = static_cast<uint8_t>(family);
  req.sdiag_protocol = IPPROTO_TCP;
  req.idiag_ext = 1U << (INET_DIAG_INFO - 1);
  req.idiag_states = kConnectedStates;
  AppendRequest(&request, req, NLM_F_REQUEST | NLM_F_DUMP, sequence, &bytecode);
  return Exchange(request, sequence, 1, true,
                  family == AF_INET ? "the IPv4 TCP socket dump" : "the IPv6 TCP socket dump", out);
}

Result<std::vector<TcpConnectionInfo>> TcpSocketDump::Lookup(const std::vector<TcpConnectionKey>& keys) {
  std::vector<TcpConnectionInfo> result;
  // Batches small enough that the replies (about 330 bytes each) fit the socket's default
  // receive buffer before we read them.
  constexpr size_t kBatch = 128;
  for (size_t start = 0; start < keys.size(); start += kBatch) {
    const size_t count = std::min(kBatch, keys.size() - start);
    const uint32_t first = sequence_ + 1;
    sequence_ += static_cast<uint32_t>(count);
    std::vector<uint8_t> requests;
    for (size_t i = 0; i < count; ++i) {
      const TcpConnectionKey& key = keys[start + i];
      inet_diag_req_v2 req{};
      req.sdiag_family = static_cast<uint8_t>(key.family);
      req.sdiag_protocol = IPPROTO_TCP;
      req.idiag_ext = 1U << (INET_DIAG_INFO - 1);
      req.idiag_states = ~0U;
      req.id.idiag_sport = htons(key.local_port);
      req.id.idiag_dport = htons(key.remote_port);
      std::memcpy(req.id.idiag_src, key.local_address.data(), 16);
      std::memcpy(req.id.idiag_dst, key.remote_address.data(), 16);
      req.id.idiag_if = key.bound_ifindex;
      req.id.idiag_cookie[0] = static_cast<uint32_t>(key.cookie);
      req.id.idiag_cookie[1] = static_cast<uint32_t>(key.cookie >> 32);
      AppendRequest(&requests, req, NLM_F_REQUEST, first + static_cast<uint32_t>(i), nullptr);
    }
    if (Status s =
            Exchange(requests, first, static_cast<uint32_t>(count), false, "TCP socket lookups", &result);
        !s.ok()) {
      return s.error();
    }
  }
  return result;
}

Status TcpSocketDump::Exchange(const std::vector<uint8_t>& requests, uint32_t first, uint32_t count,
                               bool dump, const char* what, std::vector<TcpConnectionInfo>* out) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd_, requests.data(), requests.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) <
      0) {
    return Error{std::string("requesting ") + what + " (sock_diag)", errno};
  }
  // A dump answers with few large datagrams; lookups with one small datagram each, so those
  // are taken many per syscall.
  constexpr size_t kDatagrams = 64;
  constexpr size_t kLookupDatagram = 4096;
  static thread_local std::vector<uint8_t> space(kDatagrams * kLookupDatagram);
  static thread_local std::array<iovec, kDatagrams> iov;
  static thread_local std::array<mmsghdr, kDatagrams> datagrams;
  const size_t slots = dump ? 1 : kDatagrams;
  const size_t slot_size = dump ? space.size() : kLookupDatagram;
  uint32_t answered = 0;
  while (dump || answered < count) {
    for (size_t i = 0; i < slots; ++i) {
      iov[i] = {space.data() + i * slot_size, slot_size};
      datagrams[i] = {};
      datagrams[i].msg_hdr.msg_iov = &iov[i];
      datagrams[i].msg_hdr.msg_iovlen = 1;
    }
    const int received =
        recvmmsg(fd_, datagrams.data(), static_cast<unsigned>(slots), MSG_WAITFORONE, nullptr);
    if (received < 0) {
      if (errno == EINTR) continue;
      return Error{std::string("reading ") + what + " (sock_diag)", errno};
    }
    for (int d = 0; d < received; ++d) {
      if ((datagrams[d].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
        return Error{std::string("reading ") + what + ": a reply larger than the buffer (sock_diag)",
                     EMSGSIZE};
      }
      SockDiagDatagram parsed = ParseSockDiagDatagram(
          std::span<const uint8_t>(static_cast<const uint8_t*>(iov[d].iov_base), datagrams[d].msg_len), first,
          count, dump);
      answered += parsed.answered;
      out->insert(out->end(), parsed.connections.begin(), parsed.connections.end());
      if (parsed.refused) {
        return Error{std::string("the kernel refused ") + what +
                         " (sock_diag; a port filter it rejects, or no inet_diag)",
                     *parsed.refused};
      }
      if (parsed.done) return OkStatus();
    }
  }
  return OkStatus();
}

}  // namespace regionpulse
