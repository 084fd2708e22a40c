// RegionMatrix reading loss direction from both ends of a path: the sender's counts (what it
// cannot place is lost_direction_unknown) joined with what the target's reflector reported
// receiving from the sender's session. One observer, us-1, probes one target, eu-1, ten probes a
// second for ten seconds, and nothing comes back; what eu-1 reports decides the direction. The
// same answer must come out of GetPaths, GetRegionMatrix and the verdict evidence.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "aggregator/loss_direction.h"
#include "aggregator/region_matrix.h"
#include "aggregator/region_matrix_state.h"
#include "aggregator/verdict_evidence.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

const WallClock::time_point kT0 = WallClock::time_point(std::chrono::seconds(1'800'000'000));
constexpr uint32_t kSsid = 7;
constexpr int kSeconds = 10;
const WallClock::time_point kNow = kT0 + std::chrono::seconds(kSeconds);

v1::Endpoint SenderEndpoint(const std::string& address) {
  v1::Endpoint endpoint;
  endpoint.set_address(address);
  endpoint.set_port(40'000);
  return endpoint;
}

v1::HealthReport Window(int t) {
  v1::HealthReport report;
  report.set_sequence(static_cast<uint64_t>(t));
  *report.mutable_window_start() = ToTimestamp(kT0 + std::chrono::seconds(t - 1));
  *report.mutable_window_end() = ToTimestamp(kT0 + std::chrono::seconds(t));
  return report;
}

// us-1's window t: sent, known reached, returned, direction unknown towards eu-1.
v1::HealthReport SenderWindow(int t, ProbeCounts counts) {
  v1::HealthReport report = Window(t);
  v1::PathStats* path = report.add_paths();
  path->set_peer_node("eu-1");
  path->set_peer_region("eu-west-1");
  *path->mutable_source() = SenderEndpoint("10.1.0.1");
  path->set_ssid(kSsid);
  path->set_probes_sent(counts.sent);
  path->set_received_forward(counts.received_forward);
  path->set_received_reverse(counts.received_reverse);
  path->set_lost_direction_unknown(counts.lost_unknown);
  return report;
}

void AddReflected(v1::HealthReport* report, const std::string& sender_address, uint64_t received) {
  v1::ReflectedStats* reflected = report->add_reflected();
  *reflected->mutable_sender() = SenderEndpoint(sender_address);
  reflected->set_ssid(kSsid);
  reflected->set_received(received);
  reflected->set_replied(received);
}

// eu-1's window t. Its reflector answered ap-1 (10.3.0.1) throughout, so its reports speak for
// its reflector; `from_us1` is what it received from us-1's session, nullopt: not listed.
v1::HealthReport TargetWindow(int t, std::optional<uint64_t> from_us1) {
  v1::HealthReport report = Window(t);
  AddReflected(&report, "10.3.0.1", 10);
  if (from_us1) AddReflected(&report, "10.1.0.1", *from_us1);
  return report;
}

// eu-1's window t in which its reflector refused what us-1 sent it: `refused` by reason, and
// `received` answered.
v1::HealthReport TargetRefusingWindow(int t, uint64_t received, const RefusedCounts& refused) {
  v1::HealthReport report = TargetWindow(t, received);
  v1::ReflectedStats* from_us1 = report.mutable_reflected(report.reflected_size() - 1);
  from_us1->set_refused_wrong_key(refused.wrong_key);
  from_us1->set_refused_stale_timestamp(refused.stale_timestamp);
  from_us1->set_refused_rate_limited(refused.rate_limited);
  from_us1->set_refused_replayed(refused.replayed);
  return report;
}

const AgentIdentity kUs1{"us-1", "us-east-1", "us-east-1a"};
const AgentIdentity kEu1{"eu-1", "eu-west-1", "eu-west-1a"};

// Ten seconds of us-1 losing everything towards eu-1; eu-1's report of second t (nullopt:
// withheld) is filed before us-1's on odd seconds, after it on even ones (the two arrive in
// either order).
void Exchange(RegionMatrix& matrix, ProbeCounts sender_per_second,
              const std::function<std::optional<v1::HealthReport>(int t)>& target_window) {
  for (int t = 1; t <= kSeconds; ++t) {
    const auto now = kT0 + std::chrono::seconds(t);
    const std::optional<v1::HealthReport> target = target_window(t);
    if (target && t % 2 == 1) matrix.Add(kEu1, *target, now);
    matrix.Add(kUs1, SenderWindow(t, sender_per_second), now);
    if (target && t % 2 == 0) matrix.Add(kEu1, *target, now);
  }
}

const ProbeCounts kNothingBack{10, 0, 0, 10};

v1::PathSummary OnlyPath(const RegionMatrix& matrix) {
  v1::GetPathsRequest request;
  request.set_node("us-1");
  const v1::GetPathsResponse paths = matrix.Paths(request, kNow);
  EXPECT_EQ(paths.paths_size(), 1);
  return paths.paths_size() == 1 ? paths.paths(0) : v1::PathSummary{};
}

// The matrix's cells settle only the paths Add marked unsettled: from scratch, every path with
// unknown loss or refused probes in a slot of the window must be marked at or after it.
void ExpectUnsettledPathsMarked(const RegionMatrix& matrix, WallClock::time_point now) {
  const RegionMatrixState& s = matrix.state();
  const int64_t from = EpochOf(now - matrix.config().window, matrix.config().slot);
  for (const auto& [key, path] : s.paths) {
    bool anything_to_settle = false;
    path.ring.ForEachSince(from, [&](const PathSlot& slot) {
      anything_to_settle |= slot.unknown > 0 || slot.refused.Total() > 0;
    });
    if (!anything_to_settle) continue;
    const auto marked = s.unsettled_paths.find(key);
    ASSERT_NE(marked, s.unsettled_paths.end()) << s.Name(path.source) << " -> " << s.Name(path.target);
    EXPECT_GE(marked->second, from) << s.Name(path.source) << " -> " << s.Name(path.target);
  }
}

v1::RegionPairStats UsToEu(const RegionMatrix& matrix) {
  ExpectUnsettledPathsMarked(matrix, kNow);
  const v1::GetRegionMatrixResponse response = matrix.Matrix(0s, kNow);
  for (const auto& cell : response.cells()) {
    if (cell.source_region() == "us-east-1" && cell.target_region() == "eu-west-1") return cell;
  }
  ADD_FAILURE() << "no us-east-1 -> eu-west-1 cell";
  return {};
}

// What the verdict engine reads for us-1 -> eu-1.
ProbeCounts EvidenceCounts(const RegionMatrix& matrix) {
  const std::vector<AgentPresence> agents = {
      {"us-1", "us-east-1", "us-east-1a", {}, true, kNow},
      {"eu-1", "eu-west-1", "eu-west-1a", {}, true, kNow},
  };
  const VerdictEvidence evidence = BuildVerdictEvidence(matrix, agents, {}, kNow);
  for (const ObserverView& view : evidence.observers) {
    if (view.node != "us-1") continue;
    EXPECT_EQ(view.to_node.size(), 1u);
    if (view.to_node.size() != 1) return {};
    EXPECT_EQ(view.to_node[0].node, "eu-1");
    EXPECT_EQ(view.to_node[0].region, "eu-west-1");
    // The region's figures are the sum of its nodes'.
    const ProbeCounts& region = view.to_region.at("eu-west-1");
    EXPECT_EQ(region.received_forward, view.to_node[0].counts.received_forward);
    EXPECT_EQ(region.lost_unknown, view.to_node[0].counts.lost_unknown);
    return view.to_node[0].counts;
  }
  ADD_FAILURE() << "us-1 is no observer";
  return {};
}

void ExpectEveryProbeAccountedOnce(const ProbeCounts& counts) {
  EXPECT_LE(counts.received_forward + counts.lost_unknown, counts.sent);
  EXPECT_LE(counts.received_reverse, counts.received_forward);
  EXPECT_EQ(counts.LostForward() + counts.LostReverse() + counts.lost_unknown + counts.received_reverse,
            counts.sent);
}

TEST(RegionMatrixBothEndsTest, TargetReceivedEverythingSoTheLossIsReverse) {
  RegionMatrix matrix;
  Exchange(matrix, kNothingBack, [](int t) { return TargetWindow(t, 10); });

  const v1::PathSummary path = OnlyPath(matrix);
  EXPECT_TRUE(path.reflector_reported());
  EXPECT_EQ(path.direction(), v1::LOSS_DIRECTION_REVERSE);
  EXPECT_DOUBLE_EQ(path.loss_forward(), 0.0);
  EXPECT_DOUBLE_EQ(path.loss_reverse(), 1.0);
  EXPECT_DOUBLE_EQ(path.loss_unknown(), 0.0);

  const v1::RegionPairStats cell = UsToEu(matrix);
  EXPECT_EQ(cell.probes_sent(), 100u);
  EXPECT_EQ(cell.received_forward(), 100u);
  EXPECT_EQ(cell.lost_direction_unknown(), 0u);
  EXPECT_EQ(cell.direction(), v1::LOSS_DIRECTION_REVERSE);

  const ProbeCounts counts = EvidenceCounts(matrix);
  EXPECT_EQ(counts.sent, 100u);
  EXPECT_EQ(counts.received_forward, 100u);
  EXPECT_EQ(counts.received_reverse, 0u);
  EXPECT_EQ(counts.lost_unknown, 0u);
  EXPECT_EQ(matrix.Stats().reflected_unmatched, 0u);
}

TEST(RegionMatrixBothEndsTest, TargetReportedAndReceivedNothingFromTheSenderSoTheLossIsForward) {
  RegionMatrix matrix;
  Exchange(matrix, kNothingBack, [](int t) { return TargetWindow(t, std::nullopt); });

  const v1::PathSummary path = OnlyPath(matrix);
  EXPECT_TRUE(path.reflector_reported());
  EXPECT_EQ(path.direction(), v1::LOSS_DIRECTION_FORWARD);
  EXPECT_DOUBLE_EQ(path.loss_forward(), 1.0);
  EXPECT_DOUBLE_EQ(path.loss_unknown(), 0.0);
  EXPECT_EQ(UsToEu(matrix).direction(), v1::LOSS_DIRECTION_FORWARD);

  const ProbeCounts counts = EvidenceCounts(matrix);
  EXPECT_EQ(counts.received_forward, 0u);
  EXPECT_EQ(counts.lost_unknown, 0u);
  EXPECT_EQ(counts.LostForward(), 100u);
}

TEST(RegionMatrixBothEndsTest, TargetWithheldItsReportsSoTheDirectionStaysUnknown) {
  RegionMatrix matrix;
  Exchange(matrix, kNothingBack, [](int) { return std::nullopt; });

  const v1::PathSummary path = OnlyPath(matrix);
  EXPECT_FALSE(path.reflector_reported());
  EXPECT_EQ(path.direction(), v1::LOSS_DIRECTION_UNKNOWN);
  // Never taken as forward.
  EXPECT_DOUBLE_EQ(path.loss_forward(), 0.0);
  EXPECT_DOUBLE_EQ(path.loss_reverse(), 0.0);
  EXPECT_DOUBLE_EQ(path.loss_unknown(), 1.0);

  const v1::RegionPairStats cell = UsToEu(matrix);
  EXPECT_EQ(cell.lost_direction_unknown(), 100u);
  EXPECT_EQ(cell.direction(), v1::LOSS_DIRECTION_UNKNOWN);
  EXPECT_DOUBLE_EQ(cell.loss_forward(), 0.0);

  const ProbeCounts counts = EvidenceCounts(matrix);
  EXPECT_EQ(counts.sent, 100u);
  EXPECT_EQ(counts.received_forward, 0u);
  EXPECT_EQ(counts.lost_unknown, 100u);
  EXPECT_EQ(counts.LostForward(), 0u);
}

TEST(RegionMatrixBothEndsTest, OnlyTheSecondsTheTargetReportedAreSplit) {
  // eu-1 reported (and received everything) for the first five seconds, then fell silent.
  RegionMatrix matrix;
  Exchange(matrix, kNothingBack, [](int t) -> std::optional<v1::HealthReport> {
    if (t > 5) return std::nullopt;
    return TargetWindow(t, 10);
  });
  const ProbeCounts counts = EvidenceCounts(matrix);
  EXPECT_EQ(counts.sent, 100u);
  EXPECT_EQ(counts.received_forward, 50u);  // reverse loss, from both ends
  EXPECT_EQ(counts.lost_unknown, 50u);      // its silence is no evidence either way
  EXPECT_EQ(counts.LostForward(), 0u);
  EXPECT_EQ(LossDirectionOf(counts, 0.01), v1::LOSS_DIRECTION_UNKNOWN);
}

TEST(RegionMatrixBothEndsTest, TargetAgentThatDoesNotReportItsReflectorLeavesTheDirectionUnknown) {
  // An agent from before loss direction: it reports its windows, never what its reflector got.
  RegionMatrix matrix;
  Exchange(matrix, kNothingBack, [](int t) { return Window(t); });
  EXPECT_EQ(OnlyPath(matrix).direction(), v1::LOSS_DIRECTION_UNKNOWN);
  const ProbeCounts counts = EvidenceCounts(matrix);
  EXPECT_EQ(counts.lost_unknown, 100u);
  EXPECT_EQ(counts.LostForward(), 0u);
}

TEST(RegionMatrixBothEndsTest, ReflectorThatLeftSendersOutOfItsReportLeavesTheDirectionUnknown) {
  // eu-1's reflector saw more sessions than a report carries and left some out every window:
  // us-1 not being listed does not mean nothing arrived from it.
  RegionMatrix matrix;
  Exchange(matrix, kNothingBack, [](int t) {
    v1::HealthReport report = TargetWindow(t, std::nullopt);
    report.mutable_status()->set_reflected_senders_dropped(static_cast<uint64_t>(t) * 3);
    return report;
  });
  EXPECT_EQ(OnlyPath(matrix).direction(), v1::LOSS_DIRECTION_UNKNOWN);
  EXPECT_EQ(EvidenceCounts(matrix).lost_unknown, 100u);
}

TEST(RegionMatrixBothEndsTest, InconsistentSenderAndHostileReflectorCountsAreClamped) {
  // The sender claims 4 reached and returned, and 50 of 10 lost in an unknown direction; the
  // reflector claims a million received. Neither may count a probe twice nor invent one.
  RegionMatrix matrix;
  Exchange(matrix, {10, 4, 4, 50}, [](int t) { return TargetWindow(t, 1'000'000); });

  const ProbeCounts counts = EvidenceCounts(matrix);
  EXPECT_EQ(counts.sent, 100u);
  EXPECT_EQ(counts.received_forward, 100u);  // at most what was sent
  EXPECT_EQ(counts.received_reverse, 40u);
  EXPECT_EQ(counts.lost_unknown, 0u);
  ExpectEveryProbeAccountedOnce(counts);

  const v1::PathSummary path = OnlyPath(matrix);
  EXPECT_DOUBLE_EQ(path.loss_forward(), 0.0);
  EXPECT_DOUBLE_EQ(path.loss_reverse(), 0.6);
  EXPECT_DOUBLE_EQ(path.loss_unknown(), 0.0);

  const v1::RegionPairStats cell = UsToEu(matrix);
  EXPECT_LE(cell.received_forward() + cell.lost_direction_unknown(), cell.probes_sent());
  EXPECT_DOUBLE_EQ(cell.loss_reverse(), 0.6);
}

TEST(RegionMatrixBothEndsTest, InconsistentSenderCountsAreClampedWithoutTheTarget) {
  RegionMatrix matrix;
  Exchange(matrix, {10, 4, 4, 50}, [](int) { return std::nullopt; });
  const ProbeCounts counts = EvidenceCounts(matrix);
  EXPECT_EQ(counts.received_forward, 40u);
  EXPECT_EQ(counts.lost_unknown, 60u);  // what was sent and not proven to arrive, no more
  ExpectEveryProbeAccountedOnce(counts);
  const v1::PathSummary path = OnlyPath(matrix);
  EXPECT_LE(path.loss_unknown(), 1.0);
  EXPECT_DOUBLE_EQ(path.loss_unknown(), 0.6);
  EXPECT_EQ(UsToEu(matrix).lost_direction_unknown(), 60u);
}

// us-1 signs with a key eu-1's reflector does not hold (a rotation half done): us-1 hears
// nothing back and books every probe lost, eu-1 reports refusing them for their key. They
// reached eu-1: 0 % loss in every figure, and the path and the cell show them refused.
TEST(RegionMatrixBothEndsTest, ProbesRefusedForTheirKeyAreShownRefusedAndAreNoLoss) {
  RegionMatrix matrix;
  Exchange(matrix, kNothingBack, [](int t) { return TargetRefusingWindow(t, 0, {.wrong_key = 10}); });

  const v1::PathSummary path = OnlyPath(matrix);
  EXPECT_TRUE(path.reflector_reported());
  EXPECT_EQ(path.probes_sent(), 100u);
  EXPECT_EQ(path.refused().wrong_key(), 100u);
  EXPECT_EQ(path.refused().stale_timestamp(), 0u);
  EXPECT_DOUBLE_EQ(path.loss_forward(), 0.0);
  EXPECT_DOUBLE_EQ(path.loss_reverse(), 0.0);
  EXPECT_DOUBLE_EQ(path.loss_unknown(), 0.0);
  EXPECT_EQ(path.direction(), v1::LOSS_DIRECTION_NONE);

  const v1::RegionPairStats cell = UsToEu(matrix);
  EXPECT_EQ(cell.probes_sent(), 100u);
  EXPECT_EQ(cell.refused().wrong_key(), 100u);
  EXPECT_EQ(cell.lost_direction_unknown(), 0u);
  EXPECT_DOUBLE_EQ(cell.loss_forward(), 0.0);
  EXPECT_EQ(cell.direction(), v1::LOSS_DIRECTION_NONE);
  // Nothing was measured of the network: no state, rather than unreachable.
  EXPECT_EQ(cell.state(), v1::REGION_STATE_UNKNOWN);

  const ProbeCounts counts = EvidenceCounts(matrix);
  EXPECT_EQ(counts.sent, 0u);
  EXPECT_EQ(counts.refused, 100u);
  EXPECT_DOUBLE_EQ(counts.Loss(), 0.0);
}

// us-1 books its lost probes as lost forward (nothing unknown), eu-1 reports refusing them:
// the refusals alone make the path one the cell settles.
TEST(RegionMatrixBothEndsTest, RefusalsWithoutUnknownLossAreSettledInTheCell) {
  RegionMatrix matrix;
  Exchange(matrix, ProbeCounts{10, 0, 0, 0},
           [](int t) { return TargetRefusingWindow(t, 0, {.wrong_key = 10}); });
  const v1::RegionPairStats cell = UsToEu(matrix);
  EXPECT_EQ(cell.probes_sent(), 100u);
  EXPECT_EQ(cell.refused().wrong_key(), 100u);
  EXPECT_DOUBLE_EQ(cell.loss_forward(), 0.0);
}

// A node whose clock is beyond the reflector's max_clock_offset: its probes are refused for
// their timestamp, and shown so, not lost.
TEST(RegionMatrixBothEndsTest, ProbesOfASkewedClockAreShownRefusedForTheirTimestampNotLost) {
  RegionMatrix matrix;
  Exchange(matrix, kNothingBack, [](int t) { return TargetRefusingWindow(t, 0, {.stale_timestamp = 10}); });

  const v1::PathSummary path = OnlyPath(matrix);
  EXPECT_EQ(path.refused().stale_timestamp(), 100u);
  EXPECT_EQ(path.refused().wrong_key(), 0u);
  EXPECT_DOUBLE_EQ(path.loss_forward(), 0.0);
  EXPECT_DOUBLE_EQ(path.loss_unknown(), 0.0);
  EXPECT_EQ(UsToEu(matrix).refused().stale_timestamp(), 100u);
  EXPECT_DOUBLE_EQ(EvidenceCounts(matrix).Loss(), 0.0);
}

// Rate limited: the reflector numbers only what it answers, so the sender proved the refused
// probes "lost on the way out" (no unknown at all). They arrived: no forward loss either.
TEST(RegionMatrixBothEndsTest, RateLimitedProbesTheSenderBookedAsForwardLossAreNoLoss) {
  RegionMatrix matrix;
  Exchange(matrix, ProbeCounts{10, 5, 5, 0},
           [](int t) { return TargetRefusingWindow(t, 5, {.rate_limited = 5}); });

  const v1::PathSummary path = OnlyPath(matrix);
  EXPECT_EQ(path.probes_sent(), 100u);
  EXPECT_EQ(path.refused().rate_limited(), 50u);
  EXPECT_DOUBLE_EQ(path.loss_forward(), 0.0);
  EXPECT_EQ(path.direction(), v1::LOSS_DIRECTION_NONE);
  const ProbeCounts counts = EvidenceCounts(matrix);
  EXPECT_EQ(counts.sent, 50u);
  EXPECT_EQ(counts.refused, 50u);
  EXPECT_DOUBLE_EQ(counts.Loss(), 0.0);
  EXPECT_DOUBLE_EQ(UsToEu(matrix).loss_forward(), 0.0);
}

// Refusals name a session nothing verified (a wrong-key packet cannot be checked): a reflector
// claiming more refusals than the sender lost moves no answered probe, and real forward loss
// beside the refused probes stays forward loss.
TEST(RegionMatrixBothEndsTest, RefusalsOnlyEverExplainProbesThatGotNoReply) {
  RegionMatrix matrix;
  Exchange(matrix, ProbeCounts{10, 0, 0, 10},
           [](int t) { return TargetRefusingWindow(t, 0, {.wrong_key = 4}); });
  const v1::PathSummary path = OnlyPath(matrix);
  EXPECT_EQ(path.refused().wrong_key(), 40u);
  EXPECT_DOUBLE_EQ(path.loss_forward(), 1.0) << "60 of the 60 probes not refused were lost";
  EXPECT_EQ(path.direction(), v1::LOSS_DIRECTION_FORWARD);

  RegionMatrix answered;
  Exchange(answered, ProbeCounts{10, 10, 10, 0},
           [](int t) { return TargetRefusingWindow(t, 10, {.wrong_key = 10}); });
  const v1::PathSummary clean = OnlyPath(answered);
  EXPECT_EQ(clean.refused().wrong_key(), 0u);
  EXPECT_EQ(clean.probes_sent(), 100u);
  EXPECT_EQ(EvidenceCounts(answered).sent, 100u);
}

// Each agent's report names the same peers and sessions window after window, and the matrix
// keeps where the last one's entries went; what it keeps must follow what was removed or renamed
// meanwhile.
void ExchangeFrom(RegionMatrix& matrix, int first, int last, const AgentIdentity& sender) {
  for (int t = first; t <= last; ++t) {
    const auto now = kT0 + std::chrono::seconds(t);
    if (t % 2 == 1) matrix.Add(kEu1, TargetWindow(t, 10), now);
    matrix.Add(sender, SenderWindow(t, kNothingBack), now);
    if (t % 2 == 0) matrix.Add(kEu1, TargetWindow(t, 10), now);
  }
}

// Seconds 6 to kSeconds after a Forget: the sender's 50 probes, every one received by the
// reflector and none back, so the join says REVERSE and nothing is of unknown direction.
void ExpectJoinedAfterTheGap(const RegionMatrix& matrix) {
  const v1::PathSummary path = OnlyPath(matrix);
  EXPECT_EQ(path.probes_sent(), 50u);
  EXPECT_TRUE(path.reflector_reported());
  EXPECT_EQ(path.direction(), v1::LOSS_DIRECTION_REVERSE);
  const ProbeCounts counts = EvidenceCounts(matrix);
  EXPECT_EQ(counts.sent, 50u);
  EXPECT_EQ(counts.received_forward, 50u);
  EXPECT_EQ(counts.lost_unknown, 0u);
}

// Seconds 1 to 5 exchanged, `node` forgotten (its paths, per-target counts and sessions go with
// it), then seconds 6 to kSeconds.
void ExchangeForgettingMidway(RegionMatrix& matrix, const std::string& node) {
  ExchangeFrom(matrix, 1, 5, kUs1);
  matrix.Forget(node);
  ExchangeFrom(matrix, 6, kSeconds, kUs1);
}

TEST(RegionMatrixBothEndsTest, ATargetForgottenMidwayIsFiledAfreshWhenItReportsAgain) {
  RegionMatrix matrix;
  ExchangeForgettingMidway(matrix, "eu-1");
  ExpectJoinedAfterTheGap(matrix);
  EXPECT_EQ(matrix.Stats().reflected_unmatched, 0u);
}

TEST(RegionMatrixBothEndsTest, ASenderForgottenMidwayHasItsSessionJoinedAgain) {
  RegionMatrix matrix;
  ExchangeForgettingMidway(matrix, "us-1");
  ExpectJoinedAfterTheGap(matrix);
}

TEST(RegionMatrixBothEndsTest, ASenderRestartedUnderANewNameTakesItsSessionsReflectedCounts) {
  // The same source address, port and SSID, reported by a node of another name from second 6:
  // what eu-1's reflector received from then on belongs to the new observer.
  const AgentIdentity us1_renamed{"us-1-renamed", "us-east-1", "us-east-1a"};
  RegionMatrix matrix;
  ExchangeFrom(matrix, 1, 5, kUs1);
  ExchangeFrom(matrix, 6, kSeconds, us1_renamed);

  v1::GetPathsRequest request;
  request.set_node("us-1-renamed");
  const v1::GetPathsResponse paths = matrix.Paths(request, kNow);
  ASSERT_EQ(paths.paths_size(), 1);
  EXPECT_EQ(paths.paths(0).probes_sent(), 50u);
  EXPECT_TRUE(paths.paths(0).reflector_reported());
  EXPECT_EQ(paths.paths(0).direction(), v1::LOSS_DIRECTION_REVERSE);
  EXPECT_DOUBLE_EQ(paths.paths(0).loss_reverse(), 1.0);
  // us-1's own path keeps its five seconds, all of them reconciled.
  const v1::PathSummary original = OnlyPath(matrix);
  EXPECT_EQ(original.probes_sent(), 50u);
  EXPECT_DOUBLE_EQ(original.loss_reverse(), 1.0);
}

}  // namespace
}  // namespace regionpulse
