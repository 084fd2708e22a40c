// FlowConnections: the live TCP connections of the replication flows as each window close
// reads them. Those the kernel tracks come from rp_flow_sockets (sock_ops publishes each
// flow connection there when it is established, with its baseline); those it does not
// (established before the agent started, or beyond the map's size) are found by a sock_diag
// dump of the flow ports. Every one is then read by an exact sock_diag lookup. Classifying an
// untracked connection uses the BPF programs' own region tries and port map, so user space
// and kernel never disagree on which flow a connection belongs to.
//
// Takes map file descriptors; no libbpf type in the interface.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "agent/flow_ack_ledger.h"
#include "agent/tcp_socket_dump.h"
#include "common/result.h"

namespace regionpulse {

struct FlowMaps {
  int flow_sockets = -1;  // rp_flow_sockets: cookie -> rp_flow_socket
  int regions_v4 = -1;    // rp_regions_v4, rp_regions_v6: LPM tries, address -> region id
  int regions_v6 = -1;
  int flow_ports = -1;  // rp_flow_ports: {port, region} -> flow index + 1
  // rp_flow_sockets_untracked in the program's .bss: flow connections the map had no room for.
  const uint64_t* untracked_count = nullptr;
};

class FlowConnections {
 public:
  // Opens the sock_diag socket in the calling thread's network namespace (the agent's).
  // `flows`: how many flows are configured; `ports`: every port of every flow;
  // `max_tracked`: the size of rp_flow_sockets.
  static Result<FlowConnections> Open(FlowMaps maps, size_t flows, std::vector<uint16_t> ports,
                                      uint32_t max_tracked);

  // The flow connections alive now, with the kernel's baseline for those it tracks. Not
  // thread-safe: one reading at a time.
  Result<std::vector<FlowConnectionSample>> List();

 private:
  struct Connection {
    TcpConnectionKey key;
    uint32_t flow = 0;                        // index
    std::optional<uint64_t> kernel_baseline;  // set for connections the kernel tracks
  };

  FlowConnections(FlowMaps maps, size_t flows, std::vector<uint16_t> ports, uint32_t max_tracked,
                  TcpSocketDump dump)
      : maps_(maps),
        flows_(flows),
        ports_(std::move(ports)),
        max_tracked_(max_tracked),
        dump_(std::move(dump)) {}

  // Every entry of rp_flow_sockets, by cookie.
  Result<std::map<uint64_t, Connection>> ReadTracked() const;
  // The dump for untracked connections: the first reading, then whenever the kernel reports
  // a connection it had no room for.
  Status DiscoverUntracked(const std::map<uint64_t, Connection>& tracked);
  // Which flow (index) a connection belongs to by the kernel's tries and port map.
  std::optional<uint32_t> Classify(const TcpConnectionKey& connection) const;

  FlowMaps maps_;
  size_t flows_;
  std::vector<uint16_t> ports_;
  uint32_t max_tracked_;
  TcpSocketDump dump_;
  std::map<uint64_t, Connection> untracked_;  // by cookie
  std::optional<uint64_t> untracked_at_last_dump_;
};

}  // namespace regionpulse
