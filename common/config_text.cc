// Parsers for numbers, durations, sizes, rates, CIDRs and HOST:PORT text in configuration and flags.
#include "common/config_text.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
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

// "1.5" and "MiB/s" out of "1.5MiB/s": digits with at most one decimal point (none when
// whole), then the rest as the unit. Nothing when there is no number in front.
struct NumberAndUnit {
  std::string number;
  std::string unit;
};
std::optional<NumberAndUnit> SplitNumberAndUnit(const std::string& text, bool decimals) {
  const size_t unit_at = text.find_first_not_of(decimals ? "0123456789." : "0123456789");
  std::string number = text.substr(0, unit_at);
  if (number.empty() || number == "." || std::count(number.begin(), number.end(), '.') > 1) {
    return std::nullopt;
  }
  return NumberAndUnit{std::move(number), unit_at == std::string::npos ? "" : text.substr(unit_at)};
}

template <typename Factor>
const Factor* FindUnit(const std::vector<std::pair<std::string, Factor>>& units, const std::string& unit) {
  for (const auto& [name, factor] : units) {
    if (name == unit) return &factor;
  }
  return nullptr;
}

// The number of a SplitNumberAndUnit, which holds only digits and one point: from_chars fails
// only when the value is beyond a double.
std::optional<double> DecimalValue(const std::string& number) {
  double value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) return std::nullopt;
  return value;
}

Error NotADuration(const std::string& text) {
  return Error{"expected a duration with a unit (ns, us, µs, ms, s, m, h), e.g. 120s, got '" + text + "'",
               EINVAL};
}

}  // namespace

Result<uint64_t> ParseWholeNumber(const std::string& text) {
  if (!AllDigits(text)) return Error{"expected a whole number, got '" + text + "'", EINVAL};
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc()) return Error{"'" + text + "' is too large", ERANGE};
  return value;
}

Result<double> ParseNumber(const std::string& text) {
  // YAML 1.2's core schema allows a leading '+'; from_chars does not.
  const size_t skip = text.starts_with("+") && !text.starts_with("+-") ? 1 : 0;
  const char* first = text.data() + skip;
  const char* last = text.data() + text.size();
  double value = 0;
  const auto [end, ec] = std::from_chars(first, last, value, std::chars_format::general);
  if (ec == std::errc::result_out_of_range && end == last) {
    return Error{"'" + text + "' is beyond the range of a number", ERANGE};
  }
  if (ec != std::errc() || end != last || !std::isfinite(value)) {
    return Error{"expected a number, got '" + text + "'", EINVAL};
  }
  return value;
}

Result<std::chrono::nanoseconds> ParseDuration(const std::string& text) {
  static const std::vector<std::pair<std::string, double>> kUnits = {
      {"ns", 1.0}, {"us", 1e3}, {"µs", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
  const auto split = SplitNumberAndUnit(text, true);
  const double* factor = split ? FindUnit(kUnits, split->unit) : nullptr;
  if (factor == nullptr) return NotADuration(text);
  const auto value = DecimalValue(split->number);
  const double ns = value ? *value * *factor : HUGE_VAL;
  if (!std::isfinite(ns) || ns > 1e18) return Error{"duration '" + text + "' is too long", ERANGE};
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(ns)));
}

std::string FormatSpan(std::chrono::nanoseconds span) {
  const double s = static_cast<double>(span.count()) / 1e9;
  char buffer[48];
  if (s < 120.0) {
    const bool whole = s == static_cast<double>(static_cast<int64_t>(s));
    std::snprintf(buffer, sizeof buffer, s >= 10.0 || whole ? "%.0f s" : "%.1f s", s);
  } else {
    const auto seconds = static_cast<long long>(s);
    if (seconds % 60 == 0) {
      std::snprintf(buffer, sizeof buffer, "%lld min", seconds / 60);
    } else {
      std::snprintf(buffer, sizeof buffer, "%lld min %lld s", seconds / 60, seconds % 60);
    }
  }
  return buffer;
}

std::string FormatDuration(std::chrono::nanoseconds duration) {
  static const std::vector<std::pair<std::string, int64_t>> kUnits = {{"h", 3'600'000'000'000},
                                                                      {"m", 60'000'000'000},
                                                                      {"s", 1'000'000'000},
                                                                      {"ms", 1'000'000},
                                                                      {"us", 1'000}};
  const int64_t ns = duration.count();
  if (ns == 0) return "0s";
  for (const auto& [unit, size] : kUnits) {
    if (ns % size == 0) return std::to_string(ns / size) + unit;
  }
  return std::to_string(ns) + "ns";
}

Result<uint64_t> ParseByteSize(const std::string& text) {
  static const std::vector<std::pair<std::string, uint64_t>> kUnits = {
      {"", 1}, {"B", 1}, {"KiB", 1ULL << 10}, {"MiB", 1ULL << 20}, {"GiB", 1ULL << 30}};
  const auto split = SplitNumberAndUnit(text, false);
  const uint64_t* factor = split ? FindUnit(kUnits, split->unit) : nullptr;
  if (factor == nullptr) {
    return Error{"expected a size in bytes, optionally with KiB, MiB or GiB, got '" + text + "'", EINVAL};
  }
  auto count = ParseWholeNumber(split->number);
  if (!count || *count > std::numeric_limits<uint64_t>::max() / *factor) {
    return Error{"size '" + text + "' is too large", ERANGE};
  }
  return *count * *factor;
}

Result<uint64_t> ParseRate(const std::string& text) {
  static const std::vector<std::pair<std::string, double>> kUnits = {
      {"B/s", 1},        {"kB/s", 1e3},        {"MB/s", 1e6},           {"GB/s", 1e9},
      {"KiB/s", 1024.0}, {"MiB/s", 1048576.0}, {"GiB/s", 1073741824.0}, {"bit/s", 0.125},
      {"kbit/s", 125.0}, {"Mbit/s", 125e3},    {"Gbit/s", 125e6}};
  // 1e15 B/s (8 Pbit/s) is beyond any link and still a whole number in a double.
  constexpr double kMaxRate = 1e15;
  const auto split = SplitNumberAndUnit(text, true);
  const double* factor = split ? FindUnit(kUnits, split->unit) : nullptr;
  if (factor == nullptr) {
    return Error{
        "expected a rate with a unit (B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s, bit/s, kbit/s, "
        "Mbit/s, Gbit/s), e.g. 10MB/s, got '" +
            text + "'",
        EINVAL};
  }
  const auto value = DecimalValue(split->number);
  const double bytes_per_second = value ? *value * *factor : HUGE_VAL;
  if (!std::isfinite(bytes_per_second) || bytes_per_second > kMaxRate) {
    return Error{"rate '" + text + "' is too high (at most 1e15 B/s)", ERANGE};
  }
  return static_cast<uint64_t>(std::llround(bytes_per_second));
}

bool Cidr::Overlaps(const Cidr& other) const {
  if (ipv6 != other.ipv6) return false;
  // Equal in the bits of the shorter prefix: whole bytes first, then the bits left over.
  const uint32_t bits = std::min(prefix_length, other.prefix_length);
  if (std::memcmp(address.data(), other.address.data(), bits / 8) != 0) return false;
  if (bits % 8 == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xffu << (8 - bits % 8));
  return (address[bits / 8] & mask) == (other.address[bits / 8] & mask);
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
