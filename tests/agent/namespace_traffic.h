// Helpers for the datapath integration tests: STAMP-shaped probes sent and echoed by sockets
// living in given network namespaces, TCP transfers, UDP checksum error counts, and the list of
// BPF objects this process still holds (to prove detaching left nothing behind).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/poll_until.h"
#include "tests/support/test_network.h"

namespace regionpulse::test {

// A socket address for "10.1.0.2" or "fd00:1::2".
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;
};
inline SockAddr MakeAddr(const std::string& ip, uint16_t port) {
  SockAddr a;
  if (ip.find(':') != std::string::npos) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    inet_pton(AF_INET6, ip.c_str(), &in6->sin6_addr);
    a.length = sizeof(sockaddr_in6);
    a.family = AF_INET6;
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&a.storage);
    in4->sin_family = AF_INET;
    in4->sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &in4->sin_addr);
    a.length = sizeof(sockaddr_in);
  }
  return a;
}

// A socket created inside a network namespace (sockets keep the namespace they were made in).
inline int SocketIn(const std::string& netns, int family, int type) {
  ScopedNetnsEntry inside(netns);
  const int fd = socket(family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket in " + netns + ": " + strerror(errno));
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  return fd;
}

constexpr size_t kBaseUnauth = 44;
constexpr size_t kTlvLen = 44;

// STAMP-shaped unauthenticated test packet: 44-byte base (a pattern standing in for the
// sender's fields), then the kernel-stamp TLV with t1..t4 zero.
inline std::vector<uint8_t> ProbePayload(uint32_t sequence) {
  std::vector<uint8_t> p(kBaseUnauth + kTlvLen, 0);
  p[0] = static_cast<uint8_t>(sequence >> 24);
  p[1] = static_cast<uint8_t>(sequence >> 16);
  p[2] = static_cast<uint8_t>(sequence >> 8);
  p[3] = static_cast<uint8_t>(sequence);
  for (size_t i = 4; i < kBaseUnauth; ++i) p[i] = static_cast<uint8_t>(i);
  p[kBaseUnauth + 1] = 250;
  p[kBaseUnauth + 3] = 40;
  const uint32_t magic = htonl(0x52504b31);
  std::memcpy(&p[kBaseUnauth + 4], &magic, 4);
  return p;
}

inline std::array<uint64_t, 4> StampsOf(const std::vector<uint8_t>& payload) {
  std::array<uint64_t, 4> t{};
  for (size_t slot = 0; slot < 4; ++slot) {
    for (size_t k = 0; k < 8; ++k) t[slot] = (t[slot] << 8) | payload[kBaseUnauth + 12 + 8 * slot + k];
  }
  return t;
}

// Sends `count` probes from `sender_netns` to reflector_ip:probe_port, where a socket in
// `reflector_netns` echoes each one back unchanged (TLV included, as an RFC 8972 reflector
// copies it). Returns the stamps of every reply that came back.
inline std::vector<std::array<uint64_t, 4>> ExchangeProbes(const std::string& sender_netns,
                                                           const std::string& reflector_netns,
                                                           const std::string& reflector_ip,
                                                           uint16_t probe_port, int count) {
  const SockAddr reflector_addr = MakeAddr(reflector_ip, probe_port);
  const int reflector = SocketIn(reflector_netns, reflector_addr.family, SOCK_DGRAM);
  if (bind(reflector, reinterpret_cast<const sockaddr*>(&reflector_addr.storage), reflector_addr.length) !=
      0) {
    close(reflector);
    throw std::runtime_error("bind reflector " + reflector_ip + ": " + strerror(errno));
  }
  const int sender = SocketIn(sender_netns, reflector_addr.family, SOCK_DGRAM);
  std::vector<std::array<uint64_t, 4>> replies;
  for (int i = 0; i < count; ++i) {
    const auto probe = ProbePayload(static_cast<uint32_t>(i));
    if (sendto(sender, probe.data(), probe.size(), 0,
               reinterpret_cast<const sockaddr*>(&reflector_addr.storage), reflector_addr.length) < 0) {
      continue;
    }
    std::vector<uint8_t> buffer(2048);
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    const ssize_t n =
        recvfrom(reflector, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n <= 0) continue;
    sendto(reflector, buffer.data(), static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), from_len);
    const ssize_t m = recv(sender, buffer.data(), buffer.size(), 0);
    if (m != static_cast<ssize_t>(probe.size())) continue;
    buffer.resize(static_cast<size_t>(m));
    replies.push_back(StampsOf(buffer));
  }
  close(sender);
  close(reflector);
  return replies;
}

// IDs of the BPF programs ("prog_id") or links ("link_id") this process holds file
// descriptors for, read from /proc/self/fdinfo (Debian's bpftool cannot show owning pids).
inline std::vector<uint32_t> BpfIdsHeldByThisProcess(const std::string& id_field) {
  const std::string inode = id_field == "prog_id" ? "anon_inode:bpf-prog" : "anon_inode:bpf_link";
  std::vector<uint32_t> ids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(entry.path(), ec);
    if (ec || target.string() != inode) continue;
    std::ifstream info("/proc/self/fdinfo/" + entry.path().filename().string());
    std::string line;
    while (std::getline(info, line)) {
      if (line.rfind(id_field + ":", 0) == 0)
        ids.push_back(static_cast<uint32_t>(std::stoul(line.substr(id_field.size() + 1))));
    }
  }
  return ids;
}

// Whether bpftool still lists a program or link with this id anywhere on the host.
inline bool BpftoolShows(const std::string& kind /* "prog" or "link" */, uint32_t id) {
  return RunStatus("bpftool " + kind + " show id " + std::to_string(id)) == 0;
}

// Sends `bytes` over TCP from a socket in `client_netns` to server_ip:port, where a socket in
// `server_netns` reads everything; closes cleanly. Returns the bytes the server received.
inline size_t TcpTransfer(const std::string& client_netns, const std::string& server_netns,
                          const std::string& server_ip, uint16_t port, size_t bytes) {
  const SockAddr addr = MakeAddr(server_ip, port);
  const int listener = SocketIn(server_netns, addr.family, SOCK_STREAM);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(listener, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) != 0 ||
      listen(listener, 1) != 0) {
    close(listener);
    throw std::runtime_error("listen on " + server_ip + ":" + std::to_string(port) + ": " + strerror(errno));
  }
  size_t received = 0;
  std::thread server([&] {
    const int conn = accept(listener, nullptr, nullptr);
    if (conn < 0) return;
    std::vector<char> buffer(65536);
    ssize_t n;
    while ((n = read(conn, buffer.data(), buffer.size())) > 0) received += static_cast<size_t>(n);
    close(conn);
  });
  const int client = SocketIn(client_netns, addr.family, SOCK_STREAM);
  if (connect(client, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) == 0) {
    std::vector<char> data(bytes, 'r');
    size_t sent = 0;
    while (sent < bytes) {
      const ssize_t n = write(client, data.data() + sent, bytes - sent);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    shutdown(client, SHUT_WR);
    char byte;
    (void)!read(client, &byte, 1);  // the server's FIN: everything was acknowledged
  } else {
    shutdown(listener, SHUT_RDWR);  // wakes the server thread's accept
  }
  close(client);
  server.join();
  close(listener);
  return received;
}

// Udp InCsumErrors from /proc/net/snmp of a namespace: packets the stack dropped for a bad
// UDP checksum.
inline uint64_t UdpChecksumErrors(const std::string& netns) {
  const std::string out = RunOrThrow("ip netns exec " + netns +
                                     " awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "
                                     "\"InCsumErrors\") c = i; h = 1 } else print $c }' /proc/net/snmp");
  return std::stoull(out);
}

}  // namespace regionpulse::test
