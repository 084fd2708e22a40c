// The core end to end, with no I/O: agents (3 regions x 4) register, follow their probe plans
// and send one report a second through the registry into the matrix; the verdict engine reads
// the matrix's evidence. Checks that the pieces fit and what the windows add to the timing.
// The agents speak the whole contract: a sender cannot tell which way an unanswered probe went
// (lost_direction_unknown), its target's reflector says what it received from the sender's
// session, and the active region's nodes report a replication flow into one standby.
#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "aggregator/agent_registry.h"
#include "aggregator/probe_planner.h"
#include "aggregator/region_matrix.h"
#include "aggregator/verdict_engine.h"
#include "aggregator/verdict_evidence.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

const std::string kActive = "us-east-1";
const std::string kOwn = "eu-west-1";
const std::string kThird = "ap-southeast-1";
const std::vector<std::string> kRegions = {kActive, kOwn, kThird};
const WallClock::time_point kT0 = WallClock::time_point(std::chrono::seconds(1'800'000'000));

struct Breakage {
  std::set<std::pair<std::string, std::string>> cut;  // region pairs, either order
  std::set<std::string> agents_down;                  // regions whose agents crashed
  // (sender region, target region): the target's reflectors do not hold the key the sender's
  // nodes sign with, so every such probe is refused for its key, and the reflectors say so.
  std::set<std::pair<std::string, std::string>> wrong_key;
  bool WrongKey(const std::string& sender, const std::string& target) const {
    return wrong_key.count({sender, target}) > 0;
  }
  bool Cut(const std::string& a, const std::string& b) const {
    return a != b && (cut.count({a, b}) || cut.count({b, a}));
  }
};

class Pipeline {
 public:
  Pipeline() : engine_(EngineConfig()) {
    for (const auto& region : kRegions) {
      for (int i = 0; i < 4; ++i) {
        const std::string node = region + "-node-" + std::to_string(i);
        nodes_.push_back({node, region});
        v1::Hello hello;
        hello.set_node(node);
        hello.set_region(region);
        hello.set_zone(region + "a");
        hello.set_instance_id(1);
        hello.mutable_probe_endpoint()->set_address("10.0.0." + std::to_string(nodes_.size()));
        addresses_[node] = hello.probe_endpoint().address();
        hello.mutable_probe_endpoint()->set_port(862);
        const auto result = registry_.Hello(hello, kT0);
        EXPECT_TRUE(result.ok) << result.reason;
        sessions_[node] = result.session;
        planner_.Upsert({node, region, region + "a", {hello.probe_endpoint().address(), 862}});
      }
    }
  }

  // One simulated second: every agent whose reports can reach the aggregator sends one; then
  // the verdict is evaluated.
  v1::Verdict Tick(int t, const Breakage& broken) {
    const auto now = kT0 + std::chrono::seconds(t);
    // What each reflector received this second, by target node: every probe of a live sender
    // whose way to the target is not cut (a crashed agent's reflector is gone with it).
    std::map<std::string, std::vector<v1::ReflectedStats>> reflected;
    for (const auto& [node, region] : nodes_) {
      if (broken.agents_down.count(region)) continue;
      const auto plan = planner_.PlanFor(node, now);
      for (const auto& target : plan->targets()) {
        if (broken.agents_down.count(target.region()) || broken.Cut(region, target.region())) continue;
        v1::ReflectedStats& entry = reflected[target.node()].emplace_back();
        *entry.mutable_sender() = SourceOf(node);
        entry.set_ssid(SsidOf(target.node()));
        if (broken.WrongKey(region, target.region())) {
          entry.set_refused_wrong_key(10);
          continue;
        }
        entry.set_received(10);
        entry.set_replied(10);
      }
    }
    for (const auto& [node, region] : nodes_) {
      if (broken.agents_down.count(region) || broken.Cut(region, kOwn)) continue;
      v1::HealthReport report = ReportOf(node, region, t, broken);
      for (auto& entry : reflected[node]) *report.add_reflected() = std::move(entry);
      const auto result = registry_.Accept(sessions_[node], report, now);
      EXPECT_EQ(result.status, AcceptStatus::kAccepted) << result.reason;
      if (result.stored_now()) matrix_.Add(result.agent, report, now);
    }
    return engine_.Evaluate(BuildVerdictEvidence(matrix_, registry_.Presence(now), kRegions, now), now)
        .verdict;
  }

  const RegionMatrix& matrix() const { return matrix_; }

 private:
  static VerdictEngineConfig EngineConfig() {
    VerdictEngineConfig config;
    config.active_region = kActive;
    config.own_region = kOwn;
    config.regions = kRegions;
    // Both others are standbys, eu-west-1 preferred; only ap-southeast-1 is fed a replica.
    config.standby_regions = {kOwn, kThird};
    return config;
  }

  // As the aggregator configures it: flows kept for hold + dwell after their last report.
  static RegionMatrixConfig MatrixConfig() {
    RegionMatrixConfig config;
    const VerdictEngineConfig engine = EngineConfig();
    config.replication_retention = ReplicationRetentionFor(config.window, engine.hold, engine.dwell);
    return config;
  }

  // Where a node's probes leave from, and the SSID of its session with a target (the target's
  // reflector names the sender by both).
  v1::Endpoint SourceOf(const std::string& node) const {
    v1::Endpoint source;
    source.set_address(addresses_.at(node));
    source.set_port(40'000);
    return source;
  }
  uint32_t SsidOf(const std::string& target) const {
    return static_cast<uint32_t>(std::distance(
        nodes_.begin(),
        std::find_if(nodes_.begin(), nodes_.end(), [&](const auto& n) { return n.first == target; })));
  }

  v1::HealthReport ReportOf(const std::string& node, const std::string& region, int t,
                            const Breakage& broken) {
    const auto end = kT0 + std::chrono::seconds(t);
    v1::HealthReport report;
    report.set_sequence(static_cast<uint64_t>(t) + 1);
    *report.mutable_window_start() = ToTimestamp(end - 1s);
    *report.mutable_window_end() = ToTimestamp(end);
    const auto plan = planner_.PlanFor(node, end);
    for (const auto& target : plan->targets()) {
      const bool answered = !broken.agents_down.count(target.region()) &&
                            !broken.Cut(region, target.region()) && !broken.WrongKey(region, target.region());
      auto* path = report.add_paths();
      path->set_peer_node(target.node());
      path->set_peer_region(target.region());
      *path->mutable_source() = SourceOf(node);
      path->set_ssid(SsidOf(target.node()));
      path->set_probes_sent(10);
      path->set_received_forward(answered ? 10 : 0);
      path->set_received_reverse(answered ? 10 : 0);
      // Nothing came back: the sender cannot tell on which way the probes were lost.
      path->set_lost_direction_unknown(answered ? 0 : 10);
      if (answered) {
        LatencyHistogram rtt;
        rtt.Record(target.region() == region ? 300'000 : 70'000'000, 10);
        ToProto(rtt, path->mutable_rtt_kernel());
      }
    }
    for (const auto& remote : kRegions) {
      if (remote == region || broken.Cut(region, remote)) continue;
      auto* traffic = report.add_traffic();  // applications keep talking, agents or not
      traffic->set_remote_region(remote);
      traffic->set_rx_packets(1000);
      traffic->set_tx_packets(1000);
    }
    if (region == kActive) {
      // Replication into ap-southeast-1, current: acknowledged bytes advance every window.
      auto* flow = report.add_flows();
      flow->set_name("orders-db");
      flow->set_remote_region(kThird);
      flow->set_bytes_acked(1'000'000);
      flow->set_connections(1);
      flow->set_bytes_outstanding(4096);
    }
    return report;
  }

  AgentRegistry registry_;
  RegionMatrix matrix_{MatrixConfig()};
  ProbePlanner planner_;
  VerdictEngine engine_;
  std::vector<std::pair<std::string, std::string>> nodes_;
  std::map<std::string, uint64_t> sessions_;
  std::map<std::string, std::string> addresses_;
};

TEST(ReportToVerdictTest, ActiveRegionCutOffFailsOverAfterEvidenceWindowPlusHoldTime) {
  Pipeline pipeline;
  Breakage outage;
  for (const auto& other : {kOwn, kThird}) outage.cut.insert({kActive, other});
  int failover_at = -1;
  for (int t = 0; t < 400; ++t) {
    const v1::Verdict verdict = pipeline.Tick(t, t >= 200 ? outage : Breakage{});
    if (t == 199) {
      ASSERT_EQ(verdict.action(), v1::ACTION_STAY) << verdict.DebugString();
    }
    if (verdict.action() == v1::ACTION_FAILOVER && failover_at < 0) {
      failover_at = t;
      // The standby that holds the replica, not the preferred one that holds nothing.
      EXPECT_EQ(verdict.target_region(), kThird) << verdict.DebugString();
      EXPECT_THAT(
          verdict.reasons(0),
          ::testing::HasSubstr("2/2 observer regions lost every probe to us-east-1 (ap-southeast-1 4/4 "
                               "and eu-west-1 4/4 observers) for 120 s"));
      // What it loses is known although the flow's nodes fell silent two minutes ago (the
      // replication retention): current at their last report, which was also the cut.
      EXPECT_FALSE(verdict.manual_decision());
      ASSERT_EQ(verdict.data_at_risk_size(), 1) << verdict.DebugString();
      const v1::DataAtRisk& risk = verdict.data_at_risk(0);
      EXPECT_EQ(risk.flow(), "orders-db");
      EXPECT_EQ(risk.target_region(), kThird);
      EXPECT_TRUE(risk.source_silent());
      EXPECT_EQ(risk.bytes_outstanding(), 4096u);
      EXPECT_EQ(FromTimestamp(risk.as_of()), kT0 + 199s);
      EXPECT_LE(FromDuration(risk.at_most()), 1s);
    }
  }
  RecordProperty("failover_at_seconds", failover_at);
  // Never before the hold time after the active region last answered (its windows up to the
  // one ending at 199); at most the 10 s evidence window later.
  EXPECT_GE(failover_at, 319);
  EXPECT_LE(failover_at, 332);
}

TEST(ReportToVerdictTest, RegionPairLinkDownNeverFailsOver) {
  Pipeline pipeline;
  Breakage link;
  link.cut.insert({kThird, kActive});
  for (int t = 0; t < 600; ++t) {
    const v1::Verdict verdict = pipeline.Tick(t, t >= 200 ? link : Breakage{});
    ASSERT_NE(verdict.action(), v1::ACTION_FAILOVER) << "t=" << t << "\n" << verdict.DebugString();
    if (t == 599) {
      EXPECT_EQ(verdict.action(), v1::ACTION_STAY);
      // The link is the suspect, neither region: both ends reported, so the senders' unknown
      // loss is read as what it is, probes that never reached the far side, each way.
      for (const auto& region : verdict.regions()) {
        EXPECT_EQ(region.state(), v1::REGION_STATE_HEALTHY) << region.region();
      }
      ASSERT_EQ(verdict.suspects_size(), 1) << verdict.DebugString();
      const v1::Suspect& suspect = verdict.suspects(0);
      EXPECT_EQ(suspect.kind(), v1::SUSPECT_KIND_LINK);
      EXPECT_EQ(suspect.region(), kThird);
      EXPECT_EQ(suspect.peer_region(), kActive);
      EXPECT_EQ(suspect.direction(), v1::LOSS_DIRECTION_BOTH);
      EXPECT_THAT(
          suspect.evidence(),
          ::testing::HasSubstr("ap-southeast-1 -> us-east-1 100.0% of 1200 probes lost: 1200 forward"));
      EXPECT_THAT(
          suspect.evidence(),
          ::testing::HasSubstr("us-east-1 -> ap-southeast-1 100.0% of 1200 probes lost: 1200 forward"));
    }
  }
}

TEST(ReportToVerdictTest, ActiveAgentsCrashingWhileTrafficFlowsNeverFailsOver) {
  Pipeline pipeline;
  Breakage crash;
  crash.agents_down.insert(kActive);
  for (int t = 0; t < 600; ++t) {
    const v1::Verdict verdict = pipeline.Tick(t, t >= 200 ? crash : Breakage{});
    ASSERT_NE(verdict.action(), v1::ACTION_FAILOVER) << "t=" << t << "\n" << verdict.DebugString();
    if (t == 599) {
      EXPECT_EQ(verdict.action(), v1::ACTION_HOLD);
      EXPECT_THAT(verdict.reasons(0), ::testing::HasSubstr("agents not reporting in us-east-1 (0/4)"));
      // The crashed agents' reflectors said nothing: which way the probes were lost is unknown,
      // and not guessed.
      const v1::RegionHealth& active = verdict.regions(2);
      ASSERT_EQ(active.region(), kActive);
      EXPECT_EQ(active.loss_unknown(), 1.0) << active.DebugString();
      EXPECT_EQ(active.loss_forward(), 0.0);
      EXPECT_EQ(active.loss_reverse(), 0.0);
    }
  }
}

// Every path and cell from `sender` into the active region shows its probes refused for their
// key, none lost.
void ExpectRefusedNotLostInto(const RegionMatrix& matrix, const std::string& sender,
                              WallClock::time_point now) {
  v1::GetPathsRequest request;
  request.set_region(kActive);
  request.set_limit(1000);
  const v1::GetPathsResponse paths = matrix.Paths(request, now);
  int refused_paths = 0;
  for (const auto& path : paths.paths()) {
    if (path.target_region() != kActive || path.source_region() != sender) continue;
    ++refused_paths;
    EXPECT_GT(path.probes_sent(), 0u);
    EXPECT_EQ(path.refused().wrong_key(), path.probes_sent()) << path.ShortDebugString();
    EXPECT_DOUBLE_EQ(path.loss_forward(), 0.0) << path.ShortDebugString();
    EXPECT_DOUBLE_EQ(path.loss_unknown(), 0.0) << path.ShortDebugString();
    EXPECT_EQ(path.direction(), v1::LOSS_DIRECTION_NONE) << path.ShortDebugString();
  }
  EXPECT_GT(refused_paths, 0);
  const v1::GetRegionMatrixResponse cells = matrix.Matrix(0s, now);
  int refused_cells = 0;
  for (const auto& cell : cells.cells()) {
    if (cell.target_region() != kActive || cell.source_region() != sender) continue;
    ++refused_cells;
    EXPECT_EQ(cell.refused().wrong_key(), cell.probes_sent()) << cell.ShortDebugString();
    EXPECT_DOUBLE_EQ(cell.loss_forward(), 0.0) << cell.ShortDebugString();
    EXPECT_EQ(cell.lost_direction_unknown(), 0u) << cell.ShortDebugString();
  }
  EXPECT_EQ(refused_cells, 1);
}

// A key rotation out of step: us-east-1's reflectors do not hold the key ap-southeast-1's nodes
// now sign with. Those probes go unanswered — to the senders exactly what a cut link looks
// like — and us-east-1's reflectors report refusing them for their key. It is not loss: no
// link suspected, no region degraded, STAY; the paths show the refused probes at 0 % loss.
TEST(ReportToVerdictTest, ProbesRefusedForTheirKeyNeverDegradeAnything) {
  Pipeline pipeline;
  Breakage rotation;
  rotation.wrong_key.insert({kThird, kActive});
  v1::Verdict verdict;
  for (int t = 0; t < 400; ++t) {
    verdict = pipeline.Tick(t, t >= 100 ? rotation : Breakage{});
    ASSERT_EQ(verdict.suspects_size(), 0) << "t=" << t << "\n" << verdict.DebugString();
    if (t >= 150) {
      ASSERT_EQ(verdict.action(), v1::ACTION_STAY) << "t=" << t << "\n" << verdict.DebugString();
    }
  }
  for (const auto& region : verdict.regions()) {
    EXPECT_EQ(region.state(), v1::REGION_STATE_HEALTHY) << region.region() << "\n" << verdict.DebugString();
  }
  ExpectRefusedNotLostInto(pipeline.matrix(), kThird, kT0 + 399s);
}

// The same with every other region's nodes on the key us-east-1 lacks: no probe into the
// active region is answered, which to the senders alone is a dead region (FAILOVER after the
// hold). Refused, they measure nothing of the network to it: us-east-1 is UNKNOWN and the
// answer HOLD ("too little evidence"), never DEGRADED, UNREACHABLE or FAILOVER.
TEST(ReportToVerdictTest, EveryProbeIntoTheActiveRegionRefusedHoldsAndNeverFailsOver) {
  Pipeline pipeline;
  Breakage rotation;
  for (const auto& sender : {kOwn, kThird}) rotation.wrong_key.insert({sender, kActive});
  v1::Verdict verdict;
  for (int t = 0; t < 400; ++t) {
    verdict = pipeline.Tick(t, t >= 100 ? rotation : Breakage{});
    ASSERT_NE(verdict.action(), v1::ACTION_FAILOVER) << "t=" << t << "\n" << verdict.DebugString();
    for (const auto& region : verdict.regions()) {
      ASSERT_NE(region.state(), v1::REGION_STATE_DEGRADED) << "t=" << t << "\n" << verdict.DebugString();
      ASSERT_NE(region.state(), v1::REGION_STATE_UNREACHABLE) << "t=" << t << "\n" << verdict.DebugString();
    }
  }
  EXPECT_EQ(verdict.action(), v1::ACTION_HOLD) << verdict.DebugString();
  EXPECT_THAT(verdict.DebugString(),
              ::testing::HasSubstr("no observer in another region could measure us-east-1: its reflectors "
                                   "refused all"));
  for (const auto& region : verdict.regions()) {
    EXPECT_EQ(region.state(),
              region.region() == kActive ? v1::REGION_STATE_UNKNOWN : v1::REGION_STATE_HEALTHY)
        << region.region();
  }
  for (const auto& sender : {kOwn, kThird}) ExpectRefusedNotLostInto(pipeline.matrix(), sender, kT0 + 399s);
}

}  // namespace
}  // namespace regionpulse
