// Window folding from scripted sends and receipts: loss per direction (and loss whose
// direction the sender cannot tell), reordering, duplicates, jitter, kernel RTT checks, traffic
// deltas, replication-flow staleness and outstanding bytes, also of flows whose connections
// vanished.
#include <gtest/gtest.h>

#include "agent/agent_config.h"
#include "agent/window_folder.h"
#include "common/report_validation.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

const MonoTime kT0 = MonoTime(1000s);
const WallTime kW0 = WallTime(1'764'000'000s);
const PeerInfo kPeer{"node-eu-1", "eu-west-1", "eu-west-1a", "10.2.0.5", 862};
constexpr uint16_t kSsid = 77;
const std::string kSource = "10.1.0.7";

// A reflection's sender, from its text.
SenderAddress Sender(const std::string& text) {
  return SenderAddress::Parse(text).value();
}
constexpr uint16_t kSourcePort = 40123;

WindowFolderConfig Config() {
  WindowFolderConfig c;
  c.region_names = {"us-east-1", "eu-west-1"};
  c.flows = {FlowExpectation{"postgres", "eu-west-1", 1'000'000}};
  c.probe_timeout = 800ms;
  return c;
}

// A scripted session: probes sent every 100 ms from a start time, replies by hand.
class Script {
 public:
  explicit Script(WindowFolder& folder, SessionId id = 0) : folder_(folder), id_(id) {
    folder_.OnSession(SessionInfo{id_, kPeer, kSsid, kSource, kSourcePort});
  }
  void Send(uint32_t seq, MonoTime at) {
    sent_at_[seq] = at;
    folder_.OnProbeSent(ProbeSent{id_, seq, at});
  }
  void Reply(uint32_t seq, uint32_t reflector_seq, std::chrono::nanoseconds rtt = 20ms,
             std::optional<KernelStamps> kernel = std::nullopt) {
    folder_.OnProbeReply(ProbeReply{id_, seq, reflector_seq, sent_at_.at(seq) + rtt, kernel, 10us});
  }

 private:
  WindowFolder& folder_;
  SessionId id_;
  std::map<uint32_t, MonoTime> sent_at_;
};

void ExpectValid(const v1::HealthReport& report) {
  const auto problems = ReportProblems(report);
  EXPECT_TRUE(problems.empty()) << problems.front();
}

// The largest plan an agent accepts by default, one path per target, is a report the agent
// sends and the aggregator accepts (a 5,000-target plan once made reports of 5,000 paths that
// the 4,096-path limit refused, so the agent refused its own reports).
TEST(WindowFolder, ThePathsOfTheLargestDefaultPlanFitInAValidReport) {
  const size_t targets = AgentConfig{}.probe.plan_max_targets;
  WindowFolder folder(Config(), kT0, kW0, {});
  for (size_t i = 0; i < targets; ++i) {
    PeerInfo peer = kPeer;
    peer.node = "node-eu-" + std::to_string(i);
    peer.address = "10.2." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    const auto id = static_cast<SessionId>(i);
    folder.OnSession(SessionInfo{id, peer, static_cast<uint16_t>(i + 1), kSource, kSourcePort});
    folder.OnProbeSent(ProbeSent{id, 0, kT0 + 100ms});
    folder.OnProbeReply(ProbeReply{id, 0, 0, kT0 + 120ms, std::nullopt, 10us});
  }
  EXPECT_TRUE(folder.CloseWindow(kT0 + 1s, kW0 + 1s, {}).empty());  // until its probes settle
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(static_cast<size_t>(reports[0].paths_size()), targets);
  ExpectValid(reports[0]);
}

TEST(WindowFolder, ReportComesOutOnceItsProbesHaveSettled) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  s.Send(0, kT0 + 950ms);
  EXPECT_TRUE(folder.CloseWindow(kT0 + 1s, kW0 + 1s, {}).empty());
  EXPECT_EQ(folder.PendingWindows(), 1u);
  s.Reply(0, 0, 30ms);
  auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].sequence(), 1u);
  EXPECT_EQ(reports[0].window_start().seconds(), 1'764'000'000);
  EXPECT_EQ(reports[0].window_end().seconds(), 1'764'000'001);
  ASSERT_EQ(reports[0].paths_size(), 1);
  EXPECT_EQ(reports[0].paths(0).probes_sent(), 1u);
  EXPECT_EQ(reports[0].paths(0).received_reverse(), 1u);
  ExpectValid(reports[0]);
  // The next window (nothing probed) follows with the next sequence.
  reports = folder.CloseWindow(kT0 + 3s, kW0 + 3s, {});
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].sequence(), 2u);
  ExpectValid(reports[0]);
}

TEST(WindowFolder, LossPerDirectionFromTheReflectorsNumbering) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  for (uint32_t seq = 0; seq < 10; ++seq) s.Send(seq, kT0 + seq * 100ms);
  // Probes 2 and 5 never reach the reflector; the reply to 7 is lost on the way back.
  s.Reply(0, 0);
  s.Reply(1, 1);
  s.Reply(3, 2);
  s.Reply(4, 3);
  s.Reply(6, 4);
  // 7 -> reflector 5, reply lost
  s.Reply(8, 6);
  s.Reply(9, 7);
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  const auto& path = reports[0].paths(0);
  EXPECT_EQ(path.peer_node(), "node-eu-1");
  EXPECT_EQ(path.peer_region(), "eu-west-1");
  EXPECT_EQ(path.probes_sent(), 10u);
  EXPECT_EQ(path.received_forward(), 8u);
  EXPECT_EQ(path.received_reverse(), 7u);
  EXPECT_DOUBLE_EQ(path.loss_forward(), 0.2);
  EXPECT_DOUBLE_EQ(path.loss_reverse(), 1.0 / 8);
  EXPECT_EQ(path.rtt_user().min_ns(), 20'000'000u);
  ExpectValid(reports[0]);
}

TEST(WindowFolder, OnlyReverseLossWhenEveryProbeArrivedButRepliesVanished) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  for (uint32_t seq = 0; seq < 10; ++seq) s.Send(seq, kT0 + seq * 100ms);
  // The reflector saw all ten (its numbering has no gaps); every other reply is lost.
  for (uint32_t seq = 0; seq < 10; seq += 2) s.Reply(seq, seq);
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  s.Send(10, kT0 + 1s);  // the next window's first probe is answered
  s.Reply(10, 10);
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].paths(0).received_forward(), 10u);
  EXPECT_EQ(reports[0].paths(0).received_reverse(), 5u);
  EXPECT_DOUBLE_EQ(reports[0].paths(0).loss_forward(), 0.0);
  EXPECT_DOUBLE_EQ(reports[0].paths(0).loss_reverse(), 0.5);
}

TEST(WindowFolder, GapAcrossAWindowBoundaryKeepsTheTotalsExact) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  s.Send(0, kT0 + 700ms);
  s.Send(1, kT0 + 800ms);  // reaches the reflector, reply lost
  s.Send(2, kT0 + 900ms);  // reaches the reflector, reply lost
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  s.Send(3, kT0 + 1000ms);  // lost on the way out
  s.Send(4, kT0 + 1100ms);
  s.Reply(0, 0);
  s.Reply(4, 3);  // the reflector received 0, 1, 2, 4: two of the three unanswered arrived
  auto first = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  auto second = folder.CloseWindow(kT0 + 3s, kW0 + 3s, {});
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(first[0].paths(0).probes_sent(), 3u);
  EXPECT_EQ(first[0].paths(0).received_forward(), 3u);
  EXPECT_EQ(first[0].paths(0).received_reverse(), 1u);
  EXPECT_EQ(second[0].paths(0).probes_sent(), 2u);
  EXPECT_EQ(second[0].paths(0).received_forward(), 1u);
  EXPECT_EQ(second[0].paths(0).received_reverse(), 1u);
}

TEST(WindowFolder, UnansweredTailWithNoLaterEvidenceHasAnUnknownDirection) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  for (uint32_t seq = 0; seq < 4; ++seq) s.Send(seq, kT0 + seq * 100ms);
  s.Reply(0, 0);
  s.Reply(1, 1);
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  const auto& path = reports[0].paths(0);
  EXPECT_EQ(path.probes_sent(), 4u);
  EXPECT_EQ(path.received_forward(), 2u);
  EXPECT_EQ(path.received_reverse(), 2u);
  // Probes 2 and 3 may have died on the way out or their replies on the way back: neither
  // figure claims them.
  EXPECT_EQ(path.lost_direction_unknown(), 2u);
  EXPECT_DOUBLE_EQ(path.loss_forward(), 0.0);
  EXPECT_DOUBLE_EQ(path.loss_reverse(), 0.0);
  ExpectValid(reports[0]);
}

// The sender's view of total reverse loss (every probe reflected, every reply dropped) and of
// total forward loss (no probe reaches the reflector) is the same: nothing comes back. Neither
// may be reported as forward loss; both are all unknown.
TEST(WindowFolder, TotalLossEitherWayIsAllUnknownForTheSenderAlone) {
  for (const char* scenario : {"every reply lost", "every probe lost"}) {
    SCOPED_TRACE(scenario);
    WindowFolder folder(Config(), kT0, kW0, {});
    Script s(folder);
    for (uint32_t seq = 0; seq < 10; ++seq) s.Send(seq, kT0 + seq * 100ms);
    folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
    const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
    ASSERT_EQ(reports.size(), 1u);
    const auto& path = reports[0].paths(0);
    EXPECT_EQ(path.probes_sent(), 10u);
    EXPECT_EQ(path.lost_direction_unknown(), 10u);
    EXPECT_EQ(path.received_forward(), 0u);
    EXPECT_EQ(path.received_reverse(), 0u);
    EXPECT_DOUBLE_EQ(path.loss_forward(), 0.0);
    EXPECT_DOUBLE_EQ(path.loss_reverse(), 0.0);
    ExpectValid(reports[0]);
  }
}

TEST(WindowFolder, GapFollowedByAnAnsweredProbeStillSplitsExactly) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  for (uint32_t seq = 0; seq < 6; ++seq) s.Send(seq, kT0 + seq * 100ms);
  s.Reply(0, 0);
  // 1..4 unanswered; the reply to 5 is the reflector's third: two of the four reached it.
  s.Reply(5, 3);
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  const auto& path = reports[0].paths(0);
  EXPECT_EQ(path.probes_sent(), 6u);
  EXPECT_EQ(path.received_forward(), 4u);
  EXPECT_EQ(path.received_reverse(), 2u);
  EXPECT_EQ(path.lost_direction_unknown(), 0u);
  EXPECT_DOUBLE_EQ(path.loss_forward(), 2.0 / 6);
  EXPECT_DOUBLE_EQ(path.loss_reverse(), 2.0 / 4);
  ExpectValid(reports[0]);
}

// Evidence counts only while the window is still open for settlement: a reply that arrives
// after its window was reported cannot change that report, so the probes it would have
// explained stay unknown there.
TEST(WindowFolder, AnswerAfterTheWindowSettledLeavesTheGapUnknown) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  s.Send(0, kT0 + 100ms);
  s.Send(1, kT0 + 200ms);
  s.Send(2, kT0 + 300ms);
  s.Reply(0, 0);
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  s.Send(3, kT0 + 1900ms);
  const auto first = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].paths(0).lost_direction_unknown(), 2u);
  EXPECT_EQ(first[0].paths(0).received_forward(), 1u);
  s.Reply(3, 3);  // the reflector had seen 1 and 2: too late for the first report
  const auto second = folder.CloseWindow(kT0 + 3s, kW0 + 3s, {});
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].paths(0).probes_sent(), 1u);
  EXPECT_EQ(second[0].paths(0).received_reverse(), 1u);
  EXPECT_EQ(second[0].paths(0).lost_direction_unknown(), 0u);
  ExpectValid(second[0]);
}

TEST(WindowFolder, PathNamesTheSessionAndSourceItsProbesLeaveFrom) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  s.Send(0, kT0 + 100ms);
  s.Reply(0, 0);
  // The target was re-planned within the window: a new session from a new socket port.
  folder.OnSession(SessionInfo{1, kPeer, 99, "10.1.0.8", 40200});
  folder.OnProbeSent(ProbeSent{1, 0, kT0 + 200ms});
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  const auto& path = reports[0].paths(0);
  EXPECT_EQ(path.probes_sent(), 2u);
  EXPECT_EQ(path.ssid(), 99u) << "the newest session";
  EXPECT_EQ(path.source().address(), "10.1.0.8");
  EXPECT_EQ(path.source().port(), 40200u);
  ExpectValid(reports[0]);
}

// The prober names sessions by small ids and reuses one after OnSessionEnded: the id then
// names a new session (another peer here), while the ended one's probes still settle into its
// own path. Paths come out in peer node order whatever the ids.
TEST(WindowFolder, ASessionIdReusedAfterItsEndNamesANewSession) {
  WindowFolder folder(Config(), kT0, kW0, {});
  const PeerInfo other{"node-ap-1", "eu-west-1", "eu-west-1b", "10.2.0.9", 862};
  folder.OnSession(SessionInfo{3, kPeer, kSsid, kSource, kSourcePort});
  folder.OnProbeSent(ProbeSent{3, 0, kT0 + 100ms});
  folder.OnProbeReply(ProbeReply{3, 0, 0, kT0 + 120ms, std::nullopt, 10us});
  folder.OnProbeSent(ProbeSent{3, 1, kT0 + 200ms});  // never answered
  folder.OnSessionEnded(3);
  folder.OnSession(SessionInfo{3, other, 5, kSource, kSourcePort});
  folder.OnProbeSent(ProbeSent{3, 0, kT0 + 300ms});
  folder.OnProbeReply(ProbeReply{3, 0, 0, kT0 + 330ms, std::nullopt, 10us});
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  ASSERT_EQ(reports[0].paths_size(), 2);
  const auto& first = reports[0].paths(0);
  const auto& second = reports[0].paths(1);
  EXPECT_EQ(first.peer_node(), "node-ap-1");
  EXPECT_EQ(first.ssid(), 5u);
  EXPECT_EQ(first.probes_sent(), 1u);
  EXPECT_EQ(first.received_reverse(), 1u);
  EXPECT_EQ(second.peer_node(), "node-eu-1");
  EXPECT_EQ(second.ssid(), kSsid);
  EXPECT_EQ(second.probes_sent(), 2u);
  EXPECT_EQ(second.received_reverse(), 1u);
  EXPECT_EQ(second.lost_direction_unknown(), 1u);
  ExpectValid(reports[0]);
}

// A session's source address, re-read by the prober, reaches the path of the window it changed
// in, without being sent with every probe.
TEST(WindowFolder, ASessionsNewSourceReachesThePathOfItsWindow) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  s.Send(0, kT0 + 100ms);
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  folder.OnSession(SessionInfo{0, kPeer, kSsid, "10.1.0.99", kSourcePort});
  s.Send(1, kT0 + 1100ms);
  const auto first = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  const auto second = folder.CloseWindow(kT0 + 3s, kW0 + 3s, {});
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(first[0].paths(0).source().address(), kSource);
  EXPECT_EQ(second[0].paths(0).source().address(), "10.1.0.99");
}

// This node as the reflector: what it received from each sender session, in the window open
// when it arrived, for the aggregator to read against the senders' paths.
TEST(WindowFolder, ReflectorCountsWhatEachSenderSessionSentItPerWindow) {
  WindowFolder folder(Config(), kT0, kW0, {});
  for (int i = 0; i < 5; ++i) folder.OnProbeReflected(ProbeReflected{Sender("10.3.0.9"), 40000, 5, true});
  folder.OnProbeReflected(ProbeReflected{Sender("10.3.0.9"), 40000, 5, false});  // the reply's send failed
  folder.OnProbeReflected(
      ProbeReflected{Sender("fd00:3::9"), 40001, 5, true});  // another family: another socket
  folder.OnProbeReflected(ProbeReflected{Sender("10.3.0.9"), 40000, 6, true});  // re-planned: a new SSID
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  folder.OnProbeReflected(ProbeReflected{Sender("10.3.0.9"), 40000, 6, true});  // the next window's
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  const auto& reflected = reports[0].reflected();
  ASSERT_EQ(reflected.size(), 3);
  EXPECT_EQ(reflected[0].sender().address(), "10.3.0.9");
  EXPECT_EQ(reflected[0].sender().port(), 40000u);
  EXPECT_EQ(reflected[0].ssid(), 5u);
  EXPECT_EQ(reflected[0].received(), 6u);
  EXPECT_EQ(reflected[0].replied(), 5u);
  EXPECT_EQ(reflected[1].ssid(), 6u);
  EXPECT_EQ(reflected[1].received(), 1u);
  EXPECT_EQ(reflected[2].sender().address(), "fd00:3::9");
  EXPECT_EQ(reflected[2].received(), 1u);
  EXPECT_EQ(reports[0].status().reflected_senders_dropped(), 0u);
  ExpectValid(reports[0]);
  const auto next = folder.CloseWindow(kT0 + 3s, kW0 + 3s, {});
  ASSERT_EQ(next.size(), 1u);
  ASSERT_EQ(next[0].reflected_size(), 1);
  EXPECT_EQ(next[0].reflected(0).received(), 1u);
}

// Probes the reflector refused are counted per sender session and reason beside the ones it
// answered: the aggregator takes them out of that sender's loss.
TEST(WindowFolder, ReflectorCountsWhatItRefusedPerSenderSessionAndReason) {
  WindowFolder folder(Config(), kT0, kW0, {});
  folder.OnProbeReflected(ProbeReflected{Sender("10.3.0.9"), 40000, 5, true});
  for (int i = 0; i < 3; ++i) {
    folder.OnProbeRefused(ProbeRefused{Sender("10.3.0.9"), 40000, 5, ProbeRefusal::kRateLimited});
  }
  for (int i = 0; i < 4; ++i) {
    folder.OnProbeRefused(ProbeRefused{Sender("10.3.0.8"), 40000, 2, ProbeRefusal::kWrongKey});
  }
  folder.OnProbeRefused(ProbeRefused{Sender("10.3.0.8"), 40000, 2, ProbeRefusal::kStaleTimestamp});
  folder.OnProbeRefused(ProbeRefused{Sender("10.3.0.8"), 40000, 2, ProbeRefusal::kReplayed});
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  const auto& reflected = reports[0].reflected();
  ASSERT_EQ(reflected.size(), 2);
  // Only refused: listed, with nothing received.
  EXPECT_EQ(reflected[0].sender().address(), "10.3.0.8");
  EXPECT_EQ(reflected[0].ssid(), 2u);
  EXPECT_EQ(reflected[0].received(), 0u);
  EXPECT_EQ(reflected[0].refused_wrong_key(), 4u);
  EXPECT_EQ(reflected[0].refused_stale_timestamp(), 1u);
  EXPECT_EQ(reflected[0].refused_replayed(), 1u);
  EXPECT_EQ(reflected[0].refused_rate_limited(), 0u);
  EXPECT_EQ(reflected[1].sender().address(), "10.3.0.9");
  EXPECT_EQ(reflected[1].received(), 1u);
  EXPECT_EQ(reflected[1].refused_rate_limited(), 3u);
  EXPECT_EQ(reflected[1].refused_wrong_key(), 0u);
  ExpectValid(reports[0]);
}

// A refused packet may name any session (nothing in it was verified): refusals alone open no
// more sessions than a report carries, and an answered session always outranks them.
TEST(WindowFolder, RefusalsCannotCrowdOutTheSessionsTheReflectorAnswered) {
  auto config = Config();
  config.max_reflected_senders = 2;
  WindowFolder folder(config, kT0, kW0, {});
  for (int port = 0; port < 10; ++port) {
    for (int i = 0; i < 50; ++i) {
      folder.OnProbeRefused(ProbeRefused{Sender("10.3.0.66"), static_cast<uint16_t>(30000 + port), 1,
                                         ProbeRefusal::kRateLimited});
    }
  }
  folder.OnProbeReflected(ProbeReflected{Sender("10.3.0.1"), 40000, 1, true});
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  ASSERT_EQ(reports[0].reflected_size(), 2);
  bool answered_listed = false;
  for (const auto& entry : reports[0].reflected()) answered_listed |= entry.sender().address() == "10.3.0.1";
  EXPECT_TRUE(answered_listed);
  EXPECT_EQ(folder.counters().refusals_untracked, 8u * 50u);
  ExpectValid(reports[0]);
}

// A report carries at most max_reflected_senders entries: the busiest sessions (probers send
// steadily, strays rarely); the rest are counted, cumulatively, in the status.
TEST(WindowFolder, ReflectedEntriesAreBoundedKeepingTheBusiestAndCountingTheRest) {
  auto config = Config();
  config.max_reflected_senders = 2;
  WindowFolder folder(config, kT0, kW0, {});
  const std::vector<std::pair<std::string, int>> senders = {
      {"10.3.0.1", 1}, {"10.3.0.2", 9}, {"10.3.0.3", 3}, {"10.3.0.4", 7}};
  for (const auto& [address, probes] : senders) {
    for (int i = 0; i < probes; ++i) folder.OnProbeReflected(ProbeReflected{Sender(address), 40000, 1, true});
  }
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  folder.OnProbeReflected(ProbeReflected{Sender("10.3.0.1"), 40000, 1, true});
  folder.OnProbeReflected(ProbeReflected{Sender("10.3.0.2"), 40000, 1, true});
  folder.OnProbeReflected(ProbeReflected{Sender("10.3.0.3"), 40000, 1, true});
  auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  ASSERT_EQ(reports[0].reflected_size(), 2);
  EXPECT_EQ(reports[0].reflected(0).sender().address(), "10.3.0.2");
  EXPECT_EQ(reports[0].reflected(0).received(), 9u);
  EXPECT_EQ(reports[0].reflected(1).sender().address(), "10.3.0.4");
  EXPECT_EQ(reports[0].status().reflected_senders_dropped(), 2u);
  ExpectValid(reports[0]);
  reports = folder.CloseWindow(kT0 + 3s, kW0 + 3s, {});
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].reflected_size(), 2);
  EXPECT_EQ(reports[0].status().reflected_senders_dropped(), 3u) << "since start";
}

// A flood of distinct senders (only possible with unauthenticated probes allowed) cannot grow
// the folder without bound: beyond kReflectedSessionsTracked per entry a window stops telling
// sessions apart, and each probe of an untracked one counts as dropped.
TEST(WindowFolder, AFloodOfSendersIsTrackedOnlyUpToItsBound) {
  auto config = Config();
  config.max_reflected_senders = 1;
  WindowFolder folder(config, kT0, kW0, {});
  const size_t tracked = kReflectedSessionsTracked;
  for (size_t i = 0; i < tracked + 5; ++i) {
    folder.OnProbeReflected(ProbeReflected{Sender("10.3.0.1"), static_cast<uint16_t>(30000 + i), 1, true});
  }
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].reflected_size(), 1);
  EXPECT_EQ(reports[0].status().reflected_senders_dropped(), (tracked - 1) + 5);
  ExpectValid(reports[0]);
}

TEST(WindowFolder, ReorderedAndDuplicateRepliesAreCounted) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  for (uint32_t seq = 0; seq < 5; ++seq) s.Send(seq, kT0 + seq * 100ms);
  s.Reply(0, 0);
  s.Reply(1, 1);
  s.Reply(3, 3, 20ms);
  s.Reply(2, 2, 150ms);  // arrives after the reply to 3
  s.Reply(1, 1);         // the same reply again
  s.Reply(4, 4);
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  const auto& path = reports[0].paths(0);
  EXPECT_EQ(path.reordered(), 1u);
  EXPECT_EQ(path.duplicates(), 1u);
  // Neither reordering nor a duplicate is loss.
  EXPECT_EQ(path.received_forward(), 5u);
  EXPECT_EQ(path.received_reverse(), 5u);
  EXPECT_EQ(path.rtt_user().bucket_count_size() > 0, true);
  uint64_t samples = 0;
  for (auto c : path.rtt_user().bucket_count()) samples += c;
  EXPECT_EQ(samples, 5u);
}

TEST(WindowFolder, ReplyAfterTheTimeoutIsLateAndCountsAsLost) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  s.Send(0, kT0);
  s.Send(1, kT0 + 100ms);
  s.Reply(0, 0, 900ms);  // timeout is 800 ms
  s.Reply(1, 1, 10ms);
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].paths(0).received_reverse(), 1u);
  EXPECT_EQ(folder.counters().late_replies, 1u);
}

TEST(WindowFolder, ReplyForAnAlreadyReportedProbeIsLate) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  s.Send(0, kT0);
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  ASSERT_EQ(folder.CloseWindow(kT0 + 2s, kW0 + 2s, {}).size(), 1u);
  s.Reply(0, 0, 2500ms);
  EXPECT_EQ(folder.counters().late_replies, 1u);
  EXPECT_EQ(folder.counters().unknown_replies, 0u);
}

TEST(Jitter, FollowsRfc3550) {
  JitterEstimator j;
  j.Add(10ms);
  EXPECT_FALSE(j.HasValue());
  j.Add(12ms);  // |D| = 2 ms: J = 2 ms / 16
  EXPECT_EQ(j.Value(), 125us);
  j.Add(10ms);  // |D| = 2 ms: J += (2 ms - J) / 16
  EXPECT_EQ(j.Value().count(), 242'187);
  j.Add(10ms);  // |D| = 0
  EXPECT_EQ(j.Value().count(), static_cast<int64_t>(242'187.5 * 15 / 16));
}

TEST(WindowFolder, PathJitterIsTheEstimatorsValueAtWindowEnd) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  const std::vector<std::chrono::nanoseconds> rtts = {10ms, 12ms, 10ms, 14ms};
  JitterEstimator expected;
  for (uint32_t seq = 0; seq < rtts.size(); ++seq) {
    s.Send(seq, kT0 + seq * 100ms);
    s.Reply(seq, seq, rtts[seq]);
    expected.Add(rtts[seq]);
  }
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].paths(0).jitter().nanos(), expected.Value().count());
}

TEST(KernelRtt, NetworkTimeExcludesTheReflectorResidence) {
  const KernelStamps k{0, {1'000'000, 1'400'000, 1'500'000, 2'000'000}};
  auto check = CheckKernelRtt(k, std::nullopt, 2ms);
  EXPECT_EQ(check.outcome, KernelRttCheck::Outcome::kAccepted);
  EXPECT_EQ(check.rtt, 900us);  // (2.0 - 1.0) - (1.5 - 1.4) ms
}

TEST(KernelRtt, ForeignReflectorTurnaroundStandsInForT2T3) {
  const KernelStamps k{0, {1'000'000, 0, 0, 2'000'000}};
  auto check = CheckKernelRtt(k, 300us, 2ms);
  EXPECT_EQ(check.outcome, KernelRttCheck::Outcome::kAccepted);
  EXPECT_EQ(check.rtt, 700us);
}

TEST(KernelRtt, NoStampsNoFigure) {
  EXPECT_EQ(CheckKernelRtt(std::nullopt, 1us, 1ms).outcome, KernelRttCheck::Outcome::kNone);
  EXPECT_EQ(CheckKernelRtt(KernelStamps{}, 1us, 1ms).outcome, KernelRttCheck::Outcome::kNone);
}

TEST(KernelRtt, LargerThanUserRttOrNotPositiveIsRejected) {
  const KernelStamps longer{0, {1'000'000, 1'100'000, 1'200'000, 5'000'000}};
  EXPECT_EQ(CheckKernelRtt(longer, std::nullopt, 2ms).outcome, KernelRttCheck::Outcome::kRejected);
  const KernelStamps negative{0, {1'000'000, 1'000'000, 3'000'000, 2'000'000}};
  EXPECT_EQ(CheckKernelRtt(negative, std::nullopt, 2ms).outcome, KernelRttCheck::Outcome::kRejected);
}

TEST(WindowFolder, KernelRttsGoToTheirOwnHistogramAndImplausibleOnesAreCounted) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  s.Send(0, kT0);
  s.Send(1, kT0 + 100ms);
  s.Reply(0, 0, 2ms, KernelStamps{0, {1'000'000, 1'400'000, 1'500'000, 2'000'000}});
  s.Reply(1, 1, 2ms, KernelStamps{0, {1'000'000, 1'100'000, 1'200'000, 9'000'000}});
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  const auto& path = reports[0].paths(0);
  EXPECT_EQ(path.kernel_stamps_rejected(), 1u);
  EXPECT_EQ(path.rtt_kernel().min_ns(), 900'000u);
  EXPECT_EQ(path.rtt_kernel().max_ns(), 900'000u);
  EXPECT_EQ(path.rtt_user().max_ns(), 2'000'000u);
}

TEST(WindowFolder, BadMacRepliesAreCountedOnTheirPath) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  s.Send(0, kT0);
  folder.OnReplyRejected(kPeer.node, DecodeProblem::kBadMac, kT0 + 1ms);
  folder.OnReplyRejected("someone-else", DecodeProblem::kBadMac, kT0 + 1ms);
  s.Reply(0, 0);
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports[0].paths_size(), 1);
  EXPECT_EQ(reports[0].paths(0).auth_failures(), 1u);
  EXPECT_EQ(folder.counters().auth_failures, 2u);
}

TEST(WindowFolder, DrainLeavesProbesInFlightOut) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  s.Send(0, kT0 + 100ms);
  s.Reply(0, 0);
  s.Send(1, kT0 + 900ms);  // in flight at shutdown
  const auto reports = folder.Drain(kT0 + 950ms, kW0 + 950ms, {});
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].paths(0).probes_sent(), 1u);
  EXPECT_DOUBLE_EQ(reports[0].paths(0).loss_forward(), 0.0);
  ExpectValid(reports[0]);
}

TEST(WindowFolder, TrafficIsTheDeltaOfCumulativeCountersPerRegion) {
  DatapathSnapshot baseline;
  baseline.regions[2].tx_bytes = 1000;
  baseline.regions[2].tcp_retransmits = 1;
  WindowFolder folder(Config(), kT0, kW0, baseline);
  DatapathSnapshot one = baseline;
  one.regions[2].tx_bytes = 1500;
  one.regions[2].rx_packets = 4;
  one.regions[2].tcp_retransmits = 4;
  one.regions[2].tcp_srtt_us_sum = 30'000;
  one.regions[2].tcp_srtt_samples = 3;
  one.regions[1] = {};  // own region, silent: left out
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, one);
  DatapathSnapshot two = one;
  two.regions[2].tx_bytes = 100;  // the datapath restarted its counters
  auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, two);
  ASSERT_EQ(reports.size(), 1u);
  ASSERT_EQ(reports[0].traffic_size(), 1);
  const auto& t = reports[0].traffic(0);
  EXPECT_EQ(t.remote_region(), "eu-west-1");
  EXPECT_EQ(t.tx_bytes(), 500u);
  EXPECT_EQ(t.rx_packets(), 4u);
  EXPECT_EQ(t.tcp_retransmits(), 3u);
  EXPECT_EQ(t.tcp_srtt().nanos(), 10'000'000);
  reports = folder.CloseWindow(kT0 + 3s, kW0 + 3s, two);
  ASSERT_EQ(reports.size(), 1u);
  ASSERT_EQ(reports[0].traffic_size(), 1);
  EXPECT_EQ(reports[0].traffic(0).tx_bytes(), 100u);
}

TEST(WindowFolder, FlowStalenessIsTimeSinceAckedBytesLastAdvancedWhileDataWasOutstanding) {
  auto flow = [](uint64_t acked, bool outstanding, MonoTime last_progress) {
    FlowCounters f;
    f.name = "postgres";
    f.remote_region = 2;
    f.bytes_acked = acked;
    f.data_outstanding = outstanding;
    f.last_progress_ns = static_cast<uint64_t>(last_progress.time_since_epoch().count());
    f.connections = 1;
    return f;
  };
  DatapathSnapshot snap;
  snap.flows = {flow(100, true, kT0)};
  WindowFolder folder(Config(), kT0, kW0, snap);
  std::vector<v1::HealthReport> reports;
  auto close = [&](std::chrono::nanoseconds at, FlowCounters f) {
    snap.flows = {f};
    for (auto& r : folder.CloseWindow(kT0 + at, kW0 + at, snap)) reports.push_back(r);
  };
  close(1s, flow(200, true, kT0 + 500ms));   // moved during the window: 0
  close(2s, flow(200, true, kT0 + 500ms));   // stuck with data outstanding: 1.5 s
  close(3s, flow(200, true, kT0 + 500ms));   // still stuck: 2.5 s
  close(4s, flow(200, false, kT0 + 500ms));  // idle, nothing outstanding: 0
  for (auto& r : folder.Drain(kT0 + 4s + 1ms, kW0 + 4s + 1ms, snap)) reports.push_back(r);
  ASSERT_GE(reports.size(), 4u);
  for (const auto& r : reports) {
    ASSERT_EQ(r.flows_size(), 1);
    ExpectValid(r);
  }
  EXPECT_EQ(reports[0].flows(0).bytes_acked(), 100u);
  EXPECT_EQ(reports[0].flows(0).last_progress_age().seconds(), 0);
  EXPECT_EQ(reports[0].flows(0).last_progress_age().nanos(), 0);
  EXPECT_EQ(reports[0].flows(0).expected_min_rate_bps(), 1'000'000u);
  EXPECT_EQ(reports[1].flows(0).last_progress_age().seconds(), 1);
  EXPECT_EQ(reports[1].flows(0).last_progress_age().nanos(), 500'000'000);
  EXPECT_EQ(reports[2].flows(0).last_progress_age().seconds(), 2);
  EXPECT_EQ(reports[2].flows(0).last_progress_age().nanos(), 500'000'000);
  EXPECT_EQ(reports[3].flows(0).last_progress_age().seconds(), 0);
  EXPECT_EQ(reports[3].flows(0).last_progress_age().nanos(), 0);
}

TEST(WindowFolder, FlowThatNeverProgressedAgesFromWhenItWasFirstSeenStuck) {
  FlowCounters f;
  f.name = "postgres";
  f.data_outstanding = true;  // last_progress_ns = 0: never moved
  f.bytes_outstanding = 4096;
  f.connections = 1;
  DatapathSnapshot snap;
  snap.flows = {f};
  WindowFolder folder(Config(), kT0, kW0, snap);
  std::vector<v1::HealthReport> reports;
  for (int i = 1; i <= 3; ++i) {
    for (auto& r : folder.CloseWindow(kT0 + i * 1s, kW0 + i * 1s, snap)) reports.push_back(r);
  }
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].flows(0).last_progress_age().seconds(), 1);
  EXPECT_EQ(reports[1].flows(0).last_progress_age().seconds(), 2);
  EXPECT_EQ(reports[1].flows(0).bytes_outstanding(), 4096u);
}

// Scripted readings of one flow, window after window, and the reports they give.
class FlowScript {
 public:
  FlowScript() : folder_(Config(), kT0, kW0, {}) {}
  // The reading at the end of the window closing at kT0 + `at`.
  void Close(std::chrono::nanoseconds at, uint32_t connections, uint64_t acked_total, uint64_t outstanding,
             std::optional<std::chrono::nanoseconds> last_progress = std::nullopt) {
    FlowCounters f;
    f.name = "postgres";
    f.remote_region = 2;
    f.connections = connections;
    f.bytes_acked = acked_total;
    f.data_outstanding = outstanding > 0;
    f.bytes_outstanding = outstanding;
    if (last_progress)
      f.last_progress_ns = static_cast<uint64_t>((kT0 + *last_progress).time_since_epoch().count());
    DatapathSnapshot snap;
    snap.flows = {f};
    for (auto& r : folder_.CloseWindow(kT0 + at, kW0 + at, snap)) reports_.push_back(std::move(r));
  }
  // last_progress_age of the report of the window that ended at kT0 + `window_end`.
  double AgeSeconds(int window_end) const {
    const auto& flow = reports_.at(static_cast<size_t>(window_end - 1)).flows(0);
    EXPECT_TRUE(ReportProblems(reports_.at(static_cast<size_t>(window_end - 1))).empty());
    return static_cast<double>(flow.last_progress_age().seconds()) + flow.last_progress_age().nanos() / 1e9;
  }
  uint64_t Outstanding(int window_end) const {
    return reports_.at(static_cast<size_t>(window_end - 1)).flows(0).bytes_outstanding();
  }

 private:
  WindowFolder folder_;
  std::vector<v1::HealthReport> reports_;
};

TEST(WindowFolder, FlowReportsItsOutstandingBytes) {
  FlowScript flow;
  flow.Close(1s, 1, 100, 0, 500ms);
  flow.Close(2s, 1, 200, 65536, 1500ms);
  flow.Close(3s, 1, 200, 0, 1500ms);
  EXPECT_EQ(flow.Outstanding(1), 0u);
  EXPECT_EQ(flow.Outstanding(2), 65536u);
  EXPECT_EQ(flow.AgeSeconds(2), 0.0) << "it moved in that window";
}

// The lab's "replica stopped": the connection goes away. Not idle: stale from when it was last
// seen alive, and ever more so until a connection is back.
TEST(WindowFolder, FlowWhoseConnectionsVanishedIsStaleFromWhenTheyWereLastSeen) {
  FlowScript flow;
  flow.Close(1s, 1, 100, 0, 500ms);  // moving, then idle with nothing outstanding
  flow.Close(2s, 1, 100, 0, 500ms);  // idle
  flow.Close(3s, 0, 100, 0, 500ms);  // gone
  flow.Close(4s, 0, 100, 0, 500ms);
  flow.Close(5s, 1, 100, 0, 500ms);  // back, idle
  flow.Close(6s, 1, 100, 0, 500ms);
  EXPECT_EQ(flow.AgeSeconds(2), 0.0);
  EXPECT_EQ(flow.AgeSeconds(3), 1.0) << "last seen at the reading of 2 s";
  EXPECT_EQ(flow.AgeSeconds(4), 2.0);
  EXPECT_EQ(flow.Outstanding(4), 0u);
  EXPECT_EQ(flow.AgeSeconds(5), 0.0) << "a connection is back";
}

TEST(WindowFolder, FlowThatMovedJustBeforeItsConnectionsVanishedIsStaleFromThatProgress) {
  FlowScript flow;
  flow.Close(1s, 1, 0, 0);
  flow.Close(2s, 0, 300, 0, 1700ms);  // a last burst at 1.7 s, acknowledged, then closed
  flow.Close(3s, 0, 300, 0, 1700ms);
  flow.Close(4s, 0, 300, 0, 1700ms);
  EXPECT_NEAR(flow.AgeSeconds(2), 0.3, 1e-9);
  EXPECT_NEAR(flow.AgeSeconds(3), 1.3, 1e-9);
}

// Data was waiting when the connections went (the replica was already behind): the staleness
// counts from its last acknowledged progress, and what was never acknowledged stays reported.
TEST(WindowFolder, FlowThatVanishedWithDataOutstandingIsStaleFromItsLastProgress) {
  FlowScript flow;
  flow.Close(1s, 1, 100, 8192, 400ms);
  flow.Close(2s, 1, 100, 8192, 400ms);  // stuck: 1.6 s
  flow.Close(3s, 0, 100, 0, 400ms);     // reset
  flow.Close(4s, 0, 100, 0, 400ms);
  flow.Close(5s, 0, 100, 0, 400ms);
  EXPECT_NEAR(flow.AgeSeconds(2), 1.6, 1e-9);
  EXPECT_NEAR(flow.AgeSeconds(3), 2.6, 1e-9);
  EXPECT_NEAR(flow.AgeSeconds(4), 3.6, 1e-9);
  EXPECT_EQ(flow.Outstanding(3), 8192u);
  EXPECT_EQ(flow.Outstanding(4), 8192u);
}

TEST(WindowFolder, FlowConnectedWhenTheFolderStartedIsStaleOnceItsConnectionsVanish) {
  FlowCounters f;
  f.name = "postgres";
  f.connections = 1;
  DatapathSnapshot baseline;
  baseline.flows = {f};
  WindowFolder folder(Config(), kT0, kW0, baseline);
  f.connections = 0;
  DatapathSnapshot gone;
  gone.flows = {f};
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, gone);
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, gone);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].flows(0).last_progress_age().seconds(), 1);
}

TEST(WindowFolder, FlowThatNeverHadAConnectionStaysAtZero) {
  FlowScript flow;
  for (int i = 1; i <= 3; ++i) flow.Close(i * 1s, 0, 0, 0);
  EXPECT_EQ(flow.AgeSeconds(1), 0.0);
  EXPECT_EQ(flow.AgeSeconds(2), 0.0);
}

TEST(WindowFolder, ConfiguredFlowWithNoConnectionStillAppears) {
  WindowFolder folder(Config(), kT0, kW0, {});
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports[0].flows_size(), 1);
  EXPECT_EQ(reports[0].flows(0).name(), "postgres");
  EXPECT_EQ(reports[0].flows(0).connections(), 0u);
  ExpectValid(reports[0]);
}

TEST(WindowFolder, StatusCarriesAttachmentsErrorsAndDrops) {
  DatapathSnapshot snap;
  snap.interfaces = {InterfaceAttachment{"cilium_wg0", 7, true, true}};
  snap.programs = {ProgramRunStats{"rp_tc_egress", 10, 700}};
  snap.samples_dropped = 3;
  WindowFolder folder(Config(), kT0, kW0, snap);
  folder.AddError("attach wg1: ENODEV");
  folder.SetReportsDropped(5);
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, snap);
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, snap);
  const auto& status = reports[0].status();
  ASSERT_EQ(status.interfaces_size(), 1);
  EXPECT_EQ(status.interfaces(0).mode(), v1::ATTACH_MODE_TCX);
  EXPECT_EQ(status.programs(0).run_count(), 10u);
  EXPECT_EQ(status.samples_dropped(), 3u);
  ASSERT_EQ(status.errors_size(), 1);
  EXPECT_EQ(status.errors(0), "attach wg1: ENODEV");
  EXPECT_EQ(status.reports_dropped(), 5u);
}

TEST(WindowFolder, FlowConnectionEventsArePerWindowDeltas) {
  auto flow = [](uint64_t established, uint64_t failed, uint64_t resets) {
    FlowCounters f;
    f.name = "postgres";
    f.remote_region = 2;
    f.established = established;
    f.failed_connects = failed;
    f.resets = resets;
    return f;
  };
  DatapathSnapshot snap;
  snap.flows = {flow(5, 1, 0)};  // before the agent's first window: not reported
  WindowFolder folder(Config(), kT0, kW0, snap);
  std::vector<v1::HealthReport> reports;
  auto close = [&](std::chrono::nanoseconds at, FlowCounters f) {
    snap.flows = {f};
    for (auto& r : folder.CloseWindow(kT0 + at, kW0 + at, snap)) reports.push_back(r);
  };
  close(1s, flow(7, 1, 0));
  close(2s, flow(7, 4, 1));
  for (auto& r : folder.Drain(kT0 + 2s + 1ms, kW0 + 2s + 1ms, snap)) reports.push_back(r);
  ASSERT_GE(reports.size(), 2u);
  for (const auto& r : reports) {
    ASSERT_EQ(r.flows_size(), 1);
    ExpectValid(r);
  }
  EXPECT_EQ(reports[0].flows(0).established(), 2u);
  EXPECT_EQ(reports[0].flows(0).failed_connects(), 0u);
  EXPECT_EQ(reports[0].flows(0).resets(), 0u);
  EXPECT_EQ(reports[1].flows(0).established(), 0u);
  EXPECT_EQ(reports[1].flows(0).failed_connects(), 3u);
  EXPECT_EQ(reports[1].flows(0).resets(), 1u);
}

}  // namespace
}  // namespace regionpulse
