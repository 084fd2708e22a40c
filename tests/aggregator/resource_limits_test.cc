// The aggregator core's caps: what one hostile or mistaken client can make the registry and the
// matrix hold. Each cap refuses what is beyond it (counted), keeps serving what is within it,
// and the whole stays within a stated memory bound however many distinct names arrive.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "aggregator/agent_registry.h"
#include "aggregator/aggregator_config.h"
#include "aggregator/region_matrix.h"
#include "aggregator/verdict_evidence.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

const WallClock::time_point kT0 = WallClock::time_point(std::chrono::seconds(1'800'000'000));

v1::Hello HelloFrom(const std::string& node, const std::string& region = "us-east-1") {
  v1::Hello hello;
  hello.set_node(node);
  hello.set_region(region);
  hello.set_zone(region + "a");
  hello.set_instance_id(1);
  hello.mutable_probe_endpoint()->set_address("10.0.0.1");
  hello.mutable_probe_endpoint()->set_port(862);
  return hello;
}

// One report whose paths name `count` peers never seen before, each in a region of its own;
// with a flow of a new name per path too.
v1::HealthReport ReportNaming(uint64_t first, size_t count, WallClock::time_point end, uint64_t sequence) {
  v1::HealthReport report;
  report.set_sequence(sequence);
  *report.mutable_window_start() = ToTimestamp(end - 1s);
  *report.mutable_window_end() = ToTimestamp(end);
  for (uint64_t i = first; i < first + count; ++i) {
    auto* path = report.add_paths();
    path->set_peer_node("peer-" + std::to_string(i));
    path->set_peer_region("region-" + std::to_string(i));
    path->set_probes_sent(10);
    path->set_received_forward(10);
    path->set_received_reverse(10);
    auto* flow = report.add_flows();
    flow->set_name("flow-" + std::to_string(i));
    flow->set_remote_region("region-" + std::to_string(i));
    flow->set_bytes_acked(1000);
  }
  return report;
}

RegionMatrixConfig MatrixConfigWith(const LimitsConfig& limits) {
  RegionMatrixConfig config;
  config.max_names = limits.max_names;
  config.max_region_pairs = limits.max_region_pairs;
  config.max_flows = limits.max_flows;
  return config;
}

size_t AllocatedBytes() {
  return mallinfo2().uordblks;
}

TEST(AgentRegistryLimits, RefusesANewNodeBeyondMaxAgentsButNotAKnownOne) {
  AgentRegistryConfig config;
  config.max_agents = 3;
  AgentRegistry registry(config);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(registry.Hello(HelloFrom("node-" + std::to_string(i)), kT0).ok);
  const HelloResult refused = registry.Hello(HelloFrom("node-3"), kT0);
  EXPECT_FALSE(refused.ok);
  ASSERT_NE(refused.limit, nullptr);
  EXPECT_STREQ(refused.limit, "agents");
  EXPECT_THAT(refused.reason, HasSubstr("limits.max_agents 3"));
  EXPECT_EQ(registry.size(), 3u);
  // A known node reconnecting is never refused.
  EXPECT_TRUE(registry.Hello(HelloFrom("node-1"), kT0 + 1s).ok);
}

TEST(AgentRegistryLimits, RefusesAnOversizedHelloAndTooManyInterfaces) {
  AgentRegistryConfig config;
  config.max_hello_bytes = 2048;
  config.max_hello_interfaces = 4;
  AgentRegistry registry(config);
  v1::Hello big = HelloFrom("node-a");
  for (int i = 0; i < 4; ++i) big.add_interfaces()->set_name(std::string(600, 'x'));
  const HelloResult too_big = registry.Hello(big, kT0);
  EXPECT_FALSE(too_big.ok);
  EXPECT_STREQ(too_big.limit, "hello_size");
  EXPECT_THAT(too_big.reason, HasSubstr("limit 2048"));

  v1::Hello many = HelloFrom("node-b");
  for (int i = 0; i < 5; ++i) many.add_interfaces()->set_name("eth" + std::to_string(i));
  const HelloResult too_many = registry.Hello(many, kT0);
  EXPECT_FALSE(too_many.ok);
  EXPECT_STREQ(too_many.limit, "hello_size");
  EXPECT_THAT(too_many.reason, HasSubstr("5 interfaces (limit 4)"));
  EXPECT_EQ(registry.size(), 0u);
}

TEST(RegionMatrixLimits, NamesPairsAndFlowsBeyondTheirCapsAreCountedNotTracked) {
  RegionMatrixConfig config;
  config.max_names = 20;
  config.max_region_pairs = 5;
  config.max_flows = 7;
  RegionMatrix matrix(config);
  matrix.Add({"node-a", "us-east-1", "us-east-1a"}, ReportNaming(0, 50, kT0, 1), kT0);
  const RegionMatrixStats stats = matrix.Stats();
  EXPECT_EQ(stats.names, 20u);
  EXPECT_GT(stats.names_not_interned, 0u);
  EXPECT_EQ(stats.pairs, 5u);
  EXPECT_GT(stats.pairs_not_tracked, 0u);
  EXPECT_EQ(stats.flows, 7u);
  EXPECT_GT(stats.flows_not_tracked, 0u);
  // What is within the caps is still served.
  EXPECT_EQ(matrix.Matrix(0ns, kT0).cells_size(), 5);
  EXPECT_EQ(matrix.Flows(v1::GetFlowsRequest(), kT0).flows_size(), 7);
}

// The stated bound (docs/security.md): with the default limits, 100,000 distinct peer names
// (and as many regions and flows) from 100 senders grow the heap by less than 256 MiB
// (measured: 217 MiB, most of it the 50,000 node-to-node paths max_paths allows). Without
// the caps on names, region pairs and flows the same input takes far more: every region pair
// keeps a ring of slots, every name its strings forever.
TEST(RegionMatrixLimits, HundredThousandDistinctNamesStayWithinTheMemoryBound) {
  constexpr size_t kNames = 100'000;
  constexpr size_t kPerReport = 1'000;
  constexpr size_t kBoundBytes = 256ull * 1024 * 1024;
  const LimitsConfig limits;  // the defaults
  const size_t before = AllocatedBytes();
  {
    RegionMatrix matrix(MatrixConfigWith(limits));
    uint64_t sequence = 0;
    for (size_t first = 0; first < kNames; first += kPerReport) {
      // Each report from a sender of its own, so the names are the senders' too.
      const std::string node = "sender-" + std::to_string(first / kPerReport);
      matrix.Add({node, "us-east-1", "us-east-1a"}, ReportNaming(first, kPerReport, kT0, ++sequence), kT0);
    }
    const size_t grown = AllocatedBytes() - before;
    const RegionMatrixStats stats = matrix.Stats();
    RecordProperty("heap_growth_bytes", std::to_string(grown));
    std::printf(
        "100,000 distinct names: heap grew %.1f MiB (bound %.0f MiB); names %zu, pairs %zu, flows %zu\n",
        static_cast<double>(grown) / (1024 * 1024), static_cast<double>(kBoundBytes) / (1024 * 1024),
        stats.names, stats.pairs, stats.flows);
    EXPECT_LE(stats.names, limits.max_names);
    EXPECT_LE(stats.pairs, limits.max_region_pairs);
    EXPECT_LE(stats.flows, limits.max_flows);
    EXPECT_LT(grown, kBoundBytes);
    // Still answers, in bounded time and size.
    EXPECT_LE(static_cast<size_t>(matrix.Matrix(0ns, kT0).cells_size()), limits.max_region_pairs);
  }
}

}  // namespace
}  // namespace regionpulse
