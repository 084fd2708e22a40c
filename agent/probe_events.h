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

// A prober session: one target probed under one SSID. The prober names it by a small integer
// id, dense from 0, so that the per-probe events carry no strings and the folder finds its
// state by index. An id is reused only after OnSessionEnded for it.
using SessionId = uint32_t;

// What a session is: sent when it starts and again whenever any of it changes (the source
// address read again, the peer's region corrected).
struct SessionInfo {
  SessionId session = 0;
  PeerInfo peer;
  uint16_t ssid = 0;
  // Where its probes leave from, as the peer's reflector sees them (without NAT on the way):
  // the address the kernel's routing picks for the peer and the prober's socket port. The
  // reflector's per-sender counts are keyed by it. Empty address: not known (no route).
  std::string source_address;
  uint16_t source_port = 0;
  bool operator==(const SessionInfo&) const = default;
};

struct ProbeSent {
  SessionId session = 0;
  uint32_t sequence = 0;
  MonoTime sent_at;  // just before the send call
};

struct ProbeReply {
  SessionId session = 0;
  uint32_t sender_sequence = 0;
  uint32_t reflector_sequence = 0;
  MonoTime received_at;  // receive completion in user space
  std::optional<KernelStamps> kernel;
  // Reflector residence from the base packet (its transmit minus receive timestamp), used
  // for the kernel RTT when the reflector's kernel did not stamp t2/t3 (a foreign reflector).
  std::optional<std::chrono::nanoseconds> reflector_turnaround;
};

// What the prober reports; WindowFolder is the real sink. Called on the prober's io thread.
class ProbeEventSink {
 public:
  virtual ~ProbeEventSink() = default;
  virtual void OnSession(const SessionInfo& session) = 0;
  // The session will send no more probes and its replies are no longer matched; its id may
  // name a new session next.
  virtual void OnSessionEnded(SessionId session) = 0;
  virtual void OnProbeSent(const ProbeSent& sent) = 0;
  virtual void OnProbeReply(const ProbeReply& reply) = 0;
  // A reply from a peer that failed to decode (bad MAC, malformed), dropped.
  virtual void OnReplyRejected(const std::string& node, DecodeProblem problem, MonoTime at) = 0;
};

}  // namespace regionpulse
