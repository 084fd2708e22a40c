// AgentMetrics: the agent's Prometheus metrics (prometheus-cpp registry served on /metrics).
// Conventional names and base units (seconds, bytes, ratios, _total counters). Labels are
// bounded by configuration, never by the number of nodes: peer_region / remote_region (the
// region table), flow (configured replication flows), aggregator (configured endpoints),
// program (the agent's own BPF programs).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "agent/aggregator_stream.h"
#include "regionpulse/v1/ingest.pb.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace regionpulse {

// The agent's own cumulative counters, read at window close.
struct AgentHealthCounters {
  uint64_t probes_sent = 0;
  uint64_t probe_send_errors = 0;
  uint64_t replies_bad_mac = 0;
  uint64_t replies_malformed = 0;
  uint64_t replies_unmatched = 0;
  uint64_t reflector_received = 0;
  uint64_t reflector_replied = 0;
  uint64_t reflector_bad_mac = 0;
  uint64_t reflector_unauthenticated_refused = 0;
  uint64_t reflector_malformed = 0;
  uint64_t reflector_rate_limited = 0;
  uint64_t reflector_replayed = 0;
  uint64_t reflector_stale_timestamp = 0;
  uint64_t reflector_wrong_key = 0;
  uint64_t reflector_malformed_tlv = 0;
  uint64_t reflector_sessions = 0;  // gauge
  uint64_t probe_targets = 0;       // gauge
};

class AgentMetrics {
 public:
  // Registers every family in `registry` (a new one when null). Region, zone and version go
  // on regionpulse_agent_info only; the scrape adds the instance.
  AgentMetrics(const std::string& region, const std::string& zone, const std::string& version,
               std::shared_ptr<prometheus::Registry> registry = nullptr);
  ~AgentMetrics();
  AgentMetrics(const AgentMetrics&) = delete;
  AgentMetrics& operator=(const AgentMetrics&) = delete;

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // A closed window: RTT histograms, loss, probe counts, jitter, passive traffic, flows,
  // BPF program costs and kernel samples dropped (cumulative in the report's status).
  void ObserveReport(const v1::HealthReport& report);
  // One aggregator stream's state (up, buffered, reports dropped, reconnects).
  void ObserveStream(const std::string& aggregator, const AggregatorStreamStats& stats);
  void ObserveHealth(const AgentHealthCounters& counters);
  void SetBpfAttached(bool attached, size_t interfaces);
  // A probe plan refused; `reason` is a PlanRefusalName (a bounded set).
  void CountPlanRefused(const char* reason);
  // A probe plan applied.
  void CountPlanApplied();

  // RTT histogram bucket bounds in seconds: 50 us to 10 s, a few per decade, enough for
  // alerting and dashboards; true percentiles come from the aggregator's log histograms.
  static const std::vector<double>& RttBucketsSeconds();

 private:
  // Adds the growth of a cumulative value to a counter (a value that went down restarted).
  void AddCumulative(prometheus::Counter& counter, const std::string& key, uint64_t now);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Histogram>* rtt_;
  prometheus::Family<prometheus::Gauge>* loss_ratio_;
  prometheus::Family<prometheus::Counter>* probes_sent_;
  prometheus::Family<prometheus::Counter>* probes_lost_;
  prometheus::Family<prometheus::Counter>* probe_duplicates_;
  prometheus::Family<prometheus::Counter>* probe_reordered_;
  prometheus::Family<prometheus::Counter>* probe_auth_failures_;
  prometheus::Family<prometheus::Counter>* kernel_stamps_rejected_;
  prometheus::Family<prometheus::Gauge>* jitter_;
  prometheus::Family<prometheus::Counter>* tunnel_bytes_;
  prometheus::Family<prometheus::Counter>* tunnel_packets_;
  prometheus::Family<prometheus::Counter>* tcp_retransmits_;
  prometheus::Family<prometheus::Counter>* tcp_resets_;
  prometheus::Family<prometheus::Counter>* tcp_failed_connects_;
  prometheus::Family<prometheus::Counter>* tcp_established_;
  prometheus::Family<prometheus::Gauge>* tcp_srtt_;
  prometheus::Family<prometheus::Gauge>* flow_stale_;
  prometheus::Family<prometheus::Gauge>* flow_outstanding_;
  prometheus::Family<prometheus::Counter>* flow_bytes_acked_;
  prometheus::Family<prometheus::Counter>* flow_retransmits_;
  prometheus::Family<prometheus::Counter>* flow_established_;
  prometheus::Family<prometheus::Counter>* flow_failed_connects_;
  prometheus::Family<prometheus::Counter>* flow_resets_;
  prometheus::Family<prometheus::Gauge>* flow_connections_;
  prometheus::Family<prometheus::Gauge>* flow_srtt_;
  prometheus::Family<prometheus::Gauge>* flow_expected_rate_;
  prometheus::Family<prometheus::Counter>* reports_dropped_;
  prometheus::Family<prometheus::Gauge>* stream_up_;
  prometheus::Family<prometheus::Gauge>* reports_buffered_;
  prometheus::Family<prometheus::Counter>* stream_reconnects_;
  prometheus::Family<prometheus::Gauge>* bpf_attached_;
  prometheus::Family<prometheus::Gauge>* bpf_interfaces_;
  prometheus::Family<prometheus::Counter>* bpf_samples_dropped_;
  prometheus::Family<prometheus::Counter>* bpf_run_count_;
  prometheus::Family<prometheus::Counter>* bpf_run_seconds_;
  prometheus::Family<prometheus::Counter>* windows_;
  prometheus::Family<prometheus::Counter>* prober_events_;
  prometheus::Family<prometheus::Counter>* reflector_packets_;
  prometheus::Family<prometheus::Counter>* reflected_senders_dropped_;
  prometheus::Family<prometheus::Gauge>* reflector_sessions_;
  prometheus::Family<prometheus::Gauge>* probe_targets_;
  prometheus::Family<prometheus::Gauge>* info_;
  prometheus::Family<prometheus::Counter>* plans_refused_;
  prometheus::Family<prometheus::Counter>* plans_applied_;

  std::map<std::string, uint64_t> last_cumulative_;
};

}  // namespace regionpulse
