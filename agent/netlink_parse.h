// The agent's netlink replies, parsed: rtnetlink link messages (the interface watcher) and
// sock_diag inet_diag replies (the TCP socket dump). Pure functions over the bytes of one
// datagram, with every length checked against what is there, so they can be fuzzed
// (tests/fuzz/netlink_link_fuzz.cc, sock_diag_fuzz.cc) and the socket code only reads and
// sends. The bytes must be 4-byte aligned, as the kernel's datagrams (and our buffers) are.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "agent/interface_watcher.h"
#include "agent/tcp_socket_dump.h"

namespace regionpulse {

// One message of a link datagram, in the order they came.
struct LinkMessage {
  enum class Kind {
    kNewLink,   // RTM_NEWLINK: `link` exists now
    kDelLink,   // RTM_DELLINK: `link` is gone
    kDumpDone,  // NLMSG_DONE: the end of a dump
    kError,     // NLMSG_ERROR with a non-zero error; nothing after it is parsed
  };
  Kind kind = Kind::kNewLink;
  LinkInfo link;
  int error = 0;  // positive errno, for kError
};

// Messages too short for their headers, and other message types, are skipped; an interface
// name is taken up to its NUL or the end of its attribute, whichever comes first.
std::vector<LinkMessage> ParseLinkDatagram(std::span<const uint8_t> datagram);

// What one sock_diag datagram answered of requests numbered first..first+count-1.
struct SockDiagDatagram {
  // Replies of connections past the handshake and not yet closed (not TIME_WAIT or closing
  // mini-sockets an exact lookup also finds).
  std::vector<TcpConnectionInfo> connections;
  // Requests answered: replies of any state, and lookups whose socket is gone (ENOENT, ESTALE).
  uint32_t answered = 0;
  // A dump's NLMSG_DONE: nothing after it is parsed.
  bool done = false;
  // The kernel refused a request (any error of a dump; other than gone for a lookup): the
  // positive errno. Nothing after it is parsed.
  std::optional<int> refused;
};

SockDiagDatagram ParseSockDiagDatagram(std::span<const uint8_t> datagram, uint32_t first, uint32_t count,
                                       bool dump);

}  // namespace regionpulse
