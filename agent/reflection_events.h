// What the reflector tells whoever measures: each valid probe it received from a sender session
// and whether it answered it. The window folder counts them per session into the report's
// `reflected` entries, this node's half of loss direction for the nodes that probe it (forward
// loss = sent by them, never received here), and each probe it refused, by reason, so that a
// refusal is not taken for loss. Neither side needs the other.
#pragma once

#include <cstdint>

#include "agent/sender_key.h"

namespace regionpulse {

// One valid test packet (MAC verified, or unauthenticated and accepted): probes the reflector
// refused or could not decode are not reflections and are never reported.
struct ProbeReflected {
  // The sender as this reflector saw it: its address (as bytes, IPv4 as IPv4-mapped also when
  // it came in on the IPv4 socket; SenderAddress::ToText reads it as the sender's own socket
  // names its address) and its source port.
  SenderAddress sender_address;
  uint16_t sender_port = 0;
  // The sender's Session-Sender Identifier.
  uint16_t ssid = 0;
  // Whether the reply left this host (the send call succeeded).
  bool replied = false;
};

// Why the reflector refused a test packet it could read the session of (the reasons the
// aggregator takes out of a path's loss; a bad MAC or a malformed packet is not one of them).
enum class ProbeRefusal { kWrongKey, kStaleTimestamp, kRateLimited, kReplayed };

// One test packet refused for one of those reasons, never answered. For kWrongKey and
// kRateLimited nothing in it was verified (no key to verify with, or refused before the HMAC):
// the SSID is the one the packet claims.
struct ProbeRefused {
  SenderAddress sender_address;  // as in ProbeReflected
  uint16_t sender_port = 0;
  uint16_t ssid = 0;
  ProbeRefusal reason = ProbeRefusal::kWrongKey;
};

// Called on the reflector's io thread for every reflection and every refusal; WindowFolder is
// the real one.
class ReflectionSink {
 public:
  virtual ~ReflectionSink() = default;
  virtual void OnProbeReflected(const ProbeReflected& reflected) = 0;
  virtual void OnProbeRefused(const ProbeRefused& refused) = 0;
};

}  // namespace regionpulse
