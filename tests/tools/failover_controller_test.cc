// The failover controller's rules, verdict stream in, decisions out: it acts once, never on
// HOLD or STAY, never on the active region's own aggregator, and re-arms only after a STAY
// for a new active region or by the operator. Also its state file and configuration.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "controller_config.h"
#include "failover_decider.h"
#include "hook_runner.h"

namespace regionpulse::controller {
namespace {

using ::testing::HasSubstr;

const std::set<std::string> kHooked = {"eu-west-1"};

ObservedVerdict Verdict(uint64_t generation, Action action, const std::string& target = "",
                        const std::string& aggregator = "eu-west-1",
                        const std::string& active = "us-east-1") {
  ObservedVerdict v;
  v.generation = generation;
  v.action = action;
  v.target_region = target;
  v.aggregator_region = aggregator;
  v.active_region = active;
  return v;
}

// Feeds a stream of verdicts through Decide/Apply as the controller does; returns how many
// times it would have run the hooks.
int FailoversIn(const std::vector<ObservedVerdict>& stream, ControllerState& state) {
  int failovers = 0;
  for (const auto& verdict : stream) {
    const Decision decision = Decide(verdict, state, kHooked);
    if (decision.kind == DecisionKind::kFailover) ++failovers;
    state = Apply(state, decision, verdict.generation, 1000.0);
  }
  return failovers;
}

TEST(FailoverDecider, ActsOnceOnFailoverEvenWhenTheVerdictRepeats) {
  ControllerState state;
  const int failovers = FailoversIn(
      {Verdict(1, Action::kHold), Verdict(2, Action::kStay), Verdict(3, Action::kFailover, "eu-west-1"),
       Verdict(3, Action::kFailover, "eu-west-1"),  // heartbeat
       Verdict(4, Action::kFailover, "eu-west-1")},
      state);
  EXPECT_EQ(failovers, 1);
  ASSERT_TRUE(state.failover);
  EXPECT_EQ(state.failover->from_region, "us-east-1");
  EXPECT_EQ(state.failover->to_region, "eu-west-1");
  EXPECT_EQ(state.failover->generation, 3u);
  EXPECT_EQ(state.failover->outcome, "running");
}

TEST(FailoverDecider, NeverActsOnHoldOrStay) {
  ControllerState state;
  EXPECT_EQ(FailoversIn({Verdict(1, Action::kHold, "eu-west-1"), Verdict(2, Action::kStay, "eu-west-1"),
                         Verdict(3, Action::kUnspecified, "eu-west-1")},
                        state),
            0);
  EXPECT_FALSE(state.failover);
}

TEST(FailoverDecider, IgnoresTheActiveRegionsOwnAggregator) {
  const Decision decision =
      Decide(Verdict(7, Action::kFailover, "eu-west-1", "us-east-1"), ControllerState{}, kHooked);
  EXPECT_EQ(decision.kind, DecisionKind::kNothing);
  EXPECT_THAT(decision.why, HasSubstr("active region's own aggregator"));
  EXPECT_EQ(Decide(Verdict(7, Action::kFailover, "eu-west-1", ""), ControllerState{}, kHooked).kind,
            DecisionKind::kNothing);
}

TEST(FailoverDecider, LeavesATargetWithoutHooksToAHuman) {
  const Decision decision =
      Decide(Verdict(5, Action::kFailover, "ap-southeast-1"), ControllerState{}, kHooked);
  EXPECT_EQ(decision.kind, DecisionKind::kNothing);
  EXPECT_THAT(decision.why, HasSubstr("no hook is configured for it"));
}

TEST(FailoverDecider, StaysLatchedThroughRecoveryOfTheOldActiveRegion) {
  ControllerState state;
  // After the failover the aggregators (still configured with us-east-1 active) see it
  // recover and say STAY, and later lose it again: no second failover from us-east-1.
  EXPECT_EQ(FailoversIn({Verdict(3, Action::kFailover, "eu-west-1"), Verdict(9, Action::kStay),
                         Verdict(12, Action::kFailover, "eu-west-1")},
                        state),
            1);
  EXPECT_TRUE(state.failover);
}

TEST(FailoverDecider, ReArmsAfterAStayForANewActiveRegion) {
  ControllerState state;
  ASSERT_EQ(FailoversIn({Verdict(3, Action::kFailover, "eu-west-1")}, state), 1);
  // A FAILOVER for the new active region before any STAY for it does not act.
  const Decision early =
      Decide(Verdict(1, Action::kFailover, "us-east-1", "ap-southeast-1", "eu-west-1"), state, {"us-east-1"});
  EXPECT_EQ(early.kind, DecisionKind::kNothing);
  EXPECT_THAT(early.why, HasSubstr("not re-armed"));
  // The aggregators were reconfigured with eu-west-1 active and say STAY: re-armed.
  const Decision rearm = Decide(Verdict(2, Action::kStay, "", "ap-southeast-1", "eu-west-1"), state, kHooked);
  EXPECT_EQ(rearm.kind, DecisionKind::kRearm);
  state = Apply(state, rearm, 2, 2000.0);
  EXPECT_FALSE(state.failover);
  EXPECT_EQ(
      Decide(Verdict(3, Action::kFailover, "us-east-1", "ap-southeast-1", "eu-west-1"), state, {"us-east-1"})
          .kind,
      DecisionKind::kFailover);
}

TEST(FailoverDecider, StateSurvivesARestartThroughItsFile) {
  ControllerState state;
  state.failover = FailoverRecord{"us-east-1", "eu-west-1", 42, 1700000000.25, "failed: hook: exit 3"};
  auto parsed = ParseState(SerializeState(state));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, state);
  // A controller restarted with that file does not fail over again.
  EXPECT_EQ(Decide(Verdict(43, Action::kFailover, "eu-west-1"), *parsed, kHooked).kind,
            DecisionKind::kNothing);
  // An empty (re-armed) state round-trips too.
  auto empty = ParseState(SerializeState(ControllerState{}));
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->failover);
  EXPECT_FALSE(ParseState("failover_from us-east-1\nfailover_size 3\n").ok());
}

TEST(ControllerConfig, ParsesEveryKeyAndNamesTheWrongOne) {
  auto config = ParseControllerConfig(R"(
aggregators: ["10.2.0.10:7700", "10.3.0.10:7700"]
state_file: /tmp/controller.state
hooks:
  eu-west-1: ["promote.sh", "repoint.sh"]
hook_timeout: 30s
heartbeat: 500ms
)");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_THAT(config->aggregators, ::testing::ElementsAre("10.2.0.10:7700", "10.3.0.10:7700"));
  EXPECT_THAT(config->hooks.at("eu-west-1"), ::testing::ElementsAre("promote.sh", "repoint.sh"));
  EXPECT_EQ(config->hook_timeout, std::chrono::seconds(30));
  EXPECT_EQ(config->heartbeat, std::chrono::milliseconds(500));

  auto typo = ParseControllerConfig("aggregators: [\"a:1\"]\nstate_file: x\nhook: {}\n");
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(typo.error().message, HasSubstr("hook: unknown key"));
  auto bad =
      ParseControllerConfig("aggregators: [nowhere]\nstate_file: x\nhooks: {eu-west-1: []}\nheartbeat: 2\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("aggregators[0]"));
  EXPECT_THAT(bad.error().message, HasSubstr("hooks.eu-west-1: expected a non-empty list"));
  EXPECT_THAT(bad.error().message, HasSubstr("heartbeat"));
  auto no_state = ParseControllerConfig("aggregators: [\"a:1\"]\n");
  ASSERT_FALSE(no_state.ok());
  EXPECT_THAT(no_state.error().message, HasSubstr("state_file"));
}

TEST(ControllerConfig, TlsWithAClientCertificateForReadAuthorisingAggregators) {
  auto config = ParseControllerConfig(
      "aggregators: [\"a:1\"]\nstate_file: x\n"
      "tls: {ca_file: /ca.crt, cert_file: /reader.crt, key_file: /reader.key}\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->tls.ca_file, "/ca.crt");
  EXPECT_EQ(config->tls.cert_file, "/reader.crt");
  EXPECT_EQ(config->tls.key_file, "/reader.key");
  EXPECT_TRUE(ParseControllerConfig("aggregators: [\"a:1\"]\nstate_file: x\n")->tls.ca_file.empty());

  auto half =
      ParseControllerConfig("aggregators: [\"a:1\"]\nstate_file: x\ntls: {ca_file: /ca, cert_file: /c}\n");
  ASSERT_FALSE(half.ok());
  EXPECT_THAT(half.error().message, HasSubstr("tls.key_file"));
  auto without_ca =
      ParseControllerConfig("aggregators: [\"a:1\"]\nstate_file: x\ntls: {cert_file: /c, key_file: /k}\n");
  ASSERT_FALSE(without_ca.ok());
  EXPECT_THAT(without_ca.error().message, HasSubstr("tls.cert_file: needs tls.ca_file"));
}

TEST(HookRunner, ReportsTheExitStatusPassesTheFailoverAndKillsALateHook) {
  auto ok = RunHook("test \"$REGIONPULSE_TO_REGION\" = eu-west-1", {{"REGIONPULSE_TO_REGION", "eu-west-1"}},
                    std::chrono::seconds(5));
  EXPECT_TRUE(ok.ok) << ok.what;
  auto failed = RunHook("exit 3", {}, std::chrono::seconds(5));
  EXPECT_FALSE(failed.ok);
  EXPECT_EQ(failed.what, "exit 3");
  auto late = RunHook("sleep 30", {}, std::chrono::milliseconds(300));
  EXPECT_FALSE(late.ok);
  EXPECT_THAT(late.what, HasSubstr("killed after"));
  EXPECT_LT(late.took, std::chrono::seconds(5));
}

}  // namespace
}  // namespace regionpulse::controller
