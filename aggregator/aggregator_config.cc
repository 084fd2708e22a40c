// Parsing and checking of the aggregator's YAML configuration and command line.
#include "aggregator_config.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "common/config_text.h"

namespace regionpulse {
namespace {

Error KeyError(const std::string& key, const std::string& problem) {
  return Error{"config key '" + key + "': " + problem};
}

std::string Join(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

// Fails on keys the schema does not know, so a typo is an error rather than a silent default.
Status CheckKeys(const YAML::Node& map, const std::string& where, const std::set<std::string>& known) {
  if (!map.IsMap()) return KeyError(where.empty() ? "(top level)" : where, "expected a mapping");
  for (const auto& entry : map) {
    const std::string key = entry.first.as<std::string>();
    if (!known.contains(key)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return KeyError(Join(where, key), "unknown key (known here: " + list + ")");
    }
  }
  return OkStatus();
}

Result<std::string> ScalarText(const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar()) return KeyError(key, "expected a single value");
  return node.Scalar();
}

Result<std::string> String(const YAML::Node& node, const std::string& key) {
  auto text = ScalarText(node, key);
  if (!text) return text.error();
  if (text->empty()) return KeyError(key, "must not be empty");
  return text;
}

Result<double> Number(const YAML::Node& node, const std::string& key) {
  auto text = ScalarText(node, key);
  if (!text) return text.error();
  try {
    size_t used = 0;
    double value = std::stod(*text, &used);
    if (used == text->size() && std::isfinite(value)) return value;
  } catch (const std::exception&) {
  }
  return KeyError(key, "expected a number, got '" + *text + "'");
}

Result<double> Ratio(const YAML::Node& node, const std::string& key) {
  auto value = Number(node, key);
  if (!value) return value.error();
  if (*value < 0 || *value > 1) return KeyError(key, "expected a ratio in [0, 1], got " + node.Scalar());
  return value;
}

Result<uint64_t> Unsigned(const YAML::Node& node, const std::string& key, uint64_t min, uint64_t max) {
  auto text = ScalarText(node, key);
  if (!text) return text.error();
  try {
    size_t used = 0;
    if (!text->empty() && (*text)[0] != '-') {
      unsigned long long value = std::stoull(*text, &used);
      if (used == text->size()) {
        if (value < min || value > max) {
          return KeyError(key, "expected a value in [" + std::to_string(min) + ", " + std::to_string(max) +
                                   "], got " + *text);
        }
        return static_cast<uint64_t>(value);
      }
    }
  } catch (const std::exception&) {
  }
  return KeyError(key, "expected a whole number, got '" + *text + "'");
}

Result<bool> Bool(const YAML::Node& node, const std::string& key) {
  auto text = ScalarText(node, key);
  if (!text) return text.error();
  if (*text == "true") return true;
  if (*text == "false") return false;
  return KeyError(key, "expected true or false, got '" + *text + "'");
}

// A positive duration of at most max, in the unit the caller keeps it in.
template <typename D>
Result<D> PositiveDuration(const YAML::Node& node, const std::string& key, std::chrono::nanoseconds max) {
  auto text = ScalarText(node, key);
  if (!text) return text.error();
  auto parsed = ParseDuration(*text);
  if (!parsed) return KeyError(key, parsed.error().message);
  if (parsed->count() <= 0) return KeyError(key, "must be positive, got " + *text);
  if (*parsed > max) return KeyError(key, "too long: " + *text);
  auto converted = std::chrono::duration_cast<D>(*parsed);
  if (converted.count() == 0 || std::chrono::nanoseconds(converted) != *parsed) {
    return KeyError(key,
                    "must be a whole number of " +
                        std::string(std::is_same_v<D, std::chrono::seconds> ? "seconds" : "milliseconds") +
                        ", got " + *text);
  }
  return converted;
}

constexpr std::chrono::nanoseconds kOneDay = std::chrono::hours(24);

Status ParseRegions(const YAML::Node& node, AggregatorConfig& config) {
  if (!node.IsSequence()) return KeyError("regions", "expected a list of {name, cidrs}");
  std::vector<Cidr> all_cidrs;
  std::set<std::string> names;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string where = "regions[" + std::to_string(i) + "]";
    if (auto ok = CheckKeys(node[i], where, {"name", "cidrs"}); !ok) return ok;
    if (!node[i]["name"]) return KeyError(where + ".name", "missing");
    RegionConfig region;
    auto name = String(node[i]["name"], where + ".name");
    if (!name) return name.error();
    region.name = *name;
    if (!names.insert(region.name).second)
      return KeyError(where + ".name", "region '" + region.name + "' listed twice");
    const YAML::Node cidrs = node[i]["cidrs"];
    if (cidrs) {
      if (!cidrs.IsSequence()) return KeyError(where + ".cidrs", "expected a list of CIDRs");
      for (size_t j = 0; j < cidrs.size(); ++j) {
        const std::string cidr_key = where + ".cidrs[" + std::to_string(j) + "]";
        auto text = String(cidrs[j], cidr_key);
        if (!text) return text.error();
        // Host bits set are refused as on the agent: the same text must mean the same network.
        auto parsed = ParseNetworkCidr(*text);
        if (!parsed) return KeyError(cidr_key, parsed.error().message);
        for (const auto& other : all_cidrs) {
          if (parsed->Overlaps(other)) return KeyError(cidr_key, parsed->text + " overlaps " + other.text);
        }
        all_cidrs.push_back(*parsed);
        region.cidrs.push_back(parsed->text);
      }
    }
    config.regions.push_back(std::move(region));
  }
  return OkStatus();
}

Status ParseThresholds(const YAML::Node& node, VerdictThresholds& t) {
  const std::string w = "thresholds";
  if (auto ok = CheckKeys(node, w,
                          {"degraded_loss", "degraded_rtt_p99", "unreachable_loss", "quorum_fraction",
                           "min_observer_nodes", "replication_staleness"});
      !ok) {
    return ok;
  }
  if (node["degraded_loss"]) {
    auto v = Ratio(node["degraded_loss"], w + ".degraded_loss");
    if (!v) return v.error();
    t.degraded_loss = *v;
  }
  if (node["degraded_rtt_p99"]) {
    auto v = PositiveDuration<std::chrono::milliseconds>(node["degraded_rtt_p99"], w + ".degraded_rtt_p99",
                                                         std::chrono::seconds(100));
    if (!v) return v.error();
    t.degraded_rtt_p99 = *v;
  }
  if (node["unreachable_loss"]) {
    auto v = Ratio(node["unreachable_loss"], w + ".unreachable_loss");
    if (!v) return v.error();
    t.unreachable_loss = *v;
  }
  if (node["quorum_fraction"]) {
    auto v = Ratio(node["quorum_fraction"], w + ".quorum_fraction");
    if (!v) return v.error();
    // Below one half two disjoint minorities could both be "a quorum".
    if (*v < 0.5)
      return KeyError(w + ".quorum_fraction",
                      "must be at least 0.5, got " + node["quorum_fraction"].Scalar());
    t.quorum_fraction = *v;
  }
  if (node["min_observer_nodes"]) {
    // One node's view must never fail a region over, so the floor is two.
    auto v = Unsigned(node["min_observer_nodes"], w + ".min_observer_nodes", 2, 100000);
    if (!v) return v.error();
    t.min_observer_nodes = static_cast<uint32_t>(*v);
  }
  if (node["replication_staleness"]) {
    auto v = PositiveDuration<std::chrono::seconds>(node["replication_staleness"],
                                                    w + ".replication_staleness", kOneDay);
    if (!v) return v.error();
    t.replication_staleness = *v;
  }
  if (t.unreachable_loss < t.degraded_loss) {
    return KeyError(w + ".unreachable_loss", "must not be below thresholds.degraded_loss");
  }
  return OkStatus();
}

Status ParseProbePlan(const YAML::Node& node, ProbePlanConfig& p) {
  const std::string w = "probe_plan";
  if (auto ok = CheckKeys(node, w, {"targets_per_region", "interval", "payload_size", "rotation"}); !ok)
    return ok;
  if (node["targets_per_region"]) {
    auto v = Unsigned(node["targets_per_region"], w + ".targets_per_region", 1, 64);
    if (!v) return v.error();
    p.targets_per_region = static_cast<uint32_t>(*v);
  }
  if (node["interval"]) {
    auto v = PositiveDuration<std::chrono::milliseconds>(node["interval"], w + ".interval",
                                                         std::chrono::seconds(60));
    if (!v) return v.error();
    p.interval = *v;
  }
  if (node["payload_size"]) {
    // STAMP over UDP must fit an unfragmented packet on a tunnel.
    auto v = Unsigned(node["payload_size"], w + ".payload_size", 0, 1400);
    if (!v) return v.error();
    p.payload_size = static_cast<uint32_t>(*v);
  }
  if (node["rotation"]) {
    auto v = PositiveDuration<std::chrono::seconds>(node["rotation"], w + ".rotation", kOneDay);
    if (!v) return v.error();
    p.rotation = *v;
  }
  return OkStatus();
}

Status ParseHistory(const YAML::Node& node, HistoryConfig& h) {
  const std::string w = "history";
  if (auto ok = CheckKeys(node, w, {"path", "max_file_bytes", "max_rotated_files"}); !ok) return ok;
  if (node["path"]) {
    auto v = String(node["path"], w + ".path");
    if (!v) return v.error();
    h.path = *v;
  }
  if (node["max_file_bytes"]) {
    auto text = ScalarText(node["max_file_bytes"], w + ".max_file_bytes");
    if (!text) return text.error();
    auto v = ParseByteSize(*text);
    if (!v) return KeyError(w + ".max_file_bytes", v.error().message);
    // Smaller than one verdict record would rotate on every write.
    if (*v < 4096) return KeyError(w + ".max_file_bytes", "must be at least 4KiB, got " + *text);
    h.max_file_bytes = *v;
  }
  if (node["max_rotated_files"]) {
    auto v = Unsigned(node["max_rotated_files"], w + ".max_rotated_files", 0, 100);
    if (!v) return v.error();
    h.max_rotated_files = static_cast<uint32_t>(*v);
  }
  return OkStatus();
}

Status ParseListen(const YAML::Node& node, AggregatorConfig& config) {
  if (auto ok = CheckKeys(node, "listen", {"grpc", "metrics"}); !ok) return ok;
  for (const auto& [key, target] :
       {std::pair{"grpc", &config.grpc_listen}, std::pair{"metrics", &config.metrics_listen}}) {
    if (!node[key]) continue;
    const std::string full = std::string("listen.") + key;
    auto v = String(node[key], full);
    if (!v) return v.error();
    if (auto ok = ParseHostPort(*v, true); !ok) return KeyError(full, ok.error().message);
    *target = *v;
  }
  return OkStatus();
}

Status ParseTls(const YAML::Node& node, TlsConfig& tls) {
  if (auto ok = CheckKeys(node, "tls", {"cert_file", "key_file", "client_ca_file"}); !ok) return ok;
  for (const auto& [key, target] :
       {std::pair{"cert_file", &tls.cert_file}, std::pair{"key_file", &tls.key_file},
        std::pair{"client_ca_file", &tls.client_ca_file}}) {
    if (!node[key]) continue;
    auto v = String(node[key], std::string("tls.") + key);
    if (!v) return v.error();
    *target = *v;
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return KeyError("tls", "cert_file and key_file go together");
  }
  if (!tls.client_ca_file.empty() && !tls.Enabled()) {
    return KeyError("tls.client_ca_file", "needs cert_file and key_file");
  }
  return OkStatus();
}

bool Contains(const std::vector<RegionConfig>& regions, const std::string& name) {
  for (const auto& region : regions) {
    if (region.name == name) return true;
  }
  return false;
}

Status ParseTopLevel(const YAML::Node& root, AggregatorConfig& config) {
  if (auto ok = CheckKeys(root, "",
                          {"regions", "active_region", "own_region", "thresholds", "hold", "dwell",
                           "matrix_window", "evidence_window", "not_reporting_timeout", "evaluation_interval",
                           "heartbeat_interval", "probe_plan", "history", "listen", "tls", "plaintext"});
      !ok) {
    return ok;
  }
  if (root["regions"]) {
    if (auto ok = ParseRegions(root["regions"], config); !ok) return ok;
  }
  for (const auto& [key, target] :
       {std::pair{"active_region", &config.active_region}, std::pair{"own_region", &config.own_region}}) {
    if (!root[key]) continue;
    auto v = String(root[key], key);
    if (!v) return v.error();
    if (!Contains(config.regions, *v))
      return KeyError(key, "region '" + *v + "' is not listed under regions");
    *target = *v;
  }
  if (!config.regions.empty() && config.active_region.empty()) {
    return KeyError("active_region", "missing: with regions configured, the active one must be named");
  }
  if (root["thresholds"]) {
    if (auto ok = ParseThresholds(root["thresholds"], config.thresholds); !ok) return ok;
  }
  struct SecondsKey {
    const char* key;
    std::chrono::seconds* target;
  };
  for (const SecondsKey& k : {SecondsKey{"hold", &config.hold}, SecondsKey{"dwell", &config.dwell},
                              SecondsKey{"matrix_window", &config.matrix_window},
                              SecondsKey{"evidence_window", &config.evidence_window},
                              SecondsKey{"not_reporting_timeout", &config.not_reporting_timeout}}) {
    if (!root[k.key]) continue;
    auto v = PositiveDuration<std::chrono::seconds>(root[k.key], k.key, kOneDay);
    if (!v) return v.error();
    *k.target = *v;
  }
  struct MillisKey {
    const char* key;
    std::chrono::milliseconds* target;
  };
  for (const MillisKey& k : {MillisKey{"evaluation_interval", &config.evaluation_interval},
                             MillisKey{"heartbeat_interval", &config.heartbeat_interval}}) {
    if (!root[k.key]) continue;
    auto v = PositiveDuration<std::chrono::milliseconds>(root[k.key], k.key, std::chrono::minutes(10));
    if (!v) return v.error();
    *k.target = *v;
  }
  if (root["probe_plan"]) {
    if (auto ok = ParseProbePlan(root["probe_plan"], config.probe_plan); !ok) return ok;
  }
  if (root["history"]) {
    if (auto ok = ParseHistory(root["history"], config.history); !ok) return ok;
  }
  if (root["listen"]) {
    if (auto ok = ParseListen(root["listen"], config); !ok) return ok;
  }
  if (root["tls"]) {
    if (auto ok = ParseTls(root["tls"], config.tls); !ok) return ok;
  }
  if (root["plaintext"]) {
    auto v = Bool(root["plaintext"], "plaintext");
    if (!v) return v.error();
    config.plaintext = *v;
  }
  // The recovery dwell is longer than the hold so a flapping link cannot bounce the verdict.
  if (config.dwell < config.hold) return KeyError("dwell", "must not be shorter than hold");
  if (config.matrix_window < config.not_reporting_timeout) {
    return KeyError("not_reporting_timeout", "must not be longer than matrix_window");
  }
  if (config.matrix_window < config.evidence_window) {
    return KeyError("evidence_window", "must not be longer than matrix_window");
  }
  return OkStatus();
}

}  // namespace

Result<uint64_t> ParseByteSize(const std::string& text) {
  static const std::vector<std::pair<std::string, uint64_t>> kUnits = {
      {"", 1}, {"B", 1}, {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30}};
  const size_t unit_at = text.find_first_not_of("0123456789");
  const std::string number = text.substr(0, unit_at);
  const std::string unit = unit_at == std::string::npos ? "" : text.substr(unit_at);
  if (!number.empty() && number.size() <= 12) {
    for (const auto& [name, factor] : kUnits) {
      if (unit == name) return std::stoull(number) * factor;
    }
  }
  return Error{"expected a size in bytes, optionally with KiB, MiB or GiB, got '" + text + "'"};
}

Result<AggregatorConfig> ParseAggregatorConfig(const std::string& yaml_text) {
  AggregatorConfig config;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Error{"config is not valid YAML: " + std::string(e.what())};
  }
  // An empty file is an empty configuration: every default, no regions.
  if (root.IsNull()) return config;
  try {
    if (auto ok = ParseTopLevel(root, config); !ok) return ok.error();
  } catch (const YAML::Exception& e) {
    return Error{"config: " + std::string(e.what())};
  }
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
         "  --plaintext                serve gRPC without TLS even when TLS files are configured\n";
}

Result<CommandLine> ParseCommandLine(const std::vector<std::string>& args) {
  CommandLine command_line;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> value;
    if (const auto eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    auto take_value = [&]() -> Result<std::string> {
      if (value) return *value;
      if (i + 1 >= args.size()) return Error{flag + " needs a value"};
      return args[++i];
    };
    if (flag == "--help" || flag == "-h") {
      command_line.help = true;
    } else if (flag == "--plaintext") {
      if (value) return Error{"--plaintext takes no value"};
      command_line.plaintext = true;
    } else if (flag == "--config") {
      auto v = take_value();
      if (!v) return v.error();
      command_line.config_file = *v;
    } else if (flag == "--grpc-listen" || flag == "--metrics-listen") {
      auto v = take_value();
      if (!v) return v.error();
      if (auto ok = ParseHostPort(*v, true); !ok) return Error{flag + ": " + ok.error().message};
      (flag == "--grpc-listen" ? command_line.grpc_listen : command_line.metrics_listen) = *v;
    } else {
      return Error{"unknown argument '" + args[i] + "'"};
    }
  }
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

}  // namespace regionpulse
