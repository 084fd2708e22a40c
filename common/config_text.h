// The textual values that agent, aggregator and tools read from config files and flags:
// durations ("250ms"), CIDRs ("10.1.0.0/16") and listen/peer addresses ("HOST:PORT").
// One parser each, so both sides of the system accept and refuse exactly the same text.
// Pure: no I/O, no logging. Error messages name the offending text so callers can prefix
// them with their key ("probe.interval: ...") and pass them on unchanged.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

#include "result.h"

namespace regionpulse {

// A number (decimals allowed) directly followed by a unit: ns, us, µs, ms, s, m, h.
// "250us", "1.5s", "2m". Bare numbers, signs, spaces and unknown units are refused, and so
// is anything longer than about 31 years (it would not fit in int64 nanoseconds).
Result<std::chrono::nanoseconds> ParseDuration(const std::string& text);

// An IPv4 or IPv6 network, "10.1.0.0/16" or "fd00:1::/48".
struct Cidr {
  bool ipv6 = false;
  uint32_t prefix_length = 0;
  // Network byte order, host bits cleared; only the first 4 bytes are used for IPv4. This is
  // the layout the BPF LPM trie keys take.
  std::array<uint8_t, 16> address{};
  // The text had bits set beyond the prefix ("10.1.0.1/16"). ParseCidr clears them; a config
  // refuses such text (ParseNetworkCidr) because it is a typo in either address or length.
  bool host_bits_set = false;
  // Canonical text of the network with host bits cleared: "10.1.0.0/16", "fd00:1::/48".
  std::string text;

  // True when the two networks share an address (one contains the other).
  bool Overlaps(const Cidr& other) const;
};

// Parses ADDRESS/PREFIX-LENGTH; host bits are cleared and flagged in host_bits_set.
Result<Cidr> ParseCidr(const std::string& text);
// ParseCidr, and host bits set is an error: the rule for CIDRs written in configuration.
Result<Cidr> ParseNetworkCidr(const std::string& text);

struct HostPort {
  std::string host;  // without the brackets of an IPv6 literal; may be a name
  uint16_t port = 0;
};

// "HOST:PORT" or "[IPV6]:PORT". An IPv6 literal without brackets is refused (the last colon
// would be ambiguous). Port 0 ("any free port", for listen addresses) only when allowed.
Result<HostPort> ParseHostPort(const std::string& text, bool allow_port_zero);

}  // namespace regionpulse
