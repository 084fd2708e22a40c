// rp_ingest_load: simulated agents on real Ingest streams to one running aggregator (see
// tools/bench/ingest_load.h; tools/bench/ingest_load starts the aggregator and runs the sizes).
// Prints one Markdown table row on stdout (the header too with --markdown-header), progress on
// stderr. Exit status 1 when the run could not be made.
#include <cstdio>
#include <iostream>
#include <string>

#include <absl/synchronization/mutex.h>

#include "tools/bench/ingest_load.h"

namespace {

const char kUsage[] =
    "usage: rp_ingest_load --target HOST:PORT [--metrics HOST:PORT] [--aggregator-pid PID]\n"
    "         [--agents N] [--agents-per-channel N] [--completion-queues N] [--warmup S] [--measure S] "
    "[--verdict-timeout S]\n"
    "         [--connect-timeout S] [--no-cut] [--markdown-header]\n"
    "       rp_ingest_load --print-header\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace regionpulse::bench;
  // As in the aggregator (aggregator/main.cc): Debian's absl walks its lock graph on every gRPC
  // lock taken (~1 % of the generator's CPU at 10,000 agents); a release build would not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  IngestLoadOptions options;
  bool header = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "rp_ingest_load: %s needs a value\n%s", arg.c_str(), kUsage);
        std::exit(1);
      }
      return argv[++i];
    };
    auto seconds = [&] { return std::chrono::seconds(std::stoul(value())); };
    try {
      if (arg == "--target") {
        options.target = value();
      } else if (arg == "--metrics") {
        options.metrics = value();
      } else if (arg == "--aggregator-pid") {
        options.aggregator_pid = std::stoi(value());
      } else if (arg == "--agents") {
        options.agents = static_cast<uint32_t>(std::stoul(value()));
      } else if (arg == "--agents-per-channel") {
        options.agents_per_channel = static_cast<uint32_t>(std::stoul(value()));
      } else if (arg == "--completion-queues") {
        options.completion_queues = static_cast<uint32_t>(std::stoul(value()));
      } else if (arg == "--warmup") {
        options.warmup = seconds();
      } else if (arg == "--measure") {
        options.measure = seconds();
      } else if (arg == "--verdict-timeout") {
        options.verdict_timeout = seconds();
      } else if (arg == "--connect-timeout") {
        options.connect_timeout = seconds();
      } else if (arg == "--no-cut") {
        options.cut_active_region = false;
      } else if (arg == "--markdown-header") {
        header = true;
      } else if (arg == "--print-header") {
        std::cout << MarkdownHeader() << "\n";
        return 0;
      } else if (arg == "--help" || arg == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      } else {
        std::fprintf(stderr, "rp_ingest_load: unknown argument %s\n%s", arg.c_str(), kUsage);
        return 1;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "rp_ingest_load: %s: not a number\n%s", arg.c_str(), kUsage);
      return 1;
    }
  }
  if (options.agents == 0 || options.agents_per_channel == 0) {
    std::fprintf(stderr, "rp_ingest_load: --agents and --agents-per-channel must be at least 1\n");
    return 1;
  }
  auto result = RunIngestLoad(options, std::cerr);
  if (!result) {
    std::fprintf(stderr, "rp_ingest_load: %s\n", result.error().ToString().c_str());
    return 1;
  }
  if (header) std::cout << MarkdownHeader() << "\n";
  std::cout << MarkdownRow(options, *result) << "\n";
  const auto& r = *result;
  std::cerr << "rp_ingest_load: " << r.agents << " agents (" << r.agents_planned << " planned), reports "
            << r.report_bytes << " bytes, built in " << r.build_seconds << " s; streams at the aggregator "
            << r.streams_at_aggregator << "; last tick " << r.tick_last_ms << " ms";
  for (const auto& [outcome, count] : r.aggregator_reports) std::cerr << "; " << outcome << " " << count;
  if (!r.first_stream_error.empty()) std::cerr << "; first stream error: " << r.first_stream_error;
  std::cerr << "\n";
  return 0;
}
