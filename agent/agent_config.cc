// Agent configuration: YAML file + environment + flags, validated with every problem named.
#include "agent_config.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "common/command_line.h"
#include "common/config_text.h"
#include "probe_codec.h"

extern char** environ;

namespace regionpulse {
namespace {

using std::chrono::nanoseconds;

std::string Quote(const std::string& s) {
  return "\"" + s + "\"";
}

bool ParseUint(const std::string& text, uint64_t* out) {
  if (text.empty() || text.size() > 19) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

bool IsIpLiteral(const std::string& address) {
  in6_addr buf{};
  return inet_pton(AF_INET, address.c_str(), &buf) == 1 || inet_pton(AF_INET6, address.c_str(), &buf) == 1;
}

std::string ReadableFileProblem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ": " + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return path + ": not a regular file";
  if (::access(path.c_str(), R_OK) != 0) return path + ": " + std::strerror(errno);
  return {};
}

class Problems {
 public:
  void Add(const std::string& key, const std::string& problem) { list_.push_back(key + ": " + problem); }
  bool empty() const { return list_.empty(); }
  std::string Joined() const {
    std::string out = "invalid configuration:";
    for (const auto& p : list_) out += "\n  " + p;
    return out;
  }

 private:
  std::vector<std::string> list_;
};

// Typed reads of one YAML map, each naming the full key on failure.
class Section {
 public:
  Section(const YAML::Node& node, std::string prefix, Problems& problems, std::set<std::string> known)
      : node_(node), prefix_(std::move(prefix)), problems_(problems) {
    if (!node_ || node_.IsNull()) return;
    if (!node_.IsMap()) {
      problems_.Add(prefix_.empty() ? "config" : prefix_.substr(0, prefix_.size() - 1), "must be a mapping");
      valid_ = false;
      return;
    }
    for (const auto& entry : node_) {
      const auto name = entry.first.as<std::string>();
      if (!known.count(name)) problems_.Add(prefix_ + name, "unknown key");
    }
  }

  std::string Key(const std::string& name) const { return prefix_ + name; }
  // The value of a key, or a node that tests false when the key (or this section) is absent.
  // Lookups are const: yaml-cpp's non-const operator[] would insert the key.
  YAML::Node Get(const std::string& name) const {
    const YAML::Node& section = node_;
    if (valid_ && section.IsDefined() && section.IsMap()) return section[name];
    static const YAML::Node kEmpty(YAML::NodeType::Map);
    return kEmpty[name];
  }

  void String(const std::string& name, std::string* out) {
    auto v = Get(name);
    if (!v) return;
    if (!v.IsScalar()) return problems_.Add(Key(name), "must be a string");
    *out = v.as<std::string>();
  }
  void Bool(const std::string& name, bool* out) {
    auto v = Get(name);
    if (!v) return;
    bool b = false;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, b)) {
      return problems_.Add(Key(name), Scalar(v) + " is not true or false");
    }
    *out = b;
  }
  template <typename T>
  void Uint(const std::string& name, T* out, uint64_t min, uint64_t max) {
    auto v = Get(name);
    if (!v) return;
    uint64_t n = 0;
    if (!v.IsScalar() || !ParseUint(v.Scalar(), &n)) {
      return problems_.Add(Key(name), Scalar(v) + " is not a whole number");
    }
    if (n < min || n > max) {
      return problems_.Add(
          Key(name), std::to_string(n) + " is outside " + std::to_string(min) + ".." + std::to_string(max));
    }
    *out = static_cast<T>(n);
  }
  void Double(const std::string& name, double* out, double min, double max) {
    auto v = Get(name);
    if (!v) return;
    double d = 0;
    if (!v.IsScalar() || !YAML::convert<double>::decode(v, d) || !std::isfinite(d)) {
      return problems_.Add(Key(name), Scalar(v) + " is not a number");
    }
    if (d < min || d > max) {
      std::ostringstream range;
      range << min << ".." << max;
      return problems_.Add(Key(name), v.Scalar() + " is outside " + range.str());
    }
    *out = d;
  }
  void Duration(const std::string& name, nanoseconds* out, nanoseconds min, nanoseconds max) {
    auto v = Get(name);
    if (!v) return;
    // The agent's own wording (with examples) rather than ParseDuration's: operators read it.
    auto d = v.IsScalar() ? ParseDuration(v.Scalar()) : Result<nanoseconds>(Error{"not a scalar"});
    if (!d)
      return problems_.Add(Key(name), Scalar(v) + " is not a duration (examples: 250us, 100ms, 1s, 10m)");
    if (*d < min || *d > max) {
      return problems_.Add(Key(name),
                           v.Scalar() + " is outside " + FormatDuration(min) + ".." + FormatDuration(max));
    }
    *out = *d;
  }
  void StringList(const std::string& name, std::vector<std::string>* out) {
    auto v = Get(name);
    if (!v) return;
    if (!v.IsSequence()) return problems_.Add(Key(name), "must be a list");
    out->clear();
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].IsScalar()) {
        problems_.Add(Key(name) + "[" + std::to_string(i) + "]", "must be a string");
        continue;
      }
      out->push_back(v[i].as<std::string>());
    }
  }

  static std::string Scalar(const YAML::Node& v) {
    return v.IsScalar() ? Quote(v.Scalar()) : "a non-scalar value";
  }

 private:
  YAML::Node node_;
  std::string prefix_;
  Problems& problems_;
  bool valid_ = true;
};

// Sets a (possibly nested, dot-separated) scalar key, creating maps on the way.
void SetPath(YAML::Node root, const std::string& path, const std::string& value) {
  YAML::Node cur;
  cur.reset(root);
  size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (dot == std::string::npos) {
      cur[part] = value;
      return;
    }
    if (!cur[part] || !cur[part].IsMap()) cur[part] = YAML::Node(YAML::NodeType::Map);
    YAML::Node next = cur[part];
    cur.reset(next);
    start = dot + 1;
  }
}

YAML::Node PeerNode(const std::string& spec, std::string* problem) {
  std::vector<std::string> parts;
  std::string item;
  std::istringstream in(spec);
  while (std::getline(in, item, ',')) parts.push_back(item);
  if (parts.size() < 4 || parts.size() > 5) {
    *problem = Quote(spec) + " is not NODE,REGION,ZONE,ADDRESS[,PORT]";
    return {};
  }
  YAML::Node peer(YAML::NodeType::Map);
  peer["node"] = parts[0];
  peer["region"] = parts[1];
  peer["zone"] = parts[2];
  peer["address"] = parts[3];
  if (parts.size() == 5) peer["port"] = parts[4];
  return peer;
}

// The agent's flags (LoadAgentConfig's comment in agent_config.h says what each does).
const std::vector<FlagSpec>& AgentFlags() {
  static const std::vector<FlagSpec> kFlags = {{"--config"},
                                               {"--node"},
                                               {"--region"},
                                               {"--zone"},
                                               {"--probe-port"},
                                               {"--status-listen"},
                                               {"--log-format"},
                                               {"--log-level"},
                                               {"--report-log"},
                                               {"--aggregator"},
                                               {"--peer"},
                                               {"--set"},
                                               {"--unauthenticated", false},
                                               {"--no-bpf", false}};
  return kFlags;
}

// Applies flags to the YAML tree; unknown flags and malformed values become problems.
void ApplyFlags(YAML::Node root, CommandLineArgs command_line, Problems& problems) {
  static const std::map<std::string, std::string> kScalarFlags = {{"--node", "node"},
                                                                  {"--region", "region"},
                                                                  {"--zone", "zone"},
                                                                  {"--probe-port", "probe.port"},
                                                                  {"--status-listen", "status.listen"},
                                                                  {"--log-format", "log.format"},
                                                                  {"--log-level", "log.level"},
                                                                  {"--report-log", "report_log_file"}};
  command_line.RefusePositional();
  for (const auto& problem : command_line.problems) problems.Add(problem.flag, problem.problem);
  std::vector<std::string> aggregators;
  std::vector<YAML::Node> peers;
  bool aggregators_given = false;
  bool peers_given = false;
  for (const auto& [flag, value] : command_line.flags) {
    if (flag == "--config") {
      continue;  // read by LoadAgentConfig
    } else if (auto it = kScalarFlags.find(flag); it != kScalarFlags.end()) {
      SetPath(root, it->second, value);
    } else if (flag == "--aggregator") {
      aggregators.push_back(value);
      aggregators_given = true;
    } else if (flag == "--peer") {
      std::string problem;
      auto peer = PeerNode(value, &problem);
      if (!problem.empty()) {
        problems.Add("--peer", problem);
      } else {
        peers.push_back(peer);
        peers_given = true;
      }
    } else if (flag == "--unauthenticated") {
      SetPath(root, "probe.authenticated", "false");
      SetPath(root, "probe.allow_unauthenticated", "true");
    } else if (flag == "--no-bpf") {
      SetPath(root, "bpf.enabled", "false");
    } else if (flag == "--set") {
      const auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0) {
        problems.Add("--set", Quote(value) + " is not KEY=VALUE");
      } else {
        SetPath(root, value.substr(0, eq), value.substr(eq + 1));
      }
    }
  }
  if (aggregators_given) {
    YAML::Node list(YAML::NodeType::Sequence);
    for (const auto& a : aggregators) list.push_back(a);
    root["aggregators"] = list;
  }
  if (peers_given) {
    YAML::Node list(YAML::NodeType::Sequence);
    for (const auto& p : peers) list.push_back(p);
    root["static_peers"] = list;
  }
}

std::vector<uint8_t> ReadKey(const std::string& path, std::string* problem) {
  if (auto p = ReadableFileProblem(path); !p.empty()) {
    *problem = p;
    return {};
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Secrets written with `echo` end in a newline that is not part of the key.
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  if (key.size() < 16) {
    *problem =
        path + ": key is " + std::to_string(key.size()) + " bytes, at least 16 are needed for HMAC-SHA-256";
    return {};
  }
  return key;
}

}  // namespace

size_t AgentConfig::ReportBufferWindows() const {
  if (window.count() <= 0) return 1;
  return std::max<size_t>(1, static_cast<size_t>(report_buffer.count() / window.count()));
}

RegionId AgentConfig::RegionIdOf(const std::string& name) const {
  for (size_t i = 0; i < regions.size(); ++i) {
    if (regions[i].name == name) return static_cast<RegionId>(i + 1);
  }
  return 0;
}

std::vector<std::string> AgentConfig::RegionNames() const {
  std::vector<std::string> names;
  for (const auto& r : regions) names.push_back(r.name);
  return names;
}

Environment ProcessEnvironment() {
  Environment env;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

Result<AgentConfig> ParseAgentConfig(const std::string& yaml_text, const Environment& env,
                                     const std::vector<std::string>& flags) {
  Problems problems;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Error{"config: line " + std::to_string(e.mark.line + 1) + ", column " +
                 std::to_string(e.mark.column + 1) + ": " + e.msg};
  }
  if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) return Error{"config: the top level must be a mapping of keys"};

  // Environment (the downward API), then flags, override the file.
  for (const auto& [var, key] : std::vector<std::pair<std::string, std::string>>{
           {"NODE_NAME", "node"}, {"REGION", "region"}, {"ZONE", "zone"}}) {
    if (auto it = env.find(var); it != env.end() && !it->second.empty()) root[key] = it->second;
  }
  ApplyFlags(root, ParseFlags(flags, AgentFlags()), problems);

  AgentConfig c;
  Section top(root, "", problems,
              {"node", "region", "zone", "regions", "probe", "window", "interfaces", "replication_flows",
               "aggregators", "static_peers", "tls", "status", "log", "report_buffer", "bpf", "reconnect",
               "shutdown", "report_log_file"});
  top.String("node", &c.node);
  top.String("region", &c.region);
  top.String("zone", &c.zone);
  if (c.node.empty())
    problems.Add("node", "missing (set node in the file, NODE_NAME in the environment or --node)");
  if (c.region.empty())
    problems.Add("region", "missing (set region in the file, REGION in the environment or --region)");
  if (c.node.size() > 253) problems.Add("node", "longer than 253 characters");

  // Regions: name -> list of CIDRs, in file order (that order is the RegionId).
  if (auto regions = top.Get("regions")) {
    if (!regions.IsMap()) {
      problems.Add("regions", "must map region names to lists of CIDRs");
    } else {
      std::map<std::string, std::string> cidr_owner;
      for (const auto& entry : regions) {
        RegionSpec spec;
        spec.name = entry.first.as<std::string>();
        const std::string key = "regions." + spec.name;
        if (!entry.second.IsSequence() || entry.second.size() == 0) {
          problems.Add(key, "must be a non-empty list of CIDRs");
          continue;
        }
        for (size_t i = 0; i < entry.second.size(); ++i) {
          const std::string item_key = key + "[" + std::to_string(i) + "]";
          if (!entry.second[i].IsScalar()) {
            problems.Add(item_key, "must be a CIDR string");
            continue;
          }
          auto cidr = ParseNetworkCidr(entry.second[i].as<std::string>());
          if (!cidr) {
            problems.Add(item_key, cidr.error().message);
            continue;
          }
          if (auto [it, fresh] = cidr_owner.emplace(cidr->text, spec.name); !fresh) {
            problems.Add(item_key, cidr->text + " is already in region " + it->second);
            continue;
          }
          spec.cidrs.push_back(cidr->text);
        }
        c.regions.push_back(std::move(spec));
      }
    }
  }
  if (!c.regions.empty() && !c.region.empty() && c.RegionIdOf(c.region) == 0) {
    problems.Add("region", Quote(c.region) + " is not in regions");
  }

  Section probe(top.Get("probe"), "probe.", problems,
                {"port", "listen_address", "interval", "jitter", "payload_size", "timeout", "authenticated",
                 "allow_unauthenticated", "key_file", "reflector_session_idle"});
  probe.Uint("port", &c.probe.port, 1, 65535);
  probe.String("listen_address", &c.probe.listen_address);
  if (!IsIpLiteral(c.probe.listen_address)) {
    problems.Add("probe.listen_address", Quote(c.probe.listen_address) + " is not an IP address");
  }
  probe.Duration("interval", &c.probe.interval, std::chrono::milliseconds(1), std::chrono::seconds(60));
  probe.Double("jitter", &c.probe.jitter, 0.0, 0.5);
  probe.Duration("timeout", &c.probe.timeout, std::chrono::milliseconds(1), std::chrono::seconds(60));
  probe.Bool("authenticated", &c.probe.authenticated);
  probe.Bool("allow_unauthenticated", &c.probe.allow_unauthenticated);
  probe.String("key_file", &c.probe.key_file);
  probe.Duration("reflector_session_idle", &c.probe.reflector_session_idle, std::chrono::seconds(1),
                 std::chrono::hours(24));
  probe.Uint("payload_size", &c.probe.payload_size, 0, 9000);
  const StampMode mode = c.probe.authenticated ? StampMode::kAuthenticated : StampMode::kUnauthenticated;
  if (c.probe.payload_size != 0 && c.probe.payload_size < MinimumProbeLength(mode)) {
    problems.Add("probe.payload_size",
                 std::to_string(c.probe.payload_size) + " is below the smallest probe, " +
                     std::to_string(MinimumProbeLength(mode)) + " bytes in " +
                     (c.probe.authenticated ? "authenticated" : "unauthenticated") + " mode");
  }
  if (c.probe.key_file.empty()) {
    if (c.probe.authenticated) {
      problems.Add("probe.key_file",
                   "required when probe.authenticated is true (or run with --unauthenticated)");
    }
  } else {
    std::string problem;
    c.probe.key = ReadKey(c.probe.key_file, &problem);
    if (!problem.empty()) problems.Add("probe.key_file", problem);
  }
  // An agent that sends unauthenticated probes must answer them too, or peers see only loss.
  if (!c.probe.authenticated) c.probe.allow_unauthenticated = true;

  top.Duration("window", &c.window, std::chrono::milliseconds(100), std::chrono::seconds(300));
  top.Duration("report_buffer", &c.report_buffer, std::chrono::seconds(1), std::chrono::hours(24));
  if (c.report_buffer < c.window) {
    problems.Add("report_buffer", FormatDuration(c.report_buffer) + " holds less than one window (" +
                                      FormatDuration(c.window) + ")");
  }

  top.StringList("interfaces", &c.interfaces);
  for (size_t i = 0; i < c.interfaces.size(); ++i) {
    const auto& name = c.interfaces[i];
    if (name.empty() || name.size() > 15 || name.find('/') != std::string::npos) {
      problems.Add("interfaces[" + std::to_string(i) + "]",
                   Quote(name) + " is not an interface name (1-15 characters)");
    }
  }

  if (auto flows = top.Get("replication_flows")) {
    if (!flows.IsSequence()) {
      problems.Add("replication_flows", "must be a list");
    } else {
      std::set<std::string> names;
      for (size_t i = 0; i < flows.size(); ++i) {
        Section f(flows[i], "replication_flows[" + std::to_string(i) + "].", problems,
                  {"name", "ports", "remote_region", "expected_min_rate"});
        ReplicationFlowConfig flow;
        f.String("name", &flow.name);
        if (flow.name.empty()) problems.Add(f.Key("name"), "missing");
        if (!flow.name.empty() && !names.insert(flow.name).second) {
          problems.Add(f.Key("name"), Quote(flow.name) + " is used by another flow");
        }
        if (auto ports = f.Get("ports")) {
          if (!ports.IsSequence() || ports.size() == 0) {
            problems.Add(f.Key("ports"), "must be a non-empty list of TCP ports");
          } else {
            for (size_t j = 0; j < ports.size(); ++j) {
              uint64_t port = 0;
              if (!ports[j].IsScalar() || !ParseUint(ports[j].Scalar(), &port) || port == 0 || port > 65535) {
                problems.Add(f.Key("ports[" + std::to_string(j) + "]"),
                             Section::Scalar(ports[j]) + " is not a port (1-65535)");
              } else {
                flow.ports.push_back(static_cast<uint16_t>(port));
              }
            }
          }
        } else {
          problems.Add(f.Key("ports"), "missing");
        }
        f.String("remote_region", &flow.remote_region);
        if (flow.remote_region.empty()) {
          problems.Add(f.Key("remote_region"), "missing");
        } else if (c.RegionIdOf(flow.remote_region) == 0) {
          problems.Add(f.Key("remote_region"), Quote(flow.remote_region) + " is not in regions");
        }
        if (auto rate = f.Get("expected_min_rate")) {
          auto bps = rate.IsScalar() ? ParseRate(rate.Scalar()) : Result<uint64_t>(Error{"not a scalar"});
          if (!bps) {
            problems.Add(f.Key("expected_min_rate"),
                         Section::Scalar(rate) + " is not a rate (examples: 500kB/s, 10MB/s, 100Mbit/s)");
          } else {
            flow.expected_min_rate_bps = *bps;
          }
        }
        c.replication_flows.push_back(std::move(flow));
      }
    }
  }

  top.StringList("aggregators", &c.aggregators);
  for (size_t i = 0; i < c.aggregators.size(); ++i) {
    if (auto address = ParseHostPort(c.aggregators[i], false); !address) {
      problems.Add("aggregators[" + std::to_string(i) + "]",
                   Quote(c.aggregators[i]) + ": " + address.error().message);
    }
  }

  if (auto peers = top.Get("static_peers")) {
    if (!peers.IsSequence()) {
      problems.Add("static_peers", "must be a list");
    } else {
      std::set<std::string> nodes;
      for (size_t i = 0; i < peers.size(); ++i) {
        Section p(peers[i], "static_peers[" + std::to_string(i) + "].", problems,
                  {"node", "region", "zone", "address", "port"});
        StaticPeer peer;
        p.String("node", &peer.node);
        p.String("region", &peer.region);
        p.String("zone", &peer.zone);
        p.String("address", &peer.address);
        p.Uint("port", &peer.port, 1, 65535);
        if (peer.node.empty()) problems.Add(p.Key("node"), "missing");
        if (!peer.node.empty() && !nodes.insert(peer.node).second) {
          problems.Add(p.Key("node"), Quote(peer.node) + " is listed twice");
        }
        if (peer.region.empty()) {
          problems.Add(p.Key("region"), "missing");
        } else if (!c.regions.empty() && c.RegionIdOf(peer.region) == 0) {
          problems.Add(p.Key("region"), Quote(peer.region) + " is not in regions");
        }
        if (peer.address.empty()) {
          problems.Add(p.Key("address"), "missing");
        } else if (!IsIpLiteral(peer.address)) {
          problems.Add(p.Key("address"), Quote(peer.address) + " is not an IPv4 or IPv6 address");
        }
        c.static_peers.push_back(std::move(peer));
      }
    }
  }

  Section tls(top.Get("tls"), "tls.", problems, {"cert_file", "key_file", "ca_file"});
  tls.String("cert_file", &c.tls.cert_file);
  tls.String("key_file", &c.tls.key_file);
  tls.String("ca_file", &c.tls.ca_file);
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) {
    problems.Add(c.tls.cert_file.empty() ? "tls.cert_file" : "tls.key_file",
                 "missing (tls.cert_file and tls.key_file go together)");
  }
  for (const auto& [key, path] :
       {std::pair{"tls.cert_file", c.tls.cert_file}, std::pair{"tls.key_file", c.tls.key_file},
        std::pair{"tls.ca_file", c.tls.ca_file}}) {
    if (path.empty()) continue;
    if (auto problem = ReadableFileProblem(path); !problem.empty()) problems.Add(key, problem);
  }

  Section status(top.Get("status"), "status.", problems, {"listen"});
  status.String("listen", &c.status_listen);
  if (auto address = ParseHostPort(c.status_listen, true); !address) {
    problems.Add("status.listen", Quote(c.status_listen) + ": " + address.error().message);
  }

  Section log(top.Get("log"), "log.", problems, {"format", "level"});
  std::string format = "text";
  log.String("format", &format);
  if (format == "text") {
    c.log_format = LogFormat::kText;
  } else if (format == "json") {
    c.log_format = LogFormat::kJson;
  } else {
    problems.Add("log.format", Quote(format) + " is not text or json");
  }
  log.String("level", &c.log_level);
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (!kLevels.count(c.log_level)) {
    problems.Add("log.level",
                 Quote(c.log_level) + " is not one of trace, debug, info, warn, error, critical, off");
  }

  Section bpf(top.Get("bpf"), "bpf.", problems,
              {"enabled", "cgroup_path", "prefer_tcx", "max_tracked_flow_connections"});
  bpf.Bool("enabled", &c.bpf_enabled);
  bpf.String("cgroup_path", &c.cgroup_path);
  bpf.Bool("prefer_tcx", &c.prefer_tcx);
  bpf.Uint("max_tracked_flow_connections", &c.max_tracked_flow_connections, 1, 1U << 20);

  Section reconnect(top.Get("reconnect"), "reconnect.", problems,
                    {"initial", "max", "keepalive", "keepalive_timeout", "connect_timeout"});
  reconnect.Duration("initial", &c.reconnect_initial, std::chrono::milliseconds(10),
                     std::chrono::minutes(10));
  reconnect.Duration("max", &c.reconnect_max, std::chrono::milliseconds(10), std::chrono::hours(1));
  // gRPC servers answer pings more often than their ping policy allows (the aggregator
  // permits one per 5 s) with GOAWAY, hence the floor.
  reconnect.Duration("keepalive", &c.keepalive_interval, std::chrono::seconds(5), std::chrono::hours(1));
  reconnect.Duration("keepalive_timeout", &c.keepalive_timeout, std::chrono::milliseconds(100),
                     std::chrono::minutes(5));
  reconnect.Duration("connect_timeout", &c.connect_timeout, std::chrono::milliseconds(100),
                     std::chrono::minutes(5));
  Section shutdown(top.Get("shutdown"), "shutdown.", problems, {"flush_timeout"});
  shutdown.Duration("flush_timeout", &c.shutdown_flush_timeout, std::chrono::milliseconds(0),
                    std::chrono::minutes(5));
  if (c.reconnect_initial > c.reconnect_max) {
    problems.Add("reconnect.initial", FormatDuration(c.reconnect_initial) + " exceeds reconnect.max (" +
                                          FormatDuration(c.reconnect_max) + ")");
  }
  top.String("report_log_file", &c.report_log_file);

  if (!problems.empty()) return Error{problems.Joined()};
  return c;
}

Result<AgentConfig> LoadAgentConfig(int argc, const char* const* argv, const Environment& env) {
  const std::vector<std::string> flags =
      argc > 1 ? std::vector<std::string>(argv + 1, argv + argc) : std::vector<std::string>();
  std::string path;
  if (auto it = env.find("REGIONPULSE_CONFIG"); it != env.end()) path = it->second;
  for (const auto& [flag, value] : ParseFlags(flags, AgentFlags()).flags) {
    if (flag == "--config") path = value;
  }
  std::string text;
  if (!path.empty()) {
    std::ifstream in(path);
    if (!in) return Error{"--config " + path, errno};
    std::ostringstream content;
    content << in.rdbuf();
    text = content.str();
  }
  return ParseAgentConfig(text, env, flags);
}

DatapathConfig ToDatapathConfig(const AgentConfig& config) {
  DatapathConfig d;
  d.probe_port = config.probe.port;
  for (size_t i = 0; i < config.regions.size(); ++i) {
    for (const auto& cidr : config.regions[i].cidrs)
      d.region_cidrs.push_back({cidr, static_cast<RegionId>(i + 1)});
  }
  for (const auto& flow : config.replication_flows) {
    d.flows.push_back(
        {flow.name, flow.ports, config.RegionIdOf(flow.remote_region), flow.expected_min_rate_bps});
  }
  d.interfaces = config.interfaces;
  d.cgroup_path = config.cgroup_path;
  d.prefer_tcx = config.prefer_tcx;
  d.max_tracked_flow_connections = config.max_tracked_flow_connections;
  return d;
}

}  // namespace regionpulse
