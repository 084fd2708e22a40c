// rp_probe_load: probes per second and Prometheus series as clusters grow, regionpulse's plan
// against full-mesh probing (docs/benchmarks.md "Probe load as clusters grow").
//
// For each cluster size, the nodes are split over three regions and registered with the real
// ProbePlanner at the aggregator's default plan settings (ProbePlanConfig: k targets per
// region, interval). Every node's plan is computed; probes per second = targets / interval.
// The reflected load per node is the in-degree of the plan.
//
// Series: one agent's AgentMetrics (the real registry the agent serves on /metrics) is fed one
// window built from its plan (a path per target with kernel and user RTTs, passive traffic for
// every remote region, the agent's BPF programs, one aggregator stream), then serialised in
// the Prometheus text format and its samples counted. Replication flows add series per
// configured flow and are left out (none configured).
//
// Full mesh, as the peers document their defaults (sources in docs/benchmarks.md):
//  - goldpinger: every instance calls every other instance once per refresh interval (30 s);
//    one histogram goldpinger_peers_response_time_s per (instance, peer), 12 buckets + +Inf +
//    _sum + _count = 15 series per pair.
//  - cilium-health: every node probes every other node every 60 s, ICMP and HTTP to both the
//    node address and its health endpoint (4 probes); per target node 2 node_connectivity_status
//    and 4 node_connectivity_latency_seconds series.
//
// Usage: rp_probe_load [N ...]   (default 100 1000 5000). Prints Markdown.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "agent/agent_metrics.h"
#include "aggregator/aggregator_config.h"
#include "aggregator/probe_planner.h"
#include "common/latency_histogram.h"
#include "common/proto_convert.h"

namespace regionpulse {
namespace {

const std::vector<std::string> kRegions = {"us-east-1", "eu-west-1", "ap-southeast-1"};
// The agent's BPF programs as its reports name them (tc egress/ingress, sock_ops, tracepoint).
const std::vector<std::string> kPrograms = {"rp_tc_egress_l2", "rp_tc_ingress_l2", "rp_sock_ops",
                                            "rp_tcp_retransmit"};

struct Row {
  size_t nodes = 0;
  double probes_per_node = 0;  // sent, mean
  double total_probes = 0;     // per second, whole cluster
  size_t reflected_max = 0;    // probes/s a node answers, max over nodes
  double reflected_mean = 0;
  size_t series_per_agent = 0;
  double plan_ms = 0;  // computing every node's plan once
};

size_t CountSamples(const prometheus::Registry& registry) {
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, registry.Collect());
  std::istringstream lines(text.str());
  size_t samples = 0;
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] != '#') ++samples;
  }
  return samples;
}

// One window's report for a node probing `plan`'s targets, every probe answered.
v1::HealthReport WindowFor(const v1::ProbePlan& plan, const std::string& own_region, double per_target) {
  v1::HealthReport report;
  LatencyHistogram rtt;
  for (int i = 0; i < 10; ++i) rtt.Record(40'000'000 + static_cast<uint64_t>(i) * 500'000);
  for (const auto& target : plan.targets()) {
    auto* path = report.add_paths();
    path->set_peer_node(target.node());
    path->set_peer_region(target.region());
    const auto sent = static_cast<uint64_t>(per_target);
    path->set_probes_sent(sent);
    path->set_received_forward(sent);
    path->set_received_reverse(sent);
    ToProto(rtt, path->mutable_rtt_kernel());
    ToProto(rtt, path->mutable_rtt_user());
    *path->mutable_jitter() = ToDuration(std::chrono::microseconds(200));
  }
  for (const auto& region : kRegions) {
    if (region == own_region) continue;
    auto* traffic = report.add_traffic();
    traffic->set_remote_region(region);
    traffic->set_tx_bytes(1000);
    traffic->set_rx_bytes(1000);
    traffic->set_tx_packets(10);
    traffic->set_rx_packets(10);
    *traffic->mutable_tcp_srtt() = ToDuration(std::chrono::milliseconds(40));
  }
  for (const auto& name : kPrograms) {
    auto* program = report.mutable_status()->add_programs();
    program->set_name(name);
    program->set_run_count(1000);
    program->set_run_time_ns(180'000);
  }
  return report;
}

Row Measure(size_t nodes) {
  const ProbePlanConfig defaults;  // the aggregator's defaults
  ProbePlannerConfig config;
  config.targets_per_region = defaults.targets_per_region;
  config.interval = defaults.interval;
  config.rotation = defaults.rotation;
  ProbePlanner planner(config);
  std::vector<PlannedAgent> agents;
  for (size_t i = 0; i < nodes; ++i) {
    const std::string& region = kRegions[i % kRegions.size()];
    const std::string node = region + "-node-" + std::to_string(i);
    const std::string address = "10." + std::to_string(i / 65536) + "." + std::to_string((i / 256) % 256) +
                                "." + std::to_string(i % 256);
    agents.push_back({node, region, region + "a", {address, 862}});
    planner.Upsert(agents.back());
  }
  const auto now = WallClock::time_point(std::chrono::seconds(1'800'000'000));
  const double per_target = 1000.0 / static_cast<double>(config.interval.count());

  Row row;
  row.nodes = nodes;
  std::map<std::string, size_t> in_degree;
  size_t targets = 0;
  std::optional<v1::ProbePlan> first_plan;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& agent : agents) {
    auto plan = planner.PlanFor(agent.node, now);
    if (!plan) std::abort();
    targets += static_cast<size_t>(plan->targets_size());
    for (const auto& target : plan->targets()) ++in_degree[target.node()];
    if (!first_plan) first_plan = std::move(plan);
  }
  row.plan_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  row.probes_per_node = static_cast<double>(targets) * per_target / static_cast<double>(nodes);
  row.total_probes = static_cast<double>(targets) * per_target;
  for (const auto& [node, count] : in_degree) row.reflected_max = std::max(row.reflected_max, count);
  row.reflected_max = static_cast<size_t>(static_cast<double>(row.reflected_max) * per_target);
  row.reflected_mean = row.total_probes / static_cast<double>(nodes);

  AgentMetrics metrics(agents.front().region, agents.front().zone, "bench");
  // Two windows, so every cumulative counter has had a delta.
  for (int w = 0; w < 2; ++w)
    metrics.ObserveReport(WindowFor(*first_plan, agents.front().region, per_target));
  AgentHealthCounters health;
  health.probe_targets = static_cast<uint64_t>(first_plan->targets_size());
  metrics.ObserveHealth(health);
  metrics.ObserveStream("aggregator-0:9100", AggregatorStreamStats{});
  metrics.SetBpfAttached(true, 1);
  row.series_per_agent = CountSamples(*metrics.registry());
  return row;
}

std::string Thousands(double value) {
  const auto v = static_cast<long long>(value + 0.5);
  std::string digits = std::to_string(v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string Rate(double value) {
  char buffer[32];
  if (value < 100) {
    std::snprintf(buffer, sizeof(buffer), "%.1f", value);
    return buffer;
  }
  return Thousands(value);
}

}  // namespace
}  // namespace regionpulse

int main(int argc, char** argv) {
  using namespace regionpulse;
  std::vector<size_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(static_cast<size_t>(std::strtoul(argv[i], nullptr, 10)));
  if (sizes.empty()) sizes = {100, 1000, 5000};
  const ProbePlanConfig defaults;

  // Full mesh: probes per peer per interval, and series per (prober, peer).
  constexpr double kGoldpingerInterval = 30.0, kGoldpingerSeriesPerPair = 15;
  constexpr double kCiliumInterval = 60.0, kCiliumProbesPerPeer = 4, kCiliumSeriesPerPair = 6;

  std::printf(
      "Three regions, nodes split evenly. regionpulse: the ProbePlanner at the aggregator's defaults "
      "(%u targets per region, own region included, one probe per target every %lld ms).\n\n",
      defaults.targets_per_region, static_cast<long long>(defaults.interval.count()));
  std::printf(
      "| nodes | probes/s per node: regionpulse (sent / answered, max) | goldpinger (30 s) | "
      "cilium-health (60 s, 4 probes) | full mesh at regionpulse's 10/s | total probes/s: regionpulse "
      "| goldpinger | cilium-health | series: regionpulse | goldpinger | cilium-health | plan time, all "
      "nodes |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (size_t n : sizes) {
    const Row row = Measure(n);
    const double peers = static_cast<double>(n - 1);
    const double gold_node = peers / kGoldpingerInterval;
    const double cilium_node = peers * kCiliumProbesPerPeer / kCiliumInterval;
    const double mesh_10 = peers * 1000.0 / static_cast<double>(defaults.interval.count());
    const double nd = static_cast<double>(n);
    std::printf("| %s | %s / %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f ms |\n",
                Thousands(nd).c_str(), Rate(row.probes_per_node).c_str(),
                Rate(static_cast<double>(row.reflected_max)).c_str(), Rate(gold_node).c_str(),
                Rate(cilium_node).c_str(), Thousands(mesh_10).c_str(), Thousands(row.total_probes).c_str(),
                Thousands(gold_node * nd).c_str(), Thousands(cilium_node * nd).c_str(),
                Thousands(static_cast<double>(row.series_per_agent) * nd).c_str(),
                Thousands(kGoldpingerSeriesPerPair * nd * peers).c_str(),
                Thousands(kCiliumSeriesPerPair * nd * peers).c_str(), row.plan_ms);
    std::fprintf(stderr, "n=%zu: %zu series per regionpulse agent, reflected mean %.1f/s\n", n,
                 row.series_per_agent, row.reflected_mean);
  }
  return 0;
}
