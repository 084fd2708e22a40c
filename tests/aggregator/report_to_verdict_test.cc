// The core end to end, with no I/O: agents (3 regions x 4) register, follow their probe plans
// and send one report a second through the registry into the matrix; the verdict engine reads
// the matrix's evidence. Checks that the pieces fit and what the windows add to the timing.
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
    for (const auto& [node, region] : nodes_) {
      if (broken.agents_down.count(region) || broken.Cut(region, kOwn)) continue;
      const v1::HealthReport report = ReportOf(node, region, t, broken);
      const auto result = registry_.Accept(sessions_[node], report, now);
      EXPECT_EQ(result.status, AcceptStatus::kAccepted) << result.reason;
      if (result.stored_now()) matrix_.Add(result.agent, report, now);
    }
    return engine_.Evaluate(BuildVerdictEvidence(matrix_, registry_.Presence(now), kRegions, now), now)
        .verdict;
  }

 private:
  static VerdictEngineConfig EngineConfig() {
    VerdictEngineConfig config;
    config.active_region = kActive;
    config.own_region = kOwn;
    config.regions = kRegions;
    return config;
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
      const bool answered =
          !broken.agents_down.count(target.region()) && !broken.Cut(region, target.region());
      auto* path = report.add_paths();
      path->set_peer_node(target.node());
      path->set_peer_region(target.region());
      path->set_probes_sent(10);
      path->set_received_forward(answered ? 10 : 0);
      path->set_received_reverse(answered ? 10 : 0);
      path->set_loss_forward(answered ? 0.0 : 1.0);
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
    return report;
  }

  AgentRegistry registry_;
  RegionMatrix matrix_;
  ProbePlanner planner_;
  VerdictEngine engine_;
  std::vector<std::pair<std::string, std::string>> nodes_;
  std::map<std::string, uint64_t> sessions_;
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
      EXPECT_EQ(verdict.target_region(), kThird);
      EXPECT_THAT(verdict.reasons(0),
                  ::testing::HasSubstr("8/8 observers in ap-southeast-1 and eu-west-1 lost every "
                                       "probe to us-east-1 for 120 s"));
    }
  }
  RecordProperty("failover_at_seconds", failover_at);
  // Never before the hold time; at most the 10 s evidence window later.
  EXPECT_GE(failover_at, 320);
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
      EXPECT_EQ(verdict.regions(2).state(), v1::REGION_STATE_DEGRADED) << verdict.DebugString();
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
    }
  }
}

}  // namespace
}  // namespace regionpulse
