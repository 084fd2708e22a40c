// TcpSocketDump: the live TCP connections of one network namespace whose local or remote
// port is in a given set, with the kernel's own progress counters (tcp_info), read through
// sock_diag (NETLINK_SOCK_DIAG, inet_diag). The datapath reads the sockets of replication
// flows at every window close: sock_ops callbacks come once per round trip, so they miss the
// end of a burst, and they never see connections established before the agent started.
//
// Hand-written netlink (no netlink library is among the dependencies); the messages are one
// request and one dump reply per address family.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "result.h"

namespace regionpulse {

struct TcpConnectionInfo {
  uint64_t cookie = 0;                       // the socket cookie (bpf_get_socket_cookie gives the same)
  int family = 0;                            // AF_INET or AF_INET6 (which may carry an IPv4-mapped address)
  std::array<uint8_t, 16> remote_address{};  // network byte order; IPv4: the first 4 bytes
  uint16_t local_port = 0;
  uint16_t remote_port = 0;
  uint8_t state = 0;              // TCP_ESTABLISHED, TCP_FIN_WAIT1, ... (include/net/tcp_states.h)
  uint64_t bytes_acked = 0;       // tcpi_bytes_acked: sequence space the peer acknowledged
  uint32_t unacked_segments = 0;  // tcpi_unacked: sent, not yet acknowledged
  uint32_t notsent_bytes = 0;     // tcpi_notsent_bytes: written by the application, not yet sent

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

 private:
  explicit TcpSocketDump(int fd) : fd_(fd) {}
  Status DumpFamily(int family, const std::vector<uint8_t>& bytecode, std::vector<TcpConnectionInfo>* out);

  int fd_ = -1;
  uint32_t sequence_ = 0;
};

}  // namespace regionpulse
