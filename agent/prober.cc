// STAMP Session-Sender on Boost.Asio: jittered per-target timers, two shared sockets (IPv4,
// IPv6), replies matched by (peer address, port, SSID) and handed to the event sink.
//
// Each probe names the address it leaves from, so that this node's path and the peer
// reflector's count of what it received from this node can be joined. The shared sockets are
// bound to the wildcard address and the kernel picks the source per destination, so the
// prober asks the kernel the same question: a UDP socket connected to the target (a route
// lookup, nothing sent) and getsockname. Reading it from the replies' destination address
// instead would fail exactly when it matters most, when no reply comes back. The answer is
// refreshed every kSourceRefresh so a route change shows within seconds.
#include "agent/prober.h"

#include "common/component_logger.h"

#include <sys/socket.h>

#include <atomic>
#include <map>
#include <optional>
#include <random>
#include <set>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/proto_convert.h"

namespace regionpulse {

namespace asio = boost::asio;
using asio::ip::udp;
using std::chrono::nanoseconds;

std::vector<ProbeTarget> TargetsFromPlan(const v1::ProbePlan& plan) {
  std::vector<ProbeTarget> targets;
  for (const auto& t : plan.targets()) {
    targets.push_back(ProbeTarget{t.node(), t.region(), t.zone(), t.endpoint().address(),
                                  static_cast<uint16_t>(t.endpoint().port() ? t.endpoint().port() : 862)});
  }
  return targets;
}

namespace {

std::shared_ptr<spdlog::logger> ProberLogger() {
  return ComponentLogger("prober");
}

std::string TargetKey(const ProbeTarget& t) {
  return t.node + "|" + t.address + "|" + std::to_string(t.port);
}

// How often a target's source address is looked up again; every second for a target with no
// route, so it is named soon after a route appears.
constexpr nanoseconds kSourceRefresh = std::chrono::seconds(5);
constexpr nanoseconds kSourceRetry = std::chrono::seconds(1);

std::string ReplyKey(const udp::endpoint& from, uint16_t ssid) {
  auto address = from.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return address.to_string() + "|" + std::to_string(from.port()) + "|" + std::to_string(ssid);
}

}  // namespace

struct Prober::Impl : std::enable_shared_from_this<Prober::Impl> {
  struct Session {
    ProbeTarget target;
    udp::endpoint endpoint;
    uint16_t ssid = 0;
    uint32_t next_sequence = 0;
    asio::steady_timer timer;
    bool active = true;
    // The address this target's probes leave from (empty: no route), and when it was read.
    std::string source_address;
    std::optional<std::chrono::steady_clock::time_point> source_read_at;
    explicit Session(asio::io_context& io) : timer(io) {}
  };

  Impl(asio::io_context& io_context, ProberConfig c, ProbeEventSink& s)
      : io(io_context),
        v4(io_context),
        v6(io_context),
        route4(io_context),
        route6(io_context),
        config(std::move(c)),
        sink(s),
        log(ProberLogger()) {
    rng.seed(config.seed ? config.seed : std::random_device{}());
    // Sockets are opened here, in the network namespace of the constructing thread, not
    // lazily on whichever thread runs the io_context.
    boost::system::error_code ec;
    v4.open(udp::v4(), ec);
    if (!ec) v4.bind(udp::endpoint(asio::ip::address_v4::any(), 0), ec);
    if (ec) {
      log->warn("IPv4 probe socket: {}", ec.message());
      v4.close(ec);
    }
    v6.open(udp::v6(), ec);
    if (!ec) v6.set_option(asio::ip::v6_only(true), ec);
    if (!ec) v6.bind(udp::endpoint(asio::ip::address_v6::any(), 0), ec);
    if (ec) {
      log->info("no IPv6 probe socket (IPv6 peers unreachable): {}", ec.message());
      v6.close(ec);
    }
    if (v4.is_open()) v4.non_blocking(true, ec);
    if (v6.is_open()) v6.non_blocking(true, ec);
    if (v4.is_open()) port4 = v4.local_endpoint(ec).port();
    if (v6.is_open()) port6 = v6.local_endpoint(ec).port();
    // Route lookups only: connected to a target, never sent on.
    if (v4.is_open()) route4.open(udp::v4(), ec);
    if (v6.is_open()) {
      route6.open(udp::v6(), ec);
      if (!ec) route6.set_option(asio::ip::v6_only(true), ec);
    }
  }

  asio::io_context& io;
  udp::socket v4;
  udp::socket v6;
  udp::socket route4;
  udp::socket route6;
  uint16_t port4 = 0;
  uint16_t port6 = 0;
  ProberConfig config;
  ProbeEventSink& sink;
  std::shared_ptr<spdlog::logger> log;
  std::mt19937_64 rng;
  std::atomic<bool> stopped{false};
  std::map<std::string, std::shared_ptr<Session>> sessions;           // by TargetKey
  std::map<std::string, std::shared_ptr<Session>> sessions_by_reply;  // by ReplyKey
  std::set<std::shared_ptr<Session>> retired;                         // removed, replies still matched
  std::atomic<size_t> target_count{0};
  struct {
    std::atomic<uint64_t> sent{0}, send_errors{0}, replies{0}, bad_mac{0}, malformed{0}, unmatched{0};
  } counters;
  std::vector<uint8_t> buffer4 = std::vector<uint8_t>(65536);
  std::vector<uint8_t> buffer6 = std::vector<uint8_t>(65536);
  udp::endpoint from4;
  udp::endpoint from6;
  bool receiving = false;

  void StartReceiving() {
    if (receiving) return;
    receiving = true;
    if (v4.is_open()) Receive(v4, buffer4, from4);
    if (v6.is_open()) Receive(v6, buffer6, from6);
  }

  void Receive(udp::socket& socket, std::vector<uint8_t>& buffer, udp::endpoint& from) {
    socket.async_receive_from(
        asio::buffer(buffer), from,
        [self = shared_from_this(), &socket, &buffer, &from](const boost::system::error_code& ec, size_t n) {
          if (self->stopped || ec == asio::error::operation_aborted) return;
          if (!ec)
            self->OnDatagram(std::span<const uint8_t>(buffer.data(), n), from,
                             std::chrono::steady_clock::now());
          self->Receive(socket, buffer, from);
        });
  }

  uint16_t NewSsid(const udp::endpoint& endpoint) {
    std::uniform_int_distribution<uint32_t> dist(1, 0xffff);
    while (true) {
      const auto ssid = static_cast<uint16_t>(dist(rng));
      if (!sessions_by_reply.count(ReplyKey(endpoint, ssid))) return ssid;
    }
  }

  nanoseconds NextDelay() {
    std::uniform_real_distribution<double> dist(-config.jitter, config.jitter);
    const double factor = 1.0 + dist(rng);
    return nanoseconds(static_cast<int64_t>(static_cast<double>(config.interval.count()) * factor));
  }

  void SetTargets(const std::vector<ProbeTarget>& targets) {
    if (stopped) return;
    std::set<std::string> wanted;
    for (const auto& target : targets) {
      const std::string key = TargetKey(target);
      wanted.insert(key);
      if (auto it = sessions.find(key); it != sessions.end()) {
        it->second->target = target;  // region or zone may have been corrected
        continue;
      }
      boost::system::error_code ec;
      const auto address = asio::ip::make_address(target.address, ec);
      if (ec) {
        log->warn("probe target {}: address {}: {}", target.node, target.address, ec.message());
        continue;
      }
      auto session = std::make_shared<Session>(io);
      session->target = target;
      session->endpoint = udp::endpoint(address, target.port);
      session->ssid = NewSsid(session->endpoint);
      sessions[key] = session;
      sessions_by_reply[ReplyKey(session->endpoint, session->ssid)] = session;
      // The first probe at a random point of one interval spreads many targets' sends.
      std::uniform_real_distribution<double> first(0.0, 1.0);
      Schedule(session,
               nanoseconds(static_cast<int64_t>(static_cast<double>(config.interval.count()) * first(rng))));
    }
    for (auto it = sessions.begin(); it != sessions.end();) {
      if (wanted.count(it->first)) {
        ++it;
        continue;
      }
      Retire(it->second);
      it = sessions.erase(it);
    }
    target_count = sessions.size();
    StartReceiving();
  }

  // Stops probing a session; its replies are matched for reply_grace longer.
  void Retire(const std::shared_ptr<Session>& session) {
    session->active = false;
    session->timer.cancel();
    session->timer.expires_after(config.reply_grace);
    retired.insert(session);
    session->timer.async_wait([self = shared_from_this(), session](const boost::system::error_code& ec) {
      self->retired.erase(session);
      if (ec) return;  // cancelled by Close, which forgets every session
      const auto key = ReplyKey(session->endpoint, session->ssid);
      if (auto it = self->sessions_by_reply.find(key);
          it != self->sessions_by_reply.end() && it->second == session) {
        self->sessions_by_reply.erase(it);
      }
    });
  }

  void Schedule(const std::shared_ptr<Session>& session, nanoseconds delay) {
    session->timer.expires_after(delay);
    session->timer.async_wait([self = shared_from_this(), session](const boost::system::error_code& ec) {
      if (ec || self->stopped || !session->active) return;
      self->Send(*session);
      self->Schedule(session, self->NextDelay());
    });
  }

  // The source address the kernel picks for the session's target now: connect() a UDP socket
  // to it (a route lookup) and read the address it was given. The socket is disconnected
  // first (AF_UNSPEC): a UDP socket keeps the source address of its first connect.
  void ReadSource(Session& session, std::chrono::steady_clock::time_point now) {
    session.source_read_at = now;
    udp::socket& route = session.endpoint.address().is_v4() ? route4 : route6;
    session.source_address.clear();
    if (!route.is_open()) return;
    sockaddr unspecified{};
    unspecified.sa_family = AF_UNSPEC;
    ::connect(route.native_handle(), &unspecified, sizeof(unspecified));
    boost::system::error_code ec;
    route.connect(session.endpoint, ec);
    if (!ec) {
      const auto local = route.local_endpoint(ec);
      if (!ec) session.source_address = local.address().to_string();
    }
    if (ec)
      log->debug("source address towards {} ({}): {}", session.target.node, session.target.address,
                 ec.message());
  }

  void Send(Session& session) {
    const bool is_v4 = session.endpoint.address().is_v4();
    udp::socket& socket = is_v4 ? v4 : v6;
    {
      const auto now = std::chrono::steady_clock::now();
      const auto refresh = session.source_address.empty() ? kSourceRetry : kSourceRefresh;
      if (!session.source_read_at || now - *session.source_read_at >= refresh) ReadSource(session, now);
    }
    SenderPacket packet;
    packet.sequence = session.next_sequence++;
    packet.ssid = session.ssid;
    packet.error_estimate = ErrorEstimate{};
    // An all-zero kernel TLV: the tc programs fill t1..t4 on the way.
    packet.kernel = KernelStamps{};
    packet.timestamp = EncodeTimestamp(std::chrono::system_clock::now(), packet.error_estimate.ptp);
    // Names the signing key, so a reflector holding several (a key rotation) verifies with the
    // right one and tells an unknown key from a forged packet.
    if (config.mode == StampMode::kAuthenticated) packet.tlvs.push_back(KeyIdTlv(config.key));
    const auto bytes = EncodeSender(packet, config.mode, config.key, config.payload_size);
    const auto sent_at = std::chrono::steady_clock::now();
    boost::system::error_code ec;
    if (!socket.is_open()) {
      ec = asio::error::address_family_not_supported;
    } else {
      socket.send_to(asio::buffer(bytes), session.endpoint, 0, ec);
    }
    if (ec == asio::error::would_block) {
      // Our own socket buffer is full: nothing left this host, which says nothing about the
      // path, so the probe is not reported as sent.
      ++counters.send_errors;
      return;
    }
    if (ec) {
      // Unreachable network, no route, interface down: the path is broken from here, so the
      // probe counts as sent (and lost).
      ++counters.send_errors;
      log->debug("probe to {} ({}): {}", session.target.node, session.target.address, ec.message());
    } else {
      ++counters.sent;
    }
    const PeerInfo peer{session.target.node, session.target.region, session.target.zone,
                        session.target.address, session.target.port};
    sink.OnProbeSent(ProbeSent{peer, session.ssid, packet.sequence, sent_at, session.source_address,
                               is_v4 ? port4 : port6});
  }

  void OnDatagram(std::span<const uint8_t> bytes, const udp::endpoint& from,
                  std::chrono::steady_clock::time_point at) {
    auto decoded = DecodeReflector(bytes, config.mode, config.key);
    if (!decoded.ok()) {
      // The SSID of a packet that failed its MAC is not to be trusted; the address is what
      // the reply claims to come from, enough to attribute it to a path.
      std::string node;
      for (const auto& [key, session] : sessions) {
        if (session->endpoint.address() == from.address() && session->endpoint.port() == from.port()) {
          node = session->target.node;
        }
      }
      if (decoded.failure.problem == DecodeProblem::kBadMac) {
        ++counters.bad_mac;
      } else {
        ++counters.malformed;
      }
      log->debug("reply from {}: {} ({})", from.address().to_string(),
                 DecodeProblemName(decoded.failure.problem), decoded.failure.detail);
      sink.OnReplyRejected(node, decoded.failure.problem, at);
      return;
    }
    const ReflectorPacket& reply = *decoded.packet;
    auto it = sessions_by_reply.find(ReplyKey(from, reply.ssid));
    if (it == sessions_by_reply.end()) {
      ++counters.unmatched;
      return;
    }
    ++counters.replies;
    ProbeReply event;
    event.node = it->second->target.node;
    event.ssid = reply.ssid;
    event.sender_sequence = reply.sender_sequence;
    event.reflector_sequence = reply.sequence;
    event.received_at = at;
    event.kernel = reply.kernel;
    const auto turnaround = DecodeTimestamp(reply.timestamp, reply.error_estimate.ptp) -
                            DecodeTimestamp(reply.receive_timestamp, reply.error_estimate.ptp);
    if (turnaround.count() >= 0)
      event.reflector_turnaround = std::chrono::duration_cast<nanoseconds>(turnaround);
    sink.OnProbeReply(event);
  }

  void Close() {
    stopped = true;
    for (auto& [key, session] : sessions) {
      session->active = false;
      session->timer.cancel();
    }
    for (const auto& session : retired) session->timer.cancel();
    sessions.clear();
    sessions_by_reply.clear();
    target_count = 0;
    boost::system::error_code ec;
    v4.close(ec);
    v6.close(ec);
    route4.close(ec);
    route6.close(ec);
  }
};

Prober::Prober(asio::io_context& io, ProberConfig config, ProbeEventSink& sink)
    : impl_(std::make_shared<Impl>(io, std::move(config), sink)) {}

Prober::~Prober() {
  // Handlers hold the Impl; once stopped they neither send nor touch the sink.
  impl_->stopped = true;
  asio::post(impl_->io, [impl = impl_]() { impl->Close(); });
}

void Prober::SetTargets(std::vector<ProbeTarget> targets) {
  asio::post(impl_->io, [impl = impl_, targets = std::move(targets)]() { impl->SetTargets(targets); });
}

void Prober::SetSchedule(nanoseconds interval, uint32_t payload_size) {
  asio::post(impl_->io, [impl = impl_, interval, payload_size]() {
    if (interval.count() > 0) impl->config.interval = interval;
    if (payload_size > 0) impl->config.payload_size = payload_size;
  });
}

void Prober::Stop() {
  asio::post(impl_->io, [impl = impl_]() { impl->Close(); });
}

ProberCounters Prober::counters() const {
  const auto& c = impl_->counters;
  return ProberCounters{c.sent, c.send_errors, c.replies, c.bad_mac, c.malformed, c.unmatched};
}

size_t Prober::TargetCount() const {
  return impl_->target_count;
}

}  // namespace regionpulse
