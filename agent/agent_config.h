// AgentConfig: everything regionpulse-agent is told at start, from a YAML file, command-line
// flags and the environment (NODE_NAME, REGION, ZONE, HOST_IP as the Kubernetes downward API
// sets them). Precedence: flags > environment > file > defaults. The dialect is the one every
// regionpulse program reads (docs/configuration.md); every key is in docs/agent.example.yaml.
// Validation collects every problem, each naming the key ("probe.interval: ...").
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/kernel_datapath.h"
#include "common/logging.h"
#include "common/region_list.h"
#include "common/report_log.h"
#include "common/result.h"
#include "common/status_server.h"

namespace regionpulse {

// A replication flow whose progress is watched (an RPO risk when it stalls).
struct ReplicationFlowConfig {
  std::string name;
  std::vector<uint16_t> ports;
  std::string remote_region;
  uint64_t expected_min_rate_bps = 0;  // bytes per second; 0 = no expectation
};

// A peer probed without an aggregator (lab, debugging).
struct StaticPeer {
  std::string node;
  std::string region;
  std::string zone;
  std::string address;  // IPv4 or IPv6 literal
  uint16_t port = 862;  // the peer's STAMP reflector port
};

struct ProbeSettings {
  uint16_t port = 862;                // our reflector's UDP port (IANA STAMP)
  std::string listen_address = "::";  // reflector bind; "::" falls back to 0.0.0.0
  // The address other nodes probe, announced to the aggregators when listen_address is a
  // wildcard: the node's internal IP, from HOST_IP (status.hostIP) or else POD_IP.
  std::string advertise_address;
  std::chrono::nanoseconds interval{100'000'000};  // per target
  double jitter = 0.1;                             // each schedule is interval * (1 +/- jitter)
  uint32_t payload_size = 0;                       // UDP payload bytes; raised to the minimum
  std::chrono::nanoseconds timeout{800'000'000};   // a probe unanswered this long is lost
  bool authenticated = true;                       // send authenticated (HMAC-SHA-256) probes
  bool allow_unauthenticated = false;              // reflector also answers unauthenticated senders
  std::string key_file;                            // HMAC key, read at load time
  std::vector<uint8_t> key;                        // the key file's bytes (trailing newline removed)
  std::chrono::nanoseconds reflector_session_idle{60'000'000'000};  // forget idle sessions
  // Key rotation: keys the reflector accepts beside key_file and never signs with (the next
  // key while it is being rolled out, then the previous one), so nodes holding the old key
  // and nodes holding the new one see no loss. At most kMaxAcceptedKeys.
  std::vector<std::string> accepted_key_files;
  std::vector<std::vector<uint8_t>> accepted_keys;
  // What a ProbePlan from an aggregator may ask for (agent/plan_check.h).
  std::vector<std::string> allowed_target_cidrs;  // default: DefaultAllowedTargetCidrs()
  std::chrono::nanoseconds plan_min_interval{100'000'000};
  uint32_t plan_max_payload_size = 1452;
  uint32_t plan_max_targets = 5000;
  // Reflector abuse limits (agent/reflector.h says what each bounds).
  double reflector_rate_per_source = 200;   // probes per second per source address
  double reflector_burst_per_source = 400;  // bucket depth
  uint32_t reflector_max_sources = 10000;
  std::chrono::nanoseconds reflector_max_clock_offset{30'000'000'000};
};

struct TlsSettings {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  bool enabled() const { return !cert_file.empty() || !ca_file.empty(); }
};

struct AgentConfig {
  std::string node;
  std::string region;
  std::string zone;
  std::vector<RegionSpec> regions;  // order defines RegionId (1-based position)
  ProbeSettings probe;
  std::chrono::nanoseconds window{1'000'000'000};
  std::vector<std::string> interfaces;  // empty = auto-detect tunnel interfaces
  std::vector<ReplicationFlowConfig> replication_flows;
  std::vector<std::string> aggregators;  // "host:port" each
  std::vector<StaticPeer> static_peers;
  TlsSettings tls;
  std::string status_listen = "0.0.0.0:9102";  // /metrics, /healthz, /readyz
  // What one client may hold of the status server (StatusServerLimits says why each exists);
  // the defaults are StatusServerLimits' own.
  StatusServerLimits status_limits;
  LogFormat log_format = LogFormat::kText;
  std::string log_level = "info";
  std::chrono::nanoseconds report_buffer{600'000'000'000};  // 10 min of windows
  // Kernel side.
  bool bpf_enabled = true;  // false: NullDatapath (user-space RTTs only)
  std::string cgroup_path;
  bool prefer_tcx = true;
  uint32_t max_tracked_flow_connections = 16384;  // DatapathConfig says what it bounds
  // Aggregator stream reconnect backoff.
  std::chrono::nanoseconds reconnect_initial{500'000'000};
  std::chrono::nanoseconds reconnect_max{30'000'000'000};
  // HTTP/2 keepalive pings on each aggregator stream, so an aggregator that vanished without
  // closing its connection is noticed; and how long a ping may go unanswered.
  std::chrono::nanoseconds keepalive_interval{10'000'000'000};
  std::chrono::nanoseconds keepalive_timeout{5'000'000'000};
  // How long one connection attempt (TCP, TLS, HTTP/2) may take: a far aggregator needs more
  // than the reconnect backoff's first step.
  std::chrono::nanoseconds connect_timeout{5'000'000'000};
  // On SIGTERM: how long to wait for the aggregators to acknowledge the last windows.
  std::chrono::nanoseconds shutdown_flush_timeout{5'000'000'000};
  // When set, every closed report is appended (tests, debugging, benchmarks), in this format.
  std::string report_log_file;
  ReportLogFormat report_log_format = ReportLogFormat::kJson;

  // Reports the buffer holds: report_buffer / window, at least 1.
  size_t ReportBufferWindows() const;
  // RegionId of a region name (1-based), 0 when unknown.
  RegionId RegionIdOf(const std::string& name) const;
  // Region names in RegionId order (index = id - 1).
  std::vector<std::string> RegionNames() const;
};

// Environment as name -> value (the caller passes the process environment; tests pass maps).
using Environment = std::map<std::string, std::string>;
Environment ProcessEnvironment();

// Parses YAML text (no file I/O except reading probe.key_file and checking TLS files),
// applies environment and flag overrides already collected, validates. Every problem is one
// line of the error message: "<key>: <problem>". Environment: NODE_NAME -> node, REGION ->
// region, ZONE -> zone, HOST_IP (or else POD_IP) -> probe.advertise_address.
Result<AgentConfig> ParseAgentConfig(const std::string& yaml_text, const Environment& env,
                                     const std::vector<std::string>& flags = {});

// The full start-up path: `--config FILE` (or REGIONPULSE_CONFIG in env) is read, then
// environment and flags apply. Flags: --config FILE, --node N, --region R, --zone Z,
// --aggregator HOST:PORT (repeatable), --peer NODE,REGION,ZONE,ADDRESS[,PORT] (repeatable),
// --probe-port P, --status-listen HOST:PORT, --log-format text|json, --log-level L,
// --unauthenticated (send unauthenticated probes and accept them), --no-bpf,
// --report-log FILE, and --set KEY=VALUE for any scalar key of the file (e.g.
// --set probe.interval=50ms). "--flag=value" and "--flag value" both work.
Result<AgentConfig> LoadAgentConfig(int argc, const char* const* argv, const Environment& env);

}  // namespace regionpulse
