// AgentMetrics: Prometheus families of the agent and their update from reports and stream
// state (see agent_metrics.h).
#include "agent/agent_metrics.h"

#include <algorithm>
#include <map>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "common/latency_histogram.h"
#include "common/proto_convert.h"

namespace regionpulse {
namespace {

double Seconds(std::chrono::nanoseconds d) {
  return static_cast<double>(d.count()) / 1e9;
}

// Totals of one peer region in one window (several peers per region are probed).
struct RegionProbeTotals {
  uint64_t sent = 0, received_forward = 0, received_reverse = 0, lost_unknown = 0;
  uint64_t duplicates = 0, reordered = 0, auth_failures = 0, kernel_rejected = 0;
  std::chrono::nanoseconds max_jitter{0};
  bool has_jitter = false;
};

}  // namespace

const std::vector<double>& AgentMetrics::RttBucketsSeconds() {
  static const std::vector<double> buckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                              0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                              0.5,     1.0,    2.5,     5.0,    10.0};
  return buckets;
}

AgentMetrics::AgentMetrics(const std::string& region, const std::string& zone, const std::string& version,
                           std::shared_ptr<prometheus::Registry> registry)
    : registry_(registry ? std::move(registry) : std::make_shared<prometheus::Registry>()) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  auto& r = *registry_;
  rtt_ = &BuildHistogram()
              .Name("regionpulse_probe_rtt_seconds")
              .Help(
                  "Round-trip time of STAMP probes by peer region; kind=kernel is (t4-t1)-(t3-t2) from tc "
                  "stamps, kind=user is measured in user space")
              .Register(r);
  loss_ratio_ = &BuildGauge()
                     .Name("regionpulse_probe_loss_ratio")
                     .Help(
                         "Probe loss in the last window by peer region and direction (forward: to the "
                         "reflector, reverse: its replies back, unknown: no later reply tells which; of the "
                         "probes sent, except reverse: of those that reached the reflector)")
                     .Register(r);
  probes_sent_ = &BuildCounter()
                      .Name("regionpulse_probes_sent_total")
                      .Help("STAMP probes sent, by peer region")
                      .Register(r);
  probes_lost_ = &BuildCounter()
                      .Name("regionpulse_probes_lost_total")
                      .Help(
                          "STAMP probes lost, by peer region and direction (forward, reverse, unknown: "
                          "this agent cannot tell, e.g. every reply or every probe lost)")
                      .Register(r);
  probe_duplicates_ = &BuildCounter()
                           .Name("regionpulse_probe_duplicates_total")
                           .Help("Probe replies received more than once, by peer region")
                           .Register(r);
  probe_reordered_ = &BuildCounter()
                          .Name("regionpulse_probe_reordered_total")
                          .Help("Probe replies that arrived after a later one, by peer region")
                          .Register(r);
  probe_auth_failures_ = &BuildCounter()
                              .Name("regionpulse_probe_auth_failures_total")
                              .Help("Probe replies with a bad HMAC, dropped, by peer region")
                              .Register(r);
  kernel_stamps_rejected_ = &BuildCounter()
                                 .Name("regionpulse_probe_kernel_stamps_rejected_total")
                                 .Help("Kernel RTTs rejected (not positive or above the user-space RTT)")
                                 .Register(r);
  jitter_ = &BuildGauge()
                 .Name("regionpulse_probe_jitter_seconds")
                 .Help(
                     "RFC 3550 interarrival jitter of probe RTTs at the end of the last window, the "
                     "largest of the peer region's probed peers")
                 .Register(r);
  tunnel_bytes_ = &BuildCounter()
                       .Name("regionpulse_tunnel_bytes_total")
                       .Help("Bytes on tunnel interfaces by remote region and direction (tx, rx)")
                       .Register(r);
  tunnel_packets_ = &BuildCounter()
                         .Name("regionpulse_tunnel_packets_total")
                         .Help("Packets on tunnel interfaces by remote region and direction (tx, rx)")
                         .Register(r);
  tcp_retransmits_ = &BuildCounter()
                          .Name("regionpulse_tcp_retransmits_total")
                          .Help("TCP segments retransmitted towards a remote region")
                          .Register(r);
  tcp_resets_ = &BuildCounter()
                     .Name("regionpulse_tcp_resets_total")
                     .Help("TCP connections to a remote region reset")
                     .Register(r);
  tcp_failed_connects_ = &BuildCounter()
                              .Name("regionpulse_tcp_failed_connects_total")
                              .Help("TCP active opens to a remote region that failed")
                              .Register(r);
  tcp_established_ = &BuildCounter()
                          .Name("regionpulse_tcp_established_total")
                          .Help("TCP connections with a remote region established")
                          .Register(r);
  tcp_srtt_ = &BuildGauge()
                   .Name("regionpulse_tcp_srtt_seconds")
                   .Help("Mean smoothed RTT of TCP connections to a remote region in the last window")
                   .Register(r);
  flow_stale_ = &BuildGauge()
                     .Name("regionpulse_replication_flow_stale_seconds")
                     .Help(
                         "Time since a replication flow last advanced acknowledged bytes while data was "
                         "outstanding, or since its connections vanished; 0 when it moves or is idle")
                     .Register(r);
  flow_outstanding_ =
      &BuildGauge()
           .Name("regionpulse_replication_flow_outstanding_bytes")
           .Help(
               "Bytes of a replication flow written and not acknowledged by the remote side at "
               "the end of the last window (kept from the last reading while its connections "
               "are gone)")
           .Register(r);
  flow_bytes_acked_ = &BuildCounter()
                           .Name("regionpulse_replication_flow_acked_bytes_total")
                           .Help("Bytes of a replication flow acknowledged by the remote side")
                           .Register(r);
  flow_retransmits_ = &BuildCounter()
                           .Name("regionpulse_replication_flow_retransmits_total")
                           .Help("Segments of a replication flow retransmitted")
                           .Register(r);
  flow_established_ = &BuildCounter()
                           .Name("regionpulse_replication_flow_connections_established_total")
                           .Help("Connections of a replication flow that were established")
                           .Register(r);
  flow_failed_connects_ = &BuildCounter()
                               .Name("regionpulse_replication_flow_failed_connects_total")
                               .Help("Connects of a replication flow that never got established")
                               .Register(r);
  flow_resets_ = &BuildCounter()
                      .Name("regionpulse_replication_flow_resets_total")
                      .Help("Established connections of a replication flow that were reset")
                      .Register(r);
  flow_connections_ = &BuildGauge()
                           .Name("regionpulse_replication_flow_connections")
                           .Help("Open connections of a replication flow")
                           .Register(r);
  flow_srtt_ = &BuildGauge()
                    .Name("regionpulse_replication_flow_srtt_seconds")
                    .Help("Mean smoothed RTT of a replication flow's connections in the last window")
                    .Register(r);
  flow_expected_rate_ = &BuildGauge()
                             .Name("regionpulse_replication_flow_expected_min_rate_bytes_per_second")
                             .Help("Configured minimum throughput of a replication flow")
                             .Register(r);
  reports_dropped_ = &BuildCounter()
                          .Name("regionpulse_reports_dropped_total")
                          .Help("Reports dropped unacknowledged because an aggregator's buffer overflowed")
                          .Register(r);
  stream_up_ = &BuildGauge()
                    .Name("regionpulse_aggregator_stream_up")
                    .Help("1 when the report stream to an aggregator is established")
                    .Register(r);
  reports_buffered_ = &BuildGauge()
                           .Name("regionpulse_aggregator_reports_buffered")
                           .Help("Reports held for an aggregator, not yet acknowledged")
                           .Register(r);
  stream_reconnects_ = &BuildCounter()
                            .Name("regionpulse_aggregator_stream_disconnects_total")
                            .Help("Report streams to an aggregator that ended or failed to come up")
                            .Register(r);
  bpf_attached_ = &BuildGauge()
                       .Name("regionpulse_bpf_attached")
                       .Help("1 when the tc programs are attached to at least one tunnel interface")
                       .Register(r);
  bpf_interfaces_ = &BuildGauge()
                         .Name("regionpulse_bpf_attached_interfaces")
                         .Help("Interfaces the tc programs are attached to")
                         .Register(r);
  bpf_samples_dropped_ = &BuildCounter()
                              .Name("regionpulse_bpf_samples_dropped_total")
                              .Help("Kernel samples lost: probe stamps the kernel could not write")
                              .Register(r);
  bpf_run_count_ = &BuildCounter()
                        .Name("regionpulse_bpf_program_runs_total")
                        .Help("Runs of each BPF program (kernel.bpf_stats_enabled=1)")
                        .Register(r);
  bpf_run_seconds_ = &BuildCounter()
                          .Name("regionpulse_bpf_program_run_seconds_total")
                          .Help("Time spent in each BPF program (kernel.bpf_stats_enabled=1)")
                          .Register(r);
  windows_ = &BuildCounter().Name("regionpulse_windows_total").Help("Report windows closed").Register(r);
  prober_events_ = &BuildCounter()
                        .Name("regionpulse_prober_events_total")
                        .Help("Prober events: send_error, reply_bad_mac, reply_malformed, reply_unmatched")
                        .Register(r);
  reflector_packets_ = &BuildCounter()
                            .Name("regionpulse_reflector_packets_total")
                            .Help(
                                "Packets at the STAMP reflector by result: received, replied, bad_mac, "
                                "unauthenticated_refused, malformed (dropped), rate_limited, replayed, "
                                "stale_timestamp, wrong_key (refused, not answered), malformed_tlv "
                                "(answered with the TLV flagged M)")
                            .Register(r);
  plans_refused_ = &BuildCounter()
                        .Name("regionpulse_probe_plans_refused_total")
                        .Help(
                            "Probe plans from aggregators refused, by reason: stale_version, interval, "
                            "payload_size, target_count, bad_target, target_outside_cidrs")
                        .Register(r);
  plans_applied_ = &BuildCounter()
                        .Name("regionpulse_probe_plans_applied_total")
                        .Help("Probe plans from aggregators applied")
                        .Register(r);
  reflected_senders_dropped_ =
      &BuildCounter()
           .Name("regionpulse_reflected_senders_dropped_total")
           .Help(
               "Sender sessions the reflector answered that a report had no room for "
               "(their half of loss direction is missing at the aggregator)")
           .Register(r);
  reflector_sessions_ = &BuildGauge()
                             .Name("regionpulse_reflector_sessions")
                             .Help("STAMP sessions the reflector holds state for")
                             .Register(r);
  probe_targets_ = &BuildGauge().Name("regionpulse_probe_targets").Help("Peers currently probed").Register(r);
  info_ = &BuildGauge()
               .Name("regionpulse_agent_info")
               .Help("Constant 1, labelled with the agent's region, zone and version")
               .Register(r);
  info_->Add({{"region", region}, {"zone", zone}, {"version", version}}).Set(1);
  bpf_attached_->Add({}).Set(0);
}

AgentMetrics::~AgentMetrics() = default;

void AgentMetrics::AddCumulative(prometheus::Counter& counter, const std::string& key, uint64_t now) {
  auto [it, inserted] = last_cumulative_.try_emplace(key, 0);
  uint64_t delta = now >= it->second ? now - it->second : now;
  it->second = now;
  if (delta > 0) counter.Increment(static_cast<double>(delta));
}

void AgentMetrics::ObserveReport(const v1::HealthReport& report) {
  windows_->Add({}).Increment();
  const auto& bounds = RttBucketsSeconds();

  std::map<std::string, RegionProbeTotals> regions;
  for (const auto& path : report.paths()) {
    auto& totals = regions[path.peer_region()];
    totals.sent += path.probes_sent();
    totals.received_forward += path.received_forward();
    totals.received_reverse += path.received_reverse();
    totals.lost_unknown += path.lost_direction_unknown();
    totals.duplicates += path.duplicates();
    totals.reordered += path.reordered();
    totals.auth_failures += path.auth_failures();
    totals.kernel_rejected += path.kernel_stamps_rejected();
    if (path.has_jitter()) {
      totals.max_jitter = std::max(totals.max_jitter, FromDuration(path.jitter()));
      totals.has_jitter = true;
    }
    for (const auto& [kind, wire] :
         {std::pair{"kernel", &path.rtt_kernel()}, std::pair{"user", &path.rtt_user()}}) {
      auto histogram = FromProto(*wire);
      if (!histogram.ok() || histogram->Empty()) continue;
      // Each log bucket lands in the Prometheus bucket of its representative value; the log
      // buckets are 2% wide, far finer than these bounds.
      std::vector<double> increments(bounds.size() + 1, 0.0);
      for (const auto& [index, count] : histogram->buckets()) {
        double value = static_cast<double>(HistogramLayout::RepresentativeOf(index)) / 1e9;
        size_t slot =
            static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
        increments[slot] += static_cast<double>(count);
      }
      rtt_->Add({{"peer_region", path.peer_region()}, {"kind", kind}}, bounds)
          .ObserveMultiple(increments, static_cast<double>(histogram->SumNs()) / 1e9);
    }
  }
  for (const auto& [region, t] : regions) {
    const prometheus::Labels labels{{"peer_region", region}};
    probes_sent_->Add(labels).Increment(static_cast<double>(t.sent));
    // Unknown is its own direction, never folded into forward: with no aggregator this is
    // the whole view, and "every probe lost forward" would be a guess.
    const uint64_t lost_unknown = std::min(t.lost_unknown, t.sent - std::min(t.sent, t.received_forward));
    const uint64_t lost_forward = t.sent - std::min(t.sent, t.received_forward) - lost_unknown;
    const uint64_t lost_reverse = t.received_forward - std::min(t.received_forward, t.received_reverse);
    probes_lost_->Add({{"peer_region", region}, {"direction", "forward"}})
        .Increment(static_cast<double>(lost_forward));
    probes_lost_->Add({{"peer_region", region}, {"direction", "reverse"}})
        .Increment(static_cast<double>(lost_reverse));
    probes_lost_->Add({{"peer_region", region}, {"direction", "unknown"}})
        .Increment(static_cast<double>(lost_unknown));
    if (t.sent > 0) {
      loss_ratio_->Add({{"peer_region", region}, {"direction", "forward"}})
          .Set(static_cast<double>(lost_forward) / static_cast<double>(t.sent));
      loss_ratio_->Add({{"peer_region", region}, {"direction", "unknown"}})
          .Set(static_cast<double>(lost_unknown) / static_cast<double>(t.sent));
    }
    if (t.received_forward > 0) {
      loss_ratio_->Add({{"peer_region", region}, {"direction", "reverse"}})
          .Set(static_cast<double>(lost_reverse) / static_cast<double>(t.received_forward));
    }
    probe_duplicates_->Add(labels).Increment(static_cast<double>(t.duplicates));
    probe_reordered_->Add(labels).Increment(static_cast<double>(t.reordered));
    probe_auth_failures_->Add(labels).Increment(static_cast<double>(t.auth_failures));
    kernel_stamps_rejected_->Add(labels).Increment(static_cast<double>(t.kernel_rejected));
    if (t.has_jitter) jitter_->Add(labels).Set(Seconds(t.max_jitter));
  }

  for (const auto& traffic : report.traffic()) {
    const std::string& region = traffic.remote_region();
    const prometheus::Labels labels{{"remote_region", region}};
    tunnel_bytes_->Add({{"remote_region", region}, {"direction", "tx"}})
        .Increment(static_cast<double>(traffic.tx_bytes()));
    tunnel_bytes_->Add({{"remote_region", region}, {"direction", "rx"}})
        .Increment(static_cast<double>(traffic.rx_bytes()));
    tunnel_packets_->Add({{"remote_region", region}, {"direction", "tx"}})
        .Increment(static_cast<double>(traffic.tx_packets()));
    tunnel_packets_->Add({{"remote_region", region}, {"direction", "rx"}})
        .Increment(static_cast<double>(traffic.rx_packets()));
    tcp_retransmits_->Add(labels).Increment(static_cast<double>(traffic.tcp_retransmits()));
    tcp_resets_->Add(labels).Increment(static_cast<double>(traffic.tcp_resets()));
    tcp_failed_connects_->Add(labels).Increment(static_cast<double>(traffic.tcp_failed_connects()));
    tcp_established_->Add(labels).Increment(static_cast<double>(traffic.tcp_established()));
    if (traffic.has_tcp_srtt()) tcp_srtt_->Add(labels).Set(Seconds(FromDuration(traffic.tcp_srtt())));
  }

  for (const auto& flow : report.flows()) {
    const prometheus::Labels labels{{"flow", flow.name()}, {"remote_region", flow.remote_region()}};
    flow_stale_->Add(labels).Set(Seconds(FromDuration(flow.last_progress_age())));
    flow_outstanding_->Add(labels).Set(static_cast<double>(flow.bytes_outstanding()));
    flow_bytes_acked_->Add(labels).Increment(static_cast<double>(flow.bytes_acked()));
    flow_retransmits_->Add(labels).Increment(static_cast<double>(flow.retransmits()));
    flow_established_->Add(labels).Increment(static_cast<double>(flow.established()));
    flow_failed_connects_->Add(labels).Increment(static_cast<double>(flow.failed_connects()));
    flow_resets_->Add(labels).Increment(static_cast<double>(flow.resets()));
    flow_connections_->Add(labels).Set(flow.connections());
    flow_srtt_->Add(labels).Set(Seconds(FromDuration(flow.srtt())));
    flow_expected_rate_->Add(labels).Set(static_cast<double>(flow.expected_min_rate_bps()));
  }

  const auto& status = report.status();
  AddCumulative(bpf_samples_dropped_->Add({}), "samples_dropped", status.samples_dropped());
  AddCumulative(reflected_senders_dropped_->Add({}), "reflected_senders_dropped",
                status.reflected_senders_dropped());
  for (const auto& program : status.programs()) {
    const prometheus::Labels labels{{"program", program.name()}};
    AddCumulative(bpf_run_count_->Add(labels), "runs/" + program.name(), program.run_count());
    // Seconds from nanoseconds: the counter takes the delta, converted after subtraction so
    // small increments keep their precision.
    auto [it, inserted] = last_cumulative_.try_emplace("run_ns/" + program.name(), 0);
    uint64_t now = program.run_time_ns();
    uint64_t delta = now >= it->second ? now - it->second : now;
    it->second = now;
    if (delta > 0) bpf_run_seconds_->Add(labels).Increment(static_cast<double>(delta) / 1e9);
  }
}

void AgentMetrics::ObserveStream(const std::string& aggregator, const AggregatorStreamStats& stats) {
  const prometheus::Labels labels{{"aggregator", aggregator}};
  stream_up_->Add(labels).Set(stats.up ? 1 : 0);
  reports_buffered_->Add(labels).Set(static_cast<double>(stats.buffered));
  AddCumulative(reports_dropped_->Add(labels), "dropped/" + aggregator, stats.reports_dropped);
  AddCumulative(stream_reconnects_->Add(labels), "disconnects/" + aggregator, stats.disconnects);
}

void AgentMetrics::ObserveHealth(const AgentHealthCounters& c) {
  probe_targets_->Add({}).Set(static_cast<double>(c.probe_targets));
  reflector_sessions_->Add({}).Set(static_cast<double>(c.reflector_sessions));
  const std::pair<const char*, uint64_t> prober[] = {{"send_error", c.probe_send_errors},
                                                     {"reply_bad_mac", c.replies_bad_mac},
                                                     {"reply_malformed", c.replies_malformed},
                                                     {"reply_unmatched", c.replies_unmatched}};
  for (const auto& [event, value] : prober) {
    AddCumulative(prober_events_->Add({{"event", event}}), std::string("prober/") + event, value);
  }
  const std::pair<const char*, uint64_t> reflector[] = {
      {"received", c.reflector_received},   {"replied", c.reflector_replied},
      {"bad_mac", c.reflector_bad_mac},     {"unauthenticated_refused", c.reflector_unauthenticated_refused},
      {"malformed", c.reflector_malformed}, {"rate_limited", c.reflector_rate_limited},
      {"replayed", c.reflector_replayed},   {"stale_timestamp", c.reflector_stale_timestamp},
      {"wrong_key", c.reflector_wrong_key}, {"malformed_tlv", c.reflector_malformed_tlv}};
  for (const auto& [result, value] : reflector) {
    AddCumulative(reflector_packets_->Add({{"result", result}}), std::string("reflector/") + result, value);
  }
}

void AgentMetrics::CountPlanRefused(const char* reason) {
  plans_refused_->Add({{"reason", reason}}).Increment();
}

void AgentMetrics::CountPlanApplied() {
  plans_applied_->Add({}).Increment();
}

void AgentMetrics::SetBpfAttached(bool attached, size_t interfaces) {
  bpf_attached_->Add({}).Set(attached ? 1 : 0);
  bpf_interfaces_->Add({}).Set(static_cast<double>(interfaces));
}

}  // namespace regionpulse
