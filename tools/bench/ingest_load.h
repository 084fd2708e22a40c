// Ingest load: thousands of simulated agents on real Ingest streams to one running
// regionpulse-aggregator, in one process (the gRPC callback API, many streams multiplexed over
// a few channels). Each agent says Hello, takes the probe plan the aggregator sends and reports
// every window on the paths of that plan, with reports the agent's own WindowFolder builds from
// probe events (docs/benchmarks.md, "Aggregator over gRPC").
//
// One run: connect every agent, wait until the plans stop changing, build each agent's reports,
// report for a warm-up and a measured period, then cut the active region off (every probe into
// or out of it lost) and wait for Verdicts.Watch to push the change. What it measures:
//  - ingest lag, window end -> visible in Query (ListAgents' last_report_at, the time the
//    aggregator filed the report) and window end -> Ack received (filed, plus the way back);
//  - evaluation tick time, from the aggregator's status port (the evaluation duration histogram);
//  - the Watch push after the cut, from the cut and from the decisive window;
//  - CPU of the aggregator and of this process (/proc/PID/stat), the aggregator's RSS;
//  - streams that ended before the run did, Hellos refused, reports not acknowledged.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include "common/clocks.h"
#include "common/result.h"
#include "regionpulse/v1/ingest.pb.h"

namespace regionpulse::bench {

struct LoadRegion {
  std::string name;
  std::string address_prefix;  // first two octets of its nodes' addresses, e.g. "10.1"
  double share = 0;            // of the agents
};

struct IngestLoadOptions {
  std::string target = "127.0.0.1:7700";  // the aggregator's gRPC address (plaintext)
  std::string metrics;                    // its status port, HOST:PORT; empty: no tick figures
  int aggregator_pid = 0;                 // for CPU and RSS; 0: not measured
  uint32_t agents = 1000;
  // Streams per HTTP/2 connection (channel). A real agent has a connection of its own; a few
  // connections keep the generator's own cost down on a 2-core machine.
  uint32_t agents_per_channel = 100;
  // Completion queues (a thread each) the agents' streams are spread over, by connection; 0: one
  // per ten connections, at most 16. Fewer: longer outstanding-operation lists to scan in
  // Debian's libgrpc; more: more threads to wake.
  uint32_t completion_queues = 0;
  // 40/40/20 %, the active region first. The aggregator must know the same regions.
  std::vector<LoadRegion> regions = {
      {"us-east-1", "10.1", 0.4}, {"eu-west-1", "10.2", 0.4}, {"ap-southeast-1", "10.3", 0.2}};
  std::string active_region = "us-east-1";
  std::chrono::milliseconds window{1000};
  // Every agent connected and planned, and no plan pushed for plan_quiet, within this.
  std::chrono::seconds connect_timeout{120};
  std::chrono::milliseconds plan_quiet{2500};
  std::chrono::seconds warmup{5};
  // After the warm-up, the run also waits (up to this) for the active region to be HEALTHY.
  std::chrono::seconds healthy_timeout{30};
  std::chrono::seconds measure{20};
  std::chrono::milliseconds list_interval{2000};
  bool cut_active_region = true;
  std::chrono::seconds verdict_timeout{30};
};

struct LagSummary {
  uint64_t count = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

struct IngestLoadResult {
  uint32_t agents = 0;
  uint32_t agents_planned = 0;  // received a probe plan
  double connect_seconds = 0;   // first Hello -> every agent planned and plans quiet
  double build_seconds = 0;     // building every agent's reports with WindowFolder
  uint64_t report_bytes = 0;    // mean serialized size of a healthy report
  double measured_seconds = 0;
  uint64_t reports_sent = 0;       // in the measured period
  uint64_t reports_acked = 0;      // in the measured period
  LagSummary visible_lag;          // window end -> last_report_at (ListAgents)
  uint32_t list_calls = 0;         // ListAgents calls in the measured period ...
  uint32_t list_failures = 0;      // ... and how many failed (deadline: 10 s)
  LagSummary ack_lag;              // window end -> Ack received
  uint64_t max_write_backlog = 0;  // reports waiting behind a write in flight, at most, one agent
  // Streams that ended before the run ended, and why (first one).
  uint32_t streams_ended = 0;
  std::string first_stream_error;
  uint32_t hellos_refused = 0;
  uint32_t streams_at_aggregator = 0;                // its ingest stream gauge at the end of the measurement
  std::map<std::string, double> aggregator_reports;  // reports_total by result, measured period
  // Evaluation ticks in the measured period: mean, and p50/p99 as histogram bucket bounds.
  uint64_t ticks = 0;
  double tick_mean_ms = 0;
  double tick_p50_le_ms = 0;
  double tick_p99_le_ms = 0;
  double tick_last_ms = 0;
  double aggregator_cpu = 0;  // cores, measured period
  double generator_cpu = 0;
  uint64_t aggregator_rss_kib = 0;
  uint64_t aggregator_hwm_kib = 0;
  // The cut: the active region's state before it, the pushed change and its delays.
  std::string state_before_cut;
  std::string verdict_change;  // e.g. "us-east-1 HEALTHY -> DEGRADED (generation 7)"
  std::optional<double> verdict_after_cut_s;
  std::optional<double> verdict_after_decisive_s;
};

Result<IngestLoadResult> RunIngestLoad(const IngestLoadOptions& options, std::ostream& progress);

// Pure parts, tested directly.
struct FleetMember {
  std::string node;
  std::string region;
  std::string zone;
  std::string address;
};
// The simulated fleet: agents split over the regions by share (the last region takes the
// rounding), named "<region>-node-NNNNN", addresses inside each region's /16.
std::vector<FleetMember> MakeFleet(const IngestLoadOptions& options);

// The bytes of a StreamRequest whose report is `base` (a serialised HealthReport without
// sequence and window times) with this window's sequence and times: what the generator's agents
// send (the report is serialised once per agent, not per window).
std::string EncodedReport(const std::string& base, uint64_t sequence, WallTime start, WallTime end);
// The same bytes as three slices: the StreamRequest's field header, `base` itself (shared by
// reference, not copied: the generator sends each agent's ~1.8 KiB once per window) and the
// window's sequence and times.
grpc::ByteBuffer EncodedReportBuffer(const grpc::Slice& base, uint64_t sequence, WallTime start,
                                     WallTime end);

// Percentiles of a Prometheus histogram between two scrapes of the text format.
struct HistogramDelta {
  uint64_t count = 0;
  double sum = 0;
  // Smallest bucket bound holding at least q of the samples (+Inf as infinity).
  double QuantileBound(double q) const;
  std::vector<std::pair<double, uint64_t>> cumulative;  // (le, count), ascending le
};
HistogramDelta HistogramBetween(const std::string& before, const std::string& after, const std::string& name);
// The value of a sample line "name{labels} value" (labels as written, "" for none); nullopt when
// absent.
std::optional<double> SampleValue(const std::string& metrics, const std::string& name_and_labels);

std::string MarkdownHeader();
std::string MarkdownRow(const IngestLoadOptions& options, const IngestLoadResult& result);

}  // namespace regionpulse::bench
