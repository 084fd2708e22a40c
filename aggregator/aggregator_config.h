// The aggregator's configuration: a YAML file plus command-line flags. Parsing is pure (text
// in, values or every problem naming its key out); only LoadAggregatorConfigFile touches the
// disk. The dialect is the one every regionpulse program reads (docs/configuration.md); every
// key with its default is in docs/aggregator.example.yaml.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "aggregator/region_thresholds.h"
#include "common/region_list.h"
#include "common/result.h"

namespace regionpulse {

// A region and the address ranges of its nodes: the list the agent reads too.
using RegionConfig = RegionSpec;

struct ProbePlanConfig {
  // Peers every agent probes in each region, its own included (fewer where a region has
  // fewer nodes).
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
  // With client_ca_file: an agent's certificate must name its node and region in a URI SAN
  // (spiffe://regionpulse/region/<region>/node/<node>) and its Hello must claim exactly that.
  // Off only for a shared agent certificate, which proves membership, not which node.
  bool require_node_identity = true;
  // When set, Verdicts and Query calls need a client certificate issued by this CA (and no
  // other): agents' certificates cannot read unless the same CA issues both.
  std::string read_client_ca_file;
  bool Enabled() const { return !cert_file.empty() && !key_file.empty(); }
};

// What any client, agent or not, may make the aggregator hold. Every cap is counted when hit
// (regionpulse_aggregator_limit_hits_total{limit}) and logged at most once a minute per cap.
struct LimitsConfig {
  // Agents known at once; a Hello from one more node is refused with RESOURCE_EXHAUSTED.
  uint64_t max_agents = 20'000;
  // A Hello's serialized size and its interface count.
  uint64_t max_hello_bytes = 64 * 1024;
  uint64_t max_hello_interfaces = 256;
  // Distinct node and region names the matrix interns (never forgotten), region pairs and
  // replication flows it tracks; beyond, what names a new one is not filed.
  uint64_t max_names = 100'000;
  uint64_t max_region_pairs = 1'024;
  uint64_t max_flows = 100'000;
  // Largest gRPC message received (a report is refused above 4 MiB with its reason first).
  uint64_t max_message_bytes = 8 * 1024 * 1024;
  // Concurrent streams one HTTP/2 connection may open (GRPC_ARG_MAX_CONCURRENT_STREAMS).
  uint64_t max_streams_per_connection = 1'000;
  // Memory gRPC may use for its buffers and the threads it may run (grpc::ResourceQuota).
  uint64_t grpc_memory_bytes = 512ull * 1024 * 1024;
  uint64_t grpc_max_threads = 64;
  // Threads serving Ingest streams, each draining a gRPC completion queue of its own (the
  // streams are spread over them); 0: IngestService::DefaultCompletionQueues(), from the cores.
  uint64_t ingest_threads = 0;
  // Watch streams open at once; one more is refused with RESOURCE_EXHAUSTED.
  uint64_t max_watch_streams = 2'000;
  // The status server (/metrics, /healthz, /readyz): a request must arrive, and a response
  // be taken, within these; connections beyond the cap are closed at once.
  std::chrono::milliseconds status_read_timeout{5'000};
  std::chrono::milliseconds status_write_timeout{10'000};
  uint64_t status_max_connections = 64;
  // Queries the tick's snapshot cannot answer (GetRegionMatrix and GetPaths over a window
  // shorter than matrix_window, the first GetPaths in a minute) are computed under the core
  // lock ingest needs: at most this many a second, a burst of as many; one more is refused
  // with RESOURCE_EXHAUSTED (queries over the configured window are never refused).
  uint64_t max_live_queries_per_second = 4;
};

struct AggregatorConfig {
  // Known regions. Empty: no region is known and the verdict is HOLD.
  std::vector<RegionConfig> regions;
  // Region currently active (the one a failover moves away from).
  std::string active_region;
  // Region this aggregator runs in.
  std::string own_region;
  // Regions that hold replicas, in order of preference: the only FAILOVER targets. Every
  // other region only observes. When the key is absent: every region but the active one, and
  // standby_regions_defaulted says so (the aggregator warns at start: an observer-only region
  // must not become a target by accident).
  std::vector<std::string> standby_regions;
  bool standby_regions_defaulted = false;
  // What failing over may lose (in time of writes) before it needs a person: beyond it, or
  // unknown, the verdict is HOLD for a manual decision ...
  std::chrono::seconds max_data_loss{120};
  // ... unless availability is preferred over data.
  bool prefer_availability = false;
  RegionThresholds thresholds;
  // FAILOVER only once the active region has been dark this long (counted from when it last
  // answered; see VerdictEngineConfig::hold); STAY again only after a healthy dwell.
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
  LimitsConfig limits;
};

// Parses a YAML document into a configuration over the defaults. Unknown keys are errors (a
// misspelt key silently ignored is a wrong threshold in production). Every problem is one
// line naming the key: "thresholds.degraded_loss: 1.5 is outside 0..1".
Result<AggregatorConfig> ParseAggregatorConfig(const std::string& yaml_text);
Result<AggregatorConfig> LoadAggregatorConfigFile(const std::string& path);

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

// Why the aggregator must not start with this transport: no certificate and plaintext not
// asked for (anyone on the network could report as any agent and read every verdict). nullopt
// when TLS is configured or plaintext was chosen explicitly.
std::optional<std::string> TransportProblem(const AggregatorConfig& config);

}  // namespace regionpulse
