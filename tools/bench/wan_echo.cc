// rp_wan_echo: the UDP echo that tools/bench/wan_emulator_error measures round trips with,
// direct and through regionpulse-wan. Both ends use kernel receive stamps (SO_TIMESTAMPNS)
// and the responder returns how long it held each probe, so the figures are the network's
// (and the emulator's), not the wake-up delay of the measuring programs.
//   rp_wan_echo serve --port PORT
//   rp_wan_echo probe --bind-port PORT --to IPV4:PORT [--count N] [--interval DURATION]
// probe prints: count=N lost=L p50_us=.. p99_us=.. max_us=.. min_us=..
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/config_text.h"
#include "tools/bench/udp_socket.h"

namespace {

// The probe payload: sequence number, then the responder's residence time in nanoseconds.
constexpr size_t kProbeBytes = 64;

int64_t WallNs() {
  return regionpulse::bench::ClockNs(CLOCK_REALTIME);
}

// With kernel receive stamps.
int BoundSocket(uint16_t port) {
  const int fd = regionpulse::bench::BoundUdpSocket(port, "rp_wan_echo");
  if (fd < 0) return -1;
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
  return fd;
}

// recvmsg with the kernel receive stamp (wall clock ns); -1 on error.
ssize_t Receive(int fd, uint8_t* buffer, size_t size, sockaddr_in* from, int64_t* kernel_ns) {
  iovec iov{buffer, size};
  alignas(cmsghdr) char control[64];
  msghdr msg{};
  msg.msg_name = from;
  msg.msg_namelen = sizeof(*from);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(fd, &msg, 0);
  *kernel_ns = WallNs();
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      timespec ts{};
      std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
      *kernel_ns = static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    }
  }
  return n;
}

int Serve(uint16_t port) {
  const int fd = BoundSocket(port);
  if (fd < 0) return 1;
  uint8_t buffer[2048];
  while (true) {
    sockaddr_in from{};
    int64_t received_ns = 0;
    const ssize_t n = Receive(fd, buffer, sizeof(buffer), &from, &received_ns);
    if (n < static_cast<ssize_t>(kProbeBytes)) continue;
    const int64_t residence = WallNs() - received_ns;
    std::memcpy(buffer + 8, &residence, sizeof(residence));
    sendto(fd, buffer, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), sizeof(from));
  }
}

int Probe(uint16_t bind_port, const std::string& to, int count, int64_t interval_ns) {
  auto target = regionpulse::ParseHostPort(to, false);
  sockaddr_in destination{};
  destination.sin_family = AF_INET;
  if (!target || inet_pton(AF_INET, target->host.c_str(), &destination.sin_addr) != 1) {
    std::fprintf(stderr, "rp_wan_echo: --to expects IPV4:PORT, got %s\n", to.c_str());
    return 1;
  }
  destination.sin_port = htons(target->port);
  const int fd = BoundSocket(bind_port);
  if (fd < 0) return 1;

  std::vector<int64_t> sent_ns(static_cast<size_t>(count), 0);
  std::vector<int64_t> rtt_ns;
  const int64_t start = WallNs();
  int next = 0;
  // Replies may come up to 2 s after the last probe (a 35 ms emulated delay is far below).
  const int64_t end = start + interval_ns * count + 2'000'000'000;
  while (WallNs() < end && static_cast<int>(rtt_ns.size()) < count) {
    const int64_t now = WallNs();
    if (next < count && now >= start + interval_ns * next) {
      uint8_t probe[kProbeBytes] = {};
      const uint64_t sequence = static_cast<uint64_t>(next);
      std::memcpy(probe, &sequence, sizeof(sequence));
      sent_ns[static_cast<size_t>(next)] = WallNs();
      sendto(fd, probe, sizeof(probe), 0, reinterpret_cast<sockaddr*>(&destination), sizeof(destination));
      ++next;
      continue;
    }
    const int64_t wake = next < count ? start + interval_ns * next : end;
    pollfd p{fd, POLLIN, 0};
    const int timeout_ms = static_cast<int>(std::max<int64_t>(0, (wake - now) / 1'000'000));
    if (poll(&p, 1, timeout_ms) <= 0) continue;
    uint8_t reply[2048];
    sockaddr_in from{};
    int64_t received_ns = 0;
    if (Receive(fd, reply, sizeof(reply), &from, &received_ns) < static_cast<ssize_t>(kProbeBytes)) continue;
    uint64_t sequence = 0;
    int64_t residence = 0;
    std::memcpy(&sequence, reply, sizeof(sequence));
    std::memcpy(&residence, reply + 8, sizeof(residence));
    if (sequence >= static_cast<uint64_t>(count) || sent_ns[sequence] == 0) continue;
    rtt_ns.push_back(received_ns - sent_ns[sequence] - residence);
    sent_ns[sequence] = 0;  // a duplicate is not counted twice
  }
  std::sort(rtt_ns.begin(), rtt_ns.end());
  const auto at = [&](double q) {
    if (rtt_ns.empty()) return 0.0;
    const size_t rank =
        static_cast<size_t>(std::max(1.0, q * static_cast<double>(rtt_ns.size()) + 0.999999)) - 1;
    return static_cast<double>(rtt_ns[std::min(rank, rtt_ns.size() - 1)]) / 1e3;
  };
  std::printf("count=%zu lost=%zu min_us=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f\n", rtt_ns.size(),
              static_cast<size_t>(count) - rtt_ns.size(), at(0), at(0.5), at(0.99),
              rtt_ns.empty() ? 0.0 : at(1));
  return rtt_ns.empty() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  auto value = [&](const std::string& flag, const std::string& fallback) {
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == flag) return args[i + 1];
    }
    return fallback;
  };
  if (!args.empty() && args[0] == "serve")
    return Serve(static_cast<uint16_t>(std::stoi(value("--port", "0"))));
  if (!args.empty() && args[0] == "probe") {
    auto interval = regionpulse::ParseDuration(value("--interval", "10ms"));
    if (!interval) {
      std::fprintf(stderr, "rp_wan_echo: --interval: %s\n", interval.error().message.c_str());
      return 1;
    }
    return Probe(static_cast<uint16_t>(std::stoi(value("--bind-port", "0"))), value("--to", ""),
                 std::stoi(value("--count", "1000")), interval->count());
  }
  std::fprintf(
      stderr,
      "usage: rp_wan_echo serve --port PORT\n"
      "       rp_wan_echo probe --bind-port PORT --to IPV4:PORT [--count N] [--interval DURATION]\n");
  return 1;
}
