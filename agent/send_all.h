// Sending a batch of prepared datagrams with sendmmsg, shared by the prober (probes) and the
// reflector (replies).
#pragma once

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>

namespace regionpulse {

// Sends headers[0, count) on `fd`, at most `max_per_call` per sendmmsg. sendmmsg stops at the
// first message that fails: that one is reported through on_error(index, errno) and the rest
// are sent on, so one bad destination never holds back the others. EINTR is retried.
template <typename OnError>
void SendAll(int fd, mmsghdr* headers, size_t count, size_t max_per_call, OnError&& on_error) {
  size_t next = 0;
  while (next < count) {
    const unsigned batch = static_cast<unsigned>(std::min(count - next, max_per_call));
    const int n = ::sendmmsg(fd, headers + next, batch, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      on_error(next, errno);
      ++next;
    } else {
      next += static_cast<size_t>(n);
    }
  }
}

}  // namespace regionpulse
