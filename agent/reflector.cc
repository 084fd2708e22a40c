// STAMP Session-Reflector on Boost.Asio: readiness from Asio, datagrams through recvmsg so
// the kernel receive time (SO_TIMESTAMPNS), the IP TTL / hop limit and the address the probe
// was sent to (IP_PKTINFO, IPV6_PKTINFO) come with each packet; replies through sendmsg with
// that address as their source.
#include "agent/reflector.h"

#include "agent/probe_socket_options.h"
#include "agent/send_all.h"
#include "agent/socket_drain.h"

#include "common/component_logger.h"

#include <arpa/inet.h>
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

// Where a probe arrived: the destination address of its IP header and the interface, from the
// receive control messages. Replies are sent from that address.
struct ProbedAddress {
  enum class Family { kNone, kV4, kV6 } family = Family::kNone;
  in_addr v4{};
  in6_addr v6{};
  int ifindex = 0;
};

// Datagrams per recvmmsg / sendmmsg call, and receive calls per turn: bounded, so a flood on
// this socket cannot starve the prober sharing the io_context.
constexpr size_t kReflectBatch = 32;
constexpr int kReflectBatchesPerTurn = 2;
constexpr size_t kReflectBufferSize = 65536;
// Receive control messages: timestamp, TTL or hop limit, and both packet-info kinds.
constexpr size_t kReceiveControlSize = 256;

uint16_t PortOf(const sockaddr_storage& from) {
  if (from.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&from)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&from)->sin6_port);
}

bool IsV4Mapped(const sockaddr_storage& from) {
  return from.ss_family == AF_INET6 &&
         IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<const sockaddr_in6*>(&from)->sin6_addr);
}
}  // namespace

ReflectorPacket ReflectorSessions::Reflect(const SenderKey& session_key, SenderPacket request, MonoTime now,
                                           WallTime received_wall, WallTime transmit_wall, uint8_t ttl) {
  SenderKey key = session_key;
  key.ssid = request.ssid;
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
  // Moved, not copied: a reflected probe's TLVs were two allocations per TLV and the vector.
  reply.tlvs = std::move(request.tlvs);
  for (auto& tlv : reply.tlvs) {
    // RFC 8972 4: TLVs the reflector does not know are returned with the U flag set.
    if (tlv.type != kTlvTypeExtraPadding && tlv.type != kTlvTypeKeyId) tlv.flags |= kTlvFlagUnrecognized;
  }
  // RFC 8972 4.8: a malformed TLV is flagged M and it and the rest go back unprocessed.
  reply.malformed_tail = std::move(request.malformed_tail);
  if (!reply.malformed_tail.empty()) reply.malformed_tail[0] |= kTlvFlagMalformed;
  return reply;
}

bool SourceRateLimiter::Allow(const SenderAddress& source, MonoTime now) {
  return buckets_.Touch(source, TokenBucket<MonoTime>(rate_, burst_, now)).Take(now);
}

bool ReplayGuard::Admit(const SenderKey& session, uint32_t sequence, WallTime timestamp) {
  Window& w = windows_.Touch(session, Window{});
  if (!w.any || sequence > w.highest) {
    const uint64_t shift = w.any ? uint64_t{sequence} - w.highest : 64;
    w.seen = shift >= 64 ? 0 : w.seen << shift;
    w.seen |= 1;
    w.highest = sequence;
    w.any = true;
    w.newest = std::max(w.newest, timestamp);
    return true;
  }
  const uint64_t behind = uint64_t{w.highest} - sequence;
  if (behind < 64) {
    const uint64_t bit = uint64_t{1} << behind;
    if (w.seen & bit) return false;
    w.seen |= bit;
    w.newest = std::max(w.newest, timestamp);
    return true;
  }
  // Below the window: a replay, unless it is newer than everything seen (a sender restarted
  // with the same SSID, numbering from 0 again), which starts the window over.
  if (timestamp <= w.newest) return false;
  w = Window{true, sequence, 1, timestamp};
  return true;
}

size_t ReflectorSessions::Expire(MonoTime now) {
  size_t expired = 0;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now - it->second.last_seen > idle_) {
      sessions_.erase(it++);  // absl's idiom: erase does not return the next iterator
      ++expired;
    } else {
      ++it;
    }
  }
  return expired;
}

struct Reflector::Impl : std::enable_shared_from_this<Reflector::Impl> {
  Impl(asio::io_context& io, ReflectorConfig c, ReflectionSink* s)
      : socket(io),
        expiry(io),
        config(std::move(c)),
        sessions(config.session_idle, config.max_sessions),
        rate_limiter(config.rate_per_source, config.burst_per_source, config.max_sources),
        replay_guard(config.max_sources),
        sink(s),
        log(ReflectorLogger()),
        drain(socket, log) {}

  // One received datagram's metadata, and the reply to it while the batch is being answered.
  struct Slot {
    sockaddr_storage from{};
    alignas(cmsghdr) char control[kReceiveControlSize];
    iovec iov{};
    std::vector<uint8_t> reply;  // capacity kept from batch to batch
    alignas(cmsghdr) char reply_control[CMSG_SPACE(sizeof(in6_pktinfo))];
    iovec reply_iov{};
  };
  // A reply waiting for the batch's sendmmsg: whom to tell of it.
  struct PendingReply {
    SenderKey sender;
  };

  udp::socket socket;
  asio::steady_timer expiry;
  ReflectorConfig config;
  ReflectorSessions sessions;
  SourceRateLimiter rate_limiter;
  ReplayGuard replay_guard;
  ReflectionSink* sink;
  std::shared_ptr<spdlog::logger> log;
  SocketDrain<udp::socket> drain;
  bool v6 = false;
  std::atomic<bool> stopped{false};
  struct {
    std::atomic<uint64_t> received{0}, replied{0}, bad_mac{0}, unauthenticated_refused{0}, malformed{0},
        send_errors{0}, sessions{0}, rate_limited{0}, replayed{0}, stale_timestamp{0}, wrong_key{0},
        malformed_tlv{0};
  } counters;
  // Not zeroed: 2 MiB of which a probe touches its first page, so the rest never counts in RSS.
  std::unique_ptr<uint8_t[]> buffers{new uint8_t[kReflectBatch * kReflectBufferSize]};
  std::array<Slot, kReflectBatch> slots;
  std::array<mmsghdr, kReflectBatch> receive_headers{};
  std::array<mmsghdr, kReflectBatch> send_headers{};
  std::vector<PendingReply> pending;
  // The keys' ids (a SHA-256 each), computed once: KeyFor compares them for every probe.
  uint32_t key_id = KeyIdOf(config.key);
  std::vector<uint32_t> accepted_key_ids = [this] {
    std::vector<uint32_t> ids;
    for (const auto& key : config.accepted_keys) ids.push_back(KeyIdOf(key));
    return ids;
  }();

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
    // The address each probe was sent to, to answer from it. On the dual-stack socket IPv4
    // probes come with IP_PKTINFO (the IPv4 options apply to its IPv4 traffic), IPv6 ones
    // with IPV6_PKTINFO. Without them every reply would leave from the kernel's choice of
    // source, so failing to ask is fatal.
    if (::setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on)) != 0) {
      return Error{"reflector IP_PKTINFO on port " + std::to_string(config.port), errno};
    }
    if (v6 && ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on)) != 0) {
      return Error{"reflector IPV6_RECVPKTINFO on port " + std::to_string(config.port), errno};
    }
    RaiseReceiveBuffer(fd);
    if (int error = SetProbeDontFragment(fd, v6); error != 0) {
      log->warn("reflector port {}: replies leave without Don't Fragment: {}", config.port,
                std::strerror(error));
    }
    socket.non_blocking(true, ec);
    return OkStatus();
  }

  void StartReceiving() {
    pending.reserve(kReflectBatch);
    boost::system::error_code ec;
    drain.Start(
        "reflector port " + std::to_string(socket.local_endpoint(ec).port()), shared_from_this(),
        [this] { return DrainSocket(); }, [this] { return stopped.load(); });
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

  // Up to kReflectBatchesPerTurn recvmmsg calls; each batch is answered in one sendmmsg.
  DrainResult DrainSocket() {
    for (int round = 0; round < kReflectBatchesPerTurn; ++round) {
      for (size_t i = 0; i < kReflectBatch; ++i) {
        Slot& slot = slots[i];
        slot.iov = iovec{buffers.get() + i * kReflectBufferSize, kReflectBufferSize};
        msghdr& msg = receive_headers[i].msg_hdr;
        msg = msghdr{};
        msg.msg_name = &slot.from;
        msg.msg_namelen = sizeof(slot.from);
        msg.msg_iov = &slot.iov;
        msg.msg_iovlen = 1;
        msg.msg_control = slot.control;
        msg.msg_controllen = sizeof(slot.control);
      }
      const int n =
          ::recvmmsg(socket.native_handle(), receive_headers.data(), kReflectBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) {
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          log->warn("reflector port {}: receiving probes: {}", config.port, std::strerror(errno));
        }
        return DrainResult::kEmpty;
      }
      const auto now = std::chrono::steady_clock::now();
      const WallTime batch_wall = std::chrono::system_clock::now();
      pending.clear();
      for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
        if (stopped) return DrainResult::kEmpty;
        msghdr& msg = receive_headers[i].msg_hdr;
        WallTime received_wall = batch_wall;
        int ttl = 0;
        ProbedAddress probed;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            timespec ts{};
            std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
            received_wall = WallTime(std::chrono::duration_cast<WallTime::duration>(
                std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
          } else if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
                     (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
            std::memcpy(&ttl, CMSG_DATA(c), sizeof(ttl));
          } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            in_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(c), sizeof(info));
            probed.family = ProbedAddress::Family::kV4;
            // ipi_addr is the header's destination: the address the sender probed. For a
            // multicast or broadcast destination, which cannot be a source, the kernel's local
            // address for it (ipi_spec_dst) answers instead.
            const uint32_t destination = ntohl(info.ipi_addr.s_addr);
            probed.v4 = (IN_MULTICAST(destination) || destination == INADDR_BROADCAST) ? info.ipi_spec_dst
                                                                                       : info.ipi_addr;
            probed.ifindex = info.ipi_ifindex;
          } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            in6_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(c), sizeof(info));
            // An IPv4 probe on the dual-stack socket brings this too, v4-mapped; its IP_PKTINFO
            // says the same and is the one its reply uses.
            if (!IN6_IS_ADDR_V4MAPPED(&info.ipi6_addr)) {
              probed.family = ProbedAddress::Family::kV6;
              probed.v6 = info.ipi6_addr;
              probed.ifindex = static_cast<int>(info.ipi6_ifindex);
            }
          }
        }
        Handle(i,
               std::span<const uint8_t>(buffers.get() + i * kReflectBufferSize, receive_headers[i].msg_len),
               msg.msg_namelen, probed, now, received_wall, static_cast<uint8_t>(std::clamp(ttl, 0, 255)));
      }
      SendReplies();
      if (static_cast<size_t>(n) < kReflectBatch) return DrainResult::kEmpty;
    }
    return DrainResult::kMore;
  }

  // Fills the send header of `slot`'s reply: to the sender, from `probed` when the probe's
  // destination is known.
  void PrepareReply(Slot& slot, socklen_t to_length, const ProbedAddress& probed, mmsghdr& header) {
    slot.reply_iov = iovec{slot.reply.data(), slot.reply.size()};
    header = mmsghdr{};
    msghdr& msg = header.msg_hdr;
    msg.msg_name = &slot.from;
    msg.msg_namelen = to_length;
    msg.msg_iov = &slot.reply_iov;
    msg.msg_iovlen = 1;
    // IPv4 senders (also v4-mapped ones on the dual-stack socket: the kernel sends those
    // through its IPv4 path, which reads IP_PKTINFO) get ipi_spec_dst as the source; IPv6
    // senders get ipi6_addr. The interface is left to routing (ifindex 0) except for a
    // link-local address, which only means something on the interface it came in on.
    const sockaddr_storage& to = slot.from;
    const bool to_v4 = to.ss_family == AF_INET || IsV4Mapped(to);
    std::memset(slot.reply_control, 0, sizeof(slot.reply_control));
    if (to_v4 && probed.family == ProbedAddress::Family::kV4) {
      msg.msg_control = slot.reply_control;
      msg.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
      in_pktinfo info{};
      info.ipi_spec_dst = probed.v4;
      std::memcpy(CMSG_DATA(c), &info, sizeof(info));
    } else if (!to_v4 && probed.family == ProbedAddress::Family::kV6) {
      msg.msg_control = slot.reply_control;
      msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
      in6_pktinfo info{};
      info.ipi6_addr = probed.v6;
      if (IN6_IS_ADDR_LINKLOCAL(&probed.v6)) info.ipi6_ifindex = static_cast<unsigned>(probed.ifindex);
      std::memcpy(CMSG_DATA(c), &info, sizeof(info));
    }
  }

  // The batch's replies in sendmmsg calls (it stops at the first message that fails: that one
  // is counted as a send error and the rest go on), then one sink event each.
  void SendReplies() {
    if (pending.empty()) return;
    std::array<int, kReflectBatch> errors{};
    SendAll(socket.native_handle(), send_headers.data(), pending.size(), kReflectBatch,
            [&](size_t index, int error) { errors[index] = error; });
    for (size_t i = 0; i < pending.size(); ++i) {
      const PendingReply& reply = pending[i];
      if (errors[i] != 0) {
        ++counters.send_errors;
        log->debug("reply to {} port {}: {}", reply.sender.address.ToText(), reply.sender.port,
                   std::strerror(errors[i]));
      } else {
        ++counters.replied;
      }
      if (sink) {
        sink->OnProbeReflected(
            ProbeReflected{reply.sender.address, reply.sender.port, reply.sender.ssid, errors[i] == 0});
      }
    }
    pending.clear();
  }

  // The key an authenticated probe names by its key-id TLV; without one (a foreign sender)
  // the first key that verifies it. nullptr: it names a key we do not hold.
  const MacKey* KeyFor(std::span<const uint8_t> bytes) const {
    const auto id = FindKeyId(bytes, StampMode::kAuthenticated);
    if (!id) {
      for (const auto& key : config.accepted_keys) {
        if (DecodeSender(bytes.first(std::min(bytes.size(), kStampBaseAuthenticated)),
                         StampMode::kAuthenticated, key)
                .ok()) {
          return &key;
        }
      }
      return &config.key;
    }
    if (!config.key.empty() && key_id == *id) return &config.key;
    for (size_t i = 0; i < config.accepted_keys.size(); ++i) {
      if (accepted_key_ids[i] == *id) return &config.accepted_keys[i];
    }
    return nullptr;
  }

  // Tells the sink of a refusal whose session is known (a packet too short to name one is
  // only counted).
  void ReportRefused(const SenderKey& sender, std::optional<uint16_t> ssid, ProbeRefusal reason) {
    if (sink && ssid) sink->OnProbeRefused(ProbeRefused{sender.address, sender.port, *ssid, reason});
  }

  // One received probe, in slot `index` of the batch: refused (counted, the sink told) or its
  // reply encoded into the slot and queued for the batch's sendmmsg.
  void Handle(size_t index, std::span<const uint8_t> bytes, socklen_t from_length,
              const ProbedAddress& probed, MonoTime now, WallTime received_wall, uint8_t ttl) {
    ++counters.received;
    Slot& slot = slots[index];
    const sockaddr_storage& from = slot.from;
    // The sender as bytes: formatted as text only for a log line or the sink.
    SenderKey sender{SenderAddress::Of(from), PortOf(from), 0};
    const bool authenticated = LooksAuthenticated(bytes);
    // First, before any HMAC: a flood from one address costs a map lookup per packet.
    if (!rate_limiter.Allow(sender.address, now)) {
      ++counters.rate_limited;
      ReportRefused(sender,
                    PeekSsid(bytes, authenticated ? StampMode::kAuthenticated : StampMode::kUnauthenticated),
                    ProbeRefusal::kRateLimited);
      return;
    }
    StampMode mode = StampMode::kUnauthenticated;
    const MacKey* key = &config.key;
    if (authenticated) {
      mode = StampMode::kAuthenticated;
      key = KeyFor(bytes);
      if (key == nullptr) {
        ++counters.wrong_key;
        log->debug("refused probe from {} port {}: signed with a key this reflector does not hold",
                   sender.address.ToText(), sender.port);
        ReportRefused(sender, PeekSsid(bytes, mode), ProbeRefusal::kWrongKey);
        return;
      }
    } else if (!config.accept_unauthenticated) {
      ++counters.unauthenticated_refused;
      return;
    }
    auto decoded = DecodeSenderToReflect(bytes, mode, *key);
    if (!decoded.ok()) {
      if (decoded.failure.problem == DecodeProblem::kBadMac) {
        ++counters.bad_mac;
      } else {
        ++counters.malformed;
      }
      log->debug("dropped probe from {} port {}: {} ({})", sender.address.ToText(), sender.port,
                 DecodeProblemName(decoded.failure.problem), decoded.failure.detail);
      return;
    }
    SenderPacket& request = *decoded.packet;
    sender.ssid = request.ssid;
    if (mode == StampMode::kAuthenticated) {
      // The timestamp is covered by the HMAC: a replay cannot freshen it.
      const WallTime sent_wall = DecodeTimestamp(request.timestamp, request.error_estimate.ptp);
      const auto offset = sent_wall > received_wall ? sent_wall - received_wall : received_wall - sent_wall;
      if (offset > config.max_clock_offset) {
        ++counters.stale_timestamp;
        log->debug("refused probe from {} port {}: its timestamp is {} ms from our clock",
                   sender.address.ToText(), sender.port,
                   std::chrono::duration_cast<std::chrono::milliseconds>(offset).count());
        ReportRefused(sender, request.ssid, ProbeRefusal::kStaleTimestamp);
        return;
      }
      if (!replay_guard.Admit(sender, request.sequence, sent_wall)) {
        ++counters.replayed;
        ReportRefused(sender, request.ssid, ProbeRefusal::kReplayed);
        return;
      }
    }
    if (!request.malformed_tail.empty()) ++counters.malformed_tlv;
    const auto reply = sessions.Reflect(sender, std::move(request), now, received_wall,
                                        std::chrono::system_clock::now(), ttl);
    counters.sessions = sessions.size();
    EncodeReflector(reply, mode, *key, bytes.size(), slot.reply);
    PrepareReply(slot, from_length, probed, send_headers[pending.size()]);
    pending.push_back(PendingReply{sender});
  }

  void Close() {
    stopped = true;
    boost::system::error_code ec;
    expiry.cancel();
    drain.Cancel();
    socket.close(ec);
  }
};

Result<std::unique_ptr<Reflector>> Reflector::Start(asio::io_context& io, ReflectorConfig config,
                                                    ReflectionSink* sink) {
  if (!config.accept_authenticated && !config.accept_unauthenticated) {
    return Error{"reflector: neither authenticated nor unauthenticated senders are accepted"};
  }
  if (!config.accept_authenticated) {
    config.key.clear();
    config.accepted_keys.clear();
  }
  auto impl = std::make_shared<Impl>(io, std::move(config), sink);
  if (auto status = impl->Open(); !status.ok()) return status.error();
  impl->StartReceiving();
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
  ReflectorCounters out;
  out.received = c.received;
  out.replied = c.replied;
  out.bad_mac = c.bad_mac;
  out.unauthenticated_refused = c.unauthenticated_refused;
  out.malformed = c.malformed;
  out.send_errors = c.send_errors;
  out.sessions = c.sessions;
  out.rate_limited = c.rate_limited;
  out.replayed = c.replayed;
  out.stale_timestamp = c.stale_timestamp;
  out.wrong_key = c.wrong_key;
  out.malformed_tlv = c.malformed_tlv;
  return out;
}

void Reflector::Stop() {
  if (impl_->stopped.exchange(true)) return;
  // Closing from another thread races the handlers; hand it to the io_context. When the
  // io_context is not running any more the socket closes with the Impl.
  asio::post(impl_->socket.get_executor(), [impl = impl_]() { impl->Close(); });
}

}  // namespace regionpulse
