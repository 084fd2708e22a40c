// What the benchmark's UDP echo programs (rp_udp_echo, rp_wan_echo) share: a clock read in
// nanoseconds and an IPv4 UDP socket bound to a port on every address.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace regionpulse::bench {

inline int64_t ClockNs(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// -1 after printing "PROGRAM: bind port P: why" on failure.
inline int BoundUdpSocket(uint16_t port, const char* program) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    std::fprintf(stderr, "%s: bind port %u: %s\n", program, port, std::strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

}  // namespace regionpulse::bench
