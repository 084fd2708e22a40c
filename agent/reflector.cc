// STAMP Session-Reflector on Boost.Asio: readiness from Asio, datagrams through recvmsg so
// the kernel receive time (SO_TIMESTAMPNS) and the IP TTL / hop limit come with each packet.
#include "agent/reflector.h"

#include "common/component_logger.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace regionpulse {

namespace asio = boost::asio;
using asio::ip::udp;

namespace {
std::shared_ptr<spdlog::logger> ReflectorLogger() {
  return ComponentLogger("reflector");
}
}  // namespace

ReflectorPacket ReflectorSessions::Reflect(const std::string& sender, const SenderPacket& request,
                                           MonoTime now, WallTime received_wall, WallTime transmit_wall,
                                           uint8_t ttl) {
  const auto key = std::make_pair(sender, request.ssid);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) {
    if (sessions_.size() >= max_sessions_ && !sessions_.empty()) {
      // Forget the least recently seen session; a flood of new senders cannot grow memory.
      auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
        return a.second.last_seen < b.second.last_seen;
      });
      sessions_.erase(oldest);
    }
    it = sessions_.emplace(key, Session{}).first;
  }
  Session& session = it->second;
  session.last_seen = now;

  ReflectorPacket reply;
  reply.sequence = session.next_sequence++;
  reply.error_estimate = ErrorEstimate{};  // PTPv2 timestamps, no claim of external sync
  reply.timestamp = EncodeTimestamp(transmit_wall, reply.error_estimate.ptp);
  reply.receive_timestamp = EncodeTimestamp(received_wall, reply.error_estimate.ptp);
  reply.ssid = request.ssid;
  reply.sender_sequence = request.sequence;
  reply.sender_timestamp = request.timestamp;
  reply.sender_error_estimate = request.error_estimate;
  reply.sender_ttl = ttl;
  // The kernel TLV goes back as received: t1 from the sender's egress, t2 from our ingress;
  // our egress adds t3 on the way out.
  reply.kernel = request.kernel;
  for (const auto& tlv : request.tlvs) {
    StampTlv copy = tlv;
    // RFC 8972 4: TLVs the reflector does not know are returned with the U flag set.
    if (tlv.type != kTlvTypeExtraPadding) copy.flags |= kTlvFlagUnrecognized;
    reply.tlvs.push_back(std::move(copy));
  }
  return reply;
}

size_t ReflectorSessions::Expire(MonoTime now) {
  return std::erase_if(sessions_, [&](const auto& entry) { return now - entry.second.last_seen > idle_; });
}

struct Reflector::Impl : std::enable_shared_from_this<Reflector::Impl> {
  Impl(asio::io_context& io, ReflectorConfig c)
      : socket(io),
        expiry(io),
        config(std::move(c)),
        sessions(config.session_idle, config.max_sessions),
        log(ReflectorLogger()) {}

  udp::socket socket;
  asio::steady_timer expiry;
  ReflectorConfig config;
  ReflectorSessions sessions;
  std::shared_ptr<spdlog::logger> log;
  bool v6 = false;
  std::atomic<bool> stopped{false};
  struct {
    std::atomic<uint64_t> received{0}, replied{0}, bad_mac{0}, unauthenticated_refused{0}, malformed{0},
        send_errors{0}, sessions{0};
  } counters;
  std::vector<uint8_t> buffer = std::vector<uint8_t>(65536);

  Status Open() {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(config.listen_address, ec);
    if (ec) return Error{"reflector listen address " + config.listen_address + ": " + ec.message()};
    udp::endpoint endpoint(address, config.port);
    socket.open(endpoint.protocol(), ec);
    if (ec && address.is_v6() && address.to_v6().is_unspecified()) {
      // No IPv6 in this network namespace: serve IPv4 only.
      endpoint = udp::endpoint(asio::ip::address_v4::any(), config.port);
      socket.open(endpoint.protocol(), ec);
    }
    if (ec) return Error{"reflector socket for " + config.listen_address + ": " + ec.message(), ec.value()};
    v6 = endpoint.protocol() == udp::v6();
    if (v6) socket.set_option(asio::ip::v6_only(false), ec);
    // No SO_REUSEADDR: a second agent on the same port must fail loudly, not share it.
    socket.bind(endpoint, ec);
    if (ec) {
      // The IANA STAMP port (862) is privileged: a container that dropped every capability
      // gets EACCES, and the operator should read which capability is missing.
      const bool privileged_port = config.port != 0 && config.port < 1024;
      return Error{
          "reflector bind " + endpoint.address().to_string() + " port " + std::to_string(config.port) +
              (ec.value() == EACCES && privileged_port
                   ? " (ports below 1024 need CAP_NET_BIND_SERVICE, or set probe.port to 1024 or above)"
                   : ""),
          ec.value()};
    }
    const int fd = socket.native_handle();
    const int on = 1;
    // Kernel receive time for the Receive Timestamp, TTL / hop limit for the Sender TTL field.
    ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
    ::setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &on, sizeof(on));
    if (v6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof(on));
    socket.non_blocking(true, ec);
    return OkStatus();
  }

  void WaitReadable() {
    socket.async_wait(udp::socket::wait_read,
                      [self = shared_from_this()](const boost::system::error_code& ec) {
                        if (ec || self->stopped) return;
                        self->DrainSocket();
                        self->WaitReadable();
                      });
  }

  void ScheduleExpiry() {
    const auto period = std::max<std::chrono::nanoseconds>(config.session_idle / 2, std::chrono::seconds(1));
    expiry.expires_after(period);
    expiry.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped) return;
      self->sessions.Expire(std::chrono::steady_clock::now());
      self->counters.sessions = self->sessions.size();
      self->ScheduleExpiry();
    });
  }

  void DrainSocket() {
    // Bounded, so a flood on this socket cannot starve the prober sharing the io_context.
    for (int i = 0; i < 64; ++i) {
      sockaddr_storage from{};
      iovec iov{buffer.data(), buffer.size()};
      alignas(cmsghdr) char control[256];
      msghdr msg{};
      msg.msg_name = &from;
      msg.msg_namelen = sizeof(from);
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      const ssize_t n = ::recvmsg(socket.native_handle(), &msg, MSG_DONTWAIT);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          log->warn("recvmsg on port {}: {}", config.port, std::strerror(errno));
        }
        return;
      }
      const auto now = std::chrono::steady_clock::now();
      WallTime received_wall = std::chrono::system_clock::now();
      int ttl = 0;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
          timespec ts{};
          std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
          received_wall = WallTime(std::chrono::duration_cast<WallTime::duration>(
              std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
        } else if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
                   (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
          std::memcpy(&ttl, CMSG_DATA(c), sizeof(ttl));
        }
      }
      Handle(std::span<const uint8_t>(buffer.data(), static_cast<size_t>(n)), from, msg.msg_namelen, now,
             received_wall, static_cast<uint8_t>(std::clamp(ttl, 0, 255)));
    }
  }

  static std::string SenderKey(const sockaddr_storage& from) {
    char text[INET6_ADDRSTRLEN] = {};
    uint16_t port = 0;
    if (from.ss_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&from);
      inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
      port = ntohs(sin->sin_port);
    } else {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&from);
      inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
      port = ntohs(sin6->sin6_port);
    }
    return std::string(text) + "|" + std::to_string(port);
  }

  void Handle(std::span<const uint8_t> bytes, const sockaddr_storage& from, socklen_t from_length,
              MonoTime now, WallTime received_wall, uint8_t ttl) {
    ++counters.received;
    StampMode mode = StampMode::kUnauthenticated;
    if (LooksAuthenticated(bytes)) {
      mode = StampMode::kAuthenticated;
    } else if (!config.accept_unauthenticated) {
      ++counters.unauthenticated_refused;
      return;
    }
    const auto decoded = DecodeSender(bytes, mode, config.key);
    if (!decoded.ok()) {
      if (decoded.failure.problem == DecodeProblem::kBadMac) {
        ++counters.bad_mac;
      } else {
        ++counters.malformed;
      }
      log->debug("dropped probe from {}: {} ({})", SenderKey(from),
                 DecodeProblemName(decoded.failure.problem), decoded.failure.detail);
      return;
    }
    const auto reply = sessions.Reflect(SenderKey(from), *decoded.packet, now, received_wall,
                                        std::chrono::system_clock::now(), ttl);
    counters.sessions = sessions.size();
    const auto out = EncodeReflector(reply, mode, config.key, bytes.size());
    const ssize_t sent = ::sendto(socket.native_handle(), out.data(), out.size(), MSG_DONTWAIT,
                                  reinterpret_cast<const sockaddr*>(&from), from_length);
    if (sent < 0) {
      ++counters.send_errors;
    } else {
      ++counters.replied;
    }
  }

  void Close() {
    stopped = true;
    boost::system::error_code ec;
    expiry.cancel();
    socket.close(ec);
  }
};

Result<std::unique_ptr<Reflector>> Reflector::Start(asio::io_context& io, ReflectorConfig config) {
  if (!config.accept_authenticated && !config.accept_unauthenticated) {
    return Error{"reflector: neither authenticated nor unauthenticated senders are accepted"};
  }
  if (!config.accept_authenticated) config.key.clear();
  auto impl = std::make_shared<Impl>(io, std::move(config));
  if (auto status = impl->Open(); !status.ok()) return status.error();
  impl->WaitReadable();
  impl->ScheduleExpiry();
  return std::unique_ptr<Reflector>(new Reflector(std::move(impl)));
}

Reflector::Reflector(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Reflector::~Reflector() {
  Stop();
}

uint16_t Reflector::port() const {
  boost::system::error_code ec;
  const auto endpoint = impl_->socket.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

ReflectorCounters Reflector::counters() const {
  const auto& c = impl_->counters;
  return ReflectorCounters{c.received,  c.replied,     c.bad_mac, c.unauthenticated_refused,
                           c.malformed, c.send_errors, c.sessions};
}

void Reflector::Stop() {
  if (impl_->stopped.exchange(true)) return;
  // Closing from another thread races the handlers; hand it to the io_context. When the
  // io_context is not running any more the socket closes with the Impl.
  asio::post(impl_->socket.get_executor(), [impl = impl_]() { impl->Close(); });
}

}  // namespace regionpulse
