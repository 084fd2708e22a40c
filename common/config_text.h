// The textual values that agent, aggregator and tools read from config files and flags:
// whole numbers, numbers, durations ("250ms"), sizes ("4MiB"), rates ("10MB/s"), CIDRs
// ("10.1.0.0/16") and listen/peer addresses ("HOST:PORT"). One parser each, so every program
// accepts and refuses exactly the same text (docs/configuration.md). Pure: no I/O, no logging,
// no exceptions. Error messages name the offending text so callers can prefix them with their
// key ("probe.interval: ...") and pass them on unchanged.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

#include "common/result.h"

namespace regionpulse {

// Decimal digits only: no sign, no spaces, no exponent. More than fits in uint64 is an error
// with errnum ERANGE ("too large"); anything else that is not digits has EINVAL.
Result<uint64_t> ParseWholeNumber(const std::string& text);

// A finite decimal number: "0.05", ".5", "-1", "2e-3". Infinity, NaN, hexadecimal and text
// around the number are refused; a value beyond double's range ("1e400") has ERANGE.
Result<double> ParseNumber(const std::string& text);

// A number (decimals allowed) directly followed by a unit: ns, us, µs, ms, s, m, h.
// "250us", "1.5s", "2m". Bare numbers, signs, spaces and unknown units are refused (EINVAL),
// and so is anything longer than about 31 years (ERANGE: it would not fit in int64
// nanoseconds).
Result<std::chrono::nanoseconds> ParseDuration(const std::string& text);
// The shortest exact text ParseDuration reads back: "2m", "1500ms", "250us", "7ns".
std::string FormatDuration(std::chrono::nanoseconds duration);
// A span for people, at any size: "0.8 s", "3 s", "12 s", "2 min", "3 min 20 s". One rule for
// the verdict's reasons and pulsectl, so a figure reads the same in both.
std::string FormatSpan(std::chrono::nanoseconds span);

// Bytes: a whole number, alone or directly followed by B, KiB, MiB or GiB: "4096", "64KiB",
// "4MiB". More than fits in uint64 bytes has ERANGE.
Result<uint64_t> ParseByteSize(const std::string& text);

// Bytes per second: a number (decimals allowed) directly followed by B/s, kB/s, MB/s, GB/s,
// KiB/s, MiB/s, GiB/s, bit/s, kbit/s, Mbit/s or Gbit/s: "500kB/s", "1.5MiB/s", "100Mbit/s".
// At most 1e15 bytes per second (ERANGE beyond); rounded to whole bytes.
Result<uint64_t> ParseRate(const std::string& text);

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
