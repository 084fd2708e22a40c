// A consistent HealthReport for tests to start from and then break on purpose.
#pragma once

#include "common/latency_histogram.h"
#include "common/proto_convert.h"
#include "regionpulse/v1/ingest.pb.h"

namespace regionpulse::test {

inline v1::HealthReport SampleReport() {
  v1::HealthReport report;
  report.set_sequence(17);
  *report.mutable_window_start() = ToTimestamp(WallClock::time_point(std::chrono::seconds(1'700'000'000)));
  *report.mutable_window_end() = ToTimestamp(WallClock::time_point(std::chrono::seconds(1'700'000'001)));
  auto* path = report.add_paths();
  path->set_peer_node("node-eu-1");
  path->set_peer_region("eu-west-1");
  path->set_probes_sent(10);
  path->set_received_forward(9);
  path->set_received_reverse(8);
  path->set_loss_forward(0.1);
  path->set_loss_reverse(1.0 / 9);
  path->set_ssid(4242);
  path->mutable_source()->set_address("10.1.0.7");
  path->mutable_source()->set_port(40123);
  path->set_lost_direction_unknown(1);  // 9 reached, 1 unknown: probes_sent 10
  LatencyHistogram h;
  h.Record(70'000'000);
  h.Record(71'000'000);
  ToProto(h, path->mutable_rtt_kernel());
  *path->mutable_jitter() = ToDuration(std::chrono::microseconds(250));
  auto* traffic = report.add_traffic();
  traffic->set_remote_region("eu-west-1");
  traffic->set_tx_bytes(1 << 20);
  traffic->set_tcp_retransmits(3);
  auto* flow = report.add_flows();
  flow->set_name("postgres");
  flow->set_remote_region("eu-west-1");
  *flow->mutable_last_progress_age() = ToDuration(std::chrono::seconds(4));
  flow->set_bytes_outstanding(65536);
  auto* reflected = report.add_reflected();
  reflected->mutable_sender()->set_address("fd00:2::5");
  reflected->mutable_sender()->set_port(40200);
  reflected->set_ssid(7);
  reflected->set_received(10);
  reflected->set_replied(9);
  report.mutable_status()->set_reflected_senders_dropped(3);
  report.mutable_status()->add_errors("attach wg0: ENODEV");
  return report;
}

}  // namespace regionpulse::test
