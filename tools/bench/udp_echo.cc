// rp_udp_echo: a plain user-space UDP echo prober and responder, the comparison point of
// tools/bench/rtt_accuracy. It measures what goldpinger's UDP probe and kubenurse-style
// probers measure: the prober reads the clock just before send() and just after recv()
// returns, and the responder echoes each datagram as it reads it. No kernel timestamps, no
// residence-time correction: both ends' scheduling delays are in the figure, by design.
//   rp_udp_echo serve --port PORT
//   rp_udp_echo probe --to IPV4:PORT [--count N] [--interval DURATION] [--timeout DURATION]
// probe prints one line: count=N lost=L min_ns=.. p50_ns=.. p99_ns=.. max_ns=..
#include <arpa/inet.h>
#include <netinet/in.h>
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

constexpr size_t kProbeBytes = 64;

using regionpulse::bench::BoundUdpSocket;
using regionpulse::bench::ClockNs;

int64_t MonotonicNs() {
  return ClockNs(CLOCK_MONOTONIC);
}

int Serve(uint16_t port) {
  const int fd = BoundUdpSocket(port, "rp_udp_echo");
  if (fd < 0) return 1;
  uint8_t buffer[2048];
  for (;;) {
    sockaddr_in from{};
    socklen_t from_size = sizeof(from);
    const ssize_t n = recvfrom(fd, buffer, sizeof(buffer), 0, reinterpret_cast<sockaddr*>(&from), &from_size);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::perror("rp_udp_echo: recvfrom");
      return 1;
    }
    sendto(fd, buffer, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), from_size);
  }
}

bool ParseDurationNs(const char* text, int64_t* ns) {
  auto value = regionpulse::ParseDuration(text);
  if (!value.ok()) return false;
  *ns = value->count();
  return true;
}

int Probe(const std::string& to, int count, int64_t interval_ns, int64_t timeout_ns) {
  const auto colon = to.rfind(':');
  sockaddr_in target{};
  target.sin_family = AF_INET;
  if (colon == std::string::npos || inet_pton(AF_INET, to.substr(0, colon).c_str(), &target.sin_addr) != 1) {
    std::fprintf(stderr, "rp_udp_echo: --to wants IPV4:PORT, got %s\n", to.c_str());
    return 2;
  }
  target.sin_port = htons(static_cast<uint16_t>(std::stoi(to.substr(colon + 1))));
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof(target)) != 0) {
    std::perror("rp_udp_echo: connect");
    return 1;
  }
  timeval tv{static_cast<time_t>(timeout_ns / 1'000'000'000),
             static_cast<suseconds_t>((timeout_ns % 1'000'000'000) / 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

  std::vector<int64_t> rtts;
  int lost = 0;
  uint8_t packet[kProbeBytes] = {};
  uint8_t reply[2048];
  int64_t next = MonotonicNs();
  for (uint32_t seq = 0; seq < static_cast<uint32_t>(count); ++seq) {
    std::memcpy(packet, &seq, sizeof(seq));
    const int64_t sent = MonotonicNs();
    if (send(fd, packet, sizeof(packet), 0) < 0) {
      ++lost;
    } else {
      // Read until this probe's echo (a late echo of an earlier probe is skipped) or timeout.
      for (;;) {
        const ssize_t n = recv(fd, reply, sizeof(reply), 0);
        const int64_t received = MonotonicNs();
        if (n < 0) {
          ++lost;
          break;
        }
        uint32_t echoed = 0;
        if (n >= static_cast<ssize_t>(sizeof(echoed))) std::memcpy(&echoed, reply, sizeof(echoed));
        if (echoed == seq) {
          rtts.push_back(received - sent);
          break;
        }
      }
    }
    next += interval_ns;
    const int64_t wait = next - MonotonicNs();
    if (wait > 0) {
      timespec ts{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
      nanosleep(&ts, nullptr);
    }
  }
  std::sort(rtts.begin(), rtts.end());
  auto at = [&](double q) -> long long {
    if (rtts.empty()) return 0;
    size_t rank = static_cast<size_t>(q * static_cast<double>(rtts.size()) + 0.999999);
    return static_cast<long long>(rtts[std::clamp<size_t>(rank, 1, rtts.size()) - 1]);
  };
  std::printf("count=%zu lost=%d min_ns=%lld p50_ns=%lld p99_ns=%lld max_ns=%lld\n", rtts.size(), lost,
              rtts.empty() ? 0LL : static_cast<long long>(rtts.front()), at(0.5), at(0.99),
              rtts.empty() ? 0LL : static_cast<long long>(rtts.back()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: rp_udp_echo serve --port P | probe --to IP:PORT [--count N] [--interval D]\n");
    return 2;
  }
  const std::string mode = argv[1];
  uint16_t port = 0;
  std::string to;
  int count = 1000;
  int64_t interval_ns = 10'000'000, timeout_ns = 1'000'000'000;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--port") {
      port = static_cast<uint16_t>(std::atoi(value));
    } else if (flag == "--to") {
      to = value;
    } else if (flag == "--count") {
      count = std::atoi(value);
    } else if (flag == "--interval" && ParseDurationNs(value, &interval_ns)) {
    } else if (flag == "--timeout" && ParseDurationNs(value, &timeout_ns)) {
    } else {
      std::fprintf(stderr, "rp_udp_echo: bad flag %s %s\n", flag.c_str(), value);
      return 2;
    }
  }
  if (mode == "serve") return Serve(port);
  if (mode == "probe") return Probe(to, count, interval_ns, timeout_ns);
  std::fprintf(stderr, "rp_udp_echo: unknown mode %s\n", mode.c_str());
  return 2;
}
