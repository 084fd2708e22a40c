// FlowAckLedger: bytes acknowledged per replication flow, cumulative and never decreasing,
// plus what a stall detector needs at the same instant (is data outstanding, how many
// connections, did the flow move since the last reading). Pure logic: the datapath feeds it
// what the kernel counted for closed connections and the live connections it listed.
//
// Why both sources: sock_ops callbacks come once per round trip, so the ACK that ends a burst
// often brings none, and connections established before the agent started have no callbacks
// at all; a live socket's own counter (tcp_info) is the truth. A socket closing between two
// readings has its bytes moved by the kernel into the closed count; the caller reads that
// count before it lists the live sockets, so such a socket is at worst missed for one reading
// (the total is held, never lowered) and never counted twice.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace regionpulse {

// One live connection of a flow as listed at this reading.
struct FlowConnectionSample {
  uint64_t cookie = 0;
  uint32_t flow = 0;         // flow index
  uint64_t bytes_acked = 0;  // the socket's own cumulative count
  bool data_outstanding = false;
  // Its bytes_acked at establishment when the kernel tracks it (the kernel then counts its
  // bytes at close); nullopt for a socket the kernel does not track (established before the
  // agent started, or the tracking map was full): counted from when it was first listed, and
  // its last count kept here when it goes away.
  std::optional<uint64_t> kernel_baseline;
  // Written by the application and not yet acknowledged by the peer (its send queue).
  uint64_t bytes_outstanding = 0;
};

struct FlowAckReading {
  uint64_t bytes_acked = 0;  // cumulative, never lower than at the previous reading
  bool data_outstanding = false;
  uint64_t bytes_outstanding = 0;  // over the live connections
  uint32_t connections = 0;
  bool progressed = false;  // bytes_acked grew since the previous reading
};

class FlowAckLedger {
 public:
  explicit FlowAckLedger(size_t flows) : retired_(flows, 0), reported_(flows, 0) {}

  // closed_bytes_acked[i]: the kernel's cumulative count for closed connections of flow i,
  // read before `live` was listed. Samples of unknown flows are ignored.
  std::vector<FlowAckReading> Update(const std::vector<uint64_t>& closed_bytes_acked,
                                     const std::vector<FlowConnectionSample>& live);

 private:
  struct Tracked {
    uint32_t flow = 0;
    uint64_t baseline = 0;
    bool kernel_counts_close = false;
    uint64_t contribution = 0;  // bytes_acked - baseline at the last listing
  };
  std::unordered_map<uint64_t, Tracked> sockets_;  // by cookie
  std::vector<uint64_t> retired_;                  // bytes of untracked sockets that went away, per flow
  std::vector<uint64_t> reported_;                 // the last total reported, per flow
};

}  // namespace regionpulse
