// Receive buffers of the probe sockets. The prober sends every probe due at a wake-up in one
// batch, so probes and their replies arrive in bursts (about 100 within microseconds at 5,000
// targets); the kernel's default of 208 KiB holds about 200 such datagrams and dropped probes
// at 3,000 targets in the bench. 4 MiB holds a burst of thousands; memory is only used while
// datagrams wait.
#pragma once

#include <sys/socket.h>

namespace regionpulse {

inline constexpr int kProbeReceiveBuffer = 4 << 20;

// Sets the socket's receive buffer to `bytes`: SO_RCVBUFFORCE past net.core.rmem_max when the
// process may (CAP_NET_ADMIN, which the agent has for its datapath), else SO_RCVBUF, which the
// kernel caps at rmem_max. Best effort: a smaller buffer only means drops under bursts.
inline void RaiseReceiveBuffer(int fd, int bytes = kProbeReceiveBuffer) {
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

}  // namespace regionpulse
