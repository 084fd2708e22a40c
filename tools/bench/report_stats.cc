// rp_report_stats: what the benchmarks read from an agent's report log (--report-log): one
// HealthReport as JSON per line, or with --binary length-delimited binary HealthReports
// (report_log_format: binary, which costs the agent far less per window). Prints the
// kernel-stamped and user-space RTT histograms merged over the steady windows, probe counts,
// and the size of a report on the wire.
//   rp_report_stats LOG [--binary] [--peer NODE] [--skip N] [--from I] [--to J]
//   rp_report_stats LOG [--binary] --count
// Only complete reports count (an agent may be writing the last one). --from/--to keep reports
// I..J-1 (0-based; what two --count calls around a measurement returned); of those the first
// and last N (--skip, default 2) are left out: peers may not be up yet, or already stopping.
// --peer keeps only paths to that node (default: every path).
// Prints key=value lines:
//   records=K                (--count)
//   windows=W paths=P sent=S received=R reflected=F bytes_mean=B bytes_max=M
//   kernel: count=N min_ns=.. p50_ns=.. p99_ns=.. max_ns=..
//   user: count=N min_ns=.. p50_ns=.. p99_ns=.. max_ns=..
// Percentiles come from the agent's log histogram (within 1 % of the exact value); min and max
// are exact.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "common/latency_histogram.h"
#include "common/proto_convert.h"
#include "common/report_log.h"
#include "regionpulse/v1/ingest.pb.h"

int main(int argc, char** argv) {
  using namespace regionpulse;
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: rp_report_stats LOG [--binary] [--peer NODE] [--skip N] [--from I] [--to J] | "
                 "LOG [--binary] --count\n");
    return 2;
  }
  std::string peer;
  size_t skip = 2;
  size_t from = 0;
  size_t to = SIZE_MAX;
  bool binary = false;
  bool count_only = false;
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--binary") {
      binary = true;
      continue;
    }
    if (flag == "--count") {
      count_only = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "rp_report_stats: %s needs a value\n", flag.c_str());
      return 2;
    }
    const char* value = argv[++i];
    if (flag == "--peer") {
      peer = value;
    } else if (flag == "--skip") {
      skip = std::strtoul(value, nullptr, 10);
    } else if (flag == "--from") {
      from = std::strtoul(value, nullptr, 10);
    } else if (flag == "--to") {
      to = std::strtoul(value, nullptr, 10);
    } else {
      std::fprintf(stderr, "rp_report_stats: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "rp_report_stats: cannot open %s\n", argv[1]);
    return 1;
  }
  std::vector<v1::HealthReport> reports =
      ReadReportLog(in, binary ? ReportLogFormat::kBinary : ReportLogFormat::kJson);
  if (count_only) {
    std::printf("records=%zu\n", reports.size());
    return 0;
  }
  if (to < reports.size()) reports.resize(to);
  reports.erase(reports.begin(),
                reports.begin() + static_cast<std::ptrdiff_t>(std::min(from, reports.size())));
  LatencyHistogram kernel, user;
  uint64_t windows = 0, paths = 0, sent = 0, received = 0, reflected = 0, bytes_total = 0, bytes_max = 0;
  for (size_t i = skip; i + skip < reports.size(); ++i) {
    const auto& report = reports[i];
    ++windows;
    const uint64_t bytes = report.ByteSizeLong();
    bytes_total += bytes;
    bytes_max = std::max(bytes_max, bytes);
    for (const auto& reflection : report.reflected()) reflected += reflection.received();
    for (const auto& path : report.paths()) {
      if (!peer.empty() && path.peer_node() != peer) continue;
      ++paths;
      sent += path.probes_sent();
      received += path.received_reverse();
      if (auto h = FromProto(path.rtt_kernel()); h.ok()) kernel.Merge(*h);
      if (auto h = FromProto(path.rtt_user()); h.ok()) user.Merge(*h);
    }
  }
  std::printf(
      "windows=%llu paths=%llu sent=%llu received=%llu reflected=%llu bytes_mean=%llu bytes_max=%llu\n",
      static_cast<unsigned long long>(windows), static_cast<unsigned long long>(paths),
      static_cast<unsigned long long>(sent), static_cast<unsigned long long>(received),
      static_cast<unsigned long long>(reflected),
      static_cast<unsigned long long>(windows ? bytes_total / windows : 0),
      static_cast<unsigned long long>(bytes_max));
  for (const auto& [name, h] : {std::pair{"kernel", &kernel}, std::pair{"user", &user}}) {
    std::printf("%s: count=%llu min_ns=%llu p50_ns=%llu p99_ns=%llu max_ns=%llu\n", name,
                static_cast<unsigned long long>(h->Count()), static_cast<unsigned long long>(h->MinNs()),
                static_cast<unsigned long long>(h->Percentile(0.5).value_or(0)),
                static_cast<unsigned long long>(h->Percentile(0.99).value_or(0)),
                static_cast<unsigned long long>(h->MaxNs()));
  }
  return 0;
}
