// CIDR parsing for the region LPM tries.
#include "agent/region_cidr.h"

#include <arpa/inet.h>

#include <cerrno>
#include <charconv>

namespace regionpulse {

Result<ParsedCidr> ParseCidr(const std::string& cidr) {
  const auto slash = cidr.find('/');
  if (slash == std::string::npos) return Error{"region CIDR '" + cidr + "' has no prefix length", EINVAL};
  const std::string address = cidr.substr(0, slash);
  const std::string length = cidr.substr(slash + 1);
  ParsedCidr parsed;
  parsed.ipv6 = address.find(':') != std::string::npos;
  if (inet_pton(parsed.ipv6 ? AF_INET6 : AF_INET, address.c_str(), parsed.address.data()) != 1) {
    return Error{"region CIDR '" + cidr + "' has an invalid address", EINVAL};
  }
  const uint32_t max_length = parsed.ipv6 ? 128 : 32;
  const auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), parsed.prefix_length);
  if (ec != std::errc() || end != length.data() + length.size() || length.empty() ||
      parsed.prefix_length > max_length) {
    return Error{"region CIDR '" + cidr + "' has an invalid prefix length", EINVAL};
  }
  for (uint32_t bit = parsed.prefix_length; bit < max_length; ++bit) {
    parsed.address[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  return parsed;
}

}  // namespace regionpulse
