// STAMP Session-Sender on Boost.Asio: one timer for all targets (ProbeSchedule keeps each
// target's jittered deadline), two shared sockets (IPv4, IPv6); every probe due at a wake-up
// leaves in one sendmmsg, and each readable socket is drained with recvmmsg. Replies are
// matched by (peer address, port, SSID), compared as bytes, and handed to the event sink.
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

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <absl/container/flat_hash_map.h>
#include <spdlog/spdlog.h>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/probe_schedule.h"
#include "agent/probe_socket_options.h"
#include "agent/send_all.h"
#include "agent/socket_drain.h"
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

// Which session a reply belongs to: the address and port it came from (IPv4 as v4-mapped
// IPv6, so both sockets' replies compare alike) and its SSID. Integers, not text: one is built
// and looked up per reply.
struct ReplyKey {
  uint64_t address_high = 0;
  uint64_t address_low = 0;
  uint16_t port = 0;
  uint16_t ssid = 0;
  bool operator==(const ReplyKey&) const = default;
};

struct ReplyKeyHash {
  size_t operator()(const ReplyKey& key) const {
    uint64_t h = key.address_high * 0x9e3779b97f4a7c15ULL;
    h ^= key.address_low + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= (uint64_t{key.port} << 16 | key.ssid) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return static_cast<size_t>(h);
  }
};

ReplyKey ReplyKeyOf(const udp::endpoint& from, uint16_t ssid) {
  const auto address = from.address();
  const auto bytes = address.is_v4()
                         ? asio::ip::make_address_v6(asio::ip::v4_mapped, address.to_v4()).to_bytes()
                         : address.to_v6().to_bytes();
  ReplyKey key;
  std::memcpy(&key.address_high, bytes.data(), 8);
  std::memcpy(&key.address_low, bytes.data() + 8, 8);
  key.port = from.port();
  key.ssid = ssid;
  return key;
}

// Datagrams per recvmmsg / sendmmsg call, and receive calls per wake-up: bounded, so a flood of
// replies cannot starve the reflector and the schedule sharing the io_context.
constexpr size_t kReceiveBatch = 32;
constexpr int kReceiveBatchesPerWakeup = 8;
constexpr size_t kReceiveBufferSize = 65536;
constexpr size_t kSendBatch = 1024;  // UIO_MAXIOV, the most sendmmsg takes

// Session ids are unique in the process, so that probers sharing one sink (two keys in a
// test) never name two sessions alike; dense from 0, as an agent has one prober. Taken and
// returned only when sessions start and end.
class SessionIds {
 public:
  static SessionId Take() {
    std::lock_guard lock(mutex_);
    if (free_.empty()) return next_++;
    const SessionId id = free_.back();
    free_.pop_back();
    return id;
  }
  static void Give(SessionId id) {
    std::lock_guard lock(mutex_);
    free_.push_back(id);
  }

 private:
  static inline std::mutex mutex_;
  static inline std::vector<SessionId> free_;
  static inline SessionId next_ = 0;
};

}  // namespace

struct Prober::Impl : std::enable_shared_from_this<Prober::Impl> {
  struct Session {
    ProbeTarget target;
    udp::endpoint endpoint;
    uint32_t slot = 0;  // in `slots` and the schedule
    uint16_t ssid = 0;
    uint32_t next_sequence = 0;
    // Only for a retired session: when its replies stop being matched.
    asio::steady_timer grace;
    bool active = true;
    // The address this target's probes leave from (empty: no route), and when it was read.
    std::string source_address;
    std::optional<std::chrono::steady_clock::time_point> source_read_at;
    explicit Session(asio::io_context& io) : grace(io) {}
  };

  // One receive batch of a socket: recvmmsg's headers, each with its buffer and sender.
  struct ReceiveBatch {
    // Not zeroed: 2 MiB of which a reply touches its first page, so the rest never counts
    // in the agent's RSS.
    std::unique_ptr<uint8_t[]> buffers{new uint8_t[kReceiveBatch * kReceiveBufferSize]};
    std::array<sockaddr_storage, kReceiveBatch> from{};
    std::array<iovec, kReceiveBatch> iov{};
    std::array<mmsghdr, kReceiveBatch> headers{};
  };

  // One probe of a send batch; its bytes are send_buffers[buffer].
  struct Outgoing {
    uint32_t slot = 0;
    uint32_t sequence = 0;
    size_t buffer = 0;
    int error = 0;  // errno of its send, 0 when it left
  };

  Impl(asio::io_context& io_context, ProberConfig c, ProbeEventSink& s)
      : io(io_context),
        v4(io_context),
        v6(io_context),
        route4(io_context),
        route6(io_context),
        wake(io_context),
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
    for (auto [socket, is_v6] : {std::pair{&v4, false}, std::pair{&v6, true}}) {
      if (!socket->is_open()) continue;
      RaiseReceiveBuffer(socket->native_handle());
      if (int error = SetProbeDontFragment(socket->native_handle(), is_v6); error != 0) {
        log->warn("{} probe socket: probes leave without Don't Fragment: {}", is_v6 ? "IPv6" : "IPv4",
                  std::strerror(error));
      }
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
  asio::steady_timer wake;                // the schedule's earliest deadline
  std::optional<MonoTime> wake_armed_at;  // what `wake` is armed for, if anything
  uint16_t port4 = 0;
  uint16_t port6 = 0;
  ProberConfig config;
  ProbeEventSink& sink;
  std::shared_ptr<spdlog::logger> log;
  std::mt19937_64 rng;
  std::atomic<bool> stopped{false};
  std::map<std::string, std::shared_ptr<Session>> sessions;  // active, by TargetKey
  std::vector<std::shared_ptr<Session>> slots;               // active and retired, by id
  // Open addressing: looked up once per reply, and a node-based map's extra pointer chase
  // was the prober's costliest line of its own in the profile.
  absl::flat_hash_map<ReplyKey, std::shared_ptr<Session>, ReplyKeyHash>
      sessions_by_reply;  // active and retired
  ProbeSchedule schedule;
  std::unordered_multiset<uint16_t> ssids_in_use;  // of active and retired sessions
  std::atomic<size_t> target_count{0};
  struct {
    std::atomic<uint64_t> sent{0}, send_errors{0}, replies{0}, bad_mac{0}, malformed{0}, unmatched{0};
  } counters;
  ReceiveBatch receive4;
  ReceiveBatch receive6;
  SocketDrain<udp::socket> drain4{v4, log};
  SocketDrain<udp::socket> drain6{v6, log};
  bool receiving = false;
  // Reused by every send batch, so that a batch allocates nothing once the buffers have grown
  // to the largest batch: the probes' bytes are encoded into send_buffers, one per probe of the
  // batch, kept with their capacity.
  std::vector<std::pair<uint32_t, MonoTime>> due;
  std::vector<Outgoing> outgoing;
  std::vector<std::vector<uint8_t>> send_buffers;
  std::vector<Outgoing*> members;
  // Every probe is this packet with its own sequence, SSID and timestamp: its TLVs (the key id,
  // whose SHA-256 is computed once) are not rebuilt per probe.
  SenderPacket next_probe;
  bool next_probe_ready = false;
  std::vector<mmsghdr> send_headers;
  std::vector<iovec> send_iov;

  void StartReceiving() {
    if (receiving) return;
    receiving = true;
    const auto stopped_now = [this] { return stopped.load(); };
    if (v4.is_open()) {
      drain4.Start(
          "prober IPv4 socket port " + std::to_string(port4), shared_from_this(),
          [this] { return DrainReplies(v4, receive4); }, stopped_now);
    }
    if (v6.is_open()) {
      drain6.Start(
          "prober IPv6 socket port " + std::to_string(port6), shared_from_this(),
          [this] { return DrainReplies(v6, receive6); }, stopped_now);
    }
  }

  // Every reply waiting on `socket`, a batch per recvmmsg, up to kReceiveBatchesPerWakeup.
  DrainResult DrainReplies(udp::socket& socket, ReceiveBatch& batch) {
    for (int round = 0; round < kReceiveBatchesPerWakeup; ++round) {
      for (size_t i = 0; i < kReceiveBatch; ++i) {
        batch.iov[i] = iovec{batch.buffers.get() + i * kReceiveBufferSize, kReceiveBufferSize};
        batch.headers[i] = mmsghdr{};
        batch.headers[i].msg_hdr.msg_name = &batch.from[i];
        batch.headers[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        batch.headers[i].msg_hdr.msg_iov = &batch.iov[i];
        batch.headers[i].msg_hdr.msg_iovlen = 1;
      }
      const int n =
          ::recvmmsg(socket.native_handle(), batch.headers.data(), kReceiveBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) {
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
          log->warn("receiving replies on port {}: {}", &socket == &v4 ? port4 : port6, std::strerror(errno));
        return DrainResult::kEmpty;
      }
      const auto at = std::chrono::steady_clock::now();
      for (int i = 0; i < n; ++i) {
        if (stopped) return DrainResult::kEmpty;
        const auto& header = batch.headers[static_cast<size_t>(i)];
        udp::endpoint from;
        std::memcpy(from.data(), &batch.from[static_cast<size_t>(i)],
                    std::min<size_t>(header.msg_hdr.msg_namelen, sizeof(sockaddr_storage)));
        from.resize(header.msg_hdr.msg_namelen);
        // A datagram larger than the buffer arrives cut short and fails to decode: malformed.
        OnDatagram(std::span<const uint8_t>(batch.buffers.get() + static_cast<size_t>(i) * kReceiveBufferSize,
                                            header.msg_len),
                   from, at);
      }
      if (static_cast<size_t>(n) < kReceiveBatch) return DrainResult::kEmpty;
    }
    return DrainResult::kMore;
  }

  // An SSID no other session of this prober uses while it can: a reflector tells sessions
  // apart by sender address, port and SSID, not by the address probed, so two targets on one
  // host (a node with several addresses, the bench's reflector) must not share one. Beyond
  // what random draws find quickly, unique per target endpoint as replies need.
  uint16_t NewSsid(const udp::endpoint& endpoint) {
    std::uniform_int_distribution<uint32_t> dist(1, 0xffff);
    for (int attempt = 0;; ++attempt) {
      const auto ssid = static_cast<uint16_t>(dist(rng));
      if (sessions_by_reply.count(ReplyKeyOf(endpoint, ssid))) continue;
      if (attempt < 64 && ssids_in_use.count(ssid)) continue;
      return ssid;
    }
  }

  nanoseconds NextDelay() {
    std::uniform_real_distribution<double> dist(-config.jitter, config.jitter);
    const double factor = 1.0 + dist(rng);
    return nanoseconds(static_cast<int64_t>(static_cast<double>(config.interval.count()) * factor));
  }

  // The shortest a jittered delay can be: no two probes of a target closer than this.
  nanoseconds MinGap() const {
    return nanoseconds(
        static_cast<int64_t>(static_cast<double>(config.interval.count()) * (1.0 - config.jitter)));
  }

  // A wake-up sends every probe due within this much of it too: targets' deadlines are spread
  // at random, so without it nearly every probe would be a wake-up of its own, and wake-ups
  // were most of the per-probe cost (at 1,000 targets, 2 ms of slack left 0.15 context switches
  // per probe; 5 ms, 0.05, and 20 % less CPU per probe). 5 ms at the default 100 ms, and never
  // more than half the jitter: each target keeps its own deadline, a probe leaves at most that
  // early, and the next deadline still follows the previous one. More slack sends fewer probes
  // than planned (10 ms at 10 % jitter: 13 % fewer), as the minimum gap then pushes deadlines.
  nanoseconds BatchSlack() const {
    const double fraction = std::min(1.0 / 20, config.jitter / 2);
    return nanoseconds(static_cast<int64_t>(static_cast<double>(config.interval.count()) * fraction));
  }

  uint32_t TakeSlot(const std::shared_ptr<Session>& session) {
    const SessionId slot = SessionIds::Take();
    if (slot >= slots.size()) slots.resize(slot + 1);
    slots[slot] = session;
    return slot;
  }

  void SetTargets(const std::vector<ProbeTarget>& targets) {
    if (stopped) return;
    std::set<std::string> wanted;
    const auto now = std::chrono::steady_clock::now();
    for (const auto& target : targets) {
      const std::string key = TargetKey(target);
      wanted.insert(key);
      if (auto it = sessions.find(key); it != sessions.end()) {
        if (!(it->second->target == target)) {
          it->second->target = target;  // region or zone may have been corrected
          sink.OnSession(InfoOf(*it->second));
        }
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
      ssids_in_use.insert(session->ssid);
      session->slot = TakeSlot(session);
      sessions[key] = session;
      sessions_by_reply[ReplyKeyOf(session->endpoint, session->ssid)] = session;
      sink.OnSession(InfoOf(*session));
      // The first probe at a random point of one interval spreads many targets' sends.
      std::uniform_real_distribution<double> first(0.0, 1.0);
      schedule.Set(
          session->slot,
          now + nanoseconds(static_cast<int64_t>(static_cast<double>(config.interval.count()) * first(rng))));
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
    ArmWake();
  }

  // Stops probing a session; its replies are matched for reply_grace longer, then its slot is
  // free for another.
  void Retire(const std::shared_ptr<Session>& session) {
    session->active = false;
    schedule.Remove(session->slot);
    session->grace.expires_after(config.reply_grace);
    session->grace.async_wait([self = shared_from_this(), session](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled by Close, which forgets every session
      const auto key = ReplyKeyOf(session->endpoint, session->ssid);
      if (auto it = self->sessions_by_reply.find(key);
          it != self->sessions_by_reply.end() && it->second == session) {
        self->sessions_by_reply.erase(it);
      }
      if (auto it = self->ssids_in_use.find(session->ssid); it != self->ssids_in_use.end())
        self->ssids_in_use.erase(it);
      if (self->slots[session->slot] == session) {
        self->slots[session->slot].reset();
        self->sink.OnSessionEnded(session->slot);
        SessionIds::Give(session->slot);
      }
    });
  }

  // Arms the one timer for the schedule's earliest deadline.
  void ArmWake() {
    if (stopped) return;
    const auto next = schedule.NextDue();
    if (!next) {
      if (wake_armed_at) wake.cancel();
      wake_armed_at.reset();
      return;
    }
    if (wake_armed_at && *wake_armed_at == *next) return;
    wake_armed_at = *next;
    wake.expires_at(*next);
    wake.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped) return;  // re-armed (operation_aborted) or closed
      self->wake_armed_at.reset();
      self->SendDue();
      self->ArmWake();
    });
  }

  // Sends every probe due now (or within BatchSlack) in one batch per address family, then
  // schedules each target's next one from its own deadline.
  void SendDue() {
    const auto now = std::chrono::steady_clock::now();
    due.clear();
    schedule.PopDue(now + BatchSlack(), due);
    if (due.empty()) return;
    outgoing.clear();
    for (const auto& [slot, deadline] : due) {
      const auto& session = slots[slot];
      if (!session || !session->active) continue;
      if (outgoing.size() == send_buffers.size()) send_buffers.emplace_back();
      outgoing.push_back(Prepare(*session, now, outgoing.size()));
    }
    SendBatch(v4, true);
    SendBatch(v6, false);
    // From after the sends, so that a thread preempted while sending cannot bring a target's
    // next probe closer to this one than the jitter allows; nor can an early send (within the
    // slack).
    const auto sent = std::chrono::steady_clock::now();
    for (const auto& [slot, deadline] : due) {
      const auto& session = slots[slot];
      if (!session || !session->active) continue;
      schedule.Set(slot, ProbeSchedule::Following(deadline, NextDelay(), sent, MinGap() + BatchSlack()));
    }
  }

  // Encodes the session's next probe into send_buffers[buffer].
  Outgoing Prepare(Session& session, MonoTime now, size_t buffer) {
    const auto refresh = session.source_address.empty() ? kSourceRetry : kSourceRefresh;
    if (!session.source_read_at || now - *session.source_read_at >= refresh) {
      const std::string before = session.source_address;
      ReadSource(session, now);
      if (session.source_address != before) sink.OnSession(InfoOf(session));
    }
    if (!next_probe_ready) {
      next_probe.error_estimate = ErrorEstimate{};
      // An all-zero kernel TLV: the tc programs fill t1..t4 on the way.
      next_probe.kernel = KernelStamps{};
      // Names the signing key, so a reflector holding several (a key rotation) verifies with
      // the right one and tells an unknown key from a forged packet.
      if (config.mode == StampMode::kAuthenticated) next_probe.tlvs.push_back(KeyIdTlv(config.key));
      next_probe_ready = true;
    }
    next_probe.sequence = session.next_sequence++;
    next_probe.ssid = session.ssid;
    next_probe.timestamp = EncodeTimestamp(std::chrono::system_clock::now(), next_probe.error_estimate.ptp);
    EncodeSender(next_probe, config.mode, config.key, config.payload_size, send_buffers[buffer]);
    return Outgoing{session.slot, next_probe.sequence, buffer, 0};
  }

  // The prepared probes of one address family, in sendmmsg calls; then one event each.
  void SendBatch(udp::socket& socket, bool family_v4) {
    send_headers.clear();
    send_iov.clear();
    members.clear();
    for (auto& prepared : outgoing) {
      if (slots[prepared.slot]->endpoint.address().is_v4() == family_v4) members.push_back(&prepared);
    }
    if (members.empty()) return;
    send_iov.resize(members.size());
    send_headers.resize(members.size());
    for (size_t i = 0; i < members.size(); ++i) {
      auto& endpoint = slots[members[i]->slot]->endpoint;
      auto& bytes = send_buffers[members[i]->buffer];
      send_iov[i] = iovec{bytes.data(), bytes.size()};
      send_headers[i] = mmsghdr{};
      send_headers[i].msg_hdr.msg_name = endpoint.data();
      send_headers[i].msg_hdr.msg_namelen = static_cast<socklen_t>(endpoint.size());
      send_headers[i].msg_hdr.msg_iov = &send_iov[i];
      send_headers[i].msg_hdr.msg_iovlen = 1;
    }
    const auto sent_at = std::chrono::steady_clock::now();
    if (!socket.is_open()) {
      for (auto* probe : members) probe->error = EAFNOSUPPORT;
    } else {
      SendAll(socket.native_handle(), send_headers.data(), members.size(), kSendBatch,
              [&](size_t index, int error) { members[index]->error = error; });
    }
    for (auto* probe : members) {
      Session& session = *slots[probe->slot];
      if (probe->error == EAGAIN || probe->error == EWOULDBLOCK) {
        // Our own socket buffer is full: nothing left this host, which says nothing about the
        // path, so the probe is not reported as sent.
        ++counters.send_errors;
        continue;
      }
      if (probe->error != 0) {
        // Unreachable network, no route, interface down: the path is broken from here, so the
        // probe counts as sent (and lost).
        ++counters.send_errors;
        log->debug("probe to {} ({}): {}", session.target.node, session.target.address,
                   std::strerror(probe->error));
      } else {
        ++counters.sent;
      }
      sink.OnProbeSent(ProbeSent{session.slot, probe->sequence, sent_at});
    }
  }

  SessionInfo InfoOf(const Session& session) const {
    const bool is_v4 = session.endpoint.address().is_v4();
    return SessionInfo{session.slot,
                       PeerInfo{session.target.node, session.target.region, session.target.zone,
                                session.target.address, session.target.port},
                       session.ssid, session.source_address, is_v4 ? port4 : port6};
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

  void OnDatagram(std::span<const uint8_t> bytes, const udp::endpoint& from,
                  std::chrono::steady_clock::time_point at) {
    auto decoded = DecodeReply(bytes, config.mode, config.key);
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
    auto it = sessions_by_reply.find(ReplyKeyOf(from, reply.ssid));
    if (it == sessions_by_reply.end()) {
      ++counters.unmatched;
      return;
    }
    ++counters.replies;
    ProbeReply event;
    event.session = it->second->slot;
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
    for (auto& session : slots) {
      if (!session) continue;
      session->active = false;
      session->grace.cancel();
      SessionIds::Give(session->slot);
    }
    wake.cancel();
    wake_armed_at.reset();
    sessions.clear();
    slots.clear();
    sessions_by_reply.clear();
    ssids_in_use.clear();
    target_count = 0;
    drain4.Cancel();
    drain6.Cancel();
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
