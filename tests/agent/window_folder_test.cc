// Window folding from scripted sends and receipts: loss per direction, reordering,
// duplicates, jitter, kernel RTT checks, traffic deltas and replication-flow staleness.
#include <gtest/gtest.h>

#include "agent/window_folder.h"
#include "common/report_validation.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

const MonoTime kT0 = MonoTime(1000s);
const WallTime kW0 = WallTime(1'764'000'000s);
const PeerInfo kPeer{"node-eu-1", "eu-west-1", "eu-west-1a", "10.2.0.5", 862};
constexpr uint16_t kSsid = 77;

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
  explicit Script(WindowFolder& folder) : folder_(folder) {}
  void Send(uint32_t seq, MonoTime at) {
    sent_at_[seq] = at;
    folder_.OnProbeSent(ProbeSent{kPeer, kSsid, seq, at});
  }
  void Reply(uint32_t seq, uint32_t reflector_seq, std::chrono::nanoseconds rtt = 20ms,
             std::optional<KernelStamps> kernel = std::nullopt) {
    folder_.OnProbeReply(
        ProbeReply{kPeer.node, kSsid, seq, reflector_seq, sent_at_.at(seq) + rtt, kernel, 10us});
  }

 private:
  WindowFolder& folder_;
  std::map<uint32_t, MonoTime> sent_at_;
};

void ExpectValid(const v1::HealthReport& report) {
  const auto problems = ReportProblems(report);
  EXPECT_TRUE(problems.empty()) << problems.front();
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

TEST(WindowFolder, UnansweredTailWithNoLaterEvidenceIsForwardLoss) {
  WindowFolder folder(Config(), kT0, kW0, {});
  Script s(folder);
  for (uint32_t seq = 0; seq < 4; ++seq) s.Send(seq, kT0 + seq * 100ms);
  s.Reply(0, 0);
  s.Reply(1, 1);
  folder.CloseWindow(kT0 + 1s, kW0 + 1s, {});
  const auto reports = folder.CloseWindow(kT0 + 2s, kW0 + 2s, {});
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].paths(0).received_forward(), 2u);
  EXPECT_EQ(reports[0].paths(0).received_reverse(), 2u);
  EXPECT_DOUBLE_EQ(reports[0].paths(0).loss_forward(), 0.5);
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
