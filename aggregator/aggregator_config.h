// The aggregator's configuration: a YAML file plus command-line flags. Parsing is pure (text
// in, values or an error naming the key out); only LoadAggregatorConfigFile touches the disk.
//
// Every key, with its default (durations need a unit: ms, s, m, h):
//   regions:                      # none: no region is known and the verdict is HOLD
//     - {name: us-east-1, cidrs: [10.1.0.0/16]}
//     - {name: eu-west-1, cidrs: [10.2.0.0/16]}
//   active_region: us-east-1      # required once regions are listed
//   own_region: eu-west-1         # where this aggregator runs
//   thresholds: {degraded_loss: 0.05, degraded_rtt_p99: 250ms, unreachable_loss: 0.99,
//                quorum_fraction: 0.5, min_observer_nodes: 2, replication_staleness: 30s}
//   hold: 120s
//   dwell: 300s                   # not shorter than hold
//   matrix_window: 60s
//   evidence_window: 10s          # how far back the verdict looks; detection takes about this long
//   not_reporting_timeout: 10s    # not longer than matrix_window
//   evaluation_interval: 1s
//   heartbeat_interval: 5s
//   probe_plan: {targets_per_region: 3, interval: 100ms, payload_size: 0, rotation: 300s}
//   history: {path: /var/lib/regionpulse/verdict-history.log, max_file_bytes: 4MiB,
//             max_rotated_files: 4}
//   listen: {grpc: "0.0.0.0:7700", metrics: "0.0.0.0:9101"}
//   tls: {cert_file: ..., key_file: ..., client_ca_file: ...}   # none: plaintext, with a warning
//   plaintext: false
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "result.h"

namespace regionpulse {

struct RegionConfig {
  std::string name;
  // Address ranges of the region's nodes, e.g. "10.1.0.0/16" (IPv4 or IPv6).
  std::vector<std::string> cidrs;
};

// When a region counts as degraded or unreachable. The defaults are the design's.
struct VerdictThresholds {
  // Probe loss (forward and reverse combined) at or above which a region is DEGRADED.
  double degraded_loss = 0.05;
  // Kernel RTT p99 above which a region is DEGRADED.
  std::chrono::milliseconds degraded_rtt_p99{250};
  // Loss at or above which an observer counts a region as not reached at all.
  double unreachable_loss = 0.99;
  // UNREACHABLE needs more than this fraction of the reporting observers to agree ...
  double quorum_fraction = 0.5;
  // ... from at least this many distinct nodes.
  uint32_t min_observer_nodes = 2;
  // A replication flow that has not progressed for this long is at risk.
  std::chrono::seconds replication_staleness{30};
};

struct ProbePlanConfig {
  // Targets per remote region for every agent.
  uint32_t targets_per_region = 3;
  // Interval between probes to one target.
  std::chrono::milliseconds interval{100};
  // STAMP padding in bytes.
  uint32_t payload_size = 0;
  // How often the plan rotates to other peers.
  std::chrono::seconds rotation{300};
};

struct HistoryConfig {
  // The current log file; rotated files are PATH.1 (newest) .. PATH.N.
  std::string path = "/var/lib/regionpulse/verdict-history.log";
  // A file is rotated once it grows past this size.
  uint64_t max_file_bytes = 4 * 1024 * 1024;
  // Rotated files kept besides the current one; older ones are deleted.
  uint32_t max_rotated_files = 4;
};

struct TlsConfig {
  // PEM files. Server certificate and key; when client_ca is set, agents must present a
  // certificate signed by it.
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  bool Enabled() const { return !cert_file.empty() && !key_file.empty(); }
};

struct AggregatorConfig {
  // Known regions. Empty: no region is known and the verdict is HOLD.
  std::vector<RegionConfig> regions;
  // Region currently active (the one a failover moves away from).
  std::string active_region;
  // Region this aggregator runs in.
  std::string own_region;
  VerdictThresholds thresholds;
  // FAILOVER only after the condition held this long; STAY again only after a healthy dwell.
  std::chrono::seconds hold{120};
  std::chrono::seconds dwell{300};
  // Sliding window the matrix merges over.
  std::chrono::seconds matrix_window{60};
  // How far back the verdict's evidence reaches: a region is UNREACHABLE once (nearly) every
  // probe in this window was lost, so detection takes about this long before the hold starts.
  std::chrono::seconds evidence_window{10};
  // An agent with no report for this long is "not reporting".
  std::chrono::seconds not_reporting_timeout{10};
  // How often the verdict is recomputed.
  std::chrono::milliseconds evaluation_interval{1000};
  // Default Watch heartbeat interval (clients may ask for another within limits).
  std::chrono::milliseconds heartbeat_interval{5000};
  ProbePlanConfig probe_plan;
  HistoryConfig history;
  std::string grpc_listen = "0.0.0.0:7700";
  std::string metrics_listen = "0.0.0.0:9101";
  TlsConfig tls;
  // Serve gRPC without TLS even when TLS files are configured.
  bool plaintext = false;
};

// Parses a YAML document into a configuration over the defaults. Unknown keys are errors (a
// misspelt key silently ignored is a wrong threshold in production). Errors name the key and
// the problem: "config key 'thresholds.degraded_loss': expected a ratio in [0, 1], got 1.5".
Result<AggregatorConfig> ParseAggregatorConfig(const std::string& yaml_text);
Result<AggregatorConfig> LoadAggregatorConfigFile(const std::string& path);

// Sizes in config: bytes, or with a unit "64KiB", "4MiB", "1GiB".
Result<uint64_t> ParseByteSize(const std::string& text);

struct CommandLine {
  std::optional<std::string> config_file;
  std::optional<std::string> grpc_listen;
  std::optional<std::string> metrics_listen;
  bool plaintext = false;
  bool help = false;
};

// regionpulse-aggregator [--config FILE] [--grpc-listen HOST:PORT] [--metrics-listen HOST:PORT]
// [--plaintext]; "--flag=value" is accepted too.
Result<CommandLine> ParseCommandLine(const std::vector<std::string>& args);
std::string AggregatorUsage();

// The file (when given) with the flags applied over it; flags win.
Result<AggregatorConfig> ResolveAggregatorConfig(const CommandLine& command_line);

}  // namespace regionpulse
