// Region CIDRs from config ("10.1.0.0/16", "fd00:1::/48") parsed into what the LPM tries
// take: family, prefix length and address bytes with the host bits cleared. Pure.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "result.h"

namespace regionpulse {

struct ParsedCidr {
  bool ipv6 = false;
  uint32_t prefix_length = 0;
  std::array<uint8_t, 16> address{};  // network byte order; the first 4 bytes for IPv4
};

Result<ParsedCidr> ParseCidr(const std::string& cidr);

}  // namespace regionpulse
