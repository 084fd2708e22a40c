// Parsers for durations, CIDRs and HOST:PORT text in configuration and flags.
#include "config_text.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

namespace regionpulse {
namespace {

std::string Quoted(const std::string& text) {
  return "\"" + text + "\"";
}

bool AllDigits(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Error NotADuration(const std::string& text) {
  return Error{"expected a duration with a unit (ns, us, µs, ms, s, m, h), e.g. 120s, got '" + text + "'",
               EINVAL};
}

}  // namespace

Result<std::chrono::nanoseconds> ParseDuration(const std::string& text) {
  // Longest unit first is not needed: the whole suffix must equal a unit.
  static const std::vector<std::pair<std::string, double>> kUnits = {
      {"ns", 1.0}, {"us", 1e3}, {"µs", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
  const size_t unit_at = text.find_first_not_of("0123456789.");
  if (unit_at == 0 || unit_at == std::string::npos) return NotADuration(text);
  const std::string number = text.substr(0, unit_at);
  if (std::count(number.begin(), number.end(), '.') > 1 || number == ".") return NotADuration(text);
  const std::string unit = text.substr(unit_at);
  const auto known =
      std::find_if(kUnits.begin(), kUnits.end(), [&](const auto& u) { return u.first == unit; });
  if (known == kUnits.end()) return NotADuration(text);
  double value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) return NotADuration(text);
  const double ns = value * known->second;
  if (!std::isfinite(ns) || ns > 1e18) return Error{"duration '" + text + "' is too long", ERANGE};
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(ns)));
}

bool Cidr::Overlaps(const Cidr& other) const {
  if (ipv6 != other.ipv6) return false;
  const uint32_t bits = std::min(prefix_length, other.prefix_length);
  for (uint32_t i = 0; i < bits; ++i) {
    const uint8_t mask = static_cast<uint8_t>(0x80u >> (i % 8));
    if ((address[i / 8] & mask) != (other.address[i / 8] & mask)) return false;
  }
  return true;
}

Result<Cidr> ParseCidr(const std::string& text) {
  // Every message starts with the quoted text: callers add only their key in front.
  auto problem = [&](const std::string& what) { return Error{Quoted(text) + ": " + what, EINVAL}; };
  const auto slash = text.find('/');
  if (slash == std::string::npos) return problem("missing /prefix-length");
  const std::string address = text.substr(0, slash);
  const std::string length = text.substr(slash + 1);
  Cidr cidr;
  if (inet_pton(AF_INET, address.c_str(), cidr.address.data()) != 1) {
    cidr.ipv6 = true;
    if (inet_pton(AF_INET6, address.c_str(), cidr.address.data()) != 1) {
      return problem("'" + address + "' is not an IPv4 or IPv6 address");
    }
  }
  if (!AllDigits(length)) return problem("prefix length '" + length + "' is not a number");
  const uint32_t width = cidr.ipv6 ? 128 : 32;
  const auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), cidr.prefix_length);
  if (ec != std::errc() || cidr.prefix_length > width) {
    return problem("prefix length " + length + " exceeds " + std::to_string(width));
  }
  for (uint32_t bit = cidr.prefix_length; bit < width; ++bit) {
    const uint8_t mask = static_cast<uint8_t>(0x80u >> (bit % 8));
    if (cidr.address[bit / 8] & mask) cidr.host_bits_set = true;
    cidr.address[bit / 8] &= static_cast<uint8_t>(~mask);
  }
  char normalised[INET6_ADDRSTRLEN] = {};
  inet_ntop(cidr.ipv6 ? AF_INET6 : AF_INET, cidr.address.data(), normalised, sizeof(normalised));
  cidr.text = std::string(normalised) + "/" + std::to_string(cidr.prefix_length);
  return cidr;
}

Result<Cidr> ParseNetworkCidr(const std::string& text) {
  auto cidr = ParseCidr(text);
  if (cidr.ok() && cidr->host_bits_set) {
    return Error{Quoted(text) + ": host bits set beyond /" + std::to_string(cidr->prefix_length) +
                     " (the network is " + cidr->text + ")",
                 EINVAL};
  }
  return cidr;
}

Result<HostPort> ParseHostPort(const std::string& text, bool allow_port_zero) {
  HostPort parsed;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Error{"expected HOST:PORT or [IPv6]:PORT, got '" + text + "'", EINVAL};
    }
    parsed.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return Error{"expected HOST:PORT, got '" + text + "'", EINVAL};
    parsed.host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (parsed.host.find(':') != std::string::npos) {
      return Error{"IPv6 addresses need brackets, e.g. [::1]:7700, got '" + text + "'", EINVAL};
    }
  }
  if (parsed.host.empty()) return Error{"host is empty in '" + text + "'", EINVAL};
  const unsigned lowest = allow_port_zero ? 0 : 1;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (!AllDigits(port) || ec != std::errc() || value < lowest || value > 65535) {
    return Error{"port '" + port + "' is not in " + std::to_string(lowest) + "..65535 in '" + text + "'",
                 EINVAL};
  }
  parsed.port = static_cast<uint16_t>(value);
  return parsed;
}

}  // namespace regionpulse
