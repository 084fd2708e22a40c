// RegionMatrix: merging, true percentiles, per-direction loss, filters, eviction, bounds, and
// the evidence the verdict reads.
#include "aggregator/region_matrix.h"
#include "aggregator/region_matrix_state.h"
#include "aggregator/verdict_evidence.h"

#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

const WallClock::time_point kT0 = WallClock::time_point(std::chrono::seconds(1'800'000'000));

AgentIdentity Agent(const std::string& node, const std::string& region) {
  return {node, region, region + "a"};
}

struct PathSpec {
  std::string peer;
  std::string peer_region;
  uint64_t sent = 10;
  uint64_t forward = 10;
  uint64_t reverse = 10;
  std::chrono::nanoseconds rtt = 50ms;  // every reply at this RTT
};

v1::HealthReport Report(WallClock::time_point end, const std::vector<PathSpec>& paths) {
  static uint64_t sequence = 0;
  v1::HealthReport report;
  report.set_sequence(++sequence);
  *report.mutable_window_start() = ToTimestamp(end - 1s);
  *report.mutable_window_end() = ToTimestamp(end);
  for (const auto& spec : paths) {
    auto* path = report.add_paths();
    path->set_peer_node(spec.peer);
    path->set_peer_region(spec.peer_region);
    path->set_probes_sent(spec.sent);
    path->set_received_forward(spec.forward);
    path->set_received_reverse(spec.reverse);
    LatencyHistogram h;
    h.Record(static_cast<uint64_t>(spec.rtt.count()), spec.reverse);
    ToProto(h, path->mutable_rtt_kernel());
    ToProto(h, path->mutable_rtt_user());
  }
  return report;
}

const v1::RegionPairStats* Cell(const v1::GetRegionMatrixResponse& matrix, const std::string& source,
                                const std::string& target) {
  for (const auto& cell : matrix.cells()) {
    if (cell.source_region() == source && cell.target_region() == target) return &cell;
  }
  return nullptr;
}

double Ms(const google::protobuf::Duration& d) {
  return static_cast<double>(FromDuration(d).count()) / 1e6;
}

TEST(RegionMatrixTest, PercentilesComeFromMergedHistogramsNotFromPercentiles) {
  RegionMatrix matrix;
  // Observer 1: 90 replies at 10 ms. Observer 2: 10 replies at 100 ms. The merged p50 is
  // 10 ms and p99 100 ms; averaging the observers' p99s would give 55 ms.
  matrix.Add(Agent("us-1", "us-east-1"), Report(kT0, {{"eu-1", "eu-west-1", 90, 90, 90, 10ms}}), kT0);
  matrix.Add(Agent("us-2", "us-east-1"), Report(kT0, {{"eu-2", "eu-west-1", 10, 10, 10, 100ms}}), kT0);
  const auto response = matrix.Matrix(0s, kT0);
  const auto* cell = Cell(response, "us-east-1", "eu-west-1");
  ASSERT_NE(cell, nullptr);
  EXPECT_EQ(cell->observers(), 2u);
  EXPECT_EQ(cell->probes_sent(), 100u);
  EXPECT_NEAR(Ms(cell->rtt_p50()), 10.0, 0.1);
  EXPECT_NEAR(Ms(cell->rtt_p99()), 100.0, 1.0);
  EXPECT_NEAR(Ms(cell->user_rtt_p99()), 100.0, 1.0);
  EXPECT_EQ(cell->state(), v1::REGION_STATE_HEALTHY);
  EXPECT_EQ(FromDuration(response.window()), 60s);
  EXPECT_THAT(response.regions(), ::testing::ElementsAre("eu-west-1", "us-east-1"));
}

TEST(RegionMatrixTest, LossIsKeptPerDirectionAndSummedOverTheWindow) {
  RegionMatrix matrix;
  for (int i = 0; i < 10; ++i) {
    const auto end = kT0 + std::chrono::seconds(i);
    matrix.Add(Agent("us-1", "us-east-1"), Report(end, {{"eu-1", "eu-west-1", 100, 90, 81}}), end);
  }
  const auto response = matrix.Matrix(0s, kT0 + 10s);
  const auto* cell = Cell(response, "us-east-1", "eu-west-1");
  ASSERT_NE(cell, nullptr);
  EXPECT_EQ(cell->probes_sent(), 1000u);
  EXPECT_EQ(cell->received_forward(), 900u);
  EXPECT_EQ(cell->received_reverse(), 810u);
  EXPECT_NEAR(cell->loss_forward(), 0.10, 1e-9);
  EXPECT_NEAR(cell->loss_reverse(), 0.10, 1e-9);
  EXPECT_EQ(cell->state(), v1::REGION_STATE_DEGRADED);  // 19% combined loss
}

TEST(RegionMatrixTest, CellWithEveryProbeLostIsUnreachable) {
  RegionMatrix matrix;
  matrix.Add(Agent("us-1", "us-east-1"), Report(kT0, {{"eu-1", "eu-west-1", 10, 0, 0}}), kT0);
  const auto response = matrix.Matrix(0s, kT0);
  const auto* cell = Cell(response, "us-east-1", "eu-west-1");
  ASSERT_NE(cell, nullptr);
  EXPECT_EQ(cell->state(), v1::REGION_STATE_UNREACHABLE);
  EXPECT_DOUBLE_EQ(cell->loss_forward(), 1.0);
  EXPECT_FALSE(cell->has_rtt_p50());
}

TEST(RegionMatrixTest, DataOlderThanTheWindowIsEvicted) {
  RegionMatrix matrix;  // 60 s window, 5 s slots
  matrix.Add(Agent("us-1", "us-east-1"), Report(kT0, {{"eu-1", "eu-west-1"}}), kT0);
  EXPECT_NE(Cell(matrix.Matrix(0s, kT0 + 30s), "us-east-1", "eu-west-1"), nullptr);
  // A shorter range leaves the old data out without evicting it.
  EXPECT_EQ(Cell(matrix.Matrix(10s, kT0 + 30s), "us-east-1", "eu-west-1"), nullptr);
  EXPECT_EQ(Cell(matrix.Matrix(0s, kT0 + 70s), "us-east-1", "eu-west-1"), nullptr);
  EXPECT_EQ(matrix.Stats().paths, 1u);
  matrix.Evict(kT0 + 70s);
  EXPECT_EQ(matrix.Stats().paths, 0u);
  EXPECT_EQ(matrix.Stats().observer_regions, 0u);
}

TEST(RegionMatrixTest, MemoryStaysBoundedOverManyWindows) {
  RegionMatrix matrix;
  // An hour of one report per second from 10 agents with 6 paths each: the store must not
  // grow with time.
  size_t paths_after_first_minute = 0;
  for (int t = 0; t < 3600; ++t) {
    const auto now = kT0 + std::chrono::seconds(t);
    for (int a = 0; a < 10; ++a) {
      std::vector<PathSpec> paths;
      // Peers rotate every 5 minutes, as the planner rotates them.
      for (int p = 0; p < 6; ++p)
        paths.push_back({"eu-" + std::to_string((a + p + t / 300) % 40), "eu-west-1"});
      matrix.Add(Agent("us-" + std::to_string(a), "us-east-1"), Report(now, paths), now);
    }
    if (t == 60) paths_after_first_minute = matrix.Stats().paths;
  }
  EXPECT_LE(matrix.Stats().paths, 2 * paths_after_first_minute);
  EXPECT_EQ(matrix.Stats().observer_regions, 10u);
}

TEST(RegionMatrixTest, NodePathsAreCappedButRegionCellsCountEverything) {
  RegionMatrixConfig config;
  config.max_paths = 2;
  RegionMatrix matrix(config);
  matrix.Add(Agent("us-1", "us-east-1"),
             Report(kT0, {{"eu-1", "eu-west-1"}, {"eu-2", "eu-west-1"}, {"eu-3", "eu-west-1"}}), kT0);
  EXPECT_EQ(matrix.Stats().paths, 2u);
  EXPECT_EQ(matrix.Stats().paths_not_tracked, 1u);
  EXPECT_EQ(Cell(matrix.Matrix(0s, kT0), "us-east-1", "eu-west-1")->probes_sent(), 30u);
}

// A path refused at max_paths is not looked for again report after report, but as soon as
// another path is removed there is room, and the next report's path is tracked.
TEST(RegionMatrixTest, APathRefusedAtTheCapIsTrackedOnceAnotherPathIsRemoved) {
  RegionMatrixConfig config;
  config.max_paths = 1;
  RegionMatrix matrix(config);
  matrix.Add(Agent("ap-1", "ap-southeast-1"), Report(kT0, {{"eu-1", "eu-west-1"}}), kT0);
  matrix.Add(Agent("us-1", "us-east-1"), Report(kT0, {{"eu-2", "eu-west-1"}}), kT0);
  matrix.Add(Agent("us-1", "us-east-1"), Report(kT0 + 1s, {{"eu-2", "eu-west-1"}}), kT0 + 1s);
  EXPECT_EQ(matrix.Stats().paths, 1u);
  EXPECT_EQ(matrix.Stats().paths_not_tracked, 2u) << "each refused filing is counted";

  matrix.Forget("ap-1");
  matrix.Add(Agent("us-1", "us-east-1"), Report(kT0 + 2s, {{"eu-2", "eu-west-1"}}), kT0 + 2s);
  v1::GetPathsRequest request;
  request.set_node("us-1");
  const auto paths = matrix.Paths(request, kT0 + 2s);
  ASSERT_EQ(paths.paths_size(), 1);
  EXPECT_EQ(paths.paths(0).target_node(), "eu-2");
  EXPECT_EQ(paths.paths(0).probes_sent(), 10u);
}

TEST(RegionMatrixTest, ReportsOlderThanTheWindowAreIgnored) {
  RegionMatrix matrix;
  matrix.Add(Agent("us-1", "us-east-1"), Report(kT0 - 120s, {{"eu-1", "eu-west-1"}}), kT0);
  EXPECT_EQ(matrix.Stats().paths, 0u);
  EXPECT_EQ(matrix.Stats().stale_windows_ignored, 1u);
}

TEST(RegionMatrixTest, PathsAreFilteredSortedWorstFirstAndLimited) {
  RegionMatrix matrix;
  matrix.Add(Agent("us-1", "us-east-1"),
             Report(kT0, {{"eu-1", "eu-west-1", 10, 10, 10}, {"eu-2", "eu-west-1", 10, 5, 5}}), kT0);
  matrix.Add(Agent("ap-1", "ap-southeast-1"), Report(kT0, {{"us-1", "us-east-1", 10, 10, 2}}), kT0);

  v1::GetPathsRequest all;
  auto response = matrix.Paths(all, kT0);
  ASSERT_EQ(response.paths_size(), 3);
  EXPECT_EQ(response.paths(0).source_node(), "ap-1");  // 80% loss
  EXPECT_EQ(response.paths(1).target_node(), "eu-2");  // 50%
  EXPECT_EQ(response.paths(2).target_node(), "eu-1");
  EXPECT_NEAR(response.paths(0).loss_reverse(), 0.8, 1e-9);
  EXPECT_FALSE(response.truncated());

  v1::GetPathsRequest by_region;
  by_region.set_region("eu-west-1");
  EXPECT_EQ(matrix.Paths(by_region, kT0).paths_size(), 2);

  v1::GetPathsRequest by_node;
  by_node.set_node("us-1");  // source of two, target of one
  EXPECT_EQ(matrix.Paths(by_node, kT0).paths_size(), 3);
  by_node.set_node("eu-1");
  EXPECT_EQ(matrix.Paths(by_node, kT0).paths_size(), 1);
  by_node.set_node("nobody");
  EXPECT_EQ(matrix.Paths(by_node, kT0).paths_size(), 0);

  v1::GetPathsRequest limited;
  limited.set_limit(1);
  response = matrix.Paths(limited, kT0);
  EXPECT_EQ(response.paths_size(), 1);
  EXPECT_TRUE(response.truncated());
}

TEST(RegionMatrixTest, FlowsReportRateAndRisk) {
  RegionMatrix matrix;
  for (int i = 1; i <= 10; ++i) {
    const auto end = kT0 + std::chrono::seconds(i);
    v1::HealthReport report = Report(end, {});
    auto* moving = report.add_flows();
    moving->set_name("postgres");
    moving->set_remote_region("eu-west-1");
    moving->set_bytes_acked(1'000'000);
    moving->set_connections(2);
    moving->set_expected_min_rate_bps(500'000);
    moving->set_established(1);
    moving->set_failed_connects(2);
    moving->set_resets(1);
    auto* stalled = report.add_flows();
    stalled->set_name("kafka-mirror");
    stalled->set_remote_region("eu-west-1");
    *stalled->mutable_last_progress_age() = ToDuration(std::chrono::seconds(30 + i));
    matrix.Add(Agent("us-1", "us-east-1"), report, end);
  }
  const auto flows = matrix.Flows({}, kT0 + 10s);
  ASSERT_EQ(flows.flows_size(), 2);
  EXPECT_EQ(flows.flows(0).name(), "kafka-mirror");
  EXPECT_TRUE(flows.flows(0).at_risk());
  EXPECT_EQ(flows.flows(1).name(), "postgres");
  EXPECT_EQ(flows.flows(1).rate_bps(), 1'000'000u);
  EXPECT_EQ(flows.flows(1).connections(), 2u);
  EXPECT_FALSE(flows.flows(1).at_risk());
  // Connection events add up over the window (one report per second, each with 1, 2, 1).
  EXPECT_GE(flows.flows(1).established(), 9u);
  EXPECT_EQ(flows.flows(1).failed_connects(), 2 * flows.flows(1).established());
  EXPECT_EQ(flows.flows(1).resets(), flows.flows(1).established());
  EXPECT_EQ(flows.flows(0).established(), 0u);

  v1::GetFlowsRequest by_name;
  by_name.set_name("postgres");
  EXPECT_EQ(matrix.Flows(by_name, kT0 + 10s).flows_size(), 1);
  v1::GetFlowsRequest by_region;
  by_region.set_region("ap-southeast-1");
  EXPECT_EQ(matrix.Flows(by_region, kT0 + 10s).flows_size(), 0);
}

TEST(RegionMatrixTest, EvidenceCoversOnlyTheEvidenceWindow) {
  RegionMatrix matrix;  // 10 s evidence window
  // Probes to eu-west-1 answered until t=20, lost after.
  for (int t = 1; t <= 40; ++t) {
    const auto end = kT0 + std::chrono::seconds(t);
    const uint64_t answered = t <= 20 ? 10 : 0;
    matrix.Add(Agent("us-1", "us-east-1"),
               Report(end, {{"eu-1", "eu-west-1", 10, answered, answered}, {"ap-1", "ap-southeast-1"}}), end);
  }
  const std::vector<AgentPresence> agents = {
      {"us-1", "us-east-1", "us-east-1a", {}, true, kT0 + 40s},
      {"eu-1", "eu-west-1", "eu-west-1a", {}, false, kT0 + 20s},
  };
  const auto evidence = BuildVerdictEvidence(matrix, agents, {"sa-east-1"}, kT0 + 40s);
  EXPECT_THAT(evidence.regions,
              ::testing::ElementsAre("ap-southeast-1", "eu-west-1", "sa-east-1", "us-east-1"));
  ASSERT_EQ(evidence.observers.size(), 1u);
  const auto& to = evidence.observers[0].to_region;
  ASSERT_TRUE(to.count("eu-west-1"));
  EXPECT_GE(to.at("eu-west-1").sent, 100u);
  EXPECT_LE(to.at("eu-west-1").sent, 110u);
  EXPECT_EQ(to.at("eu-west-1").received_reverse, 0u);
  EXPECT_DOUBLE_EQ(to.at("eu-west-1").Loss(), 1.0);
  EXPECT_DOUBLE_EQ(to.at("ap-southeast-1").Loss(), 0.0);
  EXPECT_EQ(evidence.agents.at("eu-west-1").not_reporting, 1u);
  EXPECT_EQ(evidence.agents.at("us-east-1").reporting, 1u);
  ASSERT_TRUE(evidence.latency_into.count("ap-southeast-1"));
  EXPECT_NEAR(static_cast<double>(evidence.latency_into.at("ap-southeast-1").p99->count()) / 1e6, 50.0, 0.5);
}

TEST(RegionMatrixTest, EvidenceCarriesPassiveSignalsAndReplicationStaleness) {
  RegionMatrix matrix;
  for (int t = 1; t <= 5; ++t) {
    const auto end = kT0 + std::chrono::seconds(t);
    v1::HealthReport report = Report(end, {});
    auto* traffic = report.add_traffic();
    traffic->set_remote_region("us-east-1");
    traffic->set_rx_packets(500);
    auto* flow = report.add_flows();
    flow->set_name("postgres");
    flow->set_remote_region("us-east-1");
    flow->set_bytes_acked(4096);
    matrix.Add(Agent("eu-1", "eu-west-1"), report, end);

    v1::HealthReport stalled = Report(end, {});
    auto* stale_flow = stalled.add_flows();
    stale_flow->set_name("postgres");
    stale_flow->set_remote_region("eu-west-1");
    *stale_flow->mutable_last_progress_age() = ToDuration(std::chrono::seconds(4));
    matrix.Add(Agent("us-1", "us-east-1"), stalled, end);
  }
  // us-1 stopped reporting after t=5: its flow may be stale by 4 s plus the 15 s since.
  const std::vector<AgentPresence> agents = {
      {"eu-1", "eu-west-1", "", {}, true, kT0 + 20s},
      {"us-1", "us-east-1", "", {}, false, kT0 + 5s},
  };
  const auto evidence = BuildVerdictEvidence(matrix, agents, {}, kT0 + 10s);
  ASSERT_TRUE(evidence.passive.count("us-east-1"));
  EXPECT_EQ(evidence.passive.at("us-east-1").nodes_receiving, 1u);
  EXPECT_EQ(evidence.passive.at("us-east-1").rx_packets, 2500u);
  EXPECT_EQ(evidence.passive.at("us-east-1").flows_progressing, 1u);
  EXPECT_TRUE(evidence.passive.at("us-east-1").Alive());

  const auto later = BuildVerdictEvidence(matrix, agents, {}, kT0 + 20s);
  EXPECT_FALSE(later.passive.count("us-east-1") && later.passive.at("us-east-1").Alive());
  ASSERT_EQ(later.replication.size(), 2u);
  const auto& to_eu =
      later.replication[0].remote_region == "eu-west-1" ? later.replication[0] : later.replication[1];
  EXPECT_EQ(to_eu.source_region, "us-east-1");
  EXPECT_EQ(to_eu.staleness, 19s);
  const auto& to_us =
      later.replication[0].remote_region == "us-east-1" ? later.replication[0] : later.replication[1];
  EXPECT_EQ(to_us.staleness, 0s);
  EXPECT_EQ(to_us.rate_bps, 4096u);
}

TEST(RegionMatrixTest, ReplicationRetentionIsHoldPlusDwellPlusAMinuteAndNeverBelowTheWindow) {
  EXPECT_EQ(ReplicationRetentionFor(60s, 120s, 300s), 480s);
  EXPECT_EQ(ReplicationRetentionFor(600s, 10s, 20s), 600s);
  // Partial seconds round up: retention never ends before the decision it serves.
  EXPECT_EQ(ReplicationRetentionFor(10s, 1500ms, 0s), 62s);
}

// The active region us-east-1 goes dark after t=10: its node us-1 stops reporting and eu-1's
// probes to it stop being answered. The verdict decides a hold (120 s) after that and keeps the
// decision, with what it would lose, through the dwell (300 s): the flow's last report must
// still be there then.
TEST(RegionMatrixTest, FlowsLastProgressOutlivesHoldPlusDwellOfSilence) {
  const std::chrono::seconds hold = 120s;
  const std::chrono::seconds dwell = 300s;
  RegionMatrixConfig config;
  config.replication_retention = ReplicationRetentionFor(config.window, hold, dwell);
  RegionMatrix matrix(config);
  RegionMatrix matrix_without_retention;  // the defaults: flows kept for the matrix window
  const WallClock::time_point dark = kT0 + 10s;
  const WallClock::time_point decided_until = dark + hold + dwell;
  for (auto now = kT0 + 1s; now <= decided_until; now += 1s) {
    const uint64_t answered = now <= dark ? 10 : 0;
    const v1::HealthReport from_eu = Report(now, {{"us-1", "us-east-1", 10, answered, answered}});
    matrix.Add(Agent("eu-1", "eu-west-1"), from_eu, now);
    matrix_without_retention.Add(Agent("eu-1", "eu-west-1"), from_eu, now);
    if (now > dark) continue;
    v1::HealthReport from_us = Report(now, {});
    auto* flow = from_us.add_flows();
    flow->set_name("postgres");
    flow->set_remote_region("eu-west-1");
    flow->set_bytes_acked(1'000'000);
    *flow->mutable_last_progress_age() = ToDuration(2s);
    flow->set_bytes_outstanding(8192);
    matrix.Add(Agent("us-1", "us-east-1"), from_us, now);
    matrix_without_retention.Add(Agent("us-1", "us-east-1"), from_us, now);
  }
  const std::vector<AgentPresence> agents = {
      {"eu-1", "eu-west-1", "", {}, true, decided_until},
      {"us-1", "us-east-1", "", {}, false, dark},
  };

  const VerdictEvidence evidence = BuildVerdictEvidence(matrix, agents, {}, decided_until);
  ASSERT_EQ(evidence.replication.size(), 1u);
  const ReplicationEvidence& flow = evidence.replication[0];
  EXPECT_EQ(flow.name, "postgres");
  EXPECT_EQ(flow.source_region, "us-east-1");
  EXPECT_EQ(flow.remote_region, "eu-west-1");
  // What the newest report said, and when: the replica was 2 s behind with 8 KiB outstanding.
  EXPECT_EQ(flow.as_of, dark);
  EXPECT_EQ(flow.last_progress_age, 2s);
  EXPECT_EQ(flow.bytes_outstanding, 8192u);
  EXPECT_TRUE(flow.source_silent);
  EXPECT_EQ(flow.rate_bps, 0u);  // bytes acknowledged before the silence are no rate now
  EXPECT_EQ(flow.staleness, 2s + hold + dwell);
  // The last moment us-east-1 was seen answering: the cut came after it.
  ASSERT_TRUE(evidence.last_answered.count("us-east-1"));
  EXPECT_EQ(evidence.last_answered.at("us-east-1"), dark);

  // With only the matrix window, the flow would be forgotten long before the decision.
  EXPECT_TRUE(BuildVerdictEvidence(matrix_without_retention, agents, {}, dark + hold).replication.empty());

  // And the retention is a bound: past it, the flow and the last answer are gone.
  const auto past = dark + config.replication_retention + 1s;
  matrix.Evict(past);
  const VerdictEvidence later = BuildVerdictEvidence(matrix, agents, {}, past);
  EXPECT_TRUE(later.replication.empty());
  EXPECT_FALSE(later.last_answered.count("us-east-1"));
  EXPECT_EQ(matrix.Stats().flows, 0u);
}

TEST(RegionMatrixTest, ForgetDropsEverythingAboutANode) {
  RegionMatrix matrix;
  matrix.Add(Agent("us-1", "us-east-1"), Report(kT0, {{"eu-1", "eu-west-1"}}), kT0);
  matrix.Add(Agent("eu-1", "eu-west-1"), Report(kT0, {{"us-2", "us-east-1"}}), kT0);
  matrix.Forget("eu-1");
  EXPECT_EQ(matrix.Stats().paths, 0u);
  EXPECT_EQ(matrix.Stats().observer_regions, 1u);
}

// The tick copies only the names interned since its last copy; the copy must stay the
// matrix's own table, in the same order (the evidence's ids index it).
TEST(RegionMatrixTest, MatrixNamesCopiesOnlyNewNamesAndStaysTheMatrixTable) {
  RegionMatrix matrix;
  MatrixNames names;
  names.CopyNewNames(matrix);
  EXPECT_EQ(names.names(), matrix.state().names);
  matrix.Add(Agent("us-1", "us-east-1"), Report(kT0, {{"eu-1", "eu-west-1"}}), kT0);
  names.CopyNewNames(matrix);
  const size_t first = matrix.state().names.size();
  ASSERT_GT(first, 0u);
  EXPECT_EQ(names.names(), matrix.state().names);
  // Known names again: nothing new, nothing appended twice.
  matrix.Add(Agent("us-1", "us-east-1"), Report(kT0 + 1s, {{"eu-1", "eu-west-1"}}), kT0 + 1s);
  names.CopyNewNames(matrix);
  EXPECT_EQ(names.names(), matrix.state().names);
  matrix.Add(Agent("ap-1", "ap-southeast-1"),
             Report(kT0 + 1s, {{"us-2", "us-east-1"}, {"eu-1", "eu-west-1"}}), kT0 + 1s);
  matrix.Forget("us-1");
  names.CopyNewNames(matrix);
  EXPECT_GT(matrix.state().names.size(), first);
  EXPECT_EQ(names.names(), matrix.state().names);
}

void ExpectSameObservers(const VerdictEvidence& got, const VerdictEvidence& want) {
  ASSERT_EQ(got.observers.size(), want.observers.size());
  for (size_t i = 0; i < want.observers.size(); ++i) {
    const ObserverView& g = got.observers[i];
    const ObserverView& w = want.observers[i];
    EXPECT_EQ(g.node, w.node);
    EXPECT_EQ(g.region, w.region);
    ASSERT_EQ(g.to_node.size(), w.to_node.size()) << w.node;
    for (size_t t = 0; t < w.to_node.size(); ++t) {
      EXPECT_EQ(g.to_node[t].node, w.to_node[t].node);
      EXPECT_EQ(g.to_node[t].region, w.to_node[t].region);
      EXPECT_EQ(g.to_node[t].counts.sent, w.to_node[t].counts.sent);
      EXPECT_EQ(g.to_node[t].counts.received_reverse, w.to_node[t].counts.received_reverse);
    }
    ASSERT_EQ(g.to_region.size(), w.to_region.size()) << w.node;
    for (const auto& [region, counts] : w.to_region) {
      ASSERT_TRUE(g.to_region.count(region)) << w.node << " " << region;
      EXPECT_EQ(g.to_region.at(region).sent, counts.sent);
      EXPECT_EQ(g.to_region.at(region).received_reverse, counts.received_reverse);
    }
  }
  EXPECT_EQ(got.regions, want.regions);
}

// The tick reads the evidence as ids under the core lock and names it after, with names it
// copied incrementally over earlier ticks: the result is the evidence built in one go.
TEST(RegionMatrixTest, EvidenceNamedAfterTheReadWithIncrementalNamesIsTheEvidenceBuiltAtOnce) {
  RegionMatrix matrix;
  MatrixNames names;
  matrix.Add(Agent("us-2", "us-east-1"), Report(kT0, {{"eu-1", "eu-west-1", 10, 10, 9}}), kT0);
  names.CopyNewNames(matrix);  // an earlier tick
  // Names interned after that copy, some sorting before the earlier ones.
  matrix.Add(Agent("ap-1", "ap-southeast-1"),
             Report(kT0 + 1s, {{"us-2", "us-east-1", 10, 10, 10}, {"eu-1", "eu-west-1", 10, 8, 8}}),
             kT0 + 1s);
  matrix.Add(Agent("eu-1", "eu-west-1"),
             Report(kT0 + 1s, {{"us-2", "us-east-1", 10, 10, 7}, {"ap-1", "ap-southeast-1", 10, 10, 10}}),
             kT0 + 1s);
  const std::vector<AgentPresence> agents = {
      {"ap-1", "ap-southeast-1", "", {}, true, kT0 + 1s},
      {"eu-1", "eu-west-1", "", {}, true, kT0 + 1s},
      {"us-2", "us-east-1", "", {}, true, kT0 + 1s},
  };
  const WallClock::time_point now = kT0 + 2s;
  VerdictEvidenceDraft draft = ReadVerdictEvidence(matrix, agents, {"sa-east-1"}, now);
  names.CopyNewNames(matrix);
  const VerdictEvidence split = FinishVerdictEvidence(std::move(draft), names.names());
  const VerdictEvidence at_once = BuildVerdictEvidence(matrix, agents, {"sa-east-1"}, now);
  ASSERT_EQ(at_once.observers.size(), 3u);
  EXPECT_EQ(at_once.observers[0].node, "ap-1");
  ExpectSameObservers(split, at_once);
}

}  // namespace
}  // namespace regionpulse
