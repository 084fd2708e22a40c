// Parsing and checking of the WAN emulator's YAML configuration.
#include "tools/wan_emulator/wan_config.h"

#include <arpa/inet.h>

#include <cerrno>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "common/config_text.h"

namespace regionpulse::wan {
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
      for (const auto& k : known) {
        if (!list.empty()) list += ", ";
        list += k;
      }
      return KeyError(Join(where, key), "unknown key (known here: " + list + ")");
    }
  }
  return OkStatus();
}

Result<std::string> Text(const YAML::Node& node, const std::string& key) {
  if (!node) return KeyError(key, "missing");
  if (!node.IsScalar()) return KeyError(key, "expected a single value");
  if (node.Scalar().empty()) return KeyError(key, "must not be empty");
  return node.Scalar();
}

Result<uint64_t> Unsigned(const YAML::Node& node, const std::string& key, uint64_t min, uint64_t max) {
  auto text = Text(node, key);
  if (!text) return text.error();
  if (text->size() <= 19 && text->find_first_not_of("0123456789") == std::string::npos) {
    const uint64_t value = std::stoull(*text);
    if (value >= min && value <= max) return value;
    return KeyError(
        key, "expected a value in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + *text);
  }
  return KeyError(key, "expected a whole number, got '" + *text + "'");
}

Result<uint64_t> ByteSize(const YAML::Node& node, const std::string& key) {
  auto text = Text(node, key);
  if (!text) return text.error();
  static const std::vector<std::pair<std::string, uint64_t>> kUnits = {
      {"", 1}, {"B", 1}, {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30}};
  const size_t unit_at = text->find_first_not_of("0123456789");
  const std::string number = text->substr(0, unit_at);
  const std::string unit = unit_at == std::string::npos ? "" : text->substr(unit_at);
  if (!number.empty() && number.size() <= 12) {
    for (const auto& [name, factor] : kUnits) {
      if (unit == name) {
        const uint64_t bytes = std::stoull(number) * factor;
        // One datagram of the largest size must fit, or a direction would drop everything.
        if (bytes < 65536) return KeyError(key, "must be at least 64KiB, got " + *text);
        return bytes;
      }
    }
  }
  return KeyError(key, "expected a size in bytes, optionally with KiB, MiB or GiB, got '" + *text + "'");
}

bool IsIpLiteral(const std::string& text) {
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 || inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

Status ParseNodes(const YAML::Node& node, WanConfig& config) {
  if (!node) return KeyError("nodes", "missing");
  if (!node.IsSequence() || node.size() == 0)
    return KeyError("nodes", "expected a list of {name, region, endpoint}");
  std::set<std::string> endpoints;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string where = "nodes[" + std::to_string(i) + "]";
    if (auto ok = CheckKeys(node[i], where, {"name", "region", "endpoint"}); !ok) return ok;
    NodeConfig n;
    for (auto [key, target] : {std::pair{"name", &n.name}, std::pair{"region", &n.region}}) {
      auto text = Text(node[i][key], where + "." + key);
      if (!text) return text.error();
      if (!IsValidName(*text)) {
        return KeyError(where + "." + key,
                        "'" + *text + "' is not 1-63 characters of letters, digits, '.', '_', '-'");
      }
      *target = *text;
    }
    if (config.NodeIndex(n.name)) return KeyError(where + ".name", "node '" + n.name + "' listed twice");
    auto endpoint_text = Text(node[i]["endpoint"], where + ".endpoint");
    if (!endpoint_text) return endpoint_text.error();
    auto endpoint = ParseHostPort(*endpoint_text, /*allow_port_zero=*/false);
    if (!endpoint) return KeyError(where + ".endpoint", endpoint.error().message);
    // A literal: the relay matches senders by address, and a name could resolve differently later.
    if (!IsIpLiteral(endpoint->host)) {
      return KeyError(where + ".endpoint", "expected an IP address, got '" + endpoint->host + "'");
    }
    if (!endpoints.insert(*endpoint_text).second) {
      return KeyError(where + ".endpoint", *endpoint_text + " is already another node's endpoint");
    }
    n.endpoint_ip = endpoint->host;
    n.endpoint_port = endpoint->port;
    if (!config.RegionIndex(n.region)) config.regions.push_back(n.region);
    config.nodes.push_back(std::move(n));
  }
  return OkStatus();
}

struct PortRange {
  uint32_t first = 0;
  uint32_t last = 0;
};

Result<PortRange> ParsePortRange(const YAML::Node& node) {
  auto text = Text(node, "port_range");
  if (!text) return text.error();
  const size_t dash = text->find('-');
  const std::string first = text->substr(0, dash);
  const std::string last = dash == std::string::npos ? "" : text->substr(dash + 1);
  auto is_port = [](const std::string& s) {
    return !s.empty() && s.size() <= 5 && s.find_first_not_of("0123456789") == std::string::npos &&
           std::stoul(s) >= 1 && std::stoul(s) <= 65535;
  };
  if (!is_port(first) || !is_port(last) || std::stoul(first) > std::stoul(last)) {
    return KeyError("port_range",
                    "expected FIRST-LAST with 1 <= FIRST <= LAST <= 65535, got '" + *text + "'");
  }
  return PortRange{static_cast<uint32_t>(std::stoul(first)), static_cast<uint32_t>(std::stoul(last))};
}

Status ParseLinks(const YAML::Node& node, const std::optional<PortRange>& range, WanConfig& config) {
  std::set<std::pair<size_t, size_t>> pairs;
  std::vector<std::optional<std::pair<uint16_t, uint16_t>>> explicit_ports;
  if (node) {
    if (!node.IsSequence() || node.size() == 0) {
      return KeyError("links", "expected a list of {a, b, port_for_a, port_for_b}");
    }
    for (size_t i = 0; i < node.size(); ++i) {
      const std::string where = "links[" + std::to_string(i) + "]";
      if (auto ok = CheckKeys(node[i], where, {"a", "b", "port_for_a", "port_for_b"}); !ok) return ok;
      LinkConfig link;
      for (auto [key, target] : {std::pair{"a", &link.a}, std::pair{"b", &link.b}}) {
        auto name = Text(node[i][key], where + "." + key);
        if (!name) return name.error();
        auto index = config.NodeIndex(*name);
        if (!index) return KeyError(where + "." + key, "no node named '" + *name + "'");
        *target = *index;
      }
      if (link.a == link.b) return KeyError(where + ".b", "a link joins two different nodes");
      if (!pairs.insert(std::minmax(link.a, link.b)).second) {
        return KeyError(where, "the link " + config.nodes[link.a].name + " - " + config.nodes[link.b].name +
                                   " is listed twice");
      }
      const bool has_a = static_cast<bool>(node[i]["port_for_a"]);
      const bool has_b = static_cast<bool>(node[i]["port_for_b"]);
      if (has_a != has_b) return KeyError(where, "give both port_for_a and port_for_b, or neither");
      if (has_a) {
        auto pa = Unsigned(node[i]["port_for_a"], where + ".port_for_a", 0, 65535);
        if (!pa) return pa.error();
        auto pb = Unsigned(node[i]["port_for_b"], where + ".port_for_b", 0, 65535);
        if (!pb) return pb.error();
        explicit_ports.emplace_back(std::pair{static_cast<uint16_t>(*pa), static_cast<uint16_t>(*pb)});
      } else {
        explicit_ports.emplace_back(std::nullopt);
      }
      config.links.push_back(link);
    }
  } else {
    // Every pair of nodes in different regions, in the order the nodes are listed.
    for (size_t a = 0; a < config.nodes.size(); ++a) {
      for (size_t b = a + 1; b < config.nodes.size(); ++b) {
        if (config.nodes[a].region == config.nodes[b].region) continue;
        config.links.push_back(LinkConfig{a, b, 0, 0});
        explicit_ports.emplace_back(std::nullopt);
      }
    }
    if (config.links.empty())
      return KeyError("nodes", "no two nodes are in different regions: nothing to relay");
  }

  // Explicit ports first, so the automatic ones can step around them.
  std::set<uint16_t> used;
  for (size_t i = 0; i < config.links.size(); ++i) {
    if (!explicit_ports[i]) continue;
    const std::string where = node ? "links[" + std::to_string(i) + "]" : "links";
    auto [pa, pb] = *explicit_ports[i];
    for (uint16_t port : {pa, pb}) {
      if (port != 0 && !used.insert(port).second) {
        return KeyError(where, "port " + std::to_string(port) + " is used by two link directions");
      }
    }
    config.links[i].port_for_a = pa;
    config.links[i].port_for_b = pb;
  }
  uint32_t next = range ? range->first : 0;
  for (size_t i = 0; i < config.links.size(); ++i) {
    if (explicit_ports[i]) continue;
    if (!range) {
      return KeyError(node ? "links[" + std::to_string(i) + "]" : "port_range",
                      "no ports given for this link and no port_range to take them from");
    }
    uint16_t assigned[2] = {0, 0};
    for (auto& port : assigned) {
      while (next <= range->last && used.contains(static_cast<uint16_t>(next))) ++next;
      if (next > range->last) {
        return KeyError("port_range",
                        "too small for " + std::to_string(config.links.size()) + " links (two ports each)");
      }
      port = static_cast<uint16_t>(next++);
    }
    config.links[i].port_for_a = assigned[0];
    config.links[i].port_for_b = assigned[1];
  }
  return OkStatus();
}

Status ParseImpairments(const YAML::Node& node, WanConfig& config) {
  if (!node) return OkStatus();
  if (!node.IsSequence())
    return KeyError("impairments", "expected a list of {from, to, ...} or {between, ...}");
  std::set<std::string> known = {"from", "to", "between"};
  for (const auto& key : ImpairmentKeys()) known.insert(key);
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string where = "impairments[" + std::to_string(i) + "]";
    const YAML::Node rule = node[i];
    if (auto ok = CheckKeys(rule, where, known); !ok) return ok;

    auto region_set = [&](const std::string& key, const YAML::Node& value) -> Result<std::vector<size_t>> {
      auto name = Text(value, key);
      if (!name) return name.error();
      if (*name == "*") {
        std::vector<size_t> all(config.regions.size());
        for (size_t r = 0; r < all.size(); ++r) all[r] = r;
        return all;
      }
      auto index = config.RegionIndex(*name);
      if (!index) return KeyError(key, "no node is in region '" + *name + "'");
      return std::vector<size_t>{*index};
    };
    std::vector<std::pair<size_t, size_t>> directions;
    if (rule["between"]) {
      if (rule["from"] || rule["to"]) return KeyError(where, "give either between or from and to, not both");
      const YAML::Node between = rule["between"];
      if (!between.IsSequence() || between.size() != 2) {
        return KeyError(where + ".between", "expected two regions, [REGION, REGION]");
      }
      auto first = region_set(where + ".between[0]", between[0]);
      if (!first) return first.error();
      auto second = region_set(where + ".between[1]", between[1]);
      if (!second) return second.error();
      for (size_t f : *first) {
        for (size_t t : *second) {
          directions.emplace_back(f, t);
          directions.emplace_back(t, f);
        }
      }
    } else {
      auto from = region_set(where + ".from", rule["from"]);
      if (!from) return from.error();
      auto to = region_set(where + ".to", rule["to"]);
      if (!to) return to.error();
      for (size_t f : *from) {
        for (size_t t : *to) directions.emplace_back(f, t);
      }
    }
    // Check every setting once before touching any direction, so errors name the rule's key.
    Impairment probe;
    for (const auto& key : ImpairmentKeys()) {
      if (!rule[key]) continue;
      auto value = Text(rule[key], Join(where, key));
      if (!value) return value.error();
      if (auto ok = ApplyImpairmentSetting(probe, key, *value); !ok) {
        return KeyError(Join(where, key), ok.error().message);
      }
    }
    for (const auto& direction : directions) {
      Impairment& target = config.impairments[direction];
      for (const auto& key : ImpairmentKeys()) {
        if (rule[key]) (void)ApplyImpairmentSetting(target, key, rule[key].Scalar());
      }
    }
  }
  return OkStatus();
}

Status ParseTopLevel(const YAML::Node& root, WanConfig& config) {
  if (auto ok = CheckKeys(root, "",
                          {"listen_address", "control_socket", "port_range", "max_queued_packets",
                           "max_queued_bytes", "seed", "realtime_priority", "nodes", "links", "impairments"});
      !ok) {
    return ok;
  }
  auto listen = Text(root["listen_address"], "listen_address");
  if (!listen) return listen.error();
  if (!IsIpLiteral(*listen))
    return KeyError("listen_address", "expected an IP address, got '" + *listen + "'");
  config.listen_address = *listen;
  auto control = Text(root["control_socket"], "control_socket");
  if (!control) return control.error();
  // sun_path holds 108 bytes with its terminating zero.
  if (control->size() > 107) return KeyError("control_socket", "longer than a Unix socket path can be (107)");
  config.control_socket = *control;
  if (root["max_queued_packets"]) {
    auto v = Unsigned(root["max_queued_packets"], "max_queued_packets", 1, 1'000'000);
    if (!v) return v.error();
    config.max_queued_packets = *v;
  }
  if (root["max_queued_bytes"]) {
    auto v = ByteSize(root["max_queued_bytes"], "max_queued_bytes");
    if (!v) return v.error();
    config.max_queued_bytes = *v;
  }
  if (root["seed"]) {
    auto v = Unsigned(root["seed"], "seed", 0, UINT64_MAX);
    if (!v) return v.error();
    config.seed = *v;
  }
  if (root["realtime_priority"]) {
    auto v = Unsigned(root["realtime_priority"], "realtime_priority", 0, 99);
    if (!v) return v.error();
    config.realtime_priority = static_cast<int>(*v);
  }
  if (auto ok = ParseNodes(root["nodes"], config); !ok) return ok;
  std::optional<PortRange> range;
  if (root["port_range"]) {
    auto r = ParsePortRange(root["port_range"]);
    if (!r) return r.error();
    range = *r;
  }
  if (auto ok = ParseLinks(root["links"], range, config); !ok) return ok;
  return ParseImpairments(root["impairments"], config);
}

}  // namespace

bool IsValidName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  return name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
         std::string::npos;
}

std::optional<size_t> WanConfig::NodeIndex(const std::string& name) const {
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].name == name) return i;
  }
  return std::nullopt;
}

std::optional<size_t> WanConfig::RegionIndex(const std::string& name) const {
  for (size_t i = 0; i < regions.size(); ++i) {
    if (regions[i] == name) return i;
  }
  return std::nullopt;
}

Result<WanConfig> ParseWanConfig(const std::string& yaml_text) {
  WanConfig config;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Error{"config is not valid YAML: " + std::string(e.what())};
  }
  if (root.IsNull()) return Error{"config is empty: listen_address, control_socket and nodes are needed"};
  try {
    if (auto ok = ParseTopLevel(root, config); !ok) return ok.error();
  } catch (const YAML::Exception& e) {
    return Error{"config: " + std::string(e.what())};
  }
  return config;
}

Result<WanConfig> LoadWanConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{"cannot read config file " + path, errno};
  std::stringstream text;
  text << in.rdbuf();
  auto config = ParseWanConfig(text.str());
  if (!config) return Error{path + ": " + config.error().message};
  return config;
}

}  // namespace regionpulse::wan
