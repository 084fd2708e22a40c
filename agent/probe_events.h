// What the prober tells whoever measures: each probe sent, each reply matched to its session,
// each reply rejected. The prober produces these events and the window folder consumes them;
// neither needs the other.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "agent/probe_codec.h"
#include "common/clocks.h"

namespace regionpulse {

// Who a probe goes to.
struct PeerInfo {
  std::string node;
  std::string region;
  std::string zone;
  std::string address;
  uint16_t port = 0;
  bool operator==(const PeerInfo&) const = default;
};

struct ProbeSent {
  PeerInfo peer;
  uint16_t ssid = 0;
  uint32_t sequence = 0;
  MonoTime sent_at;  // just before the send call
  // Where the probe leaves from, as the peer's reflector sees it (without NAT on the way):
  // the address the kernel's routing picks for the peer and the prober's socket port. The
  // reflector's per-sender counts are keyed by it. Empty address: not known (no route).
  std::string source_address;
  uint16_t source_port = 0;
};

struct ProbeReply {
  std::string node;
  uint16_t ssid = 0;
  uint32_t sender_sequence = 0;
  uint32_t reflector_sequence = 0;
  MonoTime received_at;  // receive completion in user space
  std::optional<KernelStamps> kernel;
  // Reflector residence from the base packet (its transmit minus receive timestamp), used
  // for the kernel RTT when the reflector's kernel did not stamp t2/t3 (a foreign reflector).
  std::optional<std::chrono::nanoseconds> reflector_turnaround;
};

// What the prober reports; WindowFolder is the real sink.
class ProbeEventSink {
 public:
  virtual ~ProbeEventSink() = default;
  virtual void OnProbeSent(const ProbeSent& sent) = 0;
  virtual void OnProbeReply(const ProbeReply& reply) = 0;
  // A reply from a peer that failed to decode (bad MAC, malformed), dropped.
  virtual void OnReplyRejected(const std::string& node, DecodeProblem problem, MonoTime at) = 0;
};

}  // namespace regionpulse
