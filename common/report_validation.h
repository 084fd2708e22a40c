// Consistency checks of a HealthReport that need no state: what the aggregator checks before
// it stores a report, and what the agent checks before it sends one.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "regionpulse/v1/ingest.pb.h"

namespace regionpulse {

struct ReportLimits {
  size_t max_bytes = 4 * 1024 * 1024;  // serialized size
  // Paths: one per probe target; the agent's largest plan (probe.plan_limits.max_targets, 5,000
  // by default) plus its static peers must fit.
  size_t max_paths = 8192;
  size_t max_traffic = 1024;  // remote regions
  size_t max_flows = 1024;
  size_t max_reflected = 4096;  // sender sessions (the agent sends at most 1,024)
  // Probes one path sends, or one reflected session brings, per second of window: a prober's
  // shortest interval is 1 ms, so 1,000 a second per session; the margin is for whatever
  // else sends STAMP to a reflector. Keeps sums of counts far from overflowing.
  uint64_t max_probes_per_second = 100'000;
  size_t max_errors = 64;
  size_t max_name_length = 253;  // a DNS name, the longest a node name can be
  std::chrono::seconds max_window{300};
  // Round-trip times (jitter, TCP srtt): the histograms stop at 100 s; the kernel's srtt is
  // 32-bit microseconds, at most 72 minutes.
  std::chrono::seconds max_rtt{std::chrono::hours(2)};
  // How long a replication flow has gone without progress: longer than any agent runs.
  std::chrono::seconds max_progress_age{std::chrono::hours(24 * 3650)};
};

// Every problem found, in plain words naming the field ("paths[3] (peer node-b):
// received_forward 12 > probes_sent 10"); empty when the report is consistent.
std::vector<std::string> ReportProblems(const v1::HealthReport& report, const ReportLimits& limits = {});

}  // namespace regionpulse
