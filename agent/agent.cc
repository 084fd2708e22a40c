// Agent: the daemon's wiring (see agent.h).
#include "agent/agent.h"

#include "common/component_logger.h"

#include <fmt/format.h>
#include <grpcpp/security/credentials.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstdlib>
#include <future>
#include <random>

#include "agent/bpf_datapath.h"
#include "common/config_text.h"
#include "common/proto_convert.h"
#include "common/report_validation.h"

namespace regionpulse {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  return ComponentLogger("agent");
}

// ---- each part's own configuration, from the agent's ----------------------------------------

ReflectorConfig ReflectorConfigFrom(const AgentConfig& config) {
  ReflectorConfig r;
  r.listen_address = config.probe.listen_address;
  r.port = config.probe.port;
  r.accept_authenticated = !config.probe.key.empty();
  r.accept_unauthenticated = config.probe.allow_unauthenticated;
  r.key = config.probe.key;
  r.accepted_keys = config.probe.accepted_keys;
  r.session_idle = config.probe.reflector_session_idle;
  r.rate_per_source = config.probe.reflector_rate_per_source;
  r.burst_per_source = config.probe.reflector_burst_per_source;
  r.max_sources = config.probe.reflector_max_sources;
  r.max_clock_offset = config.probe.reflector_max_clock_offset;
  return r;
}

ProberConfig ProberConfigFrom(const AgentConfig& config) {
  ProberConfig p;
  p.interval = config.probe.interval;
  p.jitter = config.probe.jitter;
  p.payload_size = config.probe.payload_size;
  p.mode = config.probe.authenticated ? StampMode::kAuthenticated : StampMode::kUnauthenticated;
  p.key = config.probe.key;
  p.reply_grace = config.probe.timeout;
  return p;
}

// Region names, flows and probe timeout.
WindowFolderConfig WindowFolderConfigFrom(const AgentConfig& config) {
  WindowFolderConfig w;
  w.region_names = config.RegionNames();
  for (const auto& flow : config.replication_flows) {
    w.flows.push_back(FlowExpectation{flow.name, flow.remote_region, flow.expected_min_rate_bps});
  }
  w.probe_timeout = config.probe.timeout;
  return w;
}

std::vector<ProbeTarget> TargetsFromStaticPeers(const std::vector<StaticPeer>& peers) {
  std::vector<ProbeTarget> targets;
  for (const auto& p : peers) targets.push_back(ProbeTarget{p.node, p.region, p.zone, p.address, p.port});
  return targets;
}

uint64_t RandomInstanceId() {
  std::random_device device;
  std::uniform_int_distribution<uint64_t> any(1, UINT64_MAX);  // 0 means "none" on the wire
  return any(device);
}

std::chrono::milliseconds Millis(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

bool IsWildcard(const std::string& address) {
  return address.empty() || address == "::" || address == "0.0.0.0";
}

// Other nodes reach the reflector on the node's internal IP: the bind address when it is a
// specific one, else probe.advertise_address (HOST_IP or POD_IP from the downward API).
std::string AdvertisedProbeAddress(const AgentConfig& config) {
  if (!IsWildcard(config.probe.listen_address)) return config.probe.listen_address;
  return config.probe.advertise_address;
}

}  // namespace

PlanLimits PlanLimitsFrom(const AgentConfig& config) {
  PlanLimits limits;
  limits.min_interval = config.probe.plan_min_interval;
  limits.max_payload_size = config.probe.plan_max_payload_size;
  limits.max_targets = config.probe.plan_max_targets;
  for (const auto& text : config.probe.allowed_target_cidrs) {
    if (auto cidr = ParseNetworkCidr(text); cidr.ok()) limits.allowed_target_cidrs.push_back(*cidr);
  }
  return limits;
}

DatapathConfig ToDatapathConfig(const AgentConfig& config) {
  DatapathConfig d;
  d.probe_port = config.probe.port;
  for (size_t i = 0; i < config.regions.size(); ++i) {
    for (const auto& cidr : config.regions[i].cidrs)
      d.region_cidrs.push_back({cidr, static_cast<RegionId>(i + 1)});
  }
  for (const auto& flow : config.replication_flows) {
    d.flows.push_back(
        {flow.name, flow.ports, config.RegionIdOf(flow.remote_region), flow.expected_min_rate_bps});
  }
  d.interfaces = config.interfaces;
  d.cgroup_path = config.cgroup_path;
  d.prefer_tcx = config.prefer_tcx;
  d.max_tracked_flow_connections = config.max_tracked_flow_connections;
  return d;
}

Agent::Agent(const AgentConfig& config)
    : config_(config),
      instance_id_(RandomInstanceId()),
      plan_limits_(PlanLimitsFrom(config)),
      work_(boost::asio::make_work_guard(io_)),
      window_timer_(io_) {}

Result<std::unique_ptr<Agent>> Agent::Start(const AgentConfig& config) {
  std::unique_ptr<Agent> agent(new Agent(config));
  if (auto started = agent->StartParts(); !started) {
    agent->Shutdown(std::chrono::milliseconds(0));
    return started.error();
  }
  return agent;
}

Status Agent::StartParts() {
  if (config_.bpf_enabled) {
    auto datapath = BpfDatapath::Start(ToDatapathConfig(config_));
    if (!datapath) return Error{"BPF datapath: " + datapath.error().ToString()};
    datapath_ = std::move(datapath.value());
  } else {
    datapath_ = std::make_unique<NullDatapath>();
  }
  metrics_ = std::make_unique<AgentMetrics>(config_.region, config_.zone, REGIONPULSE_VERSION);
  metrics_->SetBpfAttached(datapath_->Attached(), datapath_->Attachments().size());

  if (!config_.report_log_file.empty()) {
    report_log_.open(config_.report_log_file, std::ios::app | std::ios::binary);
    if (!report_log_) return Error{"report log " + config_.report_log_file, errno};
  }

  auto now = std::chrono::steady_clock::now();
  folder_ = std::make_unique<WindowFolder>(WindowFolderConfigFrom(config_), now,
                                           std::chrono::system_clock::now(), TakeSnapshot(*datapath_));
  // The folder hears of both ends: what this node's probes met, and what its reflector
  // received from every node that probes it.
  auto reflector = Reflector::Start(io_, ReflectorConfigFrom(config_), folder_.get());
  if (!reflector) return Error{"STAMP reflector: " + reflector.error().ToString()};
  reflector_ = std::move(reflector.value());
  prober_ = std::make_unique<Prober>(io_, ProberConfigFrom(config_), *folder_);
  if (!config_.static_peers.empty()) prober_->SetTargets(TargetsFromStaticPeers(config_.static_peers));

  auto credentials = AggregatorChannelCredentials(config_.tls);
  if (!credentials) return Error{"aggregator TLS: " + credentials.error().ToString()};
  for (const auto& endpoint : config_.aggregators) {
    AggregatorStreamOptions options;
    options.endpoint = endpoint;
    options.buffer_capacity = config_.ReportBufferWindows();
    options.backoff.initial = Millis(config_.reconnect_initial);
    options.backoff.max = Millis(config_.reconnect_max);
    options.keepalive_interval = Millis(config_.keepalive_interval);
    options.keepalive_timeout = Millis(config_.keepalive_timeout);
    options.connect_timeout = Millis(config_.connect_timeout);
    options.credentials = *credentials;
    options.tls = config_.tls;
    streams_.push_back(std::make_unique<AggregatorStream>(
        options, [this] { return BuildHello(); }, instance_id_,
        [this](const std::string& aggregator, const v1::ProbePlan& plan) {
          // From a gRPC thread: the prober and plan state belong to the io thread.
          boost::asio::post(io_, [this, aggregator, plan] { ApplyPlan(aggregator, plan); });
        }));
  }

  auto status = StatusServer::Start(
      config_.status_listen, metrics_->registry(), [this] { return Ready(); }, config_.status_limits);
  if (!status) return Error{"status server on " + config_.status_listen + ": " + status.error().ToString()};
  status_server_ = std::move(status.value());

  next_window_end_ = now + config_.window;
  ScheduleWindow();
  for (auto& stream : streams_) stream->Start();
  io_thread_ = std::thread([this] { io_.run(); });

  if (!streams_.empty() && AdvertisedProbeAddress(config_).empty()) {
    Log()->warn(
        "no probe address to announce: aggregators cannot plan probes to this node; set HOST_IP (downward "
        "API "
        "status.hostIP) or probe.listen_address");
  }
  Log()->info(
      "regionpulse-agent {} started: node {} region {} zone {}, instance {:016x}, reflector port {}, {} "
      "static "
      "peers, {} aggregators, BPF {}, status on port {}",
      REGIONPULSE_VERSION, config_.node, config_.region, config_.zone, instance_id_, reflector_->port(),
      config_.static_peers.size(), streams_.size(),
      !config_.bpf_enabled ? "off" : (datapath_->Attached() ? "attached" : "loaded, no interface yet"),
      status_server_->port());
  return OkStatus();
}

v1::Hello Agent::BuildHello() const {
  v1::Hello hello;
  hello.set_node(config_.node);
  hello.set_region(config_.region);
  hello.set_zone(config_.zone);
  hello.set_agent_version(REGIONPULSE_VERSION);
  hello.mutable_probe_endpoint()->set_address(AdvertisedProbeAddress(config_));
  hello.mutable_probe_endpoint()->set_port(reflector_ ? reflector_->port() : config_.probe.port);
  bool tcx = false;
  for (const auto& attachment : datapath_->Attachments()) {
    auto* out = hello.add_interfaces();
    out->set_name(attachment.name);
    out->set_ifindex(attachment.ifindex);
    out->set_mode(attachment.tcx ? v1::ATTACH_MODE_TCX : v1::ATTACH_MODE_CLSACT);
    out->set_l3_only(attachment.l3_only);
    tcx = tcx || attachment.tcx;
  }
  auto* capabilities = hello.mutable_capabilities();
  capabilities->set_kernel_stamps(datapath_->Attached());
  capabilities->set_tcx(tcx);
  // The datapath loads these only to attach them ("object/program" names): a loaded one is
  // an attached one, since a failed attach fails BpfDatapath::Start.
  auto ends_with = [](const std::string& name, std::string_view suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const auto& program : datapath_->ProgramStats()) {
    if (ends_with(program.name, "/rp_tcp_retransmit")) capabilities->set_tcp_retransmit_tracepoint(true);
    if (ends_with(program.name, "/rp_sock_ops")) capabilities->set_sock_ops(true);
  }
  capabilities->set_authenticated_probes(config_.probe.authenticated);
  *hello.mutable_window() = ToDuration(config_.window);
  return hello;
}

void Agent::ScheduleWindow() {
  window_timer_.expires_at(next_window_end_);
  window_timer_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;  // cancelled at shutdown
    CloseWindow();
    auto now = std::chrono::steady_clock::now();
    next_window_end_ += config_.window;
    // After a stall longer than a window (a suspended VM), resume on the grid instead of
    // closing a burst of empty windows.
    while (next_window_end_ <= now) next_window_end_ += config_.window;
    ScheduleWindow();
  });
}

void Agent::CloseWindow() {
  uint64_t dropped = 0;
  for (const auto& stream : streams_) {
    auto stats = stream->Stats();
    dropped = std::max(dropped, stats.reports_dropped);
    metrics_->ObserveStream(stream->endpoint(), stats);
  }
  folder_->SetReportsDropped(dropped);
  auto reports = folder_->CloseWindow(std::chrono::steady_clock::now(), std::chrono::system_clock::now(),
                                      TakeSnapshot(*datapath_));
  for (auto& report : reports) {
    AddReflectorRefusals(report);
    Publish(report);
  }
  UpdateHealthMetrics();
}

void Agent::AddReflectorRefusals(v1::HealthReport& report) const {
  const auto counters = reflector_->counters();
  auto* status = report.mutable_status();
  status->set_probes_refused_wrong_key(counters.wrong_key);
  status->set_probes_refused_rate_limited(counters.rate_limited);
  status->set_probes_refused_replayed(counters.replayed + counters.stale_timestamp);
}

void Agent::Publish(const v1::HealthReport& report) {
  auto problems = ReportProblems(report);
  if (!problems.empty()) {
    // An aggregator ends the stream on an invalid report, and the stream would replay it
    // forever: such a report is logged and never sent.
    ++invalid_reports_;
    Log()->error("report {} is inconsistent and is not sent: {}", report.sequence(),
                 fmt::join(problems, "; "));
    folder_->AddError("report " + std::to_string(report.sequence()) + " not sent: " + problems.front());
    return;
  }
  metrics_->ObserveReport(report);
  if (report_log_.is_open()) AppendToReportLog(report_log_, report, config_.report_log_format);
  for (auto& stream : streams_) stream->Push(report);
  last_published_sequence_ = report.sequence();
}

void Agent::ApplyPlan(const std::string& aggregator, const v1::ProbePlan& plan) {
  // Each aggregator numbers its own plans: versions are compared per aggregator, so one that
  // sends a huge version cannot freeze the others. Among aggregators the last plan applied wins.
  PlanVerdict verdict;
  if (!plan_versions_.IsNewer(aggregator, plan.plan_version())) {
    verdict = PlanVerdict{PlanRefusal::kStaleVersion, "version " + std::to_string(plan.plan_version()) +
                                                          " is not newer than the last from this aggregator"};
  } else {
    verdict = CheckProbePlan(plan, plan_limits_);
  }
  if (!verdict.accepted()) {
    metrics_->CountPlanRefused(PlanRefusalName(*verdict.refusal));
    // A stale version is the normal echo of a reconnect: counted, not shouted about.
    if (*verdict.refusal == PlanRefusal::kStaleVersion) return;
    Log()->warn("probe plan {} from {} refused, the current plan stays: {}", plan.plan_version(), aggregator,
                verdict.detail);
    // Reported back in the next report's status.errors: the aggregator's operator sees it.
    folder_->AddError("probe plan " + std::to_string(plan.plan_version()) + " from " + aggregator +
                      " refused (" + PlanRefusalName(*verdict.refusal) + "): " + verdict.detail);
    return;
  }
  plan_versions_.Record(aggregator, plan.plan_version());
  metrics_->CountPlanApplied();
  auto targets = TargetsFromPlan(plan);
  Log()->info("probe plan {} from {}: {} targets", plan.plan_version(), aggregator, targets.size());
  prober_->SetSchedule(plan.has_interval() ? FromDuration(plan.interval()) : std::chrono::nanoseconds(0),
                       plan.payload_size());
  prober_->SetTargets(std::move(targets));
}

void Agent::UpdateHealthMetrics() {
  AgentHealthCounters health;
  auto prober = prober_->counters();
  health.probes_sent = prober.sent;
  health.probe_send_errors = prober.send_errors;
  health.replies_bad_mac = prober.bad_mac;
  health.replies_malformed = prober.malformed;
  health.replies_unmatched = prober.unmatched;
  health.probe_targets = prober_->TargetCount();
  auto reflector = reflector_->counters();
  health.reflector_received = reflector.received;
  health.reflector_replied = reflector.replied;
  health.reflector_bad_mac = reflector.bad_mac;
  health.reflector_unauthenticated_refused = reflector.unauthenticated_refused;
  health.reflector_malformed = reflector.malformed;
  health.reflector_sessions = reflector.sessions;
  health.reflector_rate_limited = reflector.rate_limited;
  health.reflector_replayed = reflector.replayed;
  health.reflector_stale_timestamp = reflector.stale_timestamp;
  health.reflector_wrong_key = reflector.wrong_key;
  health.reflector_malformed_tlv = reflector.malformed_tlv;
  metrics_->ObserveHealth(health);
  metrics_->SetBpfAttached(datapath_->Attached(), datapath_->Attachments().size());
}

Readiness Agent::Ready() const {
  if (config_.bpf_enabled && !(datapath_ && datapath_->Attached())) {
    return {false, "BPF programs not attached to any tunnel interface"};
  }
  if (!streams_.empty()) {
    bool any_up = std::any_of(streams_.begin(), streams_.end(), [](const auto& s) { return s->Stats().up; });
    if (!any_up) return {false, "no aggregator stream is up"};
  }
  return {true, fmt::format("ok: {} aggregator streams, BPF {}", streams_.size(),
                            config_.bpf_enabled ? "attached" : "off")};
}

uint16_t Agent::status_port() const {
  return status_server_ ? status_server_->port() : 0;
}

uint16_t Agent::probe_port() const {
  return reflector_ ? reflector_->port() : 0;
}

void Agent::Shutdown(std::chrono::milliseconds flush_timeout) {
  std::lock_guard lock(shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;

  if (io_thread_.joinable()) {
    // Close the last window on the io thread, which owns the folder and the prober.
    std::promise<void> drained;
    boost::asio::post(io_, [this, &drained] {
      window_timer_.cancel();
      prober_->Stop();
      auto reports = folder_->Drain(std::chrono::steady_clock::now(), std::chrono::system_clock::now(),
                                    TakeSnapshot(*datapath_));
      for (auto& report : reports) {
        AddReflectorRefusals(report);
        Publish(report);
      }
      drained.set_value();
    });
    drained.get_future().wait();
  }
  uint64_t last = last_published_sequence_;
  auto deadline = std::chrono::steady_clock::now() + flush_timeout;
  for (auto& stream : streams_) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (last > 0 && !stream->WaitAcked(last, std::max(left, std::chrono::milliseconds(0)))) {
      Log()->warn("aggregator {}: reports up to {} not acknowledged before shutdown ({} still buffered)",
                  stream->endpoint(), last, stream->Stats().buffered);
    }
  }
  for (auto& stream : streams_) stream->Stop();
  status_server_.reset();
  if (reflector_) reflector_->Stop();
  if (prober_) prober_->Stop();
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
  prober_.reset();
  reflector_.reset();
  folder_.reset();
  streams_.clear();
  datapath_.reset();  // detaches BPF last: probes in flight kept their kernel stamps
  if (report_log_.is_open()) report_log_.close();
  Log()->info("regionpulse-agent stopped (last report {})", last);
}

Agent::~Agent() {
  Shutdown(std::chrono::milliseconds(0));
}

}  // namespace regionpulse
