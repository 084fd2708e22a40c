// Aggregator at scale: what ingesting one report and one evaluation tick cost at 1,000 and
// 10,000 agents, each probing 12 peers over 4 regions and reporting once per second, and
// what the region matrix holds in memory per agent. Results and the command that produced
// them: docs/benchmarks.md, "Aggregator at scale".
//
// Every run fills a fresh aggregator core for the full matrix window first (steady state:
// every slot ring full, slots being recycled), then measures. Time is simulated: one
// "second" of reports is every agent's report for the window ending at that second.
#include <malloc.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "aggregator/agent_registry.h"
#include "aggregator/region_matrix.h"
#include "aggregator/verdict_engine.h"
#include "aggregator/verdict_evidence.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

constexpr int kPathsPerAgent = 12;
constexpr std::array<const char*, 4> kRegions = {"us-east-1", "eu-west-1", "ap-southeast-1", "sa-east-1"};
// Base kernel RTT between regions in microseconds (same region: 1 ms), so that histograms
// of different region pairs occupy different buckets as they do in the field.
constexpr std::array<std::array<uint64_t, 4>, 4> kBaseRttUs = {{
    {1'000, 75'000, 220'000, 120'000},
    {75'000, 1'000, 160'000, 190'000},
    {220'000, 160'000, 1'000, 310'000},
    {120'000, 190'000, 310'000, 1'000},
}};
// The aggregator's default evaluation interval (AggregatorConfig::evaluation_interval).
constexpr auto kTickBudget = 1s;
const WallClock::time_point kT0 = WallClock::time_point(std::chrono::seconds(1'800'000'000));

std::string NodeName(int region, int index) {
  char name[64];
  std::snprintf(name, sizeof name, "%s-node-%05d", kRegions[static_cast<size_t>(region)], index);
  return name;
}

// Resident set size in bytes (second field of /proc/self/statm, in pages).
int64_t ResidentBytes() {
  FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) throw std::runtime_error("cannot open /proc/self/statm");
  long size = 0, resident = 0;
  const int read = std::fscanf(statm, "%ld %ld", &size, &resident);
  std::fclose(statm);
  if (read != 2) throw std::runtime_error("cannot parse /proc/self/statm");
  return static_cast<int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

// Ten replies around the pair's base RTT, 1 % apart: a handful of histogram buckets per path.
void FillHistogram(uint64_t base_us, uint64_t extra_us, v1::LatencyHistogram* out) {
  LatencyHistogram h;
  for (uint64_t k = 0; k < 10; ++k) h.Record((base_us + extra_us) * 1'000 * (100 + k) / 100);
  ToProto(h, out);
}

// One agent's report as it arrives every second; only the window moves between seconds.
v1::HealthReport MakeReport(int agents, int agent) {
  const int own_region = agent % 4;
  const int per_region = agents / 4;
  v1::HealthReport report;
  for (int p = 0; p < kPathsPerAgent; ++p) {
    const int peer_region = p / 3;  // three peers in every region, the own one included
    int peer_index = (agent * 7 + p * 13) % per_region;
    if (peer_region == own_region && peer_index == agent / 4) peer_index = (peer_index + 1) % per_region;
    auto* path = report.add_paths();
    path->set_peer_node(NodeName(peer_region, peer_index));
    path->set_peer_region(kRegions[static_cast<size_t>(peer_region)]);
    path->set_probes_sent(10);
    path->set_received_forward(10);
    path->set_received_reverse(10);
    const uint64_t base = kBaseRttUs[static_cast<size_t>(own_region)][static_cast<size_t>(peer_region)];
    FillHistogram(base, 0, path->mutable_rtt_kernel());
    FillHistogram(base, 200, path->mutable_rtt_user());
    *path->mutable_jitter() = ToDuration(std::chrono::microseconds(base / 50));
  }
  for (int r = 0; r < 4; ++r) {
    if (r == own_region) continue;
    auto* traffic = report.add_traffic();
    traffic->set_remote_region(kRegions[static_cast<size_t>(r)]);
    traffic->set_tx_bytes(1'000'000);
    traffic->set_rx_bytes(1'200'000);
    traffic->set_tx_packets(900);
    traffic->set_rx_packets(1'000);
  }
  // One node in ten runs a database replicating to the next region.
  if (agent % 10 == 0) {
    auto* flow = report.add_flows();
    flow->set_name("orders-db");
    flow->set_remote_region(kRegions[static_cast<size_t>((own_region + 1) % 4)]);
    flow->set_bytes_acked(5'000'000);
    *flow->mutable_srtt() = ToDuration(std::chrono::microseconds(
        kBaseRttUs[static_cast<size_t>(own_region)][static_cast<size_t>((own_region + 1) % 4)]));
    *flow->mutable_last_progress_age() = ToDuration(200ms);
    flow->set_connections(4);
  }
  return report;
}

// The aggregator's core as Aggregator wires it, with the fleet that reports to it.
struct Fleet {
  explicit Fleet(int agents)
      : agents(agents),
        matrix(MatrixConfig()),
        engine(EngineConfig()),
        region_names(kRegions.begin(), kRegions.end()) {
    for (int a = 0; a < agents; ++a) {
      sources.push_back({NodeName(a % 4, a / 4), kRegions[static_cast<size_t>(a % 4)],
                         std::string(kRegions[static_cast<size_t>(a % 4)]) + "a"});
      reports.push_back(MakeReport(agents, a));
    }
  }

  // As the aggregator configures them: every other region a standby, flows kept for the
  // replication retention.
  static VerdictEngineConfig EngineConfig() {
    return VerdictEngineConfig{.active_region = kRegions[0],
                               .standby_regions = {kRegions.begin() + 1, kRegions.end()},
                               .own_region = kRegions[1],
                               .regions = {kRegions.begin(), kRegions.end()}};
  }
  static RegionMatrixConfig MatrixConfig() {
    RegionMatrixConfig config;
    const VerdictEngineConfig engine = EngineConfig();
    config.replication_retention = ReplicationRetentionFor(config.window, engine.hold, engine.dwell);
    return config;
  }

  // Sets every report's window to the second ending at `now`.
  void StampReports(WallClock::time_point now) {
    ++sequence;
    for (auto& report : reports) {
      report.set_sequence(sequence);
      *report.mutable_window_start() = ToTimestamp(now - 1s);
      *report.mutable_window_end() = ToTimestamp(now);
    }
  }

  // Files one second of reports in the matrix only.
  void AddSecond(WallClock::time_point now) {
    for (size_t a = 0; a < reports.size(); ++a) matrix.Add(sources[a], reports[a], now);
  }

  // Every agent says Hello, as after an aggregator restart.
  void Register(WallClock::time_point now) {
    sessions.clear();
    for (int a = 0; a < agents; ++a) {
      v1::Hello hello;
      hello.set_node(sources[static_cast<size_t>(a)].node);
      hello.set_region(sources[static_cast<size_t>(a)].region);
      hello.set_zone(sources[static_cast<size_t>(a)].zone);
      hello.set_agent_version("0.1.0");
      hello.set_instance_id(static_cast<uint64_t>(a) + 1);
      hello.mutable_probe_endpoint()->set_address("10.0.0.1");
      hello.mutable_probe_endpoint()->set_port(862);
      *hello.mutable_window() = ToDuration(1s);
      const HelloResult result = registry.Hello(hello, now);
      if (!result.ok) throw std::runtime_error("Hello refused: " + result.reason);
      sessions.push_back(result.session);
    }
  }

  // One second of the ingest path: the registry accepts each report, the matrix files it.
  void IngestSecond(WallClock::time_point now) {
    for (size_t a = 0; a < reports.size(); ++a) {
      const AcceptResult accepted = registry.Accept(sessions[a], reports[a], now);
      if (!accepted.stored_now()) throw std::runtime_error("report refused: " + accepted.reason);
      matrix.Add(accepted.agent, reports[a], now);
    }
  }

  // What Aggregator::EvaluateNow does: under its core lock the registry, the evidence's read
  // and the query snapshot (TakeSnapshotLocked without the planner's plan versions), then the
  // evidence's names and the engine outside it (evaluate_ms).
  VerdictEvaluation Tick(WallClock::time_point now, double* evidence_seconds, double* snapshot_seconds,
                         double* evaluate_seconds) {
    const auto started = Steady::now();
    for (const std::string& node : registry.Expire(now)) matrix.Forget(node);
    const std::vector<AgentPresence> presence = registry.Presence(now);
    VerdictEvidenceDraft draft = ReadVerdictEvidence(matrix, presence, region_names, now);
    names.CopyNewNames(matrix);
    const auto evidence_done = Steady::now();
    {
      const std::vector<v1::AgentInfo> agents = registry.List(now);
      const v1::GetRegionMatrixResponse region_matrix = matrix.Matrix(std::chrono::nanoseconds::zero(), now);
      const v1::GetFlowsResponse flows = matrix.Flows(v1::GetFlowsRequest(), now);
      benchmark::DoNotOptimize(agents);
      benchmark::DoNotOptimize(region_matrix);
      benchmark::DoNotOptimize(flows);
    }
    const auto snapshot_done = Steady::now();
    const VerdictEvidence evidence = FinishVerdictEvidence(std::move(draft), names.names());
    VerdictEvaluation evaluation = engine.Evaluate(evidence, now);
    const auto evaluated = Steady::now();
    *evidence_seconds += std::chrono::duration<double>(evidence_done - started).count();
    *snapshot_seconds += std::chrono::duration<double>(snapshot_done - evidence_done).count();
    *evaluate_seconds += std::chrono::duration<double>(evaluated - snapshot_done).count();
    return evaluation;
  }

  int agents;
  std::vector<AgentIdentity> sources;
  std::vector<v1::HealthReport> reports;
  std::vector<uint64_t> sessions;
  uint64_t sequence = 0;
  AgentRegistry registry;
  RegionMatrix matrix;
  VerdictEngine engine;
  MatrixNames names;
  std::vector<std::string> region_names;
  WallClock::time_point now = kT0;
};

// Seconds of reports that fill every slot ring of the matrix (window plus the spare slots).
int SteadyStateSeconds(const RegionMatrixConfig& config) {
  return static_cast<int>((config.window + 2 * config.slot).count());
}

// Fills the matrix for the whole window, then registers the fleet and ingests one second,
// so every agent is reporting.
void Fill(Fleet& fleet) {
  const int seconds = SteadyStateSeconds(fleet.matrix.config());
  for (int s = 0; s < seconds; ++s) {
    fleet.now += 1s;
    fleet.StampReports(fleet.now);
    fleet.AddSecond(fleet.now);
  }
  fleet.Register(fleet.now);
  fleet.now += 1s;
  fleet.StampReports(fleet.now);
  fleet.IngestSecond(fleet.now);
}

// RegionMatrix::Add per report in steady state. One iteration is one second of reports
// (every agent once); the time is that of the Add calls alone. Counters: time per report,
// and the share of one core that ingesting at one report per agent per second takes.
void BM_MatrixAddPerReport(benchmark::State& state) {
  const int agents = static_cast<int>(state.range(0));
  Fleet fleet(agents);
  Fill(fleet);
  double add_seconds = 0;
  for (auto _ : state) {
    fleet.now += 1s;
    fleet.StampReports(fleet.now);
    const auto started = Steady::now();
    fleet.AddSecond(fleet.now);
    const double spent = std::chrono::duration<double>(Steady::now() - started).count();
    state.SetIterationTime(spent);
    add_seconds += spent;
  }
  const double per_report = add_seconds / static_cast<double>(state.iterations()) / agents;
  state.counters["us_per_report"] = per_report * 1e6;
  // Reports per second = agents: the fraction of one core ingest needs.
  state.counters["core_share"] = per_report * agents;
  state.counters["paths"] = static_cast<double>(fleet.matrix.Stats().paths);
}

// One evaluation tick as Aggregator::EvaluateNow runs it: registry expiry and presence, the
// matrix's evidence, the verdict engine. Between ticks (not timed) every agent reports once,
// so each tick sees fresh data as in production. Counters split the tick into evidence and
// evaluation and compare it with the 1 s tick budget.
void BM_EvaluationTick(benchmark::State& state) {
  const int agents = static_cast<int>(state.range(0));
  Fleet fleet(agents);
  Fill(fleet);
  double evidence_seconds = 0, snapshot_seconds = 0, evaluate_seconds = 0;
  size_t regions = 0;
  for (auto _ : state) {
    state.PauseTiming();
    fleet.now += 1s;
    fleet.StampReports(fleet.now);
    fleet.IngestSecond(fleet.now);
    state.ResumeTiming();
    const VerdictEvaluation evaluation =
        fleet.Tick(fleet.now, &evidence_seconds, &snapshot_seconds, &evaluate_seconds);
    benchmark::DoNotOptimize(evaluation);
    regions = static_cast<size_t>(evaluation.verdict.regions_size());
  }
  const double n = static_cast<double>(state.iterations());
  const double tick = (evidence_seconds + snapshot_seconds + evaluate_seconds) / n;
  state.counters["evidence_ms"] = evidence_seconds / n * 1e3;
  state.counters["snapshot_ms"] = snapshot_seconds / n * 1e3;
  state.counters["evaluate_ms"] = evaluate_seconds / n * 1e3;
  state.counters["tick_budget_share"] = tick / std::chrono::duration<double>(kTickBudget).count();
  state.counters["regions"] = static_cast<double>(regions);
}

// Resident memory the matrix adds per agent once the window is full (RSS delta, so it
// includes allocator overhead; freed heap is trimmed first so earlier runs do not hide it).
void BM_MatrixMemory(benchmark::State& state) {
  const int agents = static_cast<int>(state.range(0));
  for (auto _ : state) {
    auto fleet = std::make_unique<Fleet>(agents);
    malloc_trim(0);
    const int64_t before = ResidentBytes();
    const int seconds = SteadyStateSeconds(fleet->matrix.config());
    for (int s = 0; s < seconds; ++s) {
      fleet->now += 1s;
      fleet->StampReports(fleet->now);
      fleet->AddSecond(fleet->now);
    }
    const int64_t after = ResidentBytes();
    state.counters["rss_bytes_per_agent"] = static_cast<double>(after - before) / agents;
    state.counters["rss_mib"] = static_cast<double>(after - before) / (1 << 20);
  }
}

BENCHMARK(BM_MatrixAddPerReport)->Arg(1'000)->Arg(10'000)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EvaluationTick)->Arg(1'000)->Arg(10'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MatrixMemory)->Arg(1'000)->Arg(10'000)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace regionpulse

BENCHMARK_MAIN();
