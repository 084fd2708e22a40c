// AgentMetrics: names, labels and values as a Prometheus scrape shows them.
#include "agent/agent_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "common/latency_histogram.h"
#include "common/proto_convert.h"

namespace regionpulse {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Scrape(const AgentMetrics& metrics) {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(metrics.registry()->Collect());
}

v1::HealthReport ReportWithTwoPeersInOneRegion() {
  v1::HealthReport report;
  report.set_sequence(1);
  for (int peer = 0; peer < 2; ++peer) {
    auto* path = report.add_paths();
    path->set_peer_node(peer == 0 ? "node-b1" : "node-b2");
    path->set_peer_region("eu-west-1");
    path->set_probes_sent(10);
    path->set_received_forward(peer == 0 ? 10 : 8);  // 2 of 20 lost forward
    path->set_received_reverse(peer == 0 ? 9 : 8);   // 1 of 18 lost on the way back
    path->set_duplicates(1);
    *path->mutable_jitter() = ToDuration(std::chrono::microseconds(peer == 0 ? 30 : 70));
    LatencyHistogram kernel, user;
    kernel.Record(40'000, 5);   // 40 us
    user.Record(300'000, 5);    // 300 us
    user.Record(3'000'000, 1);  // 3 ms
    ToProto(kernel, path->mutable_rtt_kernel());
    ToProto(user, path->mutable_rtt_user());
  }
  auto* traffic = report.add_traffic();
  traffic->set_remote_region("eu-west-1");
  traffic->set_tcp_retransmits(4);
  traffic->set_tx_bytes(1000);
  auto* flow = report.add_flows();
  flow->set_name("postgres");
  flow->set_remote_region("eu-west-1");
  *flow->mutable_last_progress_age() = ToDuration(std::chrono::milliseconds(2500));
  auto* program = report.mutable_status()->add_programs();
  program->set_name("rp_tc_egress");
  program->set_run_count(100);
  program->set_run_time_ns(7'000);
  return report;
}

TEST(AgentMetricsTest, ProbeFiguresAreByPeerRegionNeverByNode) {
  AgentMetrics metrics("us-east-1", "us-east-1a", "test");
  metrics.ObserveReport(ReportWithTwoPeersInOneRegion());
  std::string text = Scrape(metrics);
  EXPECT_THAT(text, HasSubstr("regionpulse_probes_sent_total{peer_region=\"eu-west-1\"} 20"));
  EXPECT_THAT(text,
              HasSubstr("regionpulse_probe_loss_ratio{direction=\"forward\",peer_region=\"eu-west-1\"} 0.1"));
  EXPECT_THAT(text, HasSubstr("regionpulse_probe_loss_ratio{direction=\"reverse\",peer_region=\"eu-west-1\"} "
                              "0.0555"));
  EXPECT_THAT(text,
              HasSubstr("regionpulse_probes_lost_total{direction=\"forward\",peer_region=\"eu-west-1\"} 2"));
  EXPECT_THAT(text, HasSubstr("regionpulse_probe_duplicates_total{peer_region=\"eu-west-1\"} 2"));
  // The larger of the two peers' jitter, 70 us (printed with the double's full precision).
  EXPECT_THAT(text, ContainsRegex("regionpulse_probe_jitter_seconds\\{peer_region=\"eu-west-1\"\\} "
                                  "(7e-05|6\\.9999)"));
  EXPECT_THAT(text, Not(HasSubstr("node-b1")));
}

TEST(AgentMetricsTest, RttHistogramSeparatesKernelAndUserStamps) {
  AgentMetrics metrics("us-east-1", "us-east-1a", "test");
  metrics.ObserveReport(ReportWithTwoPeersInOneRegion());
  std::string text = Scrape(metrics);
  // 10 kernel samples at 40 us all fall at or below the 50 us bound.
  EXPECT_THAT(text,
              HasSubstr("regionpulse_probe_rtt_seconds_bucket{kind=\"kernel\",peer_region=\"eu-west-1\","
                        "le=\"5e-05\"} 10"));
  EXPECT_THAT(text,
              HasSubstr("regionpulse_probe_rtt_seconds_count{kind=\"kernel\",peer_region=\"eu-west-1\"} 10"));
  // 10 user samples at 300 us (<= 500 us) and 2 at 3 ms (<= 5 ms).
  EXPECT_THAT(text, HasSubstr("regionpulse_probe_rtt_seconds_bucket{kind=\"user\",peer_region=\"eu-west-1\","
                              "le=\"0.0005\"} 10"));
  EXPECT_THAT(text, HasSubstr("regionpulse_probe_rtt_seconds_bucket{kind=\"user\",peer_region=\"eu-west-1\","
                              "le=\"0.005\"} 12"));
  EXPECT_THAT(text,
              HasSubstr("regionpulse_probe_rtt_seconds_count{kind=\"user\",peer_region=\"eu-west-1\"} 12"));
}

TEST(AgentMetricsTest, PassiveSignalsAndFlowStaleness) {
  AgentMetrics metrics("us-east-1", "us-east-1a", "test");
  metrics.ObserveReport(ReportWithTwoPeersInOneRegion());
  metrics.ObserveReport(ReportWithTwoPeersInOneRegion());
  std::string text = Scrape(metrics);
  EXPECT_THAT(text, HasSubstr("regionpulse_tcp_retransmits_total{remote_region=\"eu-west-1\"} 8"));
  EXPECT_THAT(text,
              HasSubstr("regionpulse_tunnel_bytes_total{direction=\"tx\",remote_region=\"eu-west-1\"} 2000"));
  EXPECT_THAT(text,
              HasSubstr("regionpulse_replication_flow_stale_seconds{flow=\"postgres\",remote_region=\"eu-"
                        "west-1\"} 2.5"));
  // Program statistics are cumulative in the report; the counter must not double them.
  EXPECT_THAT(text, HasSubstr("regionpulse_bpf_program_runs_total{program=\"rp_tc_egress\"} 100"));
  EXPECT_THAT(text, HasSubstr("regionpulse_bpf_program_run_seconds_total{program=\"rp_tc_egress\"} 7e-06"));
  EXPECT_THAT(text, HasSubstr("regionpulse_windows_total 2"));
}

TEST(AgentMetricsTest, StreamStateAndDroppedReportsPerAggregator) {
  AgentMetrics metrics("us-east-1", "us-east-1a", "test");
  AggregatorStreamStats stats;
  stats.up = true;
  stats.buffered = 3;
  stats.reports_dropped = 5;
  metrics.ObserveStream("agg-eu:9000", stats);
  stats.up = false;
  stats.reports_dropped = 7;
  metrics.ObserveStream("agg-eu:9000", stats);
  std::string text = Scrape(metrics);
  EXPECT_THAT(text, HasSubstr("regionpulse_aggregator_stream_up{aggregator=\"agg-eu:9000\"} 0"));
  EXPECT_THAT(text, HasSubstr("regionpulse_reports_dropped_total{aggregator=\"agg-eu:9000\"} 7"));
  EXPECT_THAT(text, HasSubstr("regionpulse_aggregator_reports_buffered{aggregator=\"agg-eu:9000\"} 3"));
}

TEST(AgentMetricsTest, AgentHealthAndBpfAttachment) {
  AgentMetrics metrics("us-east-1", "us-east-1a", "1.2.3");
  EXPECT_THAT(Scrape(metrics), HasSubstr("regionpulse_bpf_attached 0"));
  metrics.SetBpfAttached(true, 2);
  AgentHealthCounters health;
  health.reflector_replied = 40;
  health.replies_bad_mac = 2;
  health.probe_targets = 3;
  metrics.ObserveHealth(health);
  std::string text = Scrape(metrics);
  EXPECT_THAT(text, HasSubstr("regionpulse_bpf_attached 1"));
  EXPECT_THAT(text, HasSubstr("regionpulse_bpf_attached_interfaces 2"));
  EXPECT_THAT(text, HasSubstr("regionpulse_reflector_packets_total{result=\"replied\"} 40"));
  EXPECT_THAT(text, HasSubstr("regionpulse_prober_events_total{event=\"reply_bad_mac\"} 2"));
  EXPECT_THAT(text, HasSubstr("regionpulse_probe_targets 3"));
  EXPECT_THAT(
      text,
      HasSubstr("regionpulse_agent_info{region=\"us-east-1\",version=\"1.2.3\",zone=\"us-east-1a\"} 1"));
}

TEST(AgentMetricsTest, ReflectorRefusalsAndPlanRefusalsByReason) {
  AgentMetrics metrics("us-east-1", "us-east-1a", "1.2.3");
  AgentHealthCounters health;
  health.reflector_rate_limited = 5;
  health.reflector_replayed = 1;
  health.reflector_stale_timestamp = 2;
  health.reflector_wrong_key = 7;
  health.reflector_malformed_tlv = 3;
  metrics.ObserveHealth(health);
  metrics.CountPlanRefused("interval");
  metrics.CountPlanRefused("interval");
  metrics.CountPlanRefused("target_outside_cidrs");
  metrics.CountPlanApplied();
  const std::string text = Scrape(metrics);
  EXPECT_THAT(text, HasSubstr("regionpulse_reflector_packets_total{result=\"rate_limited\"} 5"));
  EXPECT_THAT(text, HasSubstr("regionpulse_reflector_packets_total{result=\"replayed\"} 1"));
  EXPECT_THAT(text, HasSubstr("regionpulse_reflector_packets_total{result=\"stale_timestamp\"} 2"));
  EXPECT_THAT(text, HasSubstr("regionpulse_reflector_packets_total{result=\"wrong_key\"} 7"));
  EXPECT_THAT(text, HasSubstr("regionpulse_reflector_packets_total{result=\"malformed_tlv\"} 3"));
  EXPECT_THAT(text, HasSubstr("regionpulse_probe_plans_refused_total{reason=\"interval\"} 2"));
  EXPECT_THAT(text, HasSubstr("regionpulse_probe_plans_refused_total{reason=\"target_outside_cidrs\"} 1"));
  EXPECT_THAT(text, HasSubstr("regionpulse_probe_plans_applied_total 1"));
}

}  // namespace
}  // namespace regionpulse
