// VerdictEngine as a table of scenarios over simulated time: a small world of three regions
// (four nodes each) whose links, nodes and agents break on a timeline; the engine is
// evaluated every simulated second and its actions checked at given times.
#include "aggregator/verdict_engine.h"

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace regionpulse {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

const std::string kActive = "us-east-1";
const std::string kOwn = "eu-west-1";  // where the aggregator under test runs
const std::string kThird = "ap-southeast-1";

// What is broken at one moment.
struct World {
  std::vector<std::string> regions = {kActive, kOwn, kThird};
  int nodes_per_region = 4;
  // Region pairs (either order) between which every packet is lost.
  std::set<std::pair<std::string, std::string>> cut_links;
  // Nodes that lose every packet they send (their reports still arrive).
  std::set<std::string> isolated_nodes;
  // Regions whose agents are down: no reports, no reflectors; the region itself runs on.
  std::set<std::string> agents_down;
  // Replication staleness of the flow from the active region to a region.
  std::map<std::string, std::chrono::seconds> replication_staleness;

  bool Cut(const std::string& a, const std::string& b) const {
    return a != b && (cut_links.count({a, b}) || cut_links.count({b, a}));
  }
  // Every link of a region down: nobody reaches it, it reaches nobody.
  World& CutOff(const std::string& region) {
    for (const auto& other : regions) {
      if (other != region) cut_links.insert({region, other});
    }
    return *this;
  }
  World& CutLink(const std::string& a, const std::string& b) {
    cut_links.insert({a, b});
    return *this;
  }
  World& Isolate(const std::string& node) {
    isolated_nodes.insert(node);
    return *this;
  }
  World& AgentsDown(const std::string& region) {
    agents_down.insert(region);
    return *this;
  }
  World& Staleness(const std::string& region, std::chrono::seconds s) {
    replication_staleness[region] = s;
    return *this;
  }
};

std::string NodeName(const std::string& region, int i) {
  return region + "-node-" + std::to_string(i);
}

// The evidence the aggregator in kOwn would hold about this world.
VerdictEvidence Observe(const World& world) {
  VerdictEvidence evidence;
  evidence.regions = world.regions;
  for (const auto& region : world.regions) {
    for (int i = 0; i < world.nodes_per_region; ++i) {
      const std::string node = NodeName(region, i);
      const bool reports_arrive = !world.agents_down.count(region) && !world.Cut(region, kOwn);
      RegionAgents& agents = evidence.agents[region];
      if (!reports_arrive) {
        ++agents.not_reporting;
        continue;
      }
      ++agents.reporting;
      ObserverView observer{node, region, {}};
      const bool isolated = world.isolated_nodes.count(node) > 0;
      for (const auto& target : world.regions) {
        const bool answered = !isolated && !world.agents_down.count(target) && !world.Cut(region, target);
        observer.to_region[target] = {100, answered ? 100u : 0u, answered ? 100u : 0u};
        // Applications keep talking across every working link, agents or not.
        if (target != region && !isolated && !world.Cut(region, target)) {
          PassiveSignals& passive = evidence.passive[target];
          ++passive.nodes_receiving;
          passive.rx_packets += 1000;
        }
      }
      evidence.observers.push_back(std::move(observer));
    }
  }
  for (const auto& region : world.regions) {
    evidence.latency_into[region] = {std::chrono::milliseconds(70), std::chrono::milliseconds(90)};
  }
  for (const auto& [region, staleness] : world.replication_staleness) {
    evidence.replication.push_back({"postgres", kActive, region, staleness, 1'000'000, 0, 1});
  }
  return evidence;
}

struct Expect {
  int at;  // simulated second
  v1::Action action;
  std::string target = {};
  std::optional<v1::RegionState> active_state = {};
  std::string reason = {};  // a substring some reason must contain
};

struct Scenario {
  std::string name;
  std::function<World(int t)> world;
  int duration;
  std::vector<Expect> expect;
  bool never_failover = false;
  // Most verdict changes (generation increments) allowed in [changes_from, duration).
  int changes_from = 0;
  int max_changes = -1;
};

// Scenarios print as their names in test output.
void PrintTo(const Scenario& scenario, std::ostream* out) {
  *out << scenario.name;
}

VerdictEngineConfig Config() {
  VerdictEngineConfig config;
  config.active_region = kActive;
  config.own_region = kOwn;
  config.regions = {kActive, kOwn, kThird};
  return config;  // hold 120 s, dwell 300 s: the aggregator's defaults
}

World Healthy() {
  return World{};
}

// Run for 200 s healthy first, so the start-up HOLD is over before anything breaks.
constexpr int kWarm = 200;

const std::vector<Scenario>& Scenarios() {
  static const std::vector<Scenario> scenarios = {
      {"ActiveRegionUnreachableFailsOverExactlyAfterHoldTime",
       [](int t) { return t >= kWarm ? World{}.CutOff(kActive) : Healthy(); },
       kWarm + 200,
       {{kWarm - 1, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY},
        {kWarm, v1::ACTION_HOLD, "", v1::REGION_STATE_UNREACHABLE},
        {kWarm + 119, v1::ACTION_HOLD, "", v1::REGION_STATE_UNREACHABLE},
        {kWarm + 120, v1::ACTION_FAILOVER, kThird, v1::REGION_STATE_UNREACHABLE,
         "8/8 observers in ap-southeast-1 and eu-west-1 lost every probe to us-east-1 for 120 s"},
        {kWarm + 199, v1::ACTION_FAILOVER, kThird, v1::REGION_STATE_UNREACHABLE}}},

      {"OneObserverNodeLosingEverythingStays",
       [](int t) { return t >= kWarm ? World{}.Isolate(NodeName(kThird, 0)) : Healthy(); },
       kWarm + 400,
       {{kWarm + 10, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY, "1 isolated observer"},
        {kWarm + 399, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY}},
       true,
       kWarm,
       0},

      {"RegionPairLinkDownWhileThirdRegionReachesActiveIsDegraded",
       [](int t) { return t >= kWarm ? World{}.CutLink(kThird, kActive) : Healthy(); },
       kWarm + 400,
       {{kWarm + 5, v1::ACTION_STAY, kOwn, v1::REGION_STATE_DEGRADED, "4/8 observers in ap-southeast-1"},
        {kWarm + 399, v1::ACTION_STAY, kOwn, v1::REGION_STATE_DEGRADED}},
       true},

      {"TwoLinksDownButFourthRegionStillReachesActiveIsDegraded",
       [](int t) {
         World w;
         w.regions.push_back("sa-east-1");
         if (t >= kWarm) w.CutLink(kThird, kActive).CutLink(kOwn, kActive);
         return w;
       },
       kWarm + 400,
       {{kWarm + 5, v1::ACTION_STAY, kThird, v1::REGION_STATE_DEGRADED,
         "but observers in sa-east-1 still reach it"},
        {kWarm + 399, v1::ACTION_STAY, kThird, v1::REGION_STATE_DEGRADED}},
       true},

      {"OwnRegionIsolatedHoldsNeverFailsOver",
       [](int t) { return t >= kWarm ? World{}.CutOff(kOwn) : Healthy(); },
       kWarm + 600,
       {{kWarm, v1::ACTION_HOLD, "", std::nullopt, "hears from no other region"},
        {kWarm + 599, v1::ACTION_HOLD, "", std::nullopt, "hears from no other region"}},
       true},

      {"ActiveRegionFlappingEvery20sNeverFailsOverNorFlaps",
       [](int t) { return t >= kWarm && ((t - kWarm) / 20) % 2 == 0 ? World{}.CutOff(kActive) : Healthy(); },
       kWarm + 600,
       {{kWarm + 25, v1::ACTION_HOLD, "", v1::REGION_STATE_UNREACHABLE, "must stay reachable for 300 s"},
        {kWarm + 599, v1::ACTION_HOLD, "", v1::REGION_STATE_UNREACHABLE}},
       true,
       kWarm + 1,
       0},

      {"RegionLinkFlappingEvery20sStaysDegradedSteadily",
       [](int t) {
         return t >= kWarm && ((t - kWarm) / 20) % 2 == 0 ? World{}.CutLink(kThird, kActive) : Healthy();
       },
       kWarm + 600,
       {{kWarm + 30, v1::ACTION_STAY, kOwn, v1::REGION_STATE_DEGRADED},
        {kWarm + 599, v1::ACTION_STAY, kOwn, v1::REGION_STATE_DEGRADED}},
       true,
       kWarm + 1,
       0},

      {"RecoveryWaitsForTheHealthyDwell",
       [](int t) { return t >= kWarm && t < kWarm + 200 ? World{}.CutOff(kActive) : Healthy(); },
       kWarm + 600,
       {{kWarm + 120, v1::ACTION_FAILOVER, kThird},
        {kWarm + 200, v1::ACTION_FAILOVER, kThird, v1::REGION_STATE_UNREACHABLE, "recovering for 0 s"},
        {kWarm + 499, v1::ACTION_FAILOVER, kThird, v1::REGION_STATE_UNREACHABLE},
        {kWarm + 500, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY}}},

      {"AfterRestartHoldsUntilAFullHoldWindowOfData",
       [](int) { return Healthy(); },
       200,
       {{0, v1::ACTION_HOLD, "", v1::REGION_STATE_HEALTHY, "0 s of data"},
        {119, v1::ACTION_HOLD, "", v1::REGION_STATE_HEALTHY, "119 s of data"},
        {120, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY}}},

      {"AfterRestartIntoAnOutageFailsOverOnlyAfterHoldTime",
       [](int) { return World{}.CutOff(kActive); },
       200,
       {{0, v1::ACTION_HOLD}, {119, v1::ACTION_HOLD}, {120, v1::ACTION_FAILOVER, kThird}}},

      {"ActiveAgentsStopReportingWhileTrafficFlowsIsNotUnreachable",
       [](int t) { return t >= kWarm ? World{}.AgentsDown(kActive) : Healthy(); },
       kWarm + 600,
       {{kWarm + 5, v1::ACTION_HOLD, "", v1::REGION_STATE_UNKNOWN, "agents not reporting in us-east-1 (0/4)"},
        {kWarm + 599, v1::ACTION_HOLD, "", v1::REGION_STATE_UNKNOWN, "traffic from us-east-1 still arrives"}},
       true},

      {"FailoverTargetIsTheRegionWithLeastReplicationStaleness",
       [](int t) {
         World w;
         w.Staleness(kOwn, std::chrono::seconds(45)).Staleness(kThird, std::chrono::seconds(2));
         if (t >= kWarm) w.CutOff(kActive);
         return w;
       },
       kWarm + 150,
       {{kWarm + 120, v1::ACTION_FAILOVER, kThird, v1::REGION_STATE_UNREACHABLE, "replication staleness 2 s"},
        {kWarm + 121, v1::ACTION_FAILOVER, kThird, std::nullopt,
         "replication postgres us-east-1 -> eu-west-1 stale for 45 s"}}},

      {"OnlyOwnRegionReportingHoldsWhileActiveIsCutOff",
       [](int t) {
         World w;
         if (t >= kWarm) w.CutOff(kActive).AgentsDown(kThird);
         return w;
       },
       kWarm + 300,
       {{kWarm + 150, v1::ACTION_HOLD, "", v1::REGION_STATE_UNKNOWN, "hears from no other region"}},
       true},
  };
  return scenarios;
}

class VerdictScenarioTest : public ::testing::TestWithParam<Scenario> {};

TEST_P(VerdictScenarioTest, FollowsTheTimeline) {
  const Scenario& scenario = GetParam();
  VerdictEngine engine(Config());
  const auto start = WallClock::time_point(std::chrono::seconds(1'800'000'000));
  std::map<int, const Expect*> expectations;
  for (const auto& e : scenario.expect) expectations[e.at] = &e;

  int changes = 0;
  for (int t = 0; t < scenario.duration; ++t) {
    const auto evaluation = engine.Evaluate(Observe(scenario.world(t)), start + std::chrono::seconds(t));
    const v1::Verdict& verdict = evaluation.verdict;
    const std::string context = "at t=" + std::to_string(t) + "\n" + verdict.DebugString();
    if (scenario.never_failover) {
      ASSERT_NE(verdict.action(), v1::ACTION_FAILOVER) << context;
    }
    if (t >= scenario.changes_from && evaluation.changed) ++changes;
    const auto it = expectations.find(t);
    if (it == expectations.end()) continue;
    const Expect& e = *it->second;
    EXPECT_EQ(verdict.action(), e.action) << context;
    EXPECT_EQ(verdict.target_region(), e.target) << context;
    if (e.active_state) {
      const auto active = std::find_if(verdict.regions().begin(), verdict.regions().end(),
                                       [](const v1::RegionHealth& h) { return h.region() == kActive; });
      ASSERT_NE(active, verdict.regions().end()) << context;
      EXPECT_EQ(active->state(), *e.active_state) << context;
    }
    if (!e.reason.empty()) {
      std::string all;
      for (const auto& reason : verdict.reasons()) all += reason + "\n";
      EXPECT_THAT(all, HasSubstr(e.reason)) << context;
    }
  }
  if (scenario.max_changes >= 0) {
    EXPECT_LE(changes, scenario.max_changes) << "verdict changed " << changes << " times";
  }
}

INSTANTIATE_TEST_SUITE_P(Table, VerdictScenarioTest, ::testing::ValuesIn(Scenarios()),
                         [](const ::testing::TestParamInfo<Scenario>& info) { return info.param.name; });

// ---- Properties outside the table ----

TEST(VerdictEngineTest, GenerationIncrementsOnEveryChangeAndOnlyThen) {
  VerdictEngine engine(Config());
  const auto t0 = WallClock::time_point(std::chrono::seconds(1'800'000'000));
  uint64_t generation = 0;
  for (int t = 0; t < 400; ++t) {
    const World world = t >= 200 ? World{}.CutOff(kActive) : Healthy();
    const auto evaluation = engine.Evaluate(Observe(world), t0 + std::chrono::seconds(t));
    if (evaluation.changed) {
      EXPECT_EQ(evaluation.verdict.generation(), generation + 1) << "t=" << t;
      EXPECT_FALSE(evaluation.changes.empty());
    } else {
      EXPECT_EQ(evaluation.verdict.generation(), generation) << "t=" << t;
    }
    generation = evaluation.verdict.generation();
  }
  // first verdict, HOLD -> STAY at 120 s, HEALTHY -> UNREACHABLE (+ STAY -> HOLD) at 200 s, FAILOVER at 320
  // s.
  EXPECT_EQ(generation, 4u);
}

TEST(VerdictEngineTest, ChangesNameTheTransitionsInPlainWords) {
  VerdictEngine engine(Config());
  const auto t0 = WallClock::time_point(std::chrono::seconds(1'800'000'000));
  for (int t = 0; t < 320; ++t) {
    const World world = t >= 200 ? World{}.CutOff(kActive) : Healthy();
    const auto evaluation = engine.Evaluate(Observe(world), t0 + std::chrono::seconds(t));
    if (t == 200) {
      EXPECT_THAT(evaluation.changes, ::testing::Contains("us-east-1: HEALTHY -> UNREACHABLE"));
      EXPECT_THAT(evaluation.changes, ::testing::Contains("action: STAY -> HOLD"));
      EXPECT_EQ(evaluation.previous_action, v1::ACTION_STAY);
    }
  }
  const auto evaluation = engine.Evaluate(Observe(World{}.CutOff(kActive)), t0 + std::chrono::seconds(320));
  EXPECT_THAT(evaluation.changes, ::testing::Contains("action: HOLD -> FAILOVER"));
  EXPECT_EQ(evaluation.verdict.action(), v1::ACTION_FAILOVER);
}

// With two regions, "the active region is gone" and "we are cut off from it" look the same
// from the passive region: without a third vantage point the answer is HOLD, never FAILOVER.
TEST(VerdictEngineTest, TwoRegionsCannotTellAnOutageFromIsolationAndHold) {
  VerdictEngineConfig config = Config();
  config.regions = {kActive, kOwn};
  VerdictEngine engine(config);
  const auto t0 = WallClock::time_point(std::chrono::seconds(1'800'000'000));
  for (int t = 0; t < 600; ++t) {
    World world;
    world.regions = {kActive, kOwn};
    if (t >= kWarm) world.CutOff(kActive);
    const auto verdict = engine.Evaluate(Observe(world), t0 + std::chrono::seconds(t)).verdict;
    ASSERT_NE(verdict.action(), v1::ACTION_FAILOVER) << "t=" << t << "\n" << verdict.DebugString();
    if (t == kWarm - 1) {
      EXPECT_EQ(verdict.action(), v1::ACTION_STAY);
    }
    if (t == 599) {
      EXPECT_EQ(verdict.action(), v1::ACTION_HOLD);
    }
  }
}

TEST(VerdictEngineTest, NoConfigurationAnswersHold) {
  VerdictEngine engine(VerdictEngineConfig{});
  const auto evaluation = engine.Evaluate(VerdictEvidence{}, WallClock::time_point(std::chrono::seconds(1)));
  EXPECT_EQ(evaluation.verdict.action(), v1::ACTION_HOLD);
  EXPECT_THAT(evaluation.verdict.reasons(0), HasSubstr("no regions known"));
}

TEST(VerdictEngineTest, VerdictCarriesEvidencePerRegion) {
  VerdictEngine engine(Config());
  const auto t0 = WallClock::time_point(std::chrono::seconds(1'800'000'000));
  World world;
  world.Staleness(kOwn, std::chrono::seconds(3));
  const auto evaluation = engine.Evaluate(Observe(world), t0);
  const v1::Verdict& verdict = evaluation.verdict;
  EXPECT_EQ(verdict.active_region(), kActive);
  EXPECT_EQ(verdict.aggregator_region(), kOwn);
  ASSERT_EQ(verdict.regions_size(), 3);
  for (const auto& health : verdict.regions()) {
    EXPECT_EQ(health.observers_reporting(), 8u) << health.region();
    EXPECT_EQ(health.observers_agreeing(), 8u) << health.region();
    EXPECT_EQ(health.agents_reporting(), 4u) << health.region();
    EXPECT_EQ(health.rtt_p99().nanos(), 90'000'000) << health.region();
    if (health.region() == kOwn) {
      ASSERT_EQ(health.replication_size(), 1);
      EXPECT_EQ(health.replication(0).staleness().seconds(), 3);
      EXPECT_FALSE(health.replication(0).at_risk());
      EXPECT_EQ(health.replication_staleness().seconds(), 3);
    }
  }
}

TEST(VerdictEngineTest, DegradedByLossAndLatencyThresholds) {
  VerdictEngineConfig config = Config();
  VerdictEngine engine(config);
  const auto t0 = WallClock::time_point(std::chrono::seconds(1'800'000'000));
  VerdictEvidence evidence = Observe(Healthy());
  for (auto& observer : evidence.observers) {
    if (observer.region != kActive) observer.to_region[kActive] = {100, 95, 92};
  }
  auto verdict = engine.Evaluate(evidence, t0).verdict;
  EXPECT_EQ(verdict.regions(2).region(), kActive);  // regions are sorted
  EXPECT_EQ(verdict.regions(2).state(), v1::REGION_STATE_DEGRADED);
  EXPECT_NEAR(verdict.regions(2).loss(), 0.08, 1e-9);

  VerdictEngine slow(config);
  evidence = Observe(Healthy());
  evidence.latency_into[kActive].p99 = std::chrono::milliseconds(400);
  verdict = slow.Evaluate(evidence, t0).verdict;
  EXPECT_EQ(verdict.regions(2).state(), v1::REGION_STATE_DEGRADED);
  std::string reasons;
  for (const auto& reason : verdict.reasons()) reasons += reason + "\n";
  EXPECT_THAT(reasons, HasSubstr("RTT p99 400 ms (threshold 250 ms)"));
}

TEST(VerdictEngineTest, ReconfiguringTheActiveRegionEndsTheFailover) {
  VerdictEngine engine(Config());
  const auto t0 = WallClock::time_point(std::chrono::seconds(1'800'000'000));
  for (int t = 0; t <= 130; ++t)
    engine.Evaluate(Observe(World{}.CutOff(kActive)), t0 + std::chrono::seconds(t));
  ASSERT_EQ(engine.current().action(), v1::ACTION_FAILOVER);
  VerdictEngineConfig config = Config();
  config.active_region = kOwn;  // the controller failed over
  engine.Reconfigure(config);
  const auto verdict =
      engine.Evaluate(Observe(World{}.CutOff(kActive)), t0 + std::chrono::seconds(131)).verdict;
  EXPECT_EQ(verdict.action(), v1::ACTION_STAY);
  EXPECT_EQ(verdict.active_region(), kOwn);
}

}  // namespace
}  // namespace regionpulse
