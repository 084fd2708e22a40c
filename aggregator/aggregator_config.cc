// Parsing and checking of the aggregator's YAML configuration (with the shared reader,
// common/config_reader.h, one function per section) and of its command line.
#include "aggregator/aggregator_config.h"

#include <cerrno>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "common/command_line.h"
#include "common/config_reader.h"
#include "common/config_text.h"

namespace regionpulse {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

std::string Quote(const std::string& text) {
  return "\"" + text + "\"";
}

bool Contains(const std::vector<RegionConfig>& regions, const std::string& name) {
  for (const auto& region : regions) {
    if (region.name == name) return true;
  }
  return false;
}

void ReadRegions(const ConfigSection& top, AggregatorConfig& config) {
  config.regions = ReadRegionList(top, "regions");
  for (const auto& [key, target] :
       {std::pair{"active_region", &config.active_region}, std::pair{"own_region", &config.own_region}}) {
    std::string name;
    if (!top.NonEmptyString(key, &name)) continue;
    if (!Contains(config.regions, name)) {
      top.Problem(key, Quote(name) + " is not in regions");
      continue;
    }
    *target = name;
  }
  if (!config.regions.empty() && config.active_region.empty() && !top.Get("active_region").IsDefined()) {
    top.Problem("active_region", "missing: with regions configured, the active one must be named");
  }
}

void ReadFailoverPolicy(const ConfigSection& top, AggregatorConfig& config) {
  std::vector<std::string> standbys;
  if (top.Get("standby_regions").IsDefined()) {
    if (top.StringList("standby_regions", &standbys)) {
      std::set<std::string> seen;
      for (size_t i = 0; i < standbys.size(); ++i) {
        const std::string key = "standby_regions[" + std::to_string(i) + "]";
        if (!Contains(config.regions, standbys[i])) {
          top.problems().Add(key, Quote(standbys[i]) + " is not in regions");
        } else if (standbys[i] == config.active_region) {
          top.problems().Add(
              key, Quote(standbys[i]) + " is the active region; a standby is where it fails over to");
        } else if (!seen.insert(standbys[i]).second) {
          top.problems().Add(key, Quote(standbys[i]) + " is listed twice");
        }
      }
      config.standby_regions = std::move(standbys);
    }
  } else {
    for (const auto& region : config.regions) {
      if (region.name != config.active_region) config.standby_regions.push_back(region.name);
    }
    config.standby_regions_defaulted = !config.regions.empty();
  }
  top.Duration("max_data_loss", &config.max_data_loss, seconds(0), hours(24 * 7));
  top.Bool("prefer_availability", &config.prefer_availability);
}

void ReadThresholds(const ConfigSection& top, RegionThresholds& t) {
  const ConfigSection thresholds =
      top.Section("thresholds", {"degraded_loss", "degraded_rtt_p99", "unreachable_loss", "quorum_fraction",
                                 "min_observer_nodes", "replication_staleness"});
  thresholds.Number("degraded_loss", &t.degraded_loss, 0, 1);
  thresholds.Duration("degraded_rtt_p99", &t.degraded_rtt_p99, milliseconds(1), seconds(100));
  thresholds.Number("unreachable_loss", &t.unreachable_loss, 0, 1);
  // Below one half two disjoint minorities could both be "a quorum".
  thresholds.Number("quorum_fraction", &t.quorum_fraction, 0.5, 1);
  // One node's view must never fail a region over, so the floor is two.
  thresholds.Unsigned("min_observer_nodes", &t.min_observer_nodes, 2, 100000);
  thresholds.Duration("replication_staleness", &t.replication_staleness, seconds(1), hours(24));
  if (t.unreachable_loss < t.degraded_loss) {
    thresholds.Problem("unreachable_loss", "must not be below thresholds.degraded_loss");
  }
}

void ReadTimings(const ConfigSection& top, AggregatorConfig& config) {
  for (const auto& [key, target] : {std::pair{"hold", &config.hold}, std::pair{"dwell", &config.dwell},
                                    std::pair{"matrix_window", &config.matrix_window},
                                    std::pair{"evidence_window", &config.evidence_window},
                                    std::pair{"not_reporting_timeout", &config.not_reporting_timeout}}) {
    top.Duration(key, target, seconds(1), hours(24));
  }
  top.Duration("evaluation_interval", &config.evaluation_interval, milliseconds(1), minutes(10));
  top.Duration("heartbeat_interval", &config.heartbeat_interval, milliseconds(1), minutes(10));
  // The recovery dwell is longer than the hold so a flapping link cannot bounce the verdict.
  if (config.dwell < config.hold) {
    top.Problem("dwell",
                FormatDuration(config.dwell) + " is shorter than hold (" + FormatDuration(config.hold) + ")");
  }
  if (config.matrix_window < config.not_reporting_timeout) {
    top.Problem("not_reporting_timeout", FormatDuration(config.not_reporting_timeout) +
                                             " is longer than matrix_window (" +
                                             FormatDuration(config.matrix_window) + ")");
  }
  if (config.matrix_window < config.evidence_window) {
    top.Problem("evidence_window", FormatDuration(config.evidence_window) +
                                       " is longer than matrix_window (" +
                                       FormatDuration(config.matrix_window) + ")");
  }
}

void ReadProbePlan(const ConfigSection& top, ProbePlanConfig& p) {
  const ConfigSection plan =
      top.Section("probe_plan", {"targets_per_region", "interval", "payload_size", "rotation"});
  plan.Unsigned("targets_per_region", &p.targets_per_region, 1, 64);
  plan.Duration("interval", &p.interval, milliseconds(1), seconds(60));
  // STAMP over UDP must fit an unfragmented packet on a tunnel.
  plan.Unsigned("payload_size", &p.payload_size, 0, 1400);
  plan.Duration("rotation", &p.rotation, seconds(1), hours(24));
}

void ReadHistory(const ConfigSection& top, HistoryConfig& h) {
  const ConfigSection history = top.Section("history", {"path", "max_file_bytes", "max_rotated_files"});
  history.NonEmptyString("path", &h.path);
  // Smaller than one verdict record would rotate on every write.
  history.ByteSize("max_file_bytes", &h.max_file_bytes, 4096);
  history.Unsigned("max_rotated_files", &h.max_rotated_files, 0, 100);
}

void ReadListenAndTls(const ConfigSection& top, AggregatorConfig& config) {
  const ConfigSection listen = top.Section("listen", {"grpc", "metrics"});
  listen.HostPort("grpc", &config.grpc_listen, true);
  listen.HostPort("metrics", &config.metrics_listen, true);

  const ConfigSection tls = top.Section(
      "tls", {"cert_file", "key_file", "client_ca_file", "require_node_identity", "read_client_ca_file"});
  tls.NonEmptyString("cert_file", &config.tls.cert_file);
  tls.NonEmptyString("key_file", &config.tls.key_file);
  tls.NonEmptyString("client_ca_file", &config.tls.client_ca_file);
  tls.Bool("require_node_identity", &config.tls.require_node_identity);
  tls.NonEmptyString("read_client_ca_file", &config.tls.read_client_ca_file);
  tls.Together("cert_file", !config.tls.cert_file.empty(), "key_file", !config.tls.key_file.empty());
  for (const auto& [key, value] : {std::pair{"client_ca_file", &config.tls.client_ca_file},
                                   std::pair{"read_client_ca_file", &config.tls.read_client_ca_file}}) {
    if (!value->empty() && config.tls.cert_file.empty() && config.tls.key_file.empty()) {
      tls.Problem(key, "needs tls.cert_file and tls.key_file");
    }
  }
  top.Bool("plaintext", &config.plaintext);
}

void ReadLimits(const ConfigSection& top, LimitsConfig& l) {
  const ConfigSection limits = top.Section(
      "limits", {"max_agents", "max_hello_bytes", "max_hello_interfaces", "max_names", "max_region_pairs",
                 "max_flows", "max_message_bytes", "max_streams_per_connection", "grpc_memory_bytes",
                 "grpc_max_threads", "ingest_threads", "max_watch_streams", "status_read_timeout",
                 "status_write_timeout", "status_max_connections", "max_live_queries_per_second"});
  limits.Unsigned("max_agents", &l.max_agents, 1, 10'000'000);
  // A Hello carries names, an endpoint and its interfaces: below 1 KiB none would fit.
  limits.ByteSize("max_hello_bytes", &l.max_hello_bytes, 1024);
  limits.Unsigned("max_hello_interfaces", &l.max_hello_interfaces, 1, 65'536);
  limits.Unsigned("max_names", &l.max_names, 16, 100'000'000);
  limits.Unsigned("max_region_pairs", &l.max_region_pairs, 1, 1'000'000);
  limits.Unsigned("max_flows", &l.max_flows, 1, 100'000'000);
  // Below the largest report accepted (4 MiB), reports would be cut off without their reason.
  limits.ByteSize("max_message_bytes", &l.max_message_bytes, 4 * 1024 * 1024 + 64 * 1024);
  if (l.max_message_bytes > 1024ull * 1024 * 1024) limits.Problem("max_message_bytes", "above 1 GiB");
  limits.Unsigned("max_streams_per_connection", &l.max_streams_per_connection, 1, 1'000'000);
  limits.ByteSize("grpc_memory_bytes", &l.grpc_memory_bytes, 16 * 1024 * 1024);
  // gRPC needs a few threads of its own besides the ones serving calls.
  limits.Unsigned("grpc_max_threads", &l.grpc_max_threads, 4, 4096);
  limits.Unsigned("ingest_threads", &l.ingest_threads, 0, 64);
  limits.Unsigned("max_watch_streams", &l.max_watch_streams, 1, 1'000'000);
  limits.Duration("status_read_timeout", &l.status_read_timeout, milliseconds(100), minutes(10));
  limits.Duration("status_write_timeout", &l.status_write_timeout, milliseconds(100), minutes(10));
  limits.Unsigned("status_max_connections", &l.status_max_connections, 1, 100'000);
  limits.Unsigned("max_live_queries_per_second", &l.max_live_queries_per_second, 1, 10'000);
}

}  // namespace

Result<AggregatorConfig> ParseAggregatorConfig(const std::string& yaml_text) {
  auto document = LoadConfigDocument(yaml_text);
  if (!document) return document.error();
  ConfigProblems problems;
  const ConfigSection top(
      *document, "", problems,
      {"regions", "active_region", "own_region", "standby_regions", "max_data_loss", "prefer_availability",
       "thresholds", "hold", "dwell", "matrix_window", "evidence_window", "not_reporting_timeout",
       "evaluation_interval", "heartbeat_interval", "probe_plan", "history", "listen", "tls", "plaintext", "limits"});
  // An empty file is an empty configuration: every default, no regions.
  AggregatorConfig config;
  ReadRegions(top, config);
  ReadFailoverPolicy(top, config);
  ReadThresholds(top, config.thresholds);
  ReadTimings(top, config);
  ReadProbePlan(top, config.probe_plan);
  ReadHistory(top, config.history);
  ReadListenAndTls(top, config);
  ReadLimits(top, config.limits);
  if (!problems.empty()) return problems.ToError();
  return config;
}

Result<AggregatorConfig> LoadAggregatorConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{"cannot read config file " + path, errno};
  std::stringstream text;
  text << in.rdbuf();
  auto config = ParseAggregatorConfig(text.str());
  if (!config) return Error{path + ": " + config.error().message};
  return config;
}

std::string AggregatorUsage() {
  return "usage: regionpulse-aggregator [--config FILE] [--grpc-listen HOST:PORT] [--metrics-listen "
         "HOST:PORT] "
         "[--plaintext]\n"
         "  --config FILE              YAML configuration (regions, thresholds, hold/dwell, history, TLS);\n"
         "                             without it no region is known and the verdict is HOLD\n"
         "  --grpc-listen HOST:PORT    Ingest, Verdicts, Query, health and reflection (default "
         "0.0.0.0:7700)\n"
         "  --metrics-listen HOST:PORT /metrics, /healthz, /readyz (default 0.0.0.0:9101)\n"
         "  --plaintext                serve gRPC without TLS (and without client authentication);\n"
         "                             without it the aggregator refuses to start when no TLS\n"
         "                             certificate is configured (tls.cert_file, tls.key_file)\n";
}

Result<CommandLine> ParseCommandLine(const std::vector<std::string>& args) {
  CommandLineArgs parsed = ParseFlags(args, {{"--config"},
                                             {"--grpc-listen"},
                                             {"--metrics-listen"},
                                             {"--plaintext", false},
                                             {"--help", false},
                                             {"-h", false}});
  parsed.RefusePositional();
  CommandLine command_line;
  for (const auto& [flag, value] : parsed.flags) {
    if (flag == "--help" || flag == "-h") {
      command_line.help = true;
    } else if (flag == "--plaintext") {
      command_line.plaintext = true;
    } else if (flag == "--config") {
      command_line.config_file = value;
    } else if (auto address = ParseHostPort(value, true); !address) {
      parsed.problems.push_back({flag, address.error().message});
    } else {
      (flag == "--grpc-listen" ? command_line.grpc_listen : command_line.metrics_listen) = value;
    }
  }
  if (!parsed.problems.empty()) return Error{parsed.ProblemText()};
  return command_line;
}

Result<AggregatorConfig> ResolveAggregatorConfig(const CommandLine& command_line) {
  AggregatorConfig config;
  if (command_line.config_file) {
    auto loaded = LoadAggregatorConfigFile(*command_line.config_file);
    if (!loaded) return loaded.error();
    config = std::move(*loaded);
  }
  if (command_line.grpc_listen) config.grpc_listen = *command_line.grpc_listen;
  if (command_line.metrics_listen) config.metrics_listen = *command_line.metrics_listen;
  if (command_line.plaintext) config.plaintext = true;
  return config;
}

std::optional<std::string> TransportProblem(const AggregatorConfig& config) {
  if (config.plaintext || config.tls.Enabled()) return std::nullopt;
  return "no TLS certificate configured (tls.cert_file and tls.key_file): refusing to serve gRPC in "
         "plaintext, where anyone who can reach the port could report as any agent and read every "
         "verdict. Configure tls.cert_file and tls.key_file (and tls.client_ca_file for agent "
         "certificates), or pass --plaintext (or plaintext: true) to run without TLS on a trusted network";
}

}  // namespace regionpulse
