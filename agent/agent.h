// Agent: regionpulse-agent wired together. Config -> kernel datapath (BpfDatapath, or
// NullDatapath when BPF is off) -> STAMP reflector and prober on one io_context -> a window
// timer that folds each window (WindowFolder) into a HealthReport -> one AggregatorStream per
// configured aggregator, Prometheus metrics and an optional JSON-lines report log. Serves
// /metrics, /healthz and /readyz.
//
// Everything an agent opens (sockets, BPF attachments, threads) belongs to the network
// namespace of the thread that calls Start: run one agent per namespace.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/agent_config.h"
#include "agent/agent_metrics.h"
#include "agent/aggregator_stream.h"
#include "agent/kernel_datapath.h"
#include "agent/plan_check.h"
#include "agent/prober.h"
#include "agent/reflector.h"
#include "agent/window_folder.h"
#include "common/clocks.h"
#include "common/result.h"
#include "common/status_server.h"

namespace regionpulse {

// What the kernel datapath needs from the agent's configuration (declared here for its test).
DatapathConfig ToDatapathConfig(const AgentConfig& config);
// What a probe plan may ask for, from the agent's configuration.
PlanLimits PlanLimitsFrom(const AgentConfig& config);

class Agent {
 public:
  // Starts every part; an error names the part that failed (BPF attach, reflector bind,
  // status listen, TLS files) and nothing is left running.
  static Result<std::unique_ptr<Agent>> Start(const AgentConfig& config);
  // Shuts down (see Shutdown) if that has not happened yet.
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // The SIGTERM path: stops probing, closes the current window and sends every pending
  // report, waits up to flush_timeout for the aggregators to acknowledge them, then stops
  // the streams, the reflector and the status server and detaches BPF. Idempotent.
  void Shutdown(std::chrono::milliseconds flush_timeout = std::chrono::milliseconds(5000));

  // /readyz: BPF attached (when enabled) and at least one aggregator stream up (when any
  // is configured).
  Readiness Ready() const;
  uint16_t status_port() const;
  uint16_t probe_port() const;
  uint64_t instance_id() const { return instance_id_; }

 private:
  explicit Agent(const AgentConfig& config);
  Status StartParts();
  void ScheduleWindow();
  void CloseWindow();
  // Validates, logs, meters and hands one report to every stream.
  void Publish(const v1::HealthReport& report);
  // The reflector's refusals since start, into the report's status.
  void AddReflectorRefusals(v1::HealthReport& report) const;
  void ApplyPlan(const std::string& aggregator, const v1::ProbePlan& plan);
  void UpdateHealthMetrics();
  v1::Hello BuildHello() const;

  const AgentConfig config_;
  const uint64_t instance_id_;
  const PlanLimits plan_limits_;
  std::unique_ptr<KernelDatapath> datapath_;
  std::unique_ptr<AgentMetrics> metrics_;
  std::unique_ptr<StatusServer> status_server_;

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread io_thread_;
  // Owned by the io thread once it runs.
  std::unique_ptr<WindowFolder> folder_;
  std::unique_ptr<Reflector> reflector_;
  std::unique_ptr<Prober> prober_;
  boost::asio::steady_timer window_timer_;
  MonoTime next_window_end_;
  PlanVersions plan_versions_;
  uint64_t invalid_reports_ = 0;
  std::ofstream report_log_;

  std::vector<std::unique_ptr<AggregatorStream>> streams_;
  std::atomic<uint64_t> last_published_sequence_{0};
  std::mutex shutdown_mu_;
  bool shut_down_ = false;
};

}  // namespace regionpulse
