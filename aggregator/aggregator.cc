// The aggregator's wiring: configuration into the core, the evaluation tick, servers, metrics.
#include "aggregator/aggregator.h"

#include "aggregator/verdict_evidence.h"
#include "common/component_logger.h"
#include "common/grpc_callback_queue.h"

#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

namespace regionpulse {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  return ComponentLogger("aggregator");
}

// Reports bigger than ReportLimits::max_bytes are refused by the registry with a reason;
// gRPC's own limit (limits.max_message_bytes, at least 4 MiB + 64 KiB) sits above it so such
// reports reach the registry instead of being cut off with a bare RESOURCE_EXHAUSTED.
// Streams still open this long after shutdown began are cancelled.
constexpr std::chrono::seconds kShutdownGrace{2};

const char* const kServiceNames[] = {"regionpulse.v1.Ingest", "regionpulse.v1.Verdicts",
                                     "regionpulse.v1.Query"};

std::vector<std::string> RegionNames(const AggregatorConfig& config) {
  std::vector<std::string> names;
  for (const auto& region : config.regions) names.push_back(region.name);
  return names;
}

AgentRegistryConfig RegistryConfigOf(const AggregatorConfig& config) {
  AgentRegistryConfig registry;
  registry.not_reporting_timeout = config.not_reporting_timeout;
  registry.regions = config.regions;
  registry.max_agents = config.limits.max_agents;
  registry.max_hello_bytes = config.limits.max_hello_bytes;
  registry.max_hello_interfaces = config.limits.max_hello_interfaces;
  return registry;
}

RegionMatrixConfig MatrixConfigOf(const AggregatorConfig& config) {
  RegionMatrixConfig matrix;
  matrix.window = config.matrix_window;
  matrix.evidence_window = config.evidence_window;
  matrix.replication_retention = ReplicationRetentionFor(config.matrix_window, config.hold, config.dwell);
  matrix.thresholds = config.thresholds;
  matrix.max_names = config.limits.max_names;
  matrix.max_region_pairs = config.limits.max_region_pairs;
  matrix.max_flows = config.limits.max_flows;
  return matrix;
}

ProbePlannerConfig PlannerConfigOf(const AggregatorConfig& config) {
  ProbePlannerConfig planner;
  planner.targets_per_region = config.probe_plan.targets_per_region;
  planner.interval = config.probe_plan.interval;
  planner.payload_size = config.probe_plan.payload_size;
  planner.rotation = config.probe_plan.rotation;
  // Equal seeds in every aggregator: an agent gets the same plan from each of them.
  planner.seed = 0;
  return planner;
}

VerdictEngineConfig EngineConfigOf(const AggregatorConfig& config) {
  VerdictEngineConfig engine;
  engine.active_region = config.active_region;
  engine.own_region = config.own_region;
  engine.standby_regions = config.standby_regions;
  engine.max_data_loss = config.max_data_loss;
  engine.prefer_availability = config.prefer_availability;
  engine.regions = RegionNames(config);
  engine.hold = config.hold;
  engine.evidence_window = config.evidence_window;
  engine.dwell = config.dwell;
  engine.thresholds = config.thresholds;
  return engine;
}

// "ACTION_STAY" -> "STAY", "REGION_STATE_HEALTHY" -> "HEALTHY": short, bounded label values.
std::string ActionLabel(v1::Action action) {
  std::string name = v1::Action_Name(action);
  return name.starts_with("ACTION_") ? name.substr(7) : name;
}

std::string StateLabel(v1::RegionState state) {
  std::string name = v1::RegionState_Name(state);
  return name.starts_with("REGION_STATE_") ? name.substr(13) : name;
}

std::string LabelOf(const char* name) {
  std::string label = name;
  for (char& c : label) {
    if (c == ' ' || c == '-') c = '_';
  }
  return label;
}

Result<std::string> ReadFile(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) return Error{"cannot read " + what + " " + path, errno};
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Result<std::shared_ptr<grpc::ServerCredentials>> CredentialsFor(const AggregatorConfig& config) {
  if (auto problem = TransportProblem(config)) return Error{*problem};
  if (config.plaintext) {
    Log()->warn("serving gRPC in plaintext (--plaintext): no TLS, and no client is authenticated{}",
                config.tls.Enabled() ? " although TLS files are configured" : "");
    return grpc::InsecureServerCredentials();
  }
  auto cert = ReadFile(config.tls.cert_file, "TLS certificate");
  if (!cert) return cert.error();
  auto key = ReadFile(config.tls.key_file, "TLS key");
  if (!key) return key.error();
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({*key, *cert});
  // The handshake accepts a certificate from either CA; each call then checks the one its API
  // needs (CallAuthorizer), so an agent's certificate cannot read and a reader's cannot ingest.
  for (const auto& [path, what] : {std::pair{&config.tls.client_ca_file, "TLS client CA"},
                                   std::pair{&config.tls.read_client_ca_file, "TLS read client CA"}}) {
    if (path->empty()) continue;
    auto ca = ReadFile(*path, what);
    if (!ca) return ca.error();
    if (!options.pem_root_certs.empty() && !options.pem_root_certs.ends_with('\n'))
      options.pem_root_certs += '\n';
    options.pem_root_certs += *ca;
  }
  if (!config.tls.client_ca_file.empty()) {
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  } else if (!config.tls.read_client_ca_file.empty()) {
    // Agents may come without a certificate; readers are checked per call.
    options.client_certificate_request = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

// The engine, continuing from the decision state it saved before a restart when there is one.
VerdictEngine RestoredEngine(const AggregatorConfig& config, const VerdictHistory& history) {
  VerdictEngine engine(EngineConfigOf(config));
  const auto& saved = history.saved_engine_state();
  if (!saved) return engine;
  if (engine.RestoreState(*saved)) {
    Log()->info(
        "verdict engine state restored from {}{}", VerdictHistory::EngineStatePath(config.history.path),
        saved->failover_latched() ? ": FAILOVER to " + saved->failover_target() + " stays latched" : "");
  } else {
    Log()->warn("verdict engine state in {} was saved for active region '{}', not '{}': starting afresh",
                VerdictHistory::EngineStatePath(config.history.path), saved->active_region(),
                config.active_region);
  }
  return engine;
}

v1::Verdict InitialVerdict(const AggregatorConfig& config, const VerdictEngine& engine,
                           WallClock::time_point now) {
  v1::Verdict verdict = engine.current();
  verdict.set_action(v1::ACTION_HOLD);
  verdict.set_active_region(config.active_region);
  verdict.set_aggregator_region(config.own_region);
  *verdict.mutable_computed_at() = ToTimestamp(now);
  if (verdict.reasons_size() == 0) verdict.add_reasons("aggregator starting: no evaluation yet");
  return verdict;
}

StatusServerLimits StatusLimitsOf(const LimitsConfig& limits) {
  StatusServerLimits status;
  status.read_timeout = limits.status_read_timeout;
  status.write_timeout = limits.status_write_timeout;
  status.max_connections = limits.status_max_connections;
  return status;
}

}  // namespace

// Every cap hit is counted by cap (a bounded label: the caps are a fixed list) and logged at
// most once a minute per cap, with how many hits the line stands for: a flood of hostile
// input must not become a flood of log lines.
class Aggregator::LimitHits {
 public:
  static constexpr std::chrono::seconds kLogEvery{60};

  explicit LimitHits(prometheus::Family<prometheus::Counter>& family) : family_(family) {}

  void Hit(const std::string& limit, uint64_t count, const std::string& what) {
    if (count == 0) return;
    family_.Add({{"limit", limit}}).Increment(static_cast<double>(count));
    const auto now = std::chrono::steady_clock::now();
    uint64_t unlogged = 0;
    {
      std::lock_guard lock(mutex_);
      State& state = states_[limit];
      state.unlogged += count;
      if (state.logged && now - *state.logged < kLogEvery) return;
      state.logged = now;
      unlogged = std::exchange(state.unlogged, 0);
    }
    Log()->warn("limit {} reached ({} times since the last line): {}", limit, unlogged, what);
  }

 private:
  struct State {
    std::optional<std::chrono::steady_clock::time_point> logged;
    uint64_t unlogged = 0;
  };
  prometheus::Family<prometheus::Counter>& family_;
  std::mutex mutex_;
  std::map<std::string, State> states_;
};

// Label sets are bounded: agent states (2), report outcomes (6), actions (3), and regions
// (configured plus announced) x 4 states.
struct Aggregator::Metrics {
  explicit Metrics(prometheus::Registry& registry)
      : agents(prometheus::BuildGauge()
                   .Name("regionpulse_aggregator_agents")
                   .Help("Known agents by state (reporting, not_reporting)")
                   .Register(registry)),
        reports(
            prometheus::BuildCounter()
                .Name("regionpulse_aggregator_reports_total")
                .Help("Reports received, by outcome (accepted, duplicate, or the reason they were refused)")
                .Register(registry)),
        late_windows(prometheus::BuildCounter()
                         .Name("regionpulse_aggregator_late_windows_total")
                         .Help("Reports stored 10 s or more after their window ended, by agent region "
                               "(per agent: Query.ListAgents late_windows)")
                         .Register(registry)),
        hellos(prometheus::BuildCounter()
                   .Name("regionpulse_aggregator_hellos_total")
                   .Help("Hello messages, by outcome (accepted, refused)")
                   .Register(registry)),
        hello_refusals(prometheus::BuildCounter()
                           .Name("regionpulse_aggregator_hello_refusals_total")
                           .Help("Refused Hello messages by reason (invalid, unknown_region, "
                                 "endpoint_outside_region, duplicate_node, identity_mismatch)")
                           .Register(registry)),
        denied_calls(prometheus::BuildCounter()
                         .Name("regionpulse_aggregator_denied_calls_total")
                         .Help("gRPC calls refused for the client certificate, by API (ingest, read)")
                         .Register(registry)),
        probes_refused(prometheus::BuildCounter()
                           .Name("regionpulse_aggregator_probes_refused_total")
                           .Help("Probes the reflectors of a region refused, by reason (wrong_key, "
                                 "stale_timestamp, rate_limited, replayed): they reached it and are "
                                 "not loss (GetPaths and GetRegionMatrix show them as refused)")
                           .Register(registry)),
        unknown_region_entries(prometheus::BuildCounter()
                                   .Name("regionpulse_aggregator_unknown_region_entries_total")
                                   .Help("Report entries ignored because they name a region that is not "
                                         "configured, by kind (path, traffic, flow)")
                                   .Register(registry)),
        verdict_action(prometheus::BuildGauge()
                           .Name("regionpulse_aggregator_verdict_action")
                           .Help("1 for the current verdict action (STAY, FAILOVER, HOLD), 0 for the others")
                           .Register(registry)),
        region_state(prometheus::BuildGauge()
                         .Name("regionpulse_aggregator_region_state")
                         .Help("1 for each region's current state (HEALTHY, DEGRADED, UNREACHABLE, UNKNOWN), "
                               "0 otherwise")
                         .Register(registry)),
        generation(prometheus::BuildGauge()
                       .Name("regionpulse_aggregator_verdict_generation")
                       .Help("Generation of the current verdict")
                       .Register(registry)
                       .Add({})),
        transitions(prometheus::BuildCounter()
                        .Name("regionpulse_aggregator_verdict_transitions_total")
                        .Help("Verdict changes since start")
                        .Register(registry)
                        .Add({})),
        history_write_errors(prometheus::BuildCounter()
                                 .Name("regionpulse_aggregator_history_write_errors_total")
                                 .Help("Verdict transitions that could not be written to the durable history")
                                 .Register(registry)
                                 .Add({})),
        streams(prometheus::BuildGauge()
                    .Name("regionpulse_aggregator_streams")
                    .Help("Open gRPC streams by kind (ingest, watch)")
                    .Register(registry)),
        limit_hits(prometheus::BuildCounter()
                       .Name("regionpulse_aggregator_limit_hits_total")
                       .Help("Times a configured cap (limits.*) refused or dropped something, by cap")
                       .Register(registry)),
        evaluation_seconds(prometheus::BuildGauge()
                               .Name("regionpulse_aggregator_evaluation_seconds")
                               .Help("Duration of the last verdict evaluation")
                               .Register(registry)
                               .Add({})),
        // The last tick alone hides the slow ones between two scrapes; the distribution shows
        // how much of the evaluation interval ticks take at the fleet's size.
        evaluation_duration(prometheus::BuildHistogram()
                                .Name("regionpulse_aggregator_evaluation_duration_seconds")
                                .Help("Duration of every verdict evaluation tick (evidence, verdict, "
                                      "history, plan pushes)")
                                .Register(registry)
                                .Add({}, EvaluationBuckets())) {
    for (const char* action : {"STAY", "FAILOVER", "HOLD"}) verdict_action.Add({{"action", action}});
  }

  prometheus::Family<prometheus::Gauge>& agents;
  prometheus::Family<prometheus::Counter>& reports;
  prometheus::Family<prometheus::Counter>& late_windows;
  prometheus::Family<prometheus::Counter>& hellos;
  prometheus::Family<prometheus::Counter>& hello_refusals;
  prometheus::Family<prometheus::Counter>& denied_calls;
  prometheus::Family<prometheus::Counter>& probes_refused;  // {region, reason}
  prometheus::Family<prometheus::Counter>& unknown_region_entries;
  prometheus::Family<prometheus::Gauge>& verdict_action;
  prometheus::Family<prometheus::Gauge>& region_state;
  prometheus::Gauge& generation;
  prometheus::Counter& transitions;
  prometheus::Counter& history_write_errors;
  prometheus::Family<prometheus::Gauge>& streams;
  prometheus::Family<prometheus::Counter>& limit_hits;
  prometheus::Gauge& evaluation_seconds;
  prometheus::Histogram& evaluation_duration;

  // 1 ms to 5 s: a tick at a dozen agents takes well under a millisecond, at 10,000 tens to
  // hundreds of milliseconds, and the default interval is 1 s.
  static prometheus::Histogram::BucketBoundaries EvaluationBuckets() {
    return {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5};
  }
};

Aggregator::Aggregator(const AggregatorConfig& config, AggregatorOptions options,
                       std::unique_ptr<VerdictHistory> history)
    : config_(config),
      options_(std::move(options)),
      region_names_(RegionNames(config)),
      registry_(RegistryConfigOf(config)),
      matrix_(MatrixConfigOf(config)),
      planner_(PlannerConfigOf(config)),
      live_queries_(static_cast<double>(config.limits.max_live_queries_per_second),
                    static_cast<double>(config.limits.max_live_queries_per_second),
                    std::chrono::steady_clock::now()),
      engine_(RestoredEngine(config, *history)),
      history_(std::move(history)),
      metrics_registry_(std::make_shared<prometheus::Registry>()),
      metrics_(std::make_unique<Metrics>(*metrics_registry_)),
      limit_hits_(std::make_unique<LimitHits>(metrics_->limit_hits)),
      broadcaster_(InitialVerdict(config, engine_, options_.clock()), config.heartbeat_interval),
      ingest_service_(*this, config.limits.ingest_threads > 0 ? config.limits.ingest_threads
                                                              : IngestService::DefaultCompletionQueues()),
      verdict_service_(broadcaster_, authorizer_),
      query_service_(*this, *history_, authorizer_) {
  // A restored engine continues its own numbering; the history may be ahead of it (the state
  // was lost or belonged to another active region), and numbers must never repeat.
  if (auto latest = history_->Latest()) {
    const uint64_t restored = engine_.current().generation();
    generation_base_ =
        latest->verdict().generation() > restored ? latest->verdict().generation() - restored : 0;
  }
  // Even the verdict served before the first evaluation continues the old numbering.
  v1::Verdict initial = broadcaster_.Current();
  initial.set_generation(generation_base_ + initial.generation());
  broadcaster_.Update(initial);
  metrics_->verdict_action.Add({{"action", "HOLD"}}).Set(1);
  for (AcceptStatus status :
       {AcceptStatus::kAccepted, AcceptStatus::kDuplicate, AcceptStatus::kUnknownAgent,
        AcceptStatus::kInvalid, AcceptStatus::kFutureWindow, AcceptStatus::kSequenceBackwards}) {
    reports_by_status_.at(static_cast<size_t>(status)) =
        &metrics_->reports.Add({{"result", LabelOf(AcceptStatusName(status))}});
  }
  broadcaster_.SetMaxWatchers(config_.limits.max_watch_streams);
  metrics_->generation.Set(static_cast<double>(generation_base_));
}

Result<std::unique_ptr<Aggregator>> Aggregator::Start(const AggregatorConfig& config,
                                                      AggregatorOptions options) {
  auto history = VerdictHistory::Open(config.history, options.history_file_ops);
  if (!history) return history.error();
  if ((*history)->torn_bytes_dropped() > 0) {
    Log()->warn(
        "verdict history {}: {} bytes after the last good record (a torn write from a crash, or damage) "
        "were left out; the file as found is kept at {}",
        config.history.path, (*history)->torn_bytes_dropped(), (*history)->moved_aside_path());
  }
  if (auto problem = TransportProblem(config)) return Error{*problem};
  auto authorizer = CallAuthorizer::FromConfig(config);
  if (!authorizer) return authorizer.error();
  std::unique_ptr<Aggregator> aggregator(new Aggregator(config, std::move(options), std::move(*history)));
  aggregator->authorizer_ = std::move(*authorizer);
  aggregator->authorizer_.set_on_denied([metrics = aggregator->metrics_.get()](const char* api,
                                                                               const std::string& peer,
                                                                               const std::string& reason) {
    metrics->denied_calls.Add({{"api", api}}).Increment();
    Log()->warn("{} call from {} refused: {}", api, peer, reason);
  });
  if (auto ok = aggregator->StartGrpc(); !ok) return ok.error();
  if (aggregator->options_.status_server) {
    if (auto ok = aggregator->StartStatusServer(); !ok) {
      aggregator->Shutdown();
      return ok.error();
    }
  }
  aggregator->serving_ = true;
  if (aggregator->options_.evaluation_loop) {
    aggregator->evaluation_thread_ = std::thread([raw = aggregator.get()] { raw->EvaluationLoop(); });
  }
  if (!config.plaintext && !config.tls.client_ca_file.empty() && !config.tls.require_node_identity) {
    Log()->warn(
        "tls.require_node_identity is false: any agent with a certificate from {} may report as any node of "
        "the configured regions",
        config.tls.client_ca_file);
  }
  if (config.standby_regions_defaulted) {
    Log()->warn(
        "standby_regions not configured: every region but the active one ({}) may be a FAILOVER target; list "
        "the regions that hold replicas so an observer-only region never becomes one",
        fmt::join(config.standby_regions, ", "));
  }
  Log()->info("aggregator serving gRPC on port {} ({} regions, active '{}', own '{}', hold {} s, dwell {} s)",
              aggregator->grpc_port_, config.regions.size(), config.active_region, config.own_region,
              config.hold.count(), config.dwell.count());
  return aggregator;
}

Status Aggregator::StartGrpc() {
  auto credentials = CredentialsFor(config_);
  if (!credentials) return credentials.error();
  // Both are process-wide switches read when the builder is created.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config_.grpc_listen, *credentials, &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config_.limits.max_message_bytes));
  // What any number of clients may make gRPC hold: buffer memory and threads for the whole
  // server, streams per connection (a client opening thousands of streams on one connection
  // is refused by HTTP/2 flow control, not served).
  grpc::ResourceQuota quota("regionpulse-aggregator");
  quota.Resize(config_.limits.grpc_memory_bytes);
  quota.SetMaxThreads(static_cast<int>(config_.limits.grpc_max_threads));
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(config_.limits.max_streams_per_connection));
  // Agents ping every 10 s to notice a dead aggregator; gRPC's default server policy answers
  // pings more often than every 5 min without data with GOAWAY, so allow them explicitly.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  ingest_service_.AddTo(builder);  // the async API, on queues of its own (ingest_service.h)
  builder.RegisterService(&verdict_service_);
  builder.RegisterService(&query_service_);
  HoldGrpcCallbackQueue();  // see common/grpc_callback_queue.h
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    server_.reset();
    return Error{"gRPC: cannot listen on " + config_.grpc_listen + " (address in use or not local?)"};
  }
  grpc_port_ = static_cast<uint16_t>(port);
  ingest_service_.Start();
  if (auto* health = server_->GetHealthCheckService()) {
    health->SetServingStatus(true);
    for (const char* service : kServiceNames) health->SetServingStatus(service, true);
  }
  return OkStatus();
}

Status Aggregator::StartStatusServer() {
  auto server = StatusServer::Start(
      config_.metrics_listen, metrics_registry_, [this] { return CheckReadiness(); },
      StatusLimitsOf(config_.limits),
      [hits = limit_hits_.get()](const char* limit) {
        hits->Hit(std::string("status_") + limit, 1, "the status server closed a connection");
      });
  if (!server)
    return Error{"status server on " + config_.metrics_listen + ": " + server.error().message,
                 server.error().errnum};
  status_server_ = std::move(*server);
  return OkStatus();
}

Readiness Aggregator::CheckReadiness() const {
  if (!serving_) return {false, "not serving gRPC (starting or shutting down)"};
  // A verdict the history cannot keep is one nobody can explain afterwards: not ready until a
  // write succeeds again (the evaluation tick retries at every change).
  if (auto problem = history_->WriteProblem()) return {false, "verdict history not durable: " + *problem};
  const v1::Verdict verdict = broadcaster_.Current();
  return {true, "serving; verdict generation " + std::to_string(verdict.generation()) + " " +
                    ActionLabel(verdict.action())};
}

uint16_t Aggregator::metrics_port() const {
  return status_server_ ? status_server_->port() : 0;
}

std::shared_ptr<grpc::Channel> Aggregator::InProcessChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(config_.limits.max_message_bytes));
  return server_->InProcessChannel(args);
}

Aggregator::~Aggregator() {
  Shutdown();
}

void Aggregator::Shutdown() {
  {
    std::lock_guard lock(lifecycle_mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  lifecycle_cv_.notify_all();
  serving_ = false;
  if (evaluation_thread_.joinable()) evaluation_thread_.join();
  if (server_) {
    if (auto* health = server_->GetHealthCheckService()) {
      health->SetServingStatus(false);
      for (const char* service : kServiceNames) health->SetServingStatus(service, false);
    }
    // Long-lived streams would hold Shutdown until the deadline; end them first.
    ingest_service_.CloseAll();
    broadcaster_.Close();
    server_->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
    server_->Wait();
    // Only after the server's Shutdown: every call has ended, no new one can be requested.
    ingest_service_.ShutDownQueues();
    // Whatever the streams touched last (metrics, registry) is destroyed after this returns.
    ingest_service_.WaitUntilAllDone();
    server_.reset();
  }
  status_server_.reset();
  {
    std::lock_guard lock(lifecycle_mutex_);
    stopped_ = true;
  }
  lifecycle_cv_.notify_all();
  Log()->info("aggregator stopped");
}

void Aggregator::Wait() {
  std::unique_lock lock(lifecycle_mutex_);
  lifecycle_cv_.wait(lock, [this] { return stopping_; });
}

void Aggregator::EvaluationLoop() {
  std::unique_lock lock(lifecycle_mutex_);
  auto next = std::chrono::steady_clock::now();
  while (!stopping_) {
    next += config_.evaluation_interval;
    if (lifecycle_cv_.wait_until(lock, next, [this] { return stopping_; })) break;
    lock.unlock();
    EvaluateNow();
    lock.lock();
    // After a stall, continue from now rather than running a burst of late ticks.
    next = std::max(next, std::chrono::steady_clock::now() - config_.evaluation_interval);
  }
}

void Aggregator::WriteUnwrittenTransitions() {
  // Bounded: a history that stays unwritable must not grow memory without end.
  constexpr size_t kMaxUnwritten = 1024;
  while (unwritten_transitions_.size() > kMaxUnwritten) {
    Log()->error("verdict history {}: transition generation {} dropped, {} others wait to be written",
                 config_.history.path, unwritten_transitions_.front().verdict().generation(), kMaxUnwritten);
    unwritten_transitions_.pop_front();
  }
  const bool failing_before = history_->WriteProblem().has_value();
  while (!unwritten_transitions_.empty()) {
    if (auto ok = history_->Append(unwritten_transitions_.front()); !ok) {
      metrics_->history_write_errors.Increment();
      // Once per streak: the tick retries every second.
      if (!failing_before) {
        Log()->error("verdict history {}: {} ({} transitions waiting; retried at every tick)",
                     config_.history.path, ok.error().ToString(), unwritten_transitions_.size());
      }
      return;
    }
    unwritten_transitions_.pop_front();
  }
  if (failing_before) Log()->info("verdict history {}: writing again", config_.history.path);
}

void Aggregator::SaveEngineStateIfChanged(uint64_t published_generation) {
  v1::VerdictEngineState state = engine_.SaveState();
  // Saved as published, so a restart continues the numbering a controller has seen.
  state.set_generation(published_generation);
  std::string bytes;
  state.SerializeToString(&bytes);
  if (bytes == last_saved_engine_state_) return;
  *state.mutable_saved_at() = ToTimestamp(options_.clock());
  if (auto ok = history_->SaveEngineState(state); !ok) {
    metrics_->history_write_errors.Increment();
    if (!engine_state_unsaved_)
      Log()->error("verdict history {}: {}", config_.history.path, ok.error().ToString());
    engine_state_unsaved_ = true;
    return;
  }
  engine_state_unsaved_ = false;
  last_saved_engine_state_ = std::move(bytes);
}

v1::Verdict Aggregator::EvaluateNow() {
  std::lock_guard evaluate_lock(evaluate_mutex_);
  const auto started = std::chrono::steady_clock::now();
  uint32_t reporting = 0, not_reporting = 0;
  RegionMatrixStats matrix_stats;
  WallClock::time_point now;
  VerdictEvidenceDraft evidence_draft;
  // The snapshot the new one replaces: freed after the locks are let go (at 10,000 agents
  // freeing it took 3.5 % of the aggregator's CPU, all of it under the core lock).
  std::shared_ptr<const QuerySnapshot> replaced_snapshot;
  {
    // Ingest waits while this lock is held: only what reads the registry and the matrix is
    // done under it. The evidence owns its data; the engine is used by this tick alone
    // (evaluate_mutex_), so judging and freeing the evidence happen outside.
    std::lock_guard lock(core_mutex_);
    now = options_.clock();
    for (const std::string& node : registry_.Expire(now)) {
      matrix_.Forget(node);
      planner_.Remove(node);
    }
    matrix_stats = matrix_.Stats();
    const std::vector<AgentPresence> presence = registry_.Presence(now);
    for (const auto& agent : presence) (agent.reporting ? reporting : not_reporting) += 1;
    evidence_draft = ReadVerdictEvidence(matrix_, presence, region_names_, now);
    // Only the names interned since the last tick are copied; the draft's ids get their
    // names after the lock (evaluate_mutex_ guards matrix_names_).
    matrix_names_.CopyNewNames(matrix_);
    const bool with_paths =
        std::chrono::steady_clock::now().time_since_epoch().count() < paths_wanted_until_ns_.load();
    auto snapshot = TakeSnapshotLocked(now, with_paths);
    std::lock_guard snapshot_lock(snapshot_mutex_);
    replaced_snapshot = std::exchange(snapshot_, std::move(snapshot));
  }
  replaced_snapshot.reset();
  VerdictEvidence evidence = FinishVerdictEvidence(std::move(evidence_draft), matrix_names_.names());
  VerdictEvaluation evaluation = engine_.Evaluate(evidence, now);
  evidence = VerdictEvidence{};
  v1::Verdict& verdict = evaluation.verdict;
  verdict.set_generation(generation_base_ + verdict.generation());
  if (verdict.aggregator_region().empty()) verdict.set_aggregator_region(config_.own_region);

  if (evaluation.changed) {
    v1::VerdictTransition transition;
    *transition.mutable_verdict() = verdict;
    transition.set_previous_action(evaluation.previous_action);
    for (const auto& change : evaluation.changes) transition.add_changes(change);
    std::string reasons;
    for (const auto& reason : verdict.reasons()) reasons += (reasons.empty() ? "" : "; ") + reason;
    const bool failover = verdict.action() == v1::ACTION_FAILOVER;
    Log()->log(failover ? spdlog::level::warn : spdlog::level::info, "verdict generation {}: {}{} ({})",
               verdict.generation(), ActionLabel(verdict.action()),
               verdict.target_region().empty() ? "" : " to " + verdict.target_region(), reasons);
    // Written before it is published; when the history cannot take it, it is kept and written
    // again at the next tick (and /readyz says so meanwhile).
    unwritten_transitions_.push_back(std::move(transition));
    WriteUnwrittenTransitions();
    SaveEngineStateIfChanged(verdict.generation());
    metrics_->transitions.Increment();
    broadcaster_.Publish(verdict);
  } else {
    broadcaster_.Update(verdict);
    if (!unwritten_transitions_.empty()) WriteUnwrittenTransitions();
    if (engine_state_unsaved_) SaveEngineStateIfChanged(verdict.generation());
  }

  ReportMatrixLimits(matrix_stats);
  const uint64_t watch_refused = broadcaster_.watchers_refused();
  limit_hits_->Hit(
      "watch_streams", watch_refused - std::exchange(watch_refused_seen_, watch_refused),
      fmt::format("Watch refused, {} streams open (limits.max_watch_streams)", broadcaster_.watchers()));
  metrics_->agents.Add({{"state", "reporting"}}).Set(reporting);
  metrics_->agents.Add({{"state", "not_reporting"}}).Set(not_reporting);
  for (v1::Action action : {v1::ACTION_STAY, v1::ACTION_FAILOVER, v1::ACTION_HOLD}) {
    metrics_->verdict_action.Add({{"action", ActionLabel(action)}}).Set(verdict.action() == action ? 1 : 0);
  }
  constexpr v1::RegionState kStates[] = {v1::REGION_STATE_HEALTHY, v1::REGION_STATE_DEGRADED,
                                         v1::REGION_STATE_UNREACHABLE, v1::REGION_STATE_UNKNOWN};
  std::set<std::string> regions_now;
  for (const auto& region : verdict.regions()) {
    regions_now.insert(region.region());
    for (v1::RegionState state : kStates) {
      metrics_->region_state.Add({{"region", region.region()}, {"state", StateLabel(state)}})
          .Set(region.state() == state ? 1 : 0);
    }
  }
  // A region no longer in the verdict (its agents were forgotten, nobody probes it) loses its
  // series: scrapes must not carry every region ever announced.
  for (const std::string& gone : region_state_series_) {
    if (regions_now.contains(gone)) continue;
    for (v1::RegionState state : kStates) {
      auto& series = metrics_->region_state.Add({{"region", gone}, {"state", StateLabel(state)}});
      metrics_->region_state.Remove(&series);
    }
  }
  region_state_series_ = std::move(regions_now);
  metrics_->generation.Set(static_cast<double>(verdict.generation()));
  metrics_->streams.Add({{"kind", "ingest"}}).Set(static_cast<double>(ingest_service_.streams()));
  metrics_->streams.Add({{"kind", "watch"}}).Set(static_cast<double>(broadcaster_.watchers()));

  // Agents whose plan changed get it now. Only when membership or the rotation epoch moved:
  // asking every stream for its plan takes the core lock once per stream, and at 10,000 agents
  // that made the tick 0.9 s long while ingest waited (docs/benchmarks.md, "Aggregator over gRPC").
  ProbePlanner::Revision plans;
  {
    std::lock_guard lock(core_mutex_);
    plans = planner_.CurrentRevision(now);
  }
  if (!plans_pushed_ || *plans_pushed_ != plans) {
    ingest_service_.PushPlans();
    plans_pushed_ = plans;
  }
  const double tick_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  metrics_->evaluation_seconds.Set(tick_seconds);
  metrics_->evaluation_duration.Observe(tick_seconds);
  return verdict;
}

void Aggregator::ReportMatrixLimits(const RegionMatrixStats& stats) {
  const auto delta = [](uint64_t now, uint64_t& seen) { return now - std::exchange(seen, now); };
  limit_hits_->Hit("names", delta(stats.names_not_interned, matrix_limits_seen_.names_not_interned),
                   fmt::format("{} names interned (limits.max_names); reports naming new ones are not filed",
                               stats.names));
  limit_hits_->Hit("region_pairs", delta(stats.pairs_not_tracked, matrix_limits_seen_.pairs_not_tracked),
                   fmt::format("{} region pairs tracked (limits.max_region_pairs)", stats.pairs));
  limit_hits_->Hit("flows", delta(stats.flows_not_tracked, matrix_limits_seen_.flows_not_tracked),
                   fmt::format("{} flows tracked (limits.max_flows)", stats.flows));
  limit_hits_->Hit("paths", delta(stats.paths_not_tracked, matrix_limits_seen_.paths_not_tracked),
                   fmt::format("{} node-to-node paths tracked", stats.paths));
}

grpc::Status Aggregator::AuthorizeStream(const grpc::ServerContextBase& context,
                                         std::optional<CertifiedNode>* certified) {
  return authorizer_.AuthorizeIngest(context, certified);
}

HelloResult Aggregator::Hello(const v1::Hello& hello, const IngestCaller& caller) {
  HelloResult result;
  std::optional<std::string> mismatch;
  if (caller.certified) mismatch = IdentityMismatch(hello, *caller.certified);
  if (mismatch) {
    result.refusal = HelloRefusal::kIdentityMismatch;
    result.reason = *mismatch;
  } else {
    std::lock_guard lock(core_mutex_);
    result = registry_.Hello(hello, options_.clock(), caller.peer);
    if (result.ok) {
      planner_.Upsert(PlannedAgent{
          .node = result.agent.node,
          .region = result.agent.region,
          .zone = result.agent.zone,
          .endpoint = ReflectorEndpoint{hello.probe_endpoint().address(), hello.probe_endpoint().port()}});
    }
  }
  metrics_->hellos.Add({{"result", result.ok ? "accepted" : "refused"}}).Increment();
  if (result.ok) {
    Log()->info("agent '{}' ({} {}) registered from {}, version {}", result.agent.node, result.agent.region,
                result.agent.zone, caller.peer, hello.agent_version());
  } else if (result.limit != nullptr) {
    limit_hits_->Hit(result.limit, 1, "Hello refused: " + result.reason);
  } else {
    metrics_->hello_refusals.Add({{"reason", HelloRefusalLabel(result.refusal)}}).Increment();
    // Refusals for who the agent is are an attack or a misconfiguration: worth a warning.
    const bool identity = result.refusal != HelloRefusal::kInvalid;
    Log()->log(identity ? spdlog::level::warn : spdlog::level::info, "Hello from {} refused: {}", caller.peer,
               result.reason);
  }
  return result;
}

AcceptResult Aggregator::Accept(uint64_t session, const v1::HealthReport& report) {
  AcceptResult result;
  DroppedRegionEntries dropped;
  // What needs no state is done before the core lock (the registry's limits and the regions are
  // fixed at start): only the filing holds up the other callback thread and the tick.
  const std::vector<std::string> problems = ReportProblems(report, registry_.config().limits);
  const bool names_unknown_region = problems.empty() && NamesUnknownRegion(report, config_.regions);
  {
    std::lock_guard lock(core_mutex_);
    const WallClock::time_point now = options_.clock();
    result = registry_.Accept(session, report, problems, now);
    if (result.stored_now()) {
      // Entries naming a region that is not configured are left out: an invented region must
      // neither hold up a FAILOVER nor become its target.
      // Copied only when there is something to leave out (never, from a well-configured agent).
      if (names_unknown_region) {
        v1::HealthReport known_only = report;
        dropped = DropUnknownRegionEntries(known_only, config_.regions);
        matrix_.Add(result.agent, known_only, now);
      } else {
        matrix_.Add(result.agent, report, now);
      }
    }
  }
  if (dropped.total() > 0) {
    for (const auto& [kind, count] : {std::pair{"path", dropped.paths}, std::pair{"traffic", dropped.traffic},
                                      std::pair{"flow", dropped.flows}}) {
      if (count > 0)
        metrics_->unknown_region_entries.Add({{"kind", kind}}).Increment(static_cast<double>(count));
    }
    Log()->debug("report {} from '{}': {} entries naming unconfigured regions ignored", report.sequence(),
                 result.agent.node, dropped.total());
  }
  if (result.stored_now()) CountRefusedProbes(result.agent.region, report);
  reports_by_status_.at(static_cast<size_t>(result.status))->Increment();
  if (result.late) metrics_->late_windows.Add({{"region", result.agent.region}}).Increment();
  return result;
}

void Aggregator::CountRefusedProbes(const std::string& region, const v1::HealthReport& report) {
  uint64_t wrong_key = 0, stale_timestamp = 0, rate_limited = 0, replayed = 0;
  for (const auto& reflected : report.reflected()) {
    wrong_key += reflected.refused_wrong_key();
    stale_timestamp += reflected.refused_stale_timestamp();
    rate_limited += reflected.refused_rate_limited();
    replayed += reflected.refused_replayed();
  }
  for (const auto& [reason, count] :
       {std::pair{"wrong_key", wrong_key}, std::pair{"stale_timestamp", stale_timestamp},
        std::pair{"rate_limited", rate_limited}, std::pair{"replayed", replayed}}) {
    if (count > 0) {
      metrics_->probes_refused.Add({{"region", region}, {"reason", reason}})
          .Increment(static_cast<double>(count));
    }
  }
}

void Aggregator::EndSession(uint64_t session) {
  std::lock_guard lock(core_mutex_);
  registry_.EndSession(session);
}

std::optional<v1::ProbePlan> Aggregator::PlanFor(const std::string& node) {
  std::lock_guard lock(core_mutex_);
  return planner_.PlanFor(node, options_.clock());
}

std::shared_ptr<const Aggregator::QuerySnapshot> Aggregator::TakeSnapshotLocked(WallClock::time_point now,
                                                                                bool with_paths) {
  auto snapshot = std::make_shared<QuerySnapshot>();
  snapshot->taken_at = now;
  snapshot->agents = registry_.List(now);
  for (auto& agent : snapshot->agents) agent.set_plan_version(planner_.PlanVersion(agent.node()));
  snapshot->matrix = matrix_.Matrix(std::chrono::nanoseconds::zero(), now);
  snapshot->flows = matrix_.Flows(v1::GetFlowsRequest(), now);
  if (with_paths) {
    v1::GetPathsRequest every_path;
    every_path.set_limit(std::numeric_limits<uint32_t>::max());
    snapshot->paths.emplace();
    auto all = matrix_.Paths(every_path, now, /*max_limit=*/std::numeric_limits<uint32_t>::max());
    snapshot->paths->assign(std::make_move_iterator(all.mutable_paths()->begin()),
                            std::make_move_iterator(all.mutable_paths()->end()));
  }
  return snapshot;
}

std::shared_ptr<const Aggregator::QuerySnapshot> Aggregator::Snapshot() const {
  std::lock_guard lock(snapshot_mutex_);
  return snapshot_;
}

v1::ListAgentsResponse Aggregator::ListAgents(const v1::ListAgentsRequest& request) {
  v1::ListAgentsResponse response;
  auto snapshot = Snapshot();
  if (!snapshot) {
    // Before the first tick: taken now, once.
    std::lock_guard lock(core_mutex_);
    snapshot = TakeSnapshotLocked(options_.clock(), false);
  }
  for (const auto& agent : snapshot->agents) {
    if (request.region().empty() || agent.region() == request.region()) *response.add_agents() = agent;
  }
  return response;
}

grpc::Status Aggregator::AdmitLiveQuery(const char* what) {
  {
    std::lock_guard lock(live_queries_mutex_);
    if (live_queries_.Take(std::chrono::steady_clock::now())) return grpc::Status::OK;
  }
  const std::string reason = std::string(what) + " needs the ingest lock and more than " +
                             std::to_string(config_.limits.max_live_queries_per_second) +
                             " such queries a second were asked (limits.max_live_queries_per_second); the "
                             "configured window is served from the last evaluation at any rate";
  limit_hits_->Hit("live_queries", 1, reason);
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, reason);
}

grpc::Status Aggregator::RegionMatrix(const v1::GetRegionMatrixRequest& request,
                                      v1::GetRegionMatrixResponse* response) {
  const auto range = FromDuration(request.range().window());
  const bool default_range = range <= std::chrono::nanoseconds::zero() || range >= config_.matrix_window;
  if (default_range) {
    if (auto snapshot = Snapshot()) {
      *response = snapshot->matrix;
      return grpc::Status::OK;
    }
  }
  // A shorter window than the configured one: region pairs only (bounded by
  // limits.max_region_pairs), computed now.
  if (auto admitted =
          AdmitLiveQuery(default_range ? "a region matrix before the first evaluation"
                                       : "a region matrix over a window shorter than matrix_window");
      !admitted.ok()) {
    return admitted;
  }
  std::lock_guard lock(core_mutex_);
  *response = matrix_.Matrix(range, options_.clock());
  return grpc::Status::OK;
}

grpc::Status Aggregator::Paths(const v1::GetPathsRequest& request, v1::GetPathsResponse* out) {
  paths_wanted_until_ns_ =
      (std::chrono::steady_clock::now() + std::chrono::minutes(1)).time_since_epoch().count();
  const auto range = FromDuration(request.range().window());
  const bool default_range = range <= std::chrono::nanoseconds::zero() || range >= config_.matrix_window;
  auto snapshot = Snapshot();
  if (!default_range || !snapshot || !snapshot->paths) {
    // The first GetPaths in a minute, or a shorter window: computed now; the next ticks
    // snapshot every path, so a flood of these is served from the snapshot.
    if (auto admitted = AdmitLiveQuery(default_range ? "the first paths query in a minute (before the "
                                                       "evaluation snapshots paths)"
                                                     : "paths over a window shorter than matrix_window");
        !admitted.ok()) {
      return admitted;
    }
    std::lock_guard lock(core_mutex_);
    *out = matrix_.Paths(request, options_.clock());
    return grpc::Status::OK;
  }
  // What RegionMatrix::Paths does, over the snapshot's rows (already worst first).
  v1::GetPathsResponse response;
  uint32_t limit = request.limit() == 0 ? matrix_.config().default_path_limit : request.limit();
  limit = std::min(limit, matrix_.config().max_path_limit);
  size_t matching = 0;
  for (const v1::PathSummary& path : *snapshot->paths) {
    if (!request.region().empty() && path.source_region() != request.region() &&
        path.target_region() != request.region())
      continue;
    if (!request.node().empty() && path.source_node() != request.node() &&
        path.target_node() != request.node())
      continue;
    if (matching++ < limit) *response.add_paths() = path;
  }
  response.set_truncated(matching > limit);
  *out = std::move(response);
  return grpc::Status::OK;
}

v1::GetFlowsResponse Aggregator::Flows(const v1::GetFlowsRequest& request) {
  auto snapshot = Snapshot();
  if (!snapshot) {
    std::lock_guard lock(core_mutex_);
    return matrix_.Flows(request, options_.clock());
  }
  v1::GetFlowsResponse response;
  for (const v1::FlowSummary& flow : snapshot->flows.flows()) {
    if (!request.region().empty() && flow.region() != request.region() &&
        flow.remote_region() != request.region())
      continue;
    if (!request.name().empty() && flow.name() != request.name()) continue;
    *response.add_flows() = flow;
  }
  return response;
}

}  // namespace regionpulse
