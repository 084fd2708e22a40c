// Options of the probe sockets (the prober's and the reflector's), set once when they open.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

namespace regionpulse {

// Receive buffers. The prober sends every probe due at a wake-up in one batch, so probes and
// their replies arrive in bursts (about 100 within microseconds at 5,000 targets); the kernel's
// default of 208 KiB holds about 200 such datagrams and dropped probes at 3,000 targets in the
// bench. 4 MiB holds a burst of thousands; memory is only used while datagrams wait.
inline constexpr int kProbeReceiveBuffer = 4 << 20;

// Sets the socket's receive buffer to `bytes`: SO_RCVBUFFORCE past net.core.rmem_max when the
// process may (CAP_NET_ADMIN, which the agent has for its datapath), else SO_RCVBUF, which the
// kernel caps at rmem_max. Best effort: a smaller buffer only means drops under bursts.
inline void RaiseReceiveBuffer(int fd, int bytes = kProbeReceiveBuffer) {
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

// Probes and replies leave with Don't Fragment, the path MTU the kernel learnt ignored
// (IP_PMTUDISC_PROBE, as tracepath does). Why: a probe measures the path as it is, so one too
// large for it should be lost and counted, not fragmented and reassembled; a STAMP packet is a
// few hundred octets, far below any tunnel's MTU. And it is cheaper: an IPv4 datagram with DF
// from an unconnected socket gets IP ID 0 (RFC 6864 allows it for atomic datagrams), where
// without DF the kernel draws an ID from its hashed per-destination generator for every packet
// (`__ip_select_ident`, about 5 % of the reflector's CPU per probe in tools/bench/agent_cost).
// On a dual-stack IPv6 socket the IPv4 option applies to its IPv4-mapped traffic. Returns 0 or
// the errno of the option that failed.
inline int SetProbeDontFragment(int fd, bool v6) {
  const int probe4 = IP_PMTUDISC_PROBE;
  if (::setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &probe4, sizeof(probe4)) != 0) return errno;
  const int probe6 = IPV6_PMTUDISC_PROBE;
  if (v6 && ::setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &probe6, sizeof(probe6)) != 0) return errno;
  return 0;
}

}  // namespace regionpulse
