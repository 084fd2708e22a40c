// The WAN emulator's configuration: the nodes and their underlay endpoints, the links it
// relays with the port each side sends to, and the initial impairment of every region
// direction. Parsed from YAML and checked whole: an error names the key that is wrong.
//
//   listen_address: 10.99.0.1          # relay sockets bind here (0.0.0.0 / :: for any)
//   control_socket: /run/rpl-wan.sock  # ctl commands; removed on exit
//   port_range: 40000-40999            # ports for links that name none (two per link)
//   max_queued_packets: 4096           # per link direction; beyond: dropped, counted
//   max_queued_bytes: 16MiB            # per link direction
//   seed: 42                           # optional; random when absent
//   realtime_priority: 0               # optional SCHED_FIFO priority 1-99; 0 = normal
//   nodes:
//     - {name: use1-a, region: us-east-1, endpoint: 10.99.0.11:51820}
//   links:                             # optional; default: every pair of nodes in
//     - {a: use1-a, b: euw1-a, port_for_a: 40000, port_for_b: 40001}  # different regions
//   impairments:                       # applied in order; "*" is every region
//     - {from: us-east-1, to: eu-west-1, delay: 35ms}
//     - {between: [us-east-1, ap-southeast-1], delay: 80ms, jitter: 1ms}
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "tools/wan_emulator/link_impairment.h"

namespace regionpulse::wan {

struct NodeConfig {
  std::string name;
  std::string region;
  std::string endpoint_ip;  // an IP literal, without brackets
  uint16_t endpoint_port = 0;
};

// A relayed pair of nodes. Node a's WireGuard endpoint for b is listen_address:port_for_a;
// b's endpoint for a is listen_address:port_for_b. Port 0: any free port, reported by
// `ctl ports` (for tests; the lab must know its ports before it starts WireGuard).
struct LinkConfig {
  size_t a = 0;  // index into WanConfig::nodes
  size_t b = 0;
  uint16_t port_for_a = 0;
  uint16_t port_for_b = 0;
};

struct WanConfig {
  std::string listen_address;
  std::string control_socket;
  uint64_t max_queued_packets = 4096;
  uint64_t max_queued_bytes = 16ULL << 20;
  std::optional<uint64_t> seed;
  int realtime_priority = 0;
  std::vector<NodeConfig> nodes;
  // Region names in order of first appearance among the nodes.
  std::vector<std::string> regions;
  std::vector<LinkConfig> links;
  // Initial impairment per (from region, to region), indices into regions; absent = none.
  std::map<std::pair<size_t, size_t>, Impairment> impairments;

  std::optional<size_t> NodeIndex(const std::string& name) const;
  std::optional<size_t> RegionIndex(const std::string& name) const;
};

Result<WanConfig> ParseWanConfig(const std::string& yaml_text);
Result<WanConfig> LoadWanConfigFile(const std::string& path);

// Node and region names: 1-63 characters of [A-Za-z0-9._-], so they are safe as words of the
// control protocol and inside JSON strings without escaping.
bool IsValidName(const std::string& name);

}  // namespace regionpulse::wan
