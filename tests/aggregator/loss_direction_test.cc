// Loss direction from both ends: the reconciliation rule as a table of scenarios, each with the
// counts it yields and the direction LossDirectionOf reads from them.
#include "aggregator/loss_direction.h"

#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <string>

namespace regionpulse {
namespace {

// The 1 % noise floor of the queries; the rule itself has none.
constexpr double kNoiseFloor = 0.01;

struct Scenario {
  std::string name;
  ProbeCounts sender;                 // S, F, R, U as the sender reported them
  std::optional<uint64_t> reflected;  // X, or nullopt: the target did not report
  uint64_t want_forward;              // reconciled received_forward
  uint64_t want_unknown;              // reconciled lost_unknown
  v1::LossDirection want_direction;
};

std::ostream& operator<<(std::ostream& out, const Scenario& s) {
  return out << s.name;
}

class ReconcileLossDirectionTest : public ::testing::TestWithParam<Scenario> {};

TEST_P(ReconcileLossDirectionTest, SplitsTheUnknownOnlyWithTheReflectorsSide) {
  const Scenario& s = GetParam();
  const ProbeCounts out = ReconcileLossDirection(s.sender, s.reflected);
  EXPECT_EQ(out.sent, s.sender.sent);
  EXPECT_EQ(out.received_reverse, s.sender.received_reverse);
  EXPECT_EQ(out.received_forward, s.want_forward);
  EXPECT_EQ(out.lost_unknown, s.want_unknown);
  // Whatever the split, every probe is accounted for exactly once.
  EXPECT_EQ(out.LostForward() + out.LostReverse() + out.lost_unknown + out.received_reverse, out.sent);
  EXPECT_EQ(LossDirectionOf(out, kNoiseFloor), s.want_direction)
      << v1::LossDirection_Name(LossDirectionOf(out, kNoiseFloor));
}

INSTANTIATE_TEST_SUITE_P(
    Scenarios, ReconcileLossDirectionTest,
    ::testing::Values(
        // Every reply dropped: the sender saw nothing come back and cannot tell why; the
        // reflector received them all. Reverse, not forward.
        Scenario{"TotalReverseLoss", {100, 0, 0, 100}, 100, 100, 0, v1::LOSS_DIRECTION_REVERSE},
        // The same with the reflector's windows a few probes behind the sender's (they are not
        // aligned): still reverse.
        Scenario{"TotalReverseLossWindowEdgeBehind", {100, 0, 0, 100}, 93, 93, 0, v1::LOSS_DIRECTION_REVERSE},
        // ... or ahead: the surplus is clamped to what was sent.
        Scenario{
            "TotalReverseLossWindowEdgeAhead", {100, 0, 0, 100}, 107, 100, 0, v1::LOSS_DIRECTION_REVERSE},
        // Every probe dropped on the way out: the reflector reported windows and received
        // nothing from the session.
        Scenario{"TotalForwardLoss", {100, 0, 0, 100}, 0, 0, 0, v1::LOSS_DIRECTION_FORWARD},
        // The target's agent is silent: nobody can tell, and it is not assumed forward.
        Scenario{"TargetSilent", {100, 0, 0, 100}, std::nullopt, 0, 100, v1::LOSS_DIRECTION_UNKNOWN},
        // Partial loss the sender split by the reflector's numbering stays as it is, whatever
        // the reflector's count says (it only ever splits the unknown part).
        Scenario{"PartialLossSplitBySender", {100, 90, 81, 0}, 90, 90, 0, v1::LOSS_DIRECTION_BOTH},
        Scenario{
            "PartialLossSplitBySenderReflectorAhead", {100, 90, 81, 0}, 97, 90, 0, v1::LOSS_DIRECTION_BOTH},
        Scenario{"PartialForwardLossSplitBySender", {100, 80, 80, 0}, 80, 80, 0, v1::LOSS_DIRECTION_FORWARD},
        Scenario{"PartialLossSplitBySenderTargetSilent",
                 {100, 80, 80, 0},
                 std::nullopt,
                 80,
                 0,
                 v1::LOSS_DIRECTION_FORWARD},
        // The last probes of a window had no later answered probe: the reflector's count places
        // them (85 reached: 5 of the 10 unknown arrived).
        Scenario{"TrailingUnknownSplit", {100, 80, 80, 10}, 85, 85, 0, v1::LOSS_DIRECTION_BOTH},
        // The reflector's count is below what its own numbering proved arrived (window edge):
        // the proven part stands, the unknown part was not reflected.
        Scenario{"ReflectorBelowProvenForward", {100, 80, 80, 10}, 75, 80, 0, v1::LOSS_DIRECTION_FORWARD},
        // Some of the unknown reached the reflector, some did not.
        Scenario{"UnknownSplitBothWays", {100, 40, 40, 60}, 70, 70, 0, v1::LOSS_DIRECTION_BOTH},
        // Probes provably arrived (F > 0) but the reflector lists nothing from the session: the
        // two ends were not joined (a NAT rewrote the sender's address); nothing is concluded.
        Scenario{"EndsNotJoined", {100, 50, 50, 50}, 0, 50, 50, v1::LOSS_DIRECTION_UNKNOWN},
        // A sender claiming more unknown than it could have lost, and a reflector claiming more than
        // was ever sent: the unknown is cut to what was sent and not proven to arrive, and the
        // reflector's count can place no more than that.
        Scenario{
            "InconsistentCountsClamped", {100, 40, 40, 500}, 1'000'000, 100, 0, v1::LOSS_DIRECTION_REVERSE},
        Scenario{"InconsistentCountsClampedTargetSilent",
                 {100, 40, 40, 500},
                 std::nullopt,
                 40,
                 60,
                 v1::LOSS_DIRECTION_UNKNOWN},
        Scenario{"NoLoss", {100, 100, 100, 0}, 100, 100, 0, v1::LOSS_DIRECTION_NONE},
        Scenario{"NothingSent", {0, 0, 0, 0}, 0, 0, 0, v1::LOSS_DIRECTION_NONE}),
    [](const ::testing::TestParamInfo<Scenario>& info) { return info.param.name; });

// Probes the reflector refused (wrong key, stale timestamp, rate limited, replayed) reached it:
// they leave `sent` for `refused` and count in no loss, whichever way the sender booked them.
struct RefusedScenario {
  std::string name;
  ProbeCounts sender;
  std::optional<uint64_t> reflected;
  uint64_t refused;
  uint64_t want_sent;
  uint64_t want_refused;
  double want_loss;
  v1::LossDirection want_direction;
};

std::ostream& operator<<(std::ostream& out, const RefusedScenario& s) {
  return out << s.name;
}

class ReconcileRefusedTest : public ::testing::TestWithParam<RefusedScenario> {};

TEST_P(ReconcileRefusedTest, RefusedProbesAreNeitherForwardNorReverseLoss) {
  const RefusedScenario& s = GetParam();
  const ProbeCounts out = ReconcileLossDirection(s.sender, s.reflected, s.refused);
  EXPECT_EQ(out.sent, s.want_sent);
  EXPECT_EQ(out.refused, s.want_refused);
  EXPECT_EQ(out.sent + out.refused, s.sender.sent) << "every probe is sent or refused";
  EXPECT_EQ(out.LostForward() + out.LostReverse() + out.lost_unknown + out.received_reverse, out.sent);
  EXPECT_DOUBLE_EQ(out.Loss(), s.want_loss);
  EXPECT_EQ(LossDirectionOf(out, kNoiseFloor), s.want_direction)
      << v1::LossDirection_Name(LossDirectionOf(out, kNoiseFloor));
}

INSTANTIATE_TEST_SUITE_P(
    Scenarios, ReconcileRefusedTest,
    ::testing::Values(
        // A sender signing with a key the reflector does not hold: nothing back, nothing
        // received, everything refused. No loss at all.
        RefusedScenario{"EveryProbeWrongKey", {98, 0, 0, 98}, 0, 98, 0, 98, 0.0, v1::LOSS_DIRECTION_NONE},
        // Rate limited: the reflector's numbering skips the refused ones, so the sender proved
        // them "lost on the way out" (F = 50, U = 0); they arrived all the same.
        RefusedScenario{"HalfRateLimited", {100, 50, 50, 0}, 50, 50, 50, 50, 0.0, v1::LOSS_DIRECTION_NONE},
        // Refused and real forward loss together: only the refused part leaves the loss.
        RefusedScenario{
            "RefusedBesideForwardLoss", {100, 0, 0, 100}, 0, 40, 60, 40, 1.0, v1::LOSS_DIRECTION_FORWARD},
        // A reflector claiming more refusals than the sender lost (window edges, or a spoofed
        // flood naming the session): capped at what was not reflected, never at a reply.
        RefusedScenario{"RefusalsBeyondTheLossAreCapped",
                        {100, 100, 100, 0},
                        100,
                        30,
                        100,
                        0,
                        0.0,
                        v1::LOSS_DIRECTION_NONE},
        RefusedScenario{
            "RefusalsCappedAtTheLoss", {100, 90, 90, 0}, 90, 30, 90, 10, 0.0, v1::LOSS_DIRECTION_NONE},
        // The target did not report: its refusals are not known either.
        RefusedScenario{
            "TargetSilent", {100, 0, 0, 100}, std::nullopt, 100, 100, 0, 1.0, v1::LOSS_DIRECTION_UNKNOWN}),
    [](const ::testing::TestParamInfo<RefusedScenario>& info) { return info.param.name; });

}  // namespace
}  // namespace regionpulse
