// Aggregator: the running regionpulse-aggregator. Wires the configuration into the pure core
// (registry, matrix, planner, verdict engine) behind one lock, evaluates the verdict on a
// steady tick, publishes and records every transition, and serves it all over gRPC (Ingest,
// Verdicts, Query, grpc.health.v1, server reflection) and HTTP (/metrics, /healthz, /readyz).
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "aggregator/agent_registry.h"
#include "aggregator/aggregator_config.h"
#include "aggregator/call_authorizer.h"
#include "aggregator/ingest_service.h"
#include "aggregator/probe_planner.h"
#include "aggregator/query_service.h"
#include "aggregator/region_matrix.h"
#include "aggregator/verdict_engine.h"
#include "aggregator/verdict_history.h"
#include "aggregator/verdict_service.h"
#include "common/clocks.h"
#include "common/result.h"
#include "common/status_server.h"
#include "common/token_bucket.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
template <typename T>
class Family;
}  // namespace prometheus

namespace regionpulse {

struct AggregatorOptions {
  // Time source for every decision; tests pass a clock they move by hand.
  std::function<WallClock::time_point()> clock = [] { return WallClock::now(); };
  // Evaluate on a thread every evaluation_interval. Tests that drive time themselves turn it
  // off and call EvaluateNow().
  bool evaluation_loop = true;
  // Serve /metrics, /healthz, /readyz on config.metrics_listen.
  bool status_server = true;
  // The verdict history's system calls; tests make writes fail with them.
  HistoryFileOps history_file_ops;
};

class Aggregator final : private IngestBackend, private QueryBackend {
 public:
  // Opens the history, builds the core, starts the gRPC server (and the status server and the
  // evaluation loop when the options say so). Fails, saying why, when an address cannot be
  // bound, TLS files cannot be read or the history cannot be opened.
  static Result<std::unique_ptr<Aggregator>> Start(const AggregatorConfig& config,
                                                   AggregatorOptions options = {});
  ~Aggregator() override;
  Aggregator(const Aggregator&) = delete;
  Aggregator& operator=(const Aggregator&) = delete;

  // Stops the loop, ends every stream, shuts the servers down. Idempotent.
  void Shutdown();
  // Blocks until Shutdown() has been called (from another thread).
  void Wait();

  // Ports actually bound (useful with port 0).
  uint16_t grpc_port() const { return grpc_port_; }
  uint16_t metrics_port() const;
  // A channel to this server without a socket, for tests. Its calls carry no certificate, so
  // they are refused where tls.client_ca_file or tls.read_client_ca_file asks for one.
  std::shared_ptr<grpc::Channel> InProcessChannel();

  // One evaluation at the clock's now: evidence -> verdict -> (on change) history and Watch.
  v1::Verdict EvaluateNow();
  v1::Verdict CurrentVerdict() const { return broadcaster_.Current(); }

 private:
  struct Metrics;
  class LimitHits;

  // What the Query service answers from: taken at the evaluation tick, under the core lock the
  // tick holds anyway, then never changed; queries read it without the core lock, so a flood
  // of them costs ingest and the tick nothing. Answers are as of the last tick.
  struct QuerySnapshot {
    WallClock::time_point taken_at;
    // Every agent, sorted by (region, node), plan versions set.
    std::vector<v1::AgentInfo> agents;
    // The matrix over the configured window (requests for 0 or more than the window).
    v1::GetRegionMatrixResponse matrix;
    // Every flow with data in the window, in the order GetFlows answers.
    v1::GetFlowsResponse flows;
    // Every path with data in the window, worst first; only while someone asks for paths
    // (building every path's summary is the costly part of a tick's snapshot).
    std::optional<std::vector<v1::PathSummary>> paths;
  };
  std::shared_ptr<const QuerySnapshot> Snapshot() const;
  // Builds the snapshot from the core; the caller holds core_mutex_.
  std::shared_ptr<const QuerySnapshot> TakeSnapshotLocked(WallClock::time_point now, bool with_paths);

  Aggregator(const AggregatorConfig& config, AggregatorOptions options,
             std::unique_ptr<VerdictHistory> history);
  Status StartGrpc();
  Status StartStatusServer();
  // Adds a stored report's refused probes to regionpulse_aggregator_probes_refused_total.
  void CountRefusedProbes(const std::string& region, const v1::HealthReport& report);
  void EvaluationLoop();
  // Writes the transitions not yet in the history, oldest first, until one fails.
  void WriteUnwrittenTransitions();
  // Writes the engine's decision state beside the history when it differs from the last write.
  void SaveEngineStateIfChanged(uint64_t published_generation);
  Readiness CheckReadiness() const;
  // Counts (and logs, rate-limited) what the matrix's caps refused since the last tick.
  void ReportMatrixLimits(const RegionMatrixStats& stats);

  // IngestBackend
  grpc::Status AuthorizeStream(const grpc::ServerContextBase& context,
                               std::optional<CertifiedNode>* certified) override;
  HelloResult Hello(const v1::Hello& hello, const IngestCaller& caller) override;
  AcceptResult Accept(uint64_t session, const v1::HealthReport& report) override;
  void EndSession(uint64_t session) override;
  std::optional<v1::ProbePlan> PlanFor(const std::string& node) override;
  // QueryBackend
  v1::ListAgentsResponse ListAgents(const v1::ListAgentsRequest& request) override;
  grpc::Status RegionMatrix(const v1::GetRegionMatrixRequest& request,
                            v1::GetRegionMatrixResponse* response) override;
  grpc::Status Paths(const v1::GetPathsRequest& request, v1::GetPathsResponse* response) override;
  // Admits one query computed under core_mutex_ (limits.max_live_queries_per_second); refused
  // ones are counted and answered RESOURCE_EXHAUSTED with the reason.
  grpc::Status AdmitLiveQuery(const char* what);
  v1::GetFlowsResponse Flows(const v1::GetFlowsRequest& request) override;

  const AggregatorConfig config_;
  const AggregatorOptions options_;
  const std::vector<std::string> region_names_;

  // The pure core, serialised by core_mutex_ (ingest, the tick's reads and its query
  // snapshot; queries only when they ask for what the snapshot does not hold).
  mutable std::mutex core_mutex_;
  AgentRegistry registry_;
  regionpulse::RegionMatrix matrix_;
  ProbePlanner planner_;

  // The last tick's query snapshot, swapped under snapshot_mutex_ (held for a pointer copy).
  mutable std::mutex snapshot_mutex_;
  // Queries the snapshot cannot answer, admitted at limits.max_live_queries_per_second.
  std::mutex live_queries_mutex_;
  TokenBucket<std::chrono::steady_clock::time_point> live_queries_;
  std::shared_ptr<const QuerySnapshot> snapshot_;
  // Until when (steady clock, ns) the tick also snapshots paths: a minute after a GetPaths.
  std::atomic<int64_t> paths_wanted_until_ns_{0};

  // Evaluations run one at a time, so transitions reach history and Watch in order; the
  // engine is used by evaluations only, under this lock, outside core_mutex_.
  std::mutex evaluate_mutex_;
  VerdictEngine engine_;
  // The matrix's names, copied at each tick under core_mutex_ (only the new ones), read after
  // it: the evidence gets its names outside the core lock.
  MatrixNames matrix_names_;
  std::unique_ptr<VerdictHistory> history_;
  // Generations continue from the history after a restart, so a controller never sees the
  // generation go backwards.
  uint64_t generation_base_ = 0;
  // The engine state last written beside the history (serialized, without its save time).
  std::string last_saved_engine_state_;
  // Transitions the history could not write yet, oldest first: written again at every tick, in
  // order, so a passing disk error loses no record and /readyz recovers by itself.
  std::deque<v1::VerdictTransition> unwritten_transitions_;
  bool engine_state_unsaved_ = false;
  // The planner's revision when plans were last pushed to every stream (evaluations only).
  std::optional<ProbePlanner::Revision> plans_pushed_;

  std::shared_ptr<prometheus::Registry> metrics_registry_;
  std::unique_ptr<Metrics> metrics_;
  // reports_total's series per AcceptStatus, made at start: looking the series up by its label
  // set (a map built, hashed and searched under the family's mutex) was per report.
  std::array<prometheus::Counter*, 6> reports_by_status_{};
  std::unique_ptr<LimitHits> limit_hits_;
  // The counters last turned into limit hits (the evaluation tick only).
  RegionMatrixStats matrix_limits_seen_;
  uint64_t watch_refused_seen_ = 0;
  // Regions with regionpulse_aggregator_region_state series (the evaluation tick only).
  std::set<std::string> region_state_series_;

  // Which peers may call what; set from the configuration's CA files before the server starts.
  CallAuthorizer authorizer_;
  VerdictBroadcaster broadcaster_;
  IngestService ingest_service_;
  VerdictService verdict_service_;
  QueryService query_service_;
  std::unique_ptr<grpc::Server> server_;
  uint16_t grpc_port_ = 0;
  std::unique_ptr<StatusServer> status_server_;

  std::mutex lifecycle_mutex_;
  std::condition_variable lifecycle_cv_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::atomic<bool> serving_{false};
  std::thread evaluation_thread_;
};

}  // namespace regionpulse
