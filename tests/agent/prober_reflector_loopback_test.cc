// Prober and reflector on one io_context over loopback (IPv4 and IPv6): replies matched,
// per-session reflector numbering, authentication outcomes, target replacement, and windows
// folded from real traffic.
#include <gtest/gtest.h>

#include <array>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "agent/prober.h"
#include "agent/reflector.h"
#include "common/report_validation.h"
#include "tests/agent/recording_sink.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;
using test::RecordingSink;
using test::RunUntil;

const MacKey kKey(32, 0x42);

ReflectorConfig ReflectorOn(uint16_t port = 0) {
  ReflectorConfig c;
  c.listen_address = "::";
  c.port = port;
  c.key = kKey;
  return c;
}

ProberConfig FastProber(StampMode mode = StampMode::kAuthenticated, MacKey key = kKey) {
  ProberConfig c;
  c.interval = 10ms;
  c.mode = mode;
  c.key = std::move(key);
  c.seed = 7;
  return c;
}

TEST(ProberReflectorLoopback, ProberAndReflectorExchangeOverIpv4AndIpv6) {
  boost::asio::io_context io;
  auto reflector = Reflector::Start(io, ReflectorOn());
  ASSERT_TRUE(reflector.ok()) << reflector.error().ToString();
  const uint16_t port = (*reflector)->port();
  ASSERT_NE(port, 0);

  WindowFolderConfig folder_config;
  folder_config.region_names = {"lab"};
  WindowFolder folder(folder_config, std::chrono::steady_clock::now(), std::chrono::system_clock::now(), {});
  RecordingSink sink(&folder);
  Prober prober(io, FastProber(), sink);
  prober.SetTargets({ProbeTarget{"v4-peer", "lab", "z1", "127.0.0.1", port},
                     ProbeTarget{"v6-peer", "lab", "z1", "::1", port}});
  ASSERT_TRUE(
      RunUntil(io, [&] { return sink.RepliesFrom("v4-peer") >= 20 && sink.RepliesFrom("v6-peer") >= 20; }));

  // Each session has its own reflector numbering starting at 0 (stateful reflector).
  std::map<std::string, uint32_t> first_reflector_seq;
  for (const auto& r : sink.replies()) first_reflector_seq.emplace(r.node, r.reflector_sequence);
  EXPECT_EQ(first_reflector_seq["v4-peer"], 0u);
  EXPECT_EQ(first_reflector_seq["v6-peer"], 0u);
  for (const auto& r : sink.replies()) {
    EXPECT_EQ(r.reflector_sequence, r.sender_sequence) << "no loss on loopback";
    // No datapath here: the kernel TLV comes back unstamped.
    ASSERT_TRUE(r.kernel.has_value());
    EXPECT_EQ(r.kernel->t[0], 0u);
    ASSERT_TRUE(r.reflector_turnaround.has_value());
    EXPECT_GE(r.reflector_turnaround->count(), 0);
    EXPECT_LT(*r.reflector_turnaround, 100ms);
  }
  const auto counters = (*reflector)->counters();
  EXPECT_GE(counters.replied, 40u);
  EXPECT_EQ(counters.bad_mac, 0u);
  EXPECT_EQ(counters.sessions, 2u);
  EXPECT_EQ(prober.counters().bad_mac, 0u);

  // The first window's report comes out at a close at least one probe timeout after it ended;
  // probing goes on meanwhile, so replies to probes in flight at the boundary are received.
  ASSERT_TRUE(
      folder.CloseWindow(std::chrono::steady_clock::now(), std::chrono::system_clock::now(), {}).empty());
  RunUntil(
      io, [] { return false; }, 900ms);
  auto reports = folder.CloseWindow(std::chrono::steady_clock::now(), std::chrono::system_clock::now(), {});
  ASSERT_FALSE(reports.empty());
  const auto& report = reports.front();
  EXPECT_TRUE(ReportProblems(report).empty());
  ASSERT_EQ(report.paths_size(), 2);
  for (const auto& path : report.paths()) {
    EXPECT_GE(path.probes_sent(), 20u) << path.peer_node();
    EXPECT_EQ(path.received_reverse(), path.probes_sent()) << path.peer_node();
    EXPECT_DOUBLE_EQ(path.loss_forward(), 0.0);
    EXPECT_DOUBLE_EQ(path.loss_reverse(), 0.0);
    EXPECT_GT(path.rtt_user().min_ns(), 0u);
    EXPECT_LT(path.rtt_user().max_ns(), 100'000'000u);
  }
}

TEST(ProberReflectorLoopback, WrongKeyIsCountedByTheReflectorAndNeverAnswered) {
  boost::asio::io_context io;
  auto reflector = Reflector::Start(io, ReflectorOn());
  ASSERT_TRUE(reflector.ok());
  RecordingSink sink;
  Prober prober(io, FastProber(StampMode::kAuthenticated, MacKey(32, 0x99)), sink);
  prober.SetTargets({ProbeTarget{"peer", "lab", "", "127.0.0.1", (*reflector)->port()}});
  // The probe names its key: refused as a wrong key, not as a forgery.
  ASSERT_TRUE(RunUntil(io, [&] { return (*reflector)->counters().wrong_key >= 5; }));
  EXPECT_EQ((*reflector)->counters().replied, 0u);
  EXPECT_EQ((*reflector)->counters().bad_mac, 0u);
  EXPECT_TRUE(sink.replies().empty());
}

// A key rotation: the reflector signs with the old key and accepts the new one; nodes still on
// the old key and nodes already on the new one are both answered, every probe, no loss.
TEST(ProberReflectorLoopback, KeyRotationAnswersOldAndNewKeysWithoutLoss) {
  boost::asio::io_context io;
  const MacKey new_key(32, 0x77);
  ReflectorConfig config = ReflectorOn();
  config.accepted_keys = {new_key};
  auto reflector = Reflector::Start(io, config);
  ASSERT_TRUE(reflector.ok());
  WindowFolderConfig folder_config;
  folder_config.region_names = {"lab"};
  folder_config.probe_timeout = 300ms;
  WindowFolder folder(folder_config, std::chrono::steady_clock::now(), std::chrono::system_clock::now(), {});
  RecordingSink sink(&folder);
  Prober on_new(io, FastProber(StampMode::kAuthenticated, new_key), sink);
  Prober on_old(io, FastProber(StampMode::kAuthenticated, kKey), sink);
  on_new.SetTargets({ProbeTarget{"via-new", "lab", "", "127.0.0.1", (*reflector)->port()}});
  on_old.SetTargets({ProbeTarget{"via-old", "lab", "", "127.0.0.1", (*reflector)->port()}});
  // Stopped while no probe of either is in flight: Stop closes the prober's socket, so a reply
  // still on its way would read as lost (the single io_context answers one prober's probes only
  // between the other's handlers, so "enough replies" alone could stop with one outstanding).
  const auto settled = [&](const std::string& node) {
    return sink.RepliesFrom(node) >= 30 && sink.RepliesFrom(node) == sink.SentTo(node);
  };
  ASSERT_TRUE(RunUntil(io, [&] { return settled("via-new") && settled("via-old"); }));
  on_new.Stop();
  on_old.Stop();
  // Let the last replies in flight arrive, then close the window past the probe timeout.
  RunUntil(
      io, [] { return false; }, 400ms);
  auto reports = folder.Drain(std::chrono::steady_clock::now() + 1s, std::chrono::system_clock::now(), {});
  ASSERT_FALSE(reports.empty());
  uint64_t sent = 0, returned = 0;
  for (const auto& report : reports) {
    for (const auto& path : report.paths()) {
      sent += path.probes_sent();
      returned += path.received_reverse();
      EXPECT_EQ(path.auth_failures(), 0u) << path.peer_node();
    }
  }
  EXPECT_GE(sent, 60u);
  EXPECT_EQ(returned, sent) << "a rotation must show no loss";
  const auto counters = (*reflector)->counters();
  EXPECT_EQ(counters.wrong_key, 0u);
  EXPECT_EQ(counters.bad_mac, 0u);
  EXPECT_EQ(on_new.counters().bad_mac, 0u);
  EXPECT_EQ(on_old.counters().bad_mac, 0u);
}

// A raw client for the abuse tests: sends exact bytes from a chosen local address, collects
// what comes back.
struct RawClient {
  RawClient(boost::asio::io_context& io, const std::string& local)
      : socket(io, boost::asio::ip::udp::endpoint(boost::asio::ip::make_address(local), 0)) {
    Receive();
  }
  void Receive() {
    socket.async_receive_from(
        boost::asio::buffer(buffer), from, [this](const boost::system::error_code& ec, size_t n) {
          if (ec) return;
          replies.emplace_back(buffer.begin(), buffer.begin() + static_cast<ptrdiff_t>(n));
          Receive();
        });
  }
  void Send(const std::vector<uint8_t>& bytes, uint16_t port) {
    socket.send_to(boost::asio::buffer(bytes),
                   boost::asio::ip::udp::endpoint(boost::asio::ip::address_v4::loopback(), port));
  }
  boost::asio::ip::udp::socket socket;
  std::array<uint8_t, 2048> buffer{};
  boost::asio::ip::udp::endpoint from;
  std::vector<std::vector<uint8_t>> replies;
};

std::vector<uint8_t> AuthenticatedProbe(uint32_t sequence, WallTime sent, const MacKey& key = kKey) {
  SenderPacket packet;
  packet.sequence = sequence;
  packet.ssid = 0x1234;
  packet.timestamp = EncodeTimestamp(sent, true);
  packet.kernel = KernelStamps{};
  packet.tlvs.push_back(KeyIdTlv(key));
  return EncodeSender(packet, StampMode::kAuthenticated, key);
}

// The reports of a folder whose windows all settled by `later` (no probes of its own wait).
std::vector<v1::HealthReport> SettledReports(WindowFolder& folder, std::chrono::seconds later = 5s) {
  auto reports = folder.CloseWindow(std::chrono::steady_clock::now(), std::chrono::system_clock::now(), {});
  auto settled = folder.CloseWindow(std::chrono::steady_clock::now() + later,
                                    std::chrono::system_clock::now() + later, {});
  reports.insert(reports.end(), settled.begin(), settled.end());
  return reports;
}

WindowFolder ReflectorFolder() {
  WindowFolderConfig config;
  config.region_names = {"lab"};
  return WindowFolder(config, std::chrono::steady_clock::now(), std::chrono::system_clock::now(), {});
}

// The refusals reach the report as the sender's session names itself in its own report (its
// source address, port and SSID): the join the aggregator makes to take them out of the loss.
TEST(ProberReflectorLoopback, WrongKeyRefusalsAreReportedForTheSendersSession) {
  boost::asio::io_context io;
  WindowFolder reflector_folder = ReflectorFolder();
  auto reflector = Reflector::Start(io, ReflectorOn(), &reflector_folder);
  ASSERT_TRUE(reflector.ok());
  RecordingSink sink;
  Prober prober(io, FastProber(StampMode::kAuthenticated, MacKey(32, 0x99)), sink);
  prober.SetTargets({ProbeTarget{"peer", "lab", "", "127.0.0.1", (*reflector)->port()}});
  ASSERT_TRUE(RunUntil(io, [&] { return (*reflector)->counters().wrong_key >= 5; }));
  const uint64_t refused = (*reflector)->counters().wrong_key;
  ASSERT_FALSE(sink.sent().empty());
  const test::SentRecord& sent = sink.sent().front();

  uint64_t reported = 0;
  for (const auto& report : SettledReports(reflector_folder)) {
    EXPECT_TRUE(ReportProblems(report).empty());
    for (const auto& entry : report.reflected()) {
      EXPECT_EQ(entry.sender().address(), sent.source_address);
      EXPECT_EQ(entry.sender().port(), sent.source_port);
      EXPECT_EQ(entry.ssid(), sent.ssid);
      EXPECT_EQ(entry.received(), 0u);
      EXPECT_EQ(entry.refused_stale_timestamp() + entry.refused_rate_limited() + entry.refused_replayed(),
                0u);
      reported += entry.refused_wrong_key();
    }
  }
  EXPECT_EQ(reported, refused);
}

// A sender whose clock is five minutes off (beyond max_clock_offset): its probes are reported
// refused for their timestamp, per session, not merely missing.
TEST(ProberReflectorLoopback, ASkewedSendersProbesAreReportedRefusedForTheirTimestamp) {
  boost::asio::io_context io;
  WindowFolder reflector_folder = ReflectorFolder();
  auto reflector = Reflector::Start(io, ReflectorOn(), &reflector_folder);
  ASSERT_TRUE(reflector.ok());
  RawClient skewed(io, "127.0.0.1");
  for (uint32_t i = 0; i < 4; ++i) {
    skewed.Send(AuthenticatedProbe(i, std::chrono::system_clock::now() - 5min), (*reflector)->port());
  }
  ASSERT_TRUE(RunUntil(io, [&] { return (*reflector)->counters().stale_timestamp == 4; }));
  const auto reports = SettledReports(reflector_folder);
  uint64_t reported = 0;
  for (const auto& report : reports) {
    for (const auto& entry : report.reflected()) {
      EXPECT_EQ(entry.sender().address(), "127.0.0.1");
      EXPECT_EQ(entry.sender().port(), skewed.socket.local_endpoint().port());
      EXPECT_EQ(entry.ssid(), 0x1234u);
      EXPECT_EQ(entry.received(), 0u);
      reported += entry.refused_stale_timestamp();
    }
  }
  EXPECT_EQ(reported, 4u);
  EXPECT_TRUE(skewed.replies.empty());
}

TEST(ProberReflectorLoopback, AReplayedAuthenticatedProbeIsNotAnsweredTwice) {
  boost::asio::io_context io;
  auto reflector = Reflector::Start(io, ReflectorOn());
  ASSERT_TRUE(reflector.ok());
  const uint16_t port = (*reflector)->port();
  RawClient client(io, "127.0.0.1");
  const auto probe = AuthenticatedProbe(0, std::chrono::system_clock::now());
  client.Send(probe, port);
  ASSERT_TRUE(RunUntil(io, [&] { return client.replies.size() == 1; }));
  // The same bytes again: a replay.
  client.Send(probe, port);
  ASSERT_TRUE(RunUntil(io, [&] { return (*reflector)->counters().replayed == 1; }));
  // The next probe of the session is answered.
  client.Send(AuthenticatedProbe(1, std::chrono::system_clock::now()), port);
  ASSERT_TRUE(RunUntil(io, [&] { return client.replies.size() == 2; }));
  // Signed long ago (or far ahead): refused on its timestamp, whatever its sequence.
  client.Send(AuthenticatedProbe(2, std::chrono::system_clock::now() - 5min), port);
  client.Send(AuthenticatedProbe(3, std::chrono::system_clock::now() + 5min), port);
  ASSERT_TRUE(RunUntil(io, [&] { return (*reflector)->counters().stale_timestamp == 2; }));
  RunUntil(
      io, [] { return false; }, 50ms);
  EXPECT_EQ(client.replies.size(), 2u);
  EXPECT_EQ((*reflector)->counters().replied, 2u);
}

TEST(ProberReflectorLoopback, RateLimitRefusesAFloodFromOneSourceWhileAnotherIsAnswered) {
  boost::asio::io_context io;
  ReflectorConfig config = ReflectorOn();
  config.listen_address = "0.0.0.0";
  config.accept_unauthenticated = true;
  config.rate_per_source = 20;
  config.burst_per_source = 10;
  auto reflector = Reflector::Start(io, config);
  ASSERT_TRUE(reflector.ok());
  const uint16_t port = (*reflector)->port();
  RawClient flooder(io, "127.0.0.1");
  RawClient neighbour(io, "127.0.0.2");
  SenderPacket packet;
  // In bursts the socket buffer holds, so every packet reaches the reflector.
  for (uint32_t burst = 0; burst < 5; ++burst) {
    for (uint32_t i = 0; i < 100; ++i) {
      packet.sequence = burst * 100 + i;
      flooder.Send(EncodeSender(packet, StampMode::kUnauthenticated, {}), port);
    }
    ASSERT_TRUE(RunUntil(io, [&] { return (*reflector)->counters().received == (burst + 1) * 100; }))
        << (*reflector)->counters().received;
  }
  for (uint32_t i = 0; i < 5; ++i) {
    packet.sequence = i;
    neighbour.Send(EncodeSender(packet, StampMode::kUnauthenticated, {}), port);
  }
  ASSERT_TRUE(RunUntil(io, [&] { return neighbour.replies.size() == 5; }));
  RunUntil(
      io, [] { return false; }, 50ms);
  const auto counters = (*reflector)->counters();
  EXPECT_LE(flooder.replies.size(), 30u) << "the flood is cut to the burst and the rate";
  EXPECT_GE(flooder.replies.size(), 10u);
  EXPECT_EQ(counters.rate_limited, 500u - flooder.replies.size());
  EXPECT_EQ(neighbour.replies.size(), 5u);
}

TEST(ProberReflectorLoopback, UnknownTlvComesBackFlaggedUAndAMalformedOneFlaggedMWithTheRestAsIs) {
  boost::asio::io_context io;
  ReflectorConfig config = ReflectorOn();
  config.accept_unauthenticated = true;
  auto reflector = Reflector::Start(io, config);
  ASSERT_TRUE(reflector.ok());
  RawClient client(io, "127.0.0.1");
  SenderPacket packet;
  packet.sequence = 4;
  packet.tlvs.push_back(StampTlv{0, 177, {'h', 'i'}});
  auto bytes = EncodeSender(packet, StampMode::kUnauthenticated, {});
  const size_t malformed_at = bytes.size();
  const std::vector<uint8_t> broken = {0x00, 178, 0x01, 0x00, 1, 2, 3, 4, 5};  // claims 256 octets
  bytes.insert(bytes.end(), broken.begin(), broken.end());
  client.Send(bytes, (*reflector)->port());
  ASSERT_TRUE(RunUntil(io, [&] { return client.replies.size() == 1; }));
  const auto& reply = client.replies[0];
  ASSERT_EQ(reply.size(), bytes.size());
  // The unknown TLV right after the 44-octet base: U set, value as sent.
  EXPECT_EQ(reply[kStampBaseUnauthenticated], kTlvFlagUnrecognized);
  EXPECT_EQ(reply[kStampBaseUnauthenticated + 1], 177);
  EXPECT_EQ(reply[malformed_at], kTlvFlagMalformed);
  EXPECT_TRUE(
      std::equal(broken.begin() + 1, broken.end(), reply.begin() + static_cast<ptrdiff_t>(malformed_at) + 1));
  EXPECT_EQ((*reflector)->counters().malformed_tlv, 1u);
  EXPECT_EQ((*reflector)->counters().malformed, 0u);
}

TEST(ProberReflectorLoopback, UnauthenticatedSendersAreRefusedUnlessAllowed) {
  boost::asio::io_context io;
  auto strict = Reflector::Start(io, ReflectorOn());
  ReflectorConfig lenient_config = ReflectorOn();
  lenient_config.accept_unauthenticated = true;
  auto lenient = Reflector::Start(io, lenient_config);
  ASSERT_TRUE(strict.ok());
  ASSERT_TRUE(lenient.ok());
  RecordingSink sink;
  Prober prober(io, FastProber(StampMode::kUnauthenticated, {}), sink);
  prober.SetTargets({ProbeTarget{"strict", "lab", "", "127.0.0.1", (*strict)->port()},
                     ProbeTarget{"lenient", "lab", "", "127.0.0.1", (*lenient)->port()}});
  ASSERT_TRUE(RunUntil(io, [&] {
    return (*strict)->counters().unauthenticated_refused >= 5 && sink.RepliesFrom("lenient") >= 5;
  }));
  EXPECT_EQ(sink.RepliesFrom("strict"), 0u);
  EXPECT_EQ((*strict)->counters().replied, 0u);
}

TEST(ProberReflectorLoopback, ForgedRepliesAreRejectedAsBadMac) {
  // A "reflector" that answers with an authenticated-shaped packet under the wrong key.
  boost::asio::io_context io;
  boost::asio::ip::udp::socket fake(
      io, boost::asio::ip::udp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
  std::vector<uint8_t> buffer(2048);
  boost::asio::ip::udp::endpoint from;
  std::function<void()> answer = [&] {
    fake.async_receive_from(
        boost::asio::buffer(buffer), from, [&](const boost::system::error_code& ec, size_t n) {
          if (ec) return;
          auto request =
              DecodeSender(std::span<const uint8_t>(buffer.data(), n), StampMode::kAuthenticated, kKey);
          if (request.ok()) {
            ReflectorPacket reply;
            reply.ssid = request.packet->ssid;
            reply.sender_sequence = request.packet->sequence;
            const auto bytes = EncodeReflector(reply, StampMode::kAuthenticated, MacKey(32, 0x01), n);
            fake.send_to(boost::asio::buffer(bytes), from);
          }
          answer();
        });
  };
  answer();
  WindowFolder folder({}, std::chrono::steady_clock::now(), std::chrono::system_clock::now(), {});
  RecordingSink sink(&folder);
  Prober prober(io, FastProber(), sink);
  prober.SetTargets({ProbeTarget{"forger", "lab", "", "127.0.0.1", fake.local_endpoint().port()}});
  ASSERT_TRUE(RunUntil(io, [&] { return sink.rejected().size() >= 5; }));
  EXPECT_TRUE(sink.replies().empty());
  EXPECT_EQ(sink.rejected().front().first, "forger");
  EXPECT_EQ(sink.rejected().front().second, DecodeProblem::kBadMac);
  EXPECT_GE(prober.counters().bad_mac, 5u);
  EXPECT_GE(folder.counters().auth_failures, 5u);
}

TEST(ProberReflectorLoopback, ReplacingTargetsStopsRemovedOnesAndKeepsSessionsOfKeptOnes) {
  boost::asio::io_context io;
  auto reflector = Reflector::Start(io, ReflectorOn());
  ASSERT_TRUE(reflector.ok());
  const uint16_t port = (*reflector)->port();
  RecordingSink sink;
  Prober prober(io, FastProber(), sink);
  const ProbeTarget a{"a", "lab", "", "127.0.0.1", port};
  const ProbeTarget b{"b", "lab", "", "::1", port};
  prober.SetTargets({a, b});
  ASSERT_TRUE(RunUntil(io, [&] { return sink.RepliesFrom("a") >= 5 && sink.RepliesFrom("b") >= 5; }));
  uint16_t ssid_a = 0;
  for (const auto& s : sink.sent()) {
    if (s.peer.node == "a") ssid_a = s.ssid;
  }
  prober.SetTargets({a});
  ASSERT_TRUE(RunUntil(io, [&] { return prober.TargetCount() == 1; }));
  const size_t sent_to_b = sink.SentTo("b");
  const size_t sent_to_a = sink.SentTo("a");
  ASSERT_TRUE(RunUntil(io, [&] { return sink.SentTo("a") >= sent_to_a + 10; }));
  EXPECT_EQ(sink.SentTo("b"), sent_to_b);
  // "a" kept its session: same SSID, sequence numbers continue.
  uint32_t last_seq = 0;
  for (const auto& s : sink.sent()) {
    if (s.peer.node != "a") continue;
    EXPECT_EQ(s.ssid, ssid_a);
    last_seq = s.sequence;
  }
  EXPECT_EQ(last_seq + 1, sink.SentTo("a"));
}

TEST(ProberReflectorLoopback, JitteredScheduleAveragesTheInterval) {
  boost::asio::io_context io;
  auto reflector = Reflector::Start(io, ReflectorOn());
  ASSERT_TRUE(reflector.ok());
  RecordingSink sink;
  ProberConfig config = FastProber();
  config.interval = 20ms;
  config.jitter = 0.1;
  Prober prober(io, config, sink);
  prober.SetTargets({ProbeTarget{"a", "lab", "", "127.0.0.1", (*reflector)->port()}});
  ASSERT_TRUE(RunUntil(io, [&] { return sink.sent().size() >= 26; }));
  std::vector<double> gaps_ms;
  for (size_t i = 1; i < sink.sent().size(); ++i) {
    gaps_ms.push_back(
        std::chrono::duration<double, std::milli>(sink.sent()[i].sent_at - sink.sent()[i - 1].sent_at)
            .count());
  }
  double sum = 0;
  double lo = 1e9;
  double hi = 0;
  for (double g : gaps_ms) {
    sum += g;
    lo = std::min(lo, g);
    hi = std::max(hi, g);
  }
  // Every gap within 18..22 ms plus timer latency; the gaps differ (jitter is applied).
  EXPECT_GE(lo, 17.9);
  EXPECT_LT(sum / static_cast<double>(gaps_ms.size()), 25.0);
  EXPECT_GT(hi - lo, 0.5);
}

// A reflector tells sessions apart by sender address, port and SSID, not by the address
// probed: targets on one host (here 1,000 loopback addresses, one reflector) must each get
// their own SSID, where random draws alone would collide (birthday bound: about 7 pairs).
TEST(ProberReflectorLoopback, TargetsOfOneProberGetDistinctSsids) {
  boost::asio::io_context io;
  auto reflector = Reflector::Start(io, ReflectorOn());
  ASSERT_TRUE(reflector.ok());
  RecordingSink sink;
  ProberConfig config = FastProber();
  config.interval = 100ms;
  Prober prober(io, config, sink);
  std::vector<ProbeTarget> targets;
  for (int i = 0; i < 1000; ++i) {
    targets.push_back(ProbeTarget{"t" + std::to_string(i), "lab", "",
                                  "127.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1),
                                  (*reflector)->port()});
  }
  prober.SetTargets(targets);
  ASSERT_TRUE(RunUntil(io, [&] { return sink.sent().size() >= 1000; }));
  std::map<uint16_t, std::string> owner;
  for (const auto& sent : sink.sent()) {
    const auto [it, inserted] = owner.emplace(sent.ssid, sent.peer.node);
    EXPECT_TRUE(inserted || it->second == sent.peer.node)
        << "SSID " << sent.ssid << " used by " << it->second << " and " << sent.peer.node;
  }
}

TEST(ProberReflectorLoopback, ReflectorBindErrorNamesThePort) {
  boost::asio::io_context io;
  auto first = Reflector::Start(io, ReflectorOn());
  ASSERT_TRUE(first.ok());
  ReflectorConfig config = ReflectorOn((*first)->port());
  config.listen_address = "192.0.2.1";  // not an address of this host
  auto second = Reflector::Start(io, config);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().ToString().find("192.0.2.1"), std::string::npos);
  EXPECT_NE(second.error().ToString().find(std::to_string((*first)->port())), std::string::npos);
}

}  // namespace
}  // namespace regionpulse
