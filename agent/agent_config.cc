// Agent configuration: YAML file + environment + flags, read with the shared reader
// (common/config_reader.h), one function per section, every problem named.
#include "agent/agent_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "agent/plan_check.h"
#include "agent/probe_codec.h"
#include "bpf/regionpulse_shared.h"
#include "common/command_line.h"
#include "common/config_reader.h"
#include "common/config_text.h"
#include "common/report_validation.h"

extern char** environ;

namespace regionpulse {
namespace {

std::string Quote(const std::string& s) {
  return "\"" + s + "\"";
}

std::string ReadableFileProblem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ": " + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return path + ": not a regular file";
  if (::access(path.c_str(), R_OK) != 0) return path + ": " + std::strerror(errno);
  return {};
}

// Sets a (possibly nested, dot-separated) scalar key, creating maps on the way. A value on
// the way that is not a mapping is left alone: reading it reports that it must be one.
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
    if (!cur[part] || cur[part].IsNull()) cur[part] = YAML::Node(YAML::NodeType::Map);
    if (!cur[part].IsMap()) return;
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
void ApplyFlags(YAML::Node root, CommandLineArgs command_line, ConfigProblems& problems) {
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

// The downward API's variables, each the value of a key.
void ApplyEnvironment(YAML::Node root, const Environment& env) {
  auto value = [&](const std::string& name) -> std::string {
    auto it = env.find(name);
    return it == env.end() ? "" : it->second;
  };
  for (const auto& [var, key] : std::vector<std::pair<std::string, std::string>>{
           {"NODE_NAME", "node"}, {"REGION", "region"}, {"ZONE", "zone"}}) {
    if (!value(var).empty()) SetPath(root, key, value(var));
  }
  // status.hostIP as HOST_IP; with hostNetwork, status.podIP is the same address.
  const std::string host_ip = !value("HOST_IP").empty() ? value("HOST_IP") : value("POD_IP");
  if (!host_ip.empty()) SetPath(root, "probe.advertise_address", host_ip);
}

void ReadIdentity(const ConfigSection& top, AgentConfig& c) {
  top.String("node", &c.node);
  top.String("region", &c.region);
  top.String("zone", &c.zone);
  if (c.node.empty())
    top.Problem("node", "missing (set node in the file, NODE_NAME in the environment or --node)");
  if (c.region.empty()) {
    top.Problem("region", "missing (set region in the file, REGION in the environment or --region)");
  }
  if (c.node.size() > 253) top.Problem("node", "longer than 253 characters");
}

// The order of the list is the RegionId the BPF maps carry: 1..RP_MAX_REGIONS-1, 0 being
// "no region matched".
void ReadRegions(const ConfigSection& top, AgentConfig& c) {
  RegionListLimits limits;
  limits.max_regions = RP_MAX_REGIONS - 1;
  limits.max_regions_reason = "region ids 1.." + std::to_string(RP_MAX_REGIONS - 1) + " in the BPF maps";
  limits.max_cidrs_per_family = RP_MAX_REGION_CIDRS;
  limits.max_cidrs_reason = "the size of the BPF region LPM tries";
  c.regions = ReadRegionList(top, "regions", limits);
  if (!c.regions.empty() && !c.region.empty() && c.RegionIdOf(c.region) == 0) {
    top.Problem("region", Quote(c.region) + " is not in regions");
  }
}

void ReadProbe(const ConfigSection& top, AgentConfig& c) {
  const ConfigSection probe = top.Section(
      "probe", {"port", "listen_address", "advertise_address", "interval", "jitter", "payload_size",
                "timeout", "authenticated", "allow_unauthenticated", "key_file", "reflector_session_idle",
                "accepted_key_files", "allowed_target_cidrs", "plan_limits", "reflector_limits"});
  probe.Unsigned("port", &c.probe.port, 1, 65535);
  probe.String("listen_address", &c.probe.listen_address);
  if (!IsIpAddress(c.probe.listen_address)) {
    probe.Problem("listen_address", Quote(c.probe.listen_address) + " is not an IP address");
  }
  probe.String("advertise_address", &c.probe.advertise_address);
  if (!c.probe.advertise_address.empty() && !IsIpAddress(c.probe.advertise_address)) {
    probe.Problem("advertise_address", Quote(c.probe.advertise_address) + " is not an IP address");
  }
  probe.Duration("interval", &c.probe.interval, std::chrono::milliseconds(1), std::chrono::seconds(60));
  probe.Number("jitter", &c.probe.jitter, 0.0, 0.5);
  probe.Duration("timeout", &c.probe.timeout, std::chrono::milliseconds(1), std::chrono::seconds(60));
  probe.Bool("authenticated", &c.probe.authenticated);
  probe.Bool("allow_unauthenticated", &c.probe.allow_unauthenticated);
  probe.String("key_file", &c.probe.key_file);
  probe.Duration("reflector_session_idle", &c.probe.reflector_session_idle, std::chrono::seconds(1),
                 std::chrono::hours(24));
  probe.Unsigned("payload_size", &c.probe.payload_size, 0, 9000);
  const StampMode mode = c.probe.authenticated ? StampMode::kAuthenticated : StampMode::kUnauthenticated;
  if (c.probe.payload_size != 0 && c.probe.payload_size < MinimumProbeLength(mode)) {
    probe.Problem("payload_size", std::to_string(c.probe.payload_size) + " is below the smallest probe, " +
                                      std::to_string(MinimumProbeLength(mode)) + " bytes in " +
                                      (c.probe.authenticated ? "authenticated" : "unauthenticated") +
                                      " mode");
  }
  if (c.probe.key_file.empty()) {
    if (c.probe.authenticated) {
      probe.Problem("key_file", "required when probe.authenticated is true (or run with --unauthenticated)");
    }
  } else {
    std::string problem;
    c.probe.key = ReadKey(c.probe.key_file, &problem);
    if (!problem.empty()) probe.Problem("key_file", problem);
  }
  if (probe.StringList("accepted_key_files", &c.probe.accepted_key_files)) {
    // A rotation needs one more key; a few allow overlapping ones. Each costs an HMAC only for
    // probes that name it.
    constexpr size_t kMaxAcceptedKeys = 3;
    if (c.probe.accepted_key_files.size() > kMaxAcceptedKeys) {
      probe.Problem("accepted_key_files", std::to_string(c.probe.accepted_key_files.size()) +
                                              " files, at most " + std::to_string(kMaxAcceptedKeys));
    }
    if (!c.probe.accepted_key_files.empty() && c.probe.key_file.empty()) {
      probe.Problem("accepted_key_files", "set without probe.key_file");
    }
    for (size_t i = 0; i < c.probe.accepted_key_files.size(); ++i) {
      std::string problem;
      auto key = ReadKey(c.probe.accepted_key_files[i], &problem);
      if (!problem.empty()) {
        probe.Problem("accepted_key_files[" + std::to_string(i) + "]", problem);
      } else if (KeyIdOf(key) == KeyIdOf(c.probe.key) && key != c.probe.key) {
        probe.Problem("accepted_key_files[" + std::to_string(i) + "]",
                      "its key id collides with key_file's; generate another key");
      } else {
        c.probe.accepted_keys.push_back(std::move(key));
      }
    }
  }
  // An agent that sends unauthenticated probes must answer them too, or peers see only loss.
  if (!c.probe.authenticated) c.probe.allow_unauthenticated = true;

  c.probe.allowed_target_cidrs = DefaultAllowedTargetCidrs();
  if (probe.StringList("allowed_target_cidrs", &c.probe.allowed_target_cidrs)) {
    for (size_t i = 0; i < c.probe.allowed_target_cidrs.size(); ++i) {
      if (auto cidr = ParseNetworkCidr(c.probe.allowed_target_cidrs[i]); !cidr.ok()) {
        probe.Problem("allowed_target_cidrs[" + std::to_string(i) + "]", cidr.error().ToString());
      }
    }
  }
  const ConfigSection plan =
      probe.Section("plan_limits", {"min_interval", "max_payload_size", "max_targets"});
  plan.Duration("min_interval", &c.probe.plan_min_interval, std::chrono::milliseconds(1),
                std::chrono::seconds(60));
  plan.Unsigned("max_payload_size", &c.probe.plan_max_payload_size,
                MinimumProbeLength(StampMode::kAuthenticated), 9000);
  // A path per target goes into every report: more targets than a report may carry would make
  // the agent refuse its own reports.
  plan.Unsigned("max_targets", &c.probe.plan_max_targets, 1, ReportLimits{}.max_paths);
  const ConfigSection limits = probe.Section(
      "reflector_limits", {"rate_per_source", "burst_per_source", "max_sources", "max_clock_offset"});
  limits.Number("rate_per_source", &c.probe.reflector_rate_per_source, 1, 1e6);
  limits.Number("burst_per_source", &c.probe.reflector_burst_per_source, 1, 1e7);
  limits.Unsigned("max_sources", &c.probe.reflector_max_sources, 1, 10'000'000);
  limits.Duration("max_clock_offset", &c.probe.reflector_max_clock_offset, std::chrono::seconds(1),
                  std::chrono::hours(24));
}

void ReadWindows(const ConfigSection& top, AgentConfig& c) {
  top.Duration("window", &c.window, std::chrono::milliseconds(100), std::chrono::seconds(300));
  top.Duration("report_buffer", &c.report_buffer, std::chrono::seconds(1), std::chrono::hours(24));
  if (c.report_buffer < c.window) {
    top.Problem("report_buffer", FormatDuration(c.report_buffer) + " holds less than one window (" +
                                     FormatDuration(c.window) + ")");
  }
}

void ReadInterfaces(const ConfigSection& top, AgentConfig& c) {
  top.StringList("interfaces", &c.interfaces);
  for (size_t i = 0; i < c.interfaces.size(); ++i) {
    const auto& name = c.interfaces[i];
    if (name.empty() || name.size() > 15 || name.find('/') != std::string::npos) {
      top.problems().Add("interfaces[" + std::to_string(i) + "]",
                         Quote(name) + " is not an interface name (1-15 characters)");
    }
  }
}

// Each {port, remote region} is one entry of the BPF hash rp_flow_ports (RP_MAX_FLOW_PORTS
// entries) pointing at one flow, so a port is in one flow per region; the flows' counters
// are arrays of RP_MAX_FLOWS.
void ReadReplicationFlows(const ConfigSection& top, AgentConfig& c) {
  if (const YAML::Node flows = top.Get("replication_flows");
      flows.IsSequence() && flows.size() > RP_MAX_FLOWS) {
    top.Problem("replication_flows", std::to_string(flows.size()) + " flows; at most " +
                                         std::to_string(RP_MAX_FLOWS) + " (the BPF flow counter arrays)");
  }
  std::set<std::string> names;
  std::map<std::pair<uint64_t, std::string>, std::string> port_owner;  // {port, region} -> flow
  top.ForEachSection(
      "replication_flows", {"name", "ports", "remote_region", "expected_min_rate"},
      [&](const ConfigSection& f) {
        ReplicationFlowConfig flow;
        f.String("name", &flow.name);
        if (flow.name.empty()) f.Problem("name", "missing");
        if (!flow.name.empty() && !names.insert(flow.name).second) {
          f.Problem("name", Quote(flow.name) + " is used by another flow");
        }
        f.String("remote_region", &flow.remote_region);
        if (flow.remote_region.empty()) {
          f.Problem("remote_region", "missing");
        } else if (c.RegionIdOf(flow.remote_region) == 0) {
          f.Problem("remote_region", Quote(flow.remote_region) + " is not in regions");
        }
        const YAML::Node ports = f.Get("ports");
        if (!ports.IsDefined()) {
          f.Problem("ports", "missing");
        } else if (!ports.IsSequence() || ports.size() == 0) {
          f.Problem("ports", "must be a non-empty list of TCP ports");
        } else {
          for (size_t j = 0; j < ports.size(); ++j) {
            const std::string key = f.Key("ports") + "[" + std::to_string(j) + "]";
            auto port =
                ports[j].IsScalar() ? ParseWholeNumber(ports[j].Scalar()) : Result<uint64_t>(Error{""});
            if (!port || *port == 0 || *port > 65535) {
              top.problems().Add(key, DescribeValue(ports[j]) + " is not a port (1-65535)");
              continue;
            }
            const auto [owner, fresh] = port_owner.emplace(std::pair{*port, flow.remote_region}, flow.name);
            if (!fresh) {
              top.problems().Add(key, "port " + std::to_string(*port) + " towards " + flow.remote_region +
                                          " is already in flow " + Quote(owner->second) +
                                          " (one flow per port and region)");
              continue;
            }
            flow.ports.push_back(static_cast<uint16_t>(*port));
          }
        }
        f.Rate("expected_min_rate", &flow.expected_min_rate_bps);
        c.replication_flows.push_back(std::move(flow));
      });
  if (port_owner.size() > RP_MAX_FLOW_PORTS) {
    top.Problem("replication_flows", std::to_string(port_owner.size()) + " ports in all flows; at most " +
                                         std::to_string(RP_MAX_FLOW_PORTS) + " (the BPF flow port map)");
  }
}

void ReadAggregators(const ConfigSection& top, AgentConfig& c) {
  top.StringList("aggregators", &c.aggregators);
  for (size_t i = 0; i < c.aggregators.size(); ++i) {
    if (auto address = ParseHostPort(c.aggregators[i], false); !address) {
      top.problems().Add("aggregators[" + std::to_string(i) + "]",
                         Quote(c.aggregators[i]) + ": " + address.error().message);
    }
  }
}

void ReadStaticPeers(const ConfigSection& top, AgentConfig& c) {
  std::set<std::string> nodes;
  top.ForEachSection("static_peers", {"node", "region", "zone", "address", "port"},
                     [&](const ConfigSection& p) {
                       StaticPeer peer;
                       p.String("node", &peer.node);
                       p.String("region", &peer.region);
                       p.String("zone", &peer.zone);
                       p.String("address", &peer.address);
                       p.Unsigned("port", &peer.port, 1, 65535);
                       if (peer.node.empty()) p.Problem("node", "missing");
                       if (!peer.node.empty() && !nodes.insert(peer.node).second) {
                         p.Problem("node", Quote(peer.node) + " is listed twice");
                       }
                       if (peer.region.empty()) {
                         p.Problem("region", "missing");
                       } else if (!c.regions.empty() && c.RegionIdOf(peer.region) == 0) {
                         p.Problem("region", Quote(peer.region) + " is not in regions");
                       }
                       if (peer.address.empty()) {
                         p.Problem("address", "missing");
                       } else if (!IsIpAddress(peer.address)) {
                         p.Problem("address", Quote(peer.address) + " is not an IPv4 or IPv6 address");
                       }
                       c.static_peers.push_back(std::move(peer));
                     });
}

void ReadTls(const ConfigSection& top, AgentConfig& c) {
  const ConfigSection tls = top.Section("tls", {"cert_file", "key_file", "ca_file"});
  tls.String("cert_file", &c.tls.cert_file);
  tls.String("key_file", &c.tls.key_file);
  tls.String("ca_file", &c.tls.ca_file);
  tls.Together("cert_file", !c.tls.cert_file.empty(), "key_file", !c.tls.key_file.empty());
  for (const auto& [key, path] :
       {std::pair{"cert_file", c.tls.cert_file}, std::pair{"key_file", c.tls.key_file},
        std::pair{"ca_file", c.tls.ca_file}}) {
    if (path.empty()) continue;
    if (auto problem = ReadableFileProblem(path); !problem.empty()) tls.Problem(key, problem);
  }
}

void ReadStatusAndLog(const ConfigSection& top, AgentConfig& c) {
  const ConfigSection status = top.Section(
      "status", {"listen", "read_timeout", "write_timeout", "max_connections", "max_request_bytes"});
  status.String("listen", &c.status_listen);
  if (auto address = ParseHostPort(c.status_listen, true); !address) {
    status.Problem("listen", Quote(c.status_listen) + ": " + address.error().message);
  }
  // The same ranges as the aggregator's limits.status_*: below 100 ms a slow scraper on a
  // busy node is cut off; a request beyond 1 MiB is never a GET.
  StatusServerLimits& limits = c.status_limits;
  status.Duration("read_timeout", &limits.read_timeout, std::chrono::milliseconds(100),
                  std::chrono::minutes(10));
  status.Duration("write_timeout", &limits.write_timeout, std::chrono::milliseconds(100),
                  std::chrono::minutes(10));
  status.Unsigned("max_connections", &limits.max_connections, 1, 100'000);
  uint64_t max_request_bytes = limits.max_request_bytes;
  if (status.ByteSize("max_request_bytes", &max_request_bytes, 1024)) {
    if (max_request_bytes > 1024 * 1024) {
      status.Problem("max_request_bytes", std::to_string(max_request_bytes) + " bytes exceeds 1MiB");
    } else {
      limits.max_request_bytes = static_cast<size_t>(max_request_bytes);
    }
  }

  const ConfigSection log = top.Section("log", {"format", "level"});
  std::string format = "text";
  log.String("format", &format);
  if (format == "text") {
    c.log_format = LogFormat::kText;
  } else if (format == "json") {
    c.log_format = LogFormat::kJson;
  } else {
    log.Problem("format", Quote(format) + " is not text or json");
  }
  log.String("level", &c.log_level);
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (!kLevels.contains(c.log_level)) {
    log.Problem("level",
                Quote(c.log_level) + " is not one of trace, debug, info, warn, error, critical, off");
  }
  top.String("report_log_file", &c.report_log_file);
  std::string report_log_format = "json";
  top.String("report_log_format", &report_log_format);
  if (report_log_format == "json") {
    c.report_log_format = ReportLogFormat::kJson;
  } else if (report_log_format == "binary") {
    c.report_log_format = ReportLogFormat::kBinary;
  } else {
    top.Problem("report_log_format", Quote(report_log_format) + " is not json or binary");
  }
}

void ReadBpf(const ConfigSection& top, AgentConfig& c) {
  const ConfigSection bpf =
      top.Section("bpf", {"enabled", "cgroup_path", "prefer_tcx", "max_tracked_flow_connections"});
  bpf.Bool("enabled", &c.bpf_enabled);
  bpf.String("cgroup_path", &c.cgroup_path);
  bpf.Bool("prefer_tcx", &c.prefer_tcx);
  bpf.Unsigned("max_tracked_flow_connections", &c.max_tracked_flow_connections, 1, 1U << 20);
}

void ReadReconnect(const ConfigSection& top, AgentConfig& c) {
  const ConfigSection reconnect =
      top.Section("reconnect", {"initial", "max", "keepalive", "keepalive_timeout", "connect_timeout"});
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
  if (c.reconnect_initial > c.reconnect_max) {
    reconnect.Problem("initial", FormatDuration(c.reconnect_initial) + " exceeds reconnect.max (" +
                                     FormatDuration(c.reconnect_max) + ")");
  }
  const ConfigSection shutdown = top.Section("shutdown", {"flush_timeout"});
  shutdown.Duration("flush_timeout", &c.shutdown_flush_timeout, std::chrono::milliseconds(0),
                    std::chrono::minutes(5));
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
  auto document = LoadConfigDocument(yaml_text);
  if (!document) return document.error();
  YAML::Node root = *document;
  if (!root.IsMap()) return Error{"config: the top level must be a mapping of keys"};

  ConfigProblems problems;
  // Environment (the downward API), then flags, override the file.
  ApplyEnvironment(root, env);
  ApplyFlags(root, ParseFlags(flags, AgentFlags()), problems);

  AgentConfig c;
  const ConfigSection top(
      root, "", problems,
      {"node", "region", "zone", "regions", "probe", "window", "interfaces", "replication_flows",
       "aggregators", "static_peers", "tls", "status", "log", "report_buffer", "bpf", "reconnect", "shutdown",
       "report_log_file", "report_log_format"});
  ReadIdentity(top, c);
  ReadRegions(top, c);
  ReadProbe(top, c);
  ReadWindows(top, c);
  ReadInterfaces(top, c);
  ReadReplicationFlows(top, c);
  ReadAggregators(top, c);
  ReadStaticPeers(top, c);
  if (c.static_peers.size() + c.probe.plan_max_targets > ReportLimits{}.max_paths) {
    top.Problem("static_peers", std::to_string(c.static_peers.size()) +
                                    " peers beside probe.plan_limits.max_targets " +
                                    std::to_string(c.probe.plan_max_targets) + " exceed the " +
                                    std::to_string(ReportLimits{}.max_paths) + " paths a report carries");
  }
  ReadTls(top, c);
  ReadStatusAndLog(top, c);
  ReadBpf(top, c);
  ReadReconnect(top, c);
  if (!problems.empty()) return problems.ToError();
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

}  // namespace regionpulse
