// TcpSocketDump: TCP connections of one network namespace with the kernel's own progress
// counters (tcp_info), read through sock_diag (NETLINK_SOCK_DIAG, inet_diag). The datapath
// reads the sockets of replication flows at every window close: sock_ops callbacks come once
// per round trip, so they miss the end of a burst, and they never see connections
// established before the agent started.
//
// Two ways to read: a dump of every connection on some ports, which walks the kernel's whole
// established-socket hash table (about 1 ms per address family with 262,144 buckets, more on
// bigger hosts), used once to find connections older than the agent; and exact lookups of
// known connections, a hash lookup each, batched into one send, used at every window.
//
// Hand-written netlink (no netlink library is among the dependencies); the messages are few
// and fixed.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "common/result.h"

namespace regionpulse {

// What identifies one connection to inet_diag: its addresses, ports, bound device and cookie
// (a later connection with the same addresses and ports has another cookie).
struct TcpConnectionKey {
  uint64_t cookie = 0;                       // the socket cookie (bpf_get_socket_cookie gives the same)
  int family = 0;                            // AF_INET or AF_INET6 (which may carry IPv4-mapped addresses)
  std::array<uint8_t, 16> local_address{};   // network byte order; IPv4: the first 4 bytes
  std::array<uint8_t, 16> remote_address{};  // likewise
  uint16_t local_port = 0;                   // host byte order
  uint16_t remote_port = 0;
  uint32_t bound_ifindex = 0;  // SO_BINDTODEVICE, else 0
};

struct TcpConnectionInfo {
  TcpConnectionKey key;
  uint8_t state = 0;              // TCP_ESTABLISHED, TCP_FIN_WAIT1, ... (include/net/tcp_states.h)
  uint64_t bytes_acked = 0;       // tcpi_bytes_acked: sequence space the peer acknowledged
  uint32_t unacked_segments = 0;  // tcpi_unacked: sent, not yet acknowledged
  uint32_t notsent_bytes = 0;     // tcpi_notsent_bytes: written by the application, not yet sent
  // idiag_wqueue: for TCP the kernel fills it with write_seq - snd_una, every byte the
  // application wrote that the peer has not acknowledged (in flight plus not yet sent).
  uint32_t unacked_bytes = 0;

  // Data the application wrote that the peer has not acknowledged, in flight or held back
  // (by the receiver's window, or congestion).
  bool HasDataOutstanding() const { return unacked_segments > 0 || notsent_bytes > 0; }
};

// The inet_diag bytecode that accepts a socket whose local or remote port is in `ports`
// (host byte order, at least one). Pure, for tests; the layout is the one the kernel's
// bytecode audit accepts (every test on the "yes" path, as iproute2's ss builds an OR).
std::vector<uint8_t> PortFilterBytecode(const std::vector<uint16_t>& ports);

class TcpSocketDump {
 public:
  // Opens the netlink socket in the calling thread's network namespace: every later dump
  // lists that namespace's sockets, whichever thread asks for it.
  static Result<TcpSocketDump> Open();

  TcpSocketDump(TcpSocketDump&& other) noexcept;
  TcpSocketDump& operator=(TcpSocketDump&& other) noexcept;
  TcpSocketDump(const TcpSocketDump&) = delete;
  TcpSocketDump& operator=(const TcpSocketDump&) = delete;
  ~TcpSocketDump();

  // Connections past the handshake and not yet closed (ESTABLISHED to LAST_ACK; not
  // TIME_WAIT, which has no tcp_info) with a local or remote port in `ports`, IPv4 and IPv6.
  // Not thread-safe: one dump at a time per object.
  Result<std::vector<TcpConnectionInfo>> Connections(const std::vector<uint16_t>& ports);

  // The connections in `keys` that still exist and are past the handshake and not yet closed;
  // the others (closed, or their addresses and ports now another connection's) are left out.
  Result<std::vector<TcpConnectionInfo>> Lookup(const std::vector<TcpConnectionKey>& keys);

 private:
  explicit TcpSocketDump(int fd) : fd_(fd) {}
  Status DumpFamily(int family, const std::vector<uint8_t>& bytecode, std::vector<TcpConnectionInfo>* out);
  // Sends `requests` (whole netlink messages, sequence numbers first..first+count-1) and
  // reads until each has its answer: a reply (appended to `out` when connected) or an error
  // (ENOENT, ESTALE: gone). Dumps end with NLMSG_DONE instead.
  Status Exchange(const std::vector<uint8_t>& requests, uint32_t first, uint32_t count, bool dump,
                  const char* what, std::vector<TcpConnectionInfo>* out);

  int fd_ = -1;
  uint32_t sequence_ = 0;
};

}  // namespace regionpulse
