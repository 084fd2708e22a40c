// VerdictEngine as a table of scenarios over simulated time: a small world of three regions
// whose links, nodes, agents and replicas break on a timeline. Every probe is simulated at
// both ends (the sender's counts, and what the target's reflector reports when its agent's
// reports arrive), the evidence is what the aggregator in eu-west-1 would hold, and the
// engine is evaluated every simulated second with its actions checked at given times.
#include "aggregator/verdict_engine.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/proto_convert.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

const std::string kActive = "us-east-1";
const std::string kStandby = "eu-west-1";        // holds the replica; the aggregator under test runs here
const std::string kObserver = "ap-southeast-1";  // observers only: never a target
const std::string kOwn = kStandby;
constexpr int kProbes = 100;  // per observer and target node over the evidence window

std::string NodeName(const std::string& region, int i) {
  return region + "-node-" + std::to_string(i);
}

// What is broken at one moment.
struct World {
  std::map<std::string, int> nodes = {{kActive, 4}, {kStandby, 4}, {kObserver, 4}};
  // Region pairs (either order) between which every packet is lost.
  std::set<std::pair<std::string, std::string>> cut_links;
  // (from region, to region) -> fraction of packets lost that way.
  std::map<std::pair<std::string, std::string>, double> lossy;
  // (node, region): every packet the node sends to that region is lost.
  std::set<std::pair<std::string, std::string>> cannot_send;
  // Nodes that lose every packet they send (their reports do not arrive either).
  std::set<std::string> isolated_nodes;
  // Regions whose agents are down: no reports, no reflectors; the region itself runs on.
  std::set<std::string> agents_down;
  // Nodes whose agent is down (the node runs on).
  std::set<std::string> node_agents_down;
  // Replication from the active region into a region: how far behind the replica is.
  std::map<std::string, std::chrono::seconds> replica_lag;
  // Where the aggregator under test runs: reports must reach it.
  std::string aggregator_region = kOwn;

  std::vector<std::string> Regions() const {
    std::vector<std::string> out;
    for (const auto& [region, n] : nodes) out.push_back(region);
    return out;
  }
  bool Cut(const std::string& a, const std::string& b) const {
    return a != b && (cut_links.count({a, b}) || cut_links.count({b, a}));
  }
  // Does a packet from `node` (in `from`) to region `to` get there?
  bool Delivers(const std::string& node, const std::string& from, const std::string& to) const {
    return !isolated_nodes.count(node) && !Cut(from, to) && !cannot_send.count({node, to});
  }
  double LossRate(const std::string& from, const std::string& to) const {
    const auto it = lossy.find({from, to});
    return it == lossy.end() ? 0.0 : it->second;
  }
  bool AgentUp(const std::string& node, const std::string& region) const {
    return !agents_down.count(region) && !node_agents_down.count(node);
  }
  bool ReportsArrive(const std::string& node, const std::string& region) const {
    return AgentUp(node, region) && Delivers(node, region, aggregator_region);
  }

  World& CutOff(const std::string& region) {
    for (const auto& [other, n] : nodes) {
      if (other != region) cut_links.insert({region, other});
    }
    return *this;
  }
  World& CutLink(const std::string& a, const std::string& b) {
    cut_links.insert({a, b});
    return *this;
  }
  World& Lossy(const std::string& from, const std::string& to, double fraction) {
    lossy[{from, to}] = fraction;
    return *this;
  }
  World& CannotSend(const std::string& node, const std::string& to) {
    cannot_send.insert({node, to});
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
  World& NodeAgentDown(const std::string& node) {
    node_agents_down.insert(node);
    return *this;
  }
  World& Replica(const std::string& region, std::chrono::seconds lag) {
    replica_lag[region] = lag;
    return *this;
  }
  World& Aggregator(const std::string& region) {
    aggregator_region = region;
    return *this;
  }
  World& Nodes(const std::string& region, int n) {
    nodes[region] = n;
    return *this;
  }
};

// What the aggregator remembers between evaluations: when each region was last seen
// answering, and each flow's newest report.
struct Memory {
  std::map<std::string, WallClock::time_point> last_answered;
  std::map<std::string, ReplicationEvidence> flows;  // by target region
};

// The evidence the aggregator in kOwn would hold about this world at `now`.
VerdictEvidence Observe(const World& world, WallClock::time_point now, Memory& memory) {
  VerdictEvidence evidence;
  evidence.regions = world.Regions();
  for (const auto& [region, count] : world.nodes) {
    for (int i = 0; i < count; ++i) {
      const std::string node = NodeName(region, i);
      RegionAgents& agents = evidence.agents[region];
      if (!world.ReportsArrive(node, region)) {
        ++agents.not_reporting;
        continue;
      }
      ++agents.reporting;
      ObserverView observer{node, region, {}, {}};
      for (const auto& [target_region, target_count] : world.nodes) {
        for (int j = 0; j < target_count; ++j) {
          const std::string target = NodeName(target_region, j);
          if (target == node) continue;
          const bool target_agent = world.AgentUp(target, target_region);
          const bool out = world.Delivers(node, region, target_region) && target_agent;
          const bool back = world.Delivers(target, target_region, region);
          ProbeCounts c;
          c.sent = kProbes;
          const auto reached = static_cast<uint64_t>(
              out ? std::lround(kProbes * (1.0 - world.LossRate(region, target_region))) : 0);
          const auto returned = static_cast<uint64_t>(
              back ? std::lround(static_cast<double>(reached) * (1.0 - world.LossRate(target_region, region)))
                   : 0);
          c.received_reverse = returned;
          if (returned > 0 || world.ReportsArrive(target, target_region)) {
            // Split by the reflector's numbering, or by the target's reflector report.
            c.received_forward = reached;
          } else {
            c.lost_unknown = c.sent;  // nothing came back and the far end said nothing
          }
          observer.to_node.push_back({target, target_region, c});
          observer.to_region[target_region].Add(c);
          if (returned > 0 && target_region != region) memory.last_answered[target_region] = now;
        }
        // Applications keep talking across every working link, agents or not.
        if (target_region != region && world.Delivers(node, region, target_region) &&
            !world.Cut(region, target_region)) {
          PassiveSignals& passive = evidence.passive[target_region];
          ++passive.nodes_receiving;
          passive.rx_packets += 1000;
        }
      }
      std::sort(observer.to_node.begin(), observer.to_node.end(), [](const auto& a, const auto& b) {
        return std::tie(a.region, a.node) < std::tie(b.region, b.node);
      });
      evidence.observers.push_back(std::move(observer));
    }
  }
  for (const auto& region : world.Regions()) {
    evidence.latency_into[region] = {std::chrono::milliseconds(70), std::chrono::milliseconds(90)};
  }
  // The flow into each replica region is observed on the active region's first node.
  const std::string source = NodeName(kActive, 0);
  for (const auto& [region, lag] : world.replica_lag) {
    ReplicationEvidence& flow = memory.flows[region];
    flow.name = "postgres";
    flow.source_region = kActive;
    flow.remote_region = region;
    flow.expected_min_rate_bps = 0;
    flow.nodes = 1;
    const bool reporting = world.ReportsArrive(source, kActive);
    if (reporting) {
      flow.as_of = now - 1s;
      flow.last_progress_age = lag;
      flow.bytes_outstanding = lag > 0s ? 64 * 1024 : 0;
      flow.rate_bps = 1'000'000;
    } else {
      flow.rate_bps = 0;
    }
    flow.source_silent = !reporting;
    flow.staleness = flow.last_progress_age + (reporting ? 0s : now - flow.as_of);
  }
  for (const auto& [region, flow] : memory.flows) {
    if (flow.as_of != WallClock::time_point{}) evidence.replication.push_back(flow);
  }
  evidence.last_answered = memory.last_answered;
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
  std::function<void(VerdictEngineConfig&)> configure = {};
};

// Scenarios print as their names in test output.
void PrintTo(const Scenario& scenario, std::ostream* out) {
  *out << scenario.name;
}

VerdictEngineConfig Config() {
  VerdictEngineConfig config;
  config.active_region = kActive;
  config.standby_regions = {kStandby};
  config.own_region = kOwn;
  config.regions = {kActive, kStandby, kObserver};
  return config;  // hold 120 s, dwell 300 s, max_data_loss 120 s: the aggregator's defaults
}

// A healthy platform with a current replica in the standby region.
World Healthy() {
  return World{}.Replica(kStandby, 0s);
}

// Run for 200 s healthy first, so the start-up HOLD is over before anything breaks.
constexpr int kWarm = 200;
const auto kStart = WallClock::time_point(std::chrono::seconds(1'800'000'000));

std::string AllReasons(const v1::Verdict& verdict) {
  std::string all;
  for (const auto& reason : verdict.reasons()) all += reason + "\n";
  return all;
}

const v1::RegionHealth* RegionOf(const v1::Verdict& verdict, const std::string& region) {
  for (const auto& health : verdict.regions()) {
    if (health.region() == region) return &health;
  }
  return nullptr;
}

const std::vector<Scenario>& Scenarios() {
  static const std::vector<Scenario> scenarios = {
      // The cut comes after the window ending at kWarm - 1, the last one answered: the hold
      // counts from then, not from the first evaluation that saw the region dark.
      {"ActiveRegionUnreachableFailsOverToTheStandbyExactlyHoldTimeAfterItLastAnswered",
       [](int t) { return t >= kWarm ? Healthy().CutOff(kActive) : Healthy(); },
       kWarm + 200,
       {{kWarm - 1, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY},
        {kWarm, v1::ACTION_HOLD, "", v1::REGION_STATE_UNREACHABLE},
        {kWarm + 118, v1::ACTION_HOLD, "", v1::REGION_STATE_UNREACHABLE},
        {kWarm + 119, v1::ACTION_FAILOVER, kStandby, v1::REGION_STATE_UNREACHABLE,
         "2/2 observer regions lost every probe to us-east-1 (ap-southeast-1 4/4 and eu-west-1 4/4 "
         "observers) for 120 s"},
        {kWarm + 199, v1::ACTION_FAILOVER, kStandby, v1::REGION_STATE_UNREACHABLE,
         "eu-west-1's replica was current"}}},

      // Read from the observer region's aggregator: with three regions it cannot tell "both
      // others are gone" from "we are cut off", and it never names itself.
      {"StandbyAlsoDownHoldsAndNeverPicksTheObserverRegion",
       [](int t) {
         World w = Healthy().Aggregator(kObserver);
         if (t >= kWarm) w.CutOff(kActive).CutOff(kStandby);
         return w;
       },
       kWarm + 300,
       {{kWarm + 150, v1::ACTION_HOLD, "", std::nullopt, "cannot tell an outage from our own isolation"}},
       true,
       0,
       -1,
       [](VerdictEngineConfig& c) { c.own_region = kObserver; }},

      // With a second observer region the outage is certain, and still no observer is a target.
      {"StandbyAlsoDownWithTwoObserverRegionsHoldsNoStandbyReachable",
       [](int t) {
         World w = Healthy().Aggregator(kObserver).Nodes("sa-east-1", 2);
         if (t >= kWarm) w.CutOff(kActive).CutOff(kStandby);
         return w;
       },
       kWarm + 300,
       {{kWarm + 119, v1::ACTION_HOLD, "", v1::REGION_STATE_UNREACHABLE},
        {kWarm + 150, v1::ACTION_HOLD, "", v1::REGION_STATE_UNREACHABLE, "no standby reachable"},
        {kWarm + 299, v1::ACTION_HOLD, "", v1::REGION_STATE_UNREACHABLE,
         "observer regions are never targets"}},
       true,
       0,
       -1,
       [](VerdictEngineConfig& c) {
         c.own_region = kObserver;
         c.regions.push_back("sa-east-1");
       }},

      {"ReplicaTooFarBehindAtTheCutHoldsForAManualDecisionWithTheFigure",
       [](int t) {
         World w = World{}.Replica(kStandby, 200s);
         if (t >= kWarm) w.CutOff(kActive);
         return w;
       },
       kWarm + 200,
       {{kWarm + 120, v1::ACTION_HOLD, kStandby, v1::REGION_STATE_UNREACHABLE,
         "eu-west-1's replica was 3 min 20 s behind"},
        {kWarm + 121, v1::ACTION_HOLD, kStandby, std::nullopt, "manual decision"},
        {kWarm + 199, v1::ACTION_HOLD, kStandby, std::nullopt, "loses at most 3 min 21 s of writes"}},
       true},

      {"ReplicaTooFarBehindWithPreferAvailabilityFailsOverWithTheFigure",
       [](int t) {
         World w = World{}.Replica(kStandby, 200s);
         if (t >= kWarm) w.CutOff(kActive);
         return w;
       },
       kWarm + 200,
       {{kWarm + 118, v1::ACTION_HOLD, "", v1::REGION_STATE_UNREACHABLE},
        {kWarm + 119, v1::ACTION_FAILOVER, kStandby, v1::REGION_STATE_UNREACHABLE,
         "loses at most 3 min 21 s of writes"},
        {kWarm + 121, v1::ACTION_FAILOVER, kStandby, std::nullopt, "prefer_availability"}},
       false,
       0,
       -1,
       [](VerdictEngineConfig& c) { c.prefer_availability = true; }},

      {"StandbyWithoutReplicationEvidenceIsUnknownAndNeedsAManualDecision",
       [](int t) { return t >= kWarm ? World{}.CutOff(kActive) : World{}; },
       kWarm + 200,
       {{kWarm + 120, v1::ACTION_HOLD, kStandby, v1::REGION_STATE_UNREACHABLE, "replication unknown"},
        {kWarm + 121, v1::ACTION_HOLD, kStandby, std::nullopt, "an unknown amount of writes"}},
       true},

      {"OneStandbyNodeUnableToSendToTheActiveRegionLeavesEveryRegionHealthy",
       [](int t) { return t >= kWarm ? Healthy().CannotSend(NodeName(kStandby, 0), kActive) : Healthy(); },
       kWarm + 400,
       {{kWarm + 10, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY,
         "node fault: eu-west-1-node-0 (eu-west-1) cannot send to us-east-1"},
        {kWarm + 399, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY}},
       true,
       kWarm,
       0},

      {"RegionSizesDoNotOutvoteRegionsALinkCutIsALinkFault",
       [](int t) {
         World w = Healthy().Nodes(kStandby, 3).Nodes(kObserver, 1);
         if (t >= kWarm) w.CutLink(kStandby, kActive);
         return w;
       },
       kWarm + 400,
       {{kWarm + 5, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY,
         "link fault: eu-west-1 is cut off from us-east-1 (direction unknown)"},
        {kWarm + 399, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY, "ap-southeast-1 reaches both"}},
       true,
       kWarm,
       0},

      {"OneObserverNodeLosingEverythingIsANodeFault",
       [](int t) { return t >= kWarm ? Healthy().Isolate(NodeName(kObserver, 0)) : Healthy(); },
       kWarm + 400,
       {{kWarm + 10, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY, "node fault: ap-southeast-1-node-0"},
        {kWarm + 399, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY}},
       true,
       kWarm,
       0},

      {"OneActiveNodeDownIsANodeFaultNotADegradedRegion",
       [](int t) {
         return t >= kWarm ? Healthy().Isolate(NodeName(kActive, 1)).NodeAgentDown(NodeName(kActive, 1))
                           : Healthy();
       },
       kWarm + 400,
       {{kWarm + 10, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY,
         "node fault: us-east-1-node-1 (us-east-1) is cut off from any other region (direction unknown)"},
        {kWarm + 399, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY}},
       true,
       kWarm,
       0},

      {"OneWayLossOnALinkIsADegradedLinkWithItsDirection",
       [](int t) { return t >= kWarm ? Healthy().Lossy(kActive, kStandby, 0.3) : Healthy(); },
       kWarm + 400,
       {{kWarm + 5, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY,
         "link fault: eu-west-1 loses traffic from us-east-1"},
        {kWarm + 399, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY}},
       true},

      // ap-southeast-1's uplink loses half of everything both ways: its own views of the
      // others are not evidence against them (it is the one cut off); they judge it.
      {"AnObserverRegionWithABadUplinkDegradesOnlyItself",
       [](int t) {
         World w = Healthy();
         if (t >= kWarm) {
           w.Lossy(kObserver, kActive, 0.5).Lossy(kActive, kObserver, 0.5);
           w.Lossy(kObserver, kStandby, 0.5).Lossy(kStandby, kObserver, 0.5);
         }
         return w;
       },
       kWarm + 100,
       {{kWarm + 5, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY},
        {kWarm + 99, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY, "ap-southeast-1 DEGRADED"}},
       true},

      // ap-southeast-1 half cut off: it sees us-east-1 badly and eu-west-1 still well, while
      // eu-west-1 already sees it badly and us-east-1 well. The trouble is at ap-southeast-1.
      {"AnObserverRegionBeingCutOffDoesNotDegradeTheActiveRegion",
       [](int t) {
         World w = Healthy();
         if (t >= kWarm) w.Lossy(kObserver, kActive, 0.5).Lossy(kStandby, kObserver, 0.5);
         return w;
       },
       kWarm + 100,
       {{kWarm + 5, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY},
        {kWarm + 99, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY}},
       true},

      {"LossEverywhereIntoTheActiveRegionDegradesItAndAdvisesTheStandby",
       [](int t) {
         World w = Healthy();
         if (t >= kWarm) w.Lossy(kStandby, kActive, 0.2).Lossy(kObserver, kActive, 0.2);
         return w;
       },
       kWarm + 100,
       {{kWarm + 5, v1::ACTION_STAY, kStandby, v1::REGION_STATE_DEGRADED,
         "advice if it worsens: target eu-west-1"}},
       true},

      {"OwnRegionIsolatedHoldsNeverFailsOver",
       [](int t) { return t >= kWarm ? Healthy().CutOff(kOwn) : Healthy(); },
       kWarm + 600,
       {{kWarm, v1::ACTION_HOLD, "", std::nullopt, "hears from no other region"},
        {kWarm + 599, v1::ACTION_HOLD, "", std::nullopt, "hears from no other region"}},
       true},

      {"ActiveRegionFlappingEvery20sNeverFailsOverNorFlaps",
       [](int t) {
         return t >= kWarm && ((t - kWarm) / 20) % 2 == 0 ? Healthy().CutOff(kActive) : Healthy();
       },
       kWarm + 600,
       {{kWarm + 25, v1::ACTION_HOLD, "", v1::REGION_STATE_UNREACHABLE, "must stay reachable for 300 s"},
        {kWarm + 599, v1::ACTION_HOLD, "", v1::REGION_STATE_UNREACHABLE}},
       true,
       kWarm + 1,
       0},

      {"RegionLinkFlappingEvery20sNeverChangesTheVerdict",
       [](int t) {
         return t >= kWarm && ((t - kWarm) / 20) % 2 == 0 ? Healthy().CutLink(kObserver, kActive) : Healthy();
       },
       kWarm + 600,
       {{kWarm + 30, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY},
        {kWarm + 599, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY}},
       true,
       kWarm + 1,
       0},

      {"RecoveryWaitsForTheHealthyDwell",
       [](int t) { return t >= kWarm && t < kWarm + 200 ? Healthy().CutOff(kActive) : Healthy(); },
       kWarm + 600,
       {{kWarm + 120, v1::ACTION_FAILOVER, kStandby},
        {kWarm + 200, v1::ACTION_FAILOVER, kStandby, v1::REGION_STATE_UNREACHABLE, "recovering for 0 s"},
        {kWarm + 499, v1::ACTION_FAILOVER, kStandby, v1::REGION_STATE_UNREACHABLE},
        {kWarm + 500, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY}}},

      {"AfterRestartHoldsUntilAFullHoldWindowOfData",
       [](int) { return Healthy(); },
       200,
       {{0, v1::ACTION_HOLD, "", v1::REGION_STATE_HEALTHY, "0 s of data"},
        {119, v1::ACTION_HOLD, "", v1::REGION_STATE_HEALTHY, "119 s of data"},
        {120, v1::ACTION_STAY, "", v1::REGION_STATE_HEALTHY}}},

      {"AfterRestartIntoAnOutageNeverFailsOverWithoutReplicationEvidence",
       [](int) { return Healthy().CutOff(kActive); },
       200,
       {{0, v1::ACTION_HOLD},
        {119, v1::ACTION_HOLD},
        {120, v1::ACTION_HOLD, kStandby, std::nullopt, "unknown amount"}},
       true},

      {"ActiveAgentsStopReportingWhileTrafficFlowsIsNotUnreachable",
       [](int t) { return t >= kWarm ? Healthy().AgentsDown(kActive) : Healthy(); },
       kWarm + 600,
       {{kWarm + 5, v1::ACTION_HOLD, "", v1::REGION_STATE_UNKNOWN, "agents not reporting in us-east-1 (0/4)"},
        {kWarm + 599, v1::ACTION_HOLD, "", v1::REGION_STATE_UNKNOWN, "traffic from us-east-1 still arrives"}},
       true},

      {"OnlyOwnRegionReportingHoldsWhileActiveIsCutOff",
       [](int t) {
         World w = Healthy();
         if (t >= kWarm) w.CutOff(kActive).AgentsDown(kObserver);
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
  VerdictEngineConfig config = Config();
  if (scenario.configure) scenario.configure(config);
  VerdictEngine engine(config);
  Memory memory;
  std::map<int, const Expect*> expectations;
  for (const auto& e : scenario.expect) expectations[e.at] = &e;

  int changes = 0;
  for (int t = 0; t < scenario.duration; ++t) {
    const auto now = kStart + std::chrono::seconds(t);
    const auto evaluation = engine.Evaluate(Observe(scenario.world(t), now, memory), now);
    const v1::Verdict& verdict = evaluation.verdict;
    const std::string context = "at t=" + std::to_string(t) + "\n" + verdict.DebugString();
    if (scenario.never_failover) {
      ASSERT_NE(verdict.action(), v1::ACTION_FAILOVER) << context;
    }
    // Only a standby is ever a target.
    if (!verdict.target_region().empty()) {
      ASSERT_THAT(config.standby_regions, ::testing::Contains(verdict.target_region())) << context;
    }
    if (t >= scenario.changes_from && evaluation.changed) ++changes;
    const auto it = expectations.find(t);
    if (it == expectations.end()) continue;
    const Expect& e = *it->second;
    EXPECT_EQ(verdict.action(), e.action) << context;
    EXPECT_EQ(verdict.target_region(), e.target) << context;
    if (e.active_state) {
      const v1::RegionHealth* active = RegionOf(verdict, kActive);
      ASSERT_NE(active, nullptr) << context;
      EXPECT_EQ(active->state(), *e.active_state) << context;
    }
    if (!e.reason.empty()) {
      EXPECT_THAT(AllReasons(verdict), HasSubstr(e.reason)) << context;
    }
  }
  if (scenario.max_changes >= 0) {
    EXPECT_LE(changes, scenario.max_changes) << "verdict changed " << changes << " times";
  }
}

INSTANTIATE_TEST_SUITE_P(Table, VerdictScenarioTest, ::testing::ValuesIn(Scenarios()),
                         [](const ::testing::TestParamInfo<Scenario>& info) { return info.param.name; });

// ---- The evidence behind a decision ----

// Runs `world_at` for `seconds` simulated seconds and returns the last verdict.
v1::Verdict RunFor(VerdictEngine& engine, Memory& memory, int from, int seconds,
                   const std::function<World(int)>& world_at) {
  v1::Verdict verdict;
  for (int t = from; t < from + seconds; ++t) {
    const auto now = kStart + std::chrono::seconds(t);
    verdict = engine.Evaluate(Observe(world_at(t), now, memory), now).verdict;
  }
  return verdict;
}

TEST(VerdictEngineTest, FailoverCarriesWhatItWouldLoseMeasuredFromTheLastReportBeforeTheCut) {
  VerdictEngine engine(Config());
  Memory memory;
  const auto world = [](int t) {
    World w = World{}.Replica(kStandby, 0s);
    if (t >= kWarm) w.CutOff(kActive);
    return w;
  };
  const v1::Verdict verdict = RunFor(engine, memory, 0, kWarm + 130, world);
  ASSERT_EQ(verdict.action(), v1::ACTION_FAILOVER) << verdict.DebugString();
  EXPECT_FALSE(verdict.manual_decision());
  EXPECT_EQ(FromDuration(verdict.max_data_loss()), 120s);
  ASSERT_EQ(verdict.data_at_risk_size(), 1) << verdict.DebugString();
  const v1::DataAtRisk& risk = verdict.data_at_risk(0);
  EXPECT_EQ(risk.flow(), "postgres");
  EXPECT_EQ(risk.source_region(), kActive);
  EXPECT_EQ(risk.target_region(), kStandby);
  EXPECT_TRUE(risk.source_silent());
  // The last report before the cut ended 1 s before t = kWarm - 1; the region last answered
  // at t = kWarm - 1: a 1 s gap, no lag.
  EXPECT_EQ(FromTimestamp(risk.as_of()), kStart + std::chrono::seconds(kWarm - 2));
  EXPECT_EQ(FromDuration(risk.replica_lag()), 0s);
  EXPECT_EQ(FromDuration(risk.evidence_gap()), 1s);
  EXPECT_EQ(FromDuration(risk.at_most()), 1s);
  EXPECT_THAT(AllReasons(verdict), HasSubstr("failing over loses at most 1 s of writes"));
  const v1::RegionHealth* standby = RegionOf(verdict, kStandby);
  ASSERT_NE(standby, nullptr);
  EXPECT_EQ(standby->role(), v1::REGION_ROLE_STANDBY);
  EXPECT_EQ(RegionOf(verdict, kObserver)->role(), v1::REGION_ROLE_OBSERVER);
  EXPECT_EQ(RegionOf(verdict, kActive)->role(), v1::REGION_ROLE_ACTIVE);
  EXPECT_EQ(RegionOf(verdict, kActive)->observer_regions_reporting(), 2u);
  EXPECT_EQ(RegionOf(verdict, kActive)->observer_regions_agreeing(), 2u);
  ASSERT_GE(verdict.suspects_size(), 1);
  EXPECT_EQ(verdict.suspects(0).kind(), v1::SUSPECT_KIND_REGION);
  EXPECT_EQ(verdict.suspects(0).region(), kActive);
  EXPECT_EQ(verdict.suspects(0).severity(), v1::REGION_STATE_UNREACHABLE);
}

TEST(VerdictEngineTest, StandbyWithCurrentReplicationRanksBeforeAPreferredOneWithout) {
  VerdictEngineConfig config = Config();
  config.regions.push_back("sa-east-1");
  config.standby_regions = {"sa-east-1", kStandby};  // sa-east-1 preferred, but holds no replica
  VerdictEngine engine(config);
  Memory memory;
  const auto world = [](int t) {
    World w = Healthy().Nodes("sa-east-1", 2);
    if (t >= kWarm) w.CutOff(kActive);
    return w;
  };
  const v1::Verdict verdict = RunFor(engine, memory, 0, kWarm + 121, world);
  EXPECT_EQ(verdict.action(), v1::ACTION_FAILOVER) << verdict.DebugString();
  EXPECT_EQ(verdict.target_region(), kStandby);
  EXPECT_EQ(RegionOf(verdict, "sa-east-1")->replication_status(), v1::REPLICATION_STATUS_UNKNOWN);
  EXPECT_EQ(RegionOf(verdict, kStandby)->replication_status(), v1::REPLICATION_STATUS_CURRENT);
}

TEST(VerdictEngineTest, NodeFaultNamesTheNodeTheRegionAndTheDirection) {
  VerdictEngine engine(Config());
  Memory memory;
  const std::string node = NodeName(kStandby, 0);
  const v1::Verdict verdict = RunFor(engine, memory, 0, kWarm + 5, [&](int t) {
    return t >= kWarm ? Healthy().CannotSend(node, kActive) : Healthy();
  });
  for (const auto& region : verdict.regions()) {
    EXPECT_EQ(region.state(), v1::REGION_STATE_HEALTHY) << region.region();
  }
  ASSERT_EQ(verdict.suspects_size(), 1) << verdict.DebugString();
  const v1::Suspect& suspect = verdict.suspects(0);
  EXPECT_EQ(suspect.kind(), v1::SUSPECT_KIND_NODE);
  EXPECT_EQ(suspect.node(), node);
  EXPECT_EQ(suspect.region(), kStandby);
  EXPECT_EQ(suspect.peer_region(), kActive);
  EXPECT_EQ(suspect.direction(), v1::LOSS_DIRECTION_FORWARD);
  EXPECT_EQ(suspect.severity(), v1::REGION_STATE_DEGRADED);
  EXPECT_EQ(FromTimestamp(suspect.since()), kStart + std::chrono::seconds(kWarm));
  EXPECT_THAT(suspect.evidence(), HasSubstr("of its region-mates reach it"));
}

TEST(VerdictEngineTest, LinkFaultSaysWhichWayTheLossGoes) {
  VerdictEngine engine(Config());
  Memory memory;
  const v1::Verdict verdict = RunFor(engine, memory, 0, kWarm + 5, [](int t) {
    return t >= kWarm ? Healthy().Lossy(kActive, kStandby, 0.3) : Healthy();
  });
  ASSERT_EQ(verdict.suspects_size(), 1) << verdict.DebugString();
  const v1::Suspect& link = verdict.suspects(0);
  EXPECT_EQ(link.kind(), v1::SUSPECT_KIND_LINK);
  // Seen from eu-west-1 (the pair's first name in order) towards us-east-1: it receives less.
  EXPECT_EQ(link.region(), kStandby);
  EXPECT_EQ(link.peer_region(), kActive);
  EXPECT_EQ(link.direction(), v1::LOSS_DIRECTION_REVERSE);
  EXPECT_EQ(link.severity(), v1::REGION_STATE_DEGRADED);
  for (const auto& region : verdict.regions()) {
    EXPECT_EQ(region.state(), v1::REGION_STATE_HEALTHY) << region.region();
  }
}

TEST(VerdictEngineTest, LossOfASilentRegionHasAnUnknownDirectionNeverForward) {
  VerdictEngine engine(Config());
  Memory memory;
  const v1::Verdict verdict = RunFor(
      engine, memory, 0, kWarm + 5, [](int t) { return t >= kWarm ? Healthy().CutOff(kActive) : Healthy(); });
  const v1::RegionHealth* active = RegionOf(verdict, kActive);
  ASSERT_NE(active, nullptr);
  EXPECT_DOUBLE_EQ(active->loss(), 1.0);
  EXPECT_DOUBLE_EQ(active->loss_forward(), 0.0);
  EXPECT_DOUBLE_EQ(active->loss_unknown(), 1.0);
  ASSERT_GE(verdict.suspects_size(), 1);
  EXPECT_EQ(verdict.suspects(0).direction(), v1::LOSS_DIRECTION_UNKNOWN);
}

// ---- Restart ----

TEST(VerdictEngineTest, RestartInTheMiddleOfTheDwellDoesNotStayEarly) {
  const auto world = [](int t) {
    return t >= kWarm && t < kWarm + 200 ? Healthy().CutOff(kActive) : Healthy();
  };
  VerdictEngine before(Config());
  Memory memory;
  v1::Verdict verdict = RunFor(before, memory, 0, kWarm + 300, world);  // 100 s into the 300 s dwell
  ASSERT_EQ(verdict.action(), v1::ACTION_FAILOVER) << verdict.DebugString();
  const v1::VerdictEngineState saved = before.SaveState();
  EXPECT_TRUE(saved.failover_latched());
  EXPECT_EQ(saved.failover_target(), kStandby);

  // The aggregator is down for 30 s, then starts again from the saved state.
  VerdictEngine after(Config());
  ASSERT_TRUE(after.RestoreState(saved));
  bool stayed_early = false;
  uint64_t generation = saved.generation();
  for (int t = kWarm + 330; t < kWarm + 900; ++t) {
    const auto now = kStart + std::chrono::seconds(t);
    const auto evaluation = after.Evaluate(Observe(world(t), now, memory), now);
    const v1::Verdict& v = evaluation.verdict;
    EXPECT_GE(v.generation(), generation) << "generations never repeat";
    if (evaluation.changed) {
      EXPECT_GT(v.generation(), generation);
    }
    generation = v.generation();
    // The start-up HOLD first, then the FAILOVER resumes, and STAY only after a full dwell of
    // evidence gathered since the restart (t >= kWarm + 330 + 300).
    if (t < kWarm + 330 + 120) {
      EXPECT_EQ(v.action(), v1::ACTION_HOLD) << "t=" << t;
    } else if (v.action() == v1::ACTION_STAY && t < kWarm + 330 + 300) {
      stayed_early = true;
    }
    if (t == kWarm + 330 + 120) {
      EXPECT_EQ(v.action(), v1::ACTION_FAILOVER) << v.DebugString();
      EXPECT_EQ(v.target_region(), kStandby);
      EXPECT_EQ(v.data_at_risk_size(), 1);
    }
    if (t == kWarm + 899) {
      EXPECT_EQ(v.action(), v1::ACTION_STAY) << v.DebugString();
    }
  }
  EXPECT_FALSE(stayed_early);
}

TEST(VerdictEngineTest, AStateSavedForAnotherActiveRegionIsNotRestoredButGenerationsContinue) {
  v1::VerdictEngineState saved;
  saved.set_generation(41);
  saved.set_active_region(kStandby);
  saved.set_failover_latched(true);
  saved.set_failover_target(kActive);
  VerdictEngine engine(Config());
  EXPECT_FALSE(engine.RestoreState(saved));
  Memory memory;
  const auto evaluation = engine.Evaluate(Observe(Healthy(), kStart, memory), kStart);
  EXPECT_EQ(evaluation.verdict.generation(), 42u);
  EXPECT_EQ(evaluation.verdict.action(), v1::ACTION_HOLD);
}

// ---- Properties outside the table ----

TEST(VerdictEngineTest, GenerationIncrementsOnEveryChangeAndOnlyThen) {
  VerdictEngine engine(Config());
  Memory memory;
  uint64_t generation = 0;
  for (int t = 0; t < 400; ++t) {
    const World world = t >= 200 ? Healthy().CutOff(kActive) : Healthy();
    const auto now = kStart + std::chrono::seconds(t);
    const auto evaluation = engine.Evaluate(Observe(world, now, memory), now);
    if (evaluation.changed) {
      EXPECT_EQ(evaluation.verdict.generation(), generation + 1) << "t=" << t;
      EXPECT_FALSE(evaluation.changes.empty());
    } else {
      EXPECT_EQ(evaluation.verdict.generation(), generation) << "t=" << t;
    }
    generation = evaluation.verdict.generation();
  }
  // first verdict, HOLD -> STAY at 120 s, HEALTHY -> UNREACHABLE (+ STAY -> HOLD) at 200 s, FAILOVER at 319
  // s (hold time after the last window answered).
  EXPECT_EQ(generation, 4u);
}

TEST(VerdictEngineTest, ChangesNameTheTransitionsInPlainWords) {
  VerdictEngine engine(Config());
  Memory memory;
  for (int t = 0; t < 319; ++t) {
    const World world = t >= 200 ? Healthy().CutOff(kActive) : Healthy();
    const auto now = kStart + std::chrono::seconds(t);
    const auto evaluation = engine.Evaluate(Observe(world, now, memory), now);
    if (t == 200) {
      EXPECT_THAT(evaluation.changes, ::testing::Contains("us-east-1: HEALTHY -> UNREACHABLE"));
      EXPECT_THAT(evaluation.changes, ::testing::Contains("action: STAY -> HOLD"));
      EXPECT_EQ(evaluation.previous_action, v1::ACTION_STAY);
    }
  }
  // Hold time after the last window answered (ending at 199).
  const auto now = kStart + std::chrono::seconds(319);
  const auto evaluation = engine.Evaluate(Observe(Healthy().CutOff(kActive), now, memory), now);
  EXPECT_THAT(evaluation.changes, ::testing::Contains("action: HOLD -> FAILOVER"));
  EXPECT_THAT(evaluation.changes, ::testing::Contains("target: '' -> 'eu-west-1'"));
  EXPECT_EQ(evaluation.verdict.action(), v1::ACTION_FAILOVER);
}

// With two regions, "the active region is gone" and "we are cut off from it" look the same
// from the passive region: without a third vantage point the answer is HOLD, never FAILOVER.
TEST(VerdictEngineTest, TwoRegionsCannotTellAnOutageFromIsolationAndHold) {
  VerdictEngineConfig config = Config();
  config.regions = {kActive, kOwn};
  VerdictEngine engine(config);
  Memory memory;
  for (int t = 0; t < 600; ++t) {
    World world = Healthy();
    world.nodes.erase(kObserver);
    if (t >= kWarm) world.CutOff(kActive);
    const auto now = kStart + std::chrono::seconds(t);
    const auto verdict = engine.Evaluate(Observe(world, now, memory), now).verdict;
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

TEST(VerdictEngineTest, NoStandbyConfiguredNeverFailsOver) {
  VerdictEngineConfig config = Config();
  config.standby_regions.clear();
  VerdictEngine engine(config);
  Memory memory;
  const v1::Verdict verdict = RunFor(engine, memory, 0, kWarm + 200, [](int t) {
    return t >= kWarm ? Healthy().CutOff(kActive) : Healthy();
  });
  EXPECT_EQ(verdict.action(), v1::ACTION_HOLD);
  EXPECT_THAT(AllReasons(verdict), HasSubstr("no standby regions configured"));
}

TEST(VerdictEngineTest, VerdictCarriesEvidencePerRegion) {
  VerdictEngine engine(Config());
  Memory memory;
  const auto evaluation = engine.Evaluate(Observe(World{}.Replica(kStandby, 3s), kStart, memory), kStart);
  const v1::Verdict& verdict = evaluation.verdict;
  EXPECT_EQ(verdict.active_region(), kActive);
  EXPECT_EQ(verdict.aggregator_region(), kOwn);
  EXPECT_THAT(verdict.standby_regions(), ::testing::ElementsAre(kStandby));
  ASSERT_EQ(verdict.regions_size(), 3);
  for (const auto& health : verdict.regions()) {
    EXPECT_EQ(health.observers_reporting(), 8u) << health.region();
    EXPECT_EQ(health.observers_agreeing(), 8u) << health.region();
    EXPECT_EQ(health.observer_regions_reporting(), 2u) << health.region();
    EXPECT_EQ(health.agents_reporting(), 4u) << health.region();
    EXPECT_EQ(health.rtt_p99().nanos(), 90'000'000) << health.region();
    if (health.region() == kStandby) {
      ASSERT_EQ(health.replication_size(), 1);
      EXPECT_EQ(health.replication(0).staleness().seconds(), 3);
      EXPECT_FALSE(health.replication(0).at_risk());
      EXPECT_EQ(health.replication_staleness().seconds(), 3);
      EXPECT_EQ(health.replication_status(), v1::REPLICATION_STATUS_CURRENT);
    }
  }
  EXPECT_EQ(verdict.suspects_size(), 0);
}

TEST(VerdictEngineTest, DegradedByLatencyThreshold) {
  VerdictEngine engine(Config());
  Memory memory;
  VerdictEvidence evidence = Observe(Healthy(), kStart, memory);
  evidence.latency_into[kActive].p99 = std::chrono::milliseconds(400);
  const auto verdict = engine.Evaluate(evidence, kStart).verdict;
  EXPECT_EQ(RegionOf(verdict, kActive)->state(), v1::REGION_STATE_DEGRADED);
  EXPECT_THAT(AllReasons(verdict), HasSubstr("RTT p99 400 ms (threshold 250 ms)"));
}

TEST(VerdictEngineTest, ReconfiguringTheActiveRegionEndsTheFailover) {
  VerdictEngine engine(Config());
  Memory memory;
  RunFor(engine, memory, 0, 131, [](int) { return Healthy().CutOff(kActive); });
  // With the default policy the unknown-at-start replica holds; prefer availability here.
  VerdictEngineConfig config = Config();
  config.prefer_availability = true;
  engine.Reconfigure(config);
  RunFor(engine, memory, 131, 1, [](int) { return Healthy().CutOff(kActive); });
  ASSERT_EQ(engine.current().action(), v1::ACTION_FAILOVER) << engine.current().DebugString();
  config.active_region = kStandby;  // the controller failed over
  config.standby_regions = {kObserver};
  engine.Reconfigure(config);
  const auto verdict = RunFor(engine, memory, 132, 1, [](int) { return Healthy().CutOff(kActive); });
  EXPECT_EQ(verdict.action(), v1::ACTION_STAY) << verdict.DebugString();
  EXPECT_EQ(verdict.active_region(), kStandby);
}

}  // namespace
}  // namespace regionpulse
