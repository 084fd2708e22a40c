#include "agent/plan_check.h"

#include <arpa/inet.h>

#include <cstring>

#include "common/proto_convert.h"

namespace regionpulse {
namespace {

// True when `address` (a literal) is inside `cidr`.
bool Contains(const Cidr& cidr, const std::string& address) {
  std::array<uint8_t, 16> bytes{};
  const bool v6 = address.find(':') != std::string::npos;
  if (v6 != cidr.ipv6) {
    // An IPv4-mapped IPv6 address is the IPv4 address it maps.
    if (!v6 || cidr.ipv6) return false;
    in6_addr mapped{};
    if (inet_pton(AF_INET6, address.c_str(), &mapped) != 1 || !IN6_IS_ADDR_V4MAPPED(&mapped)) return false;
    std::memcpy(bytes.data(), &mapped.s6_addr[12], 4);
  } else if (inet_pton(v6 ? AF_INET6 : AF_INET, address.c_str(), bytes.data()) != 1) {
    return false;
  }
  const uint32_t whole = cidr.prefix_length / 8;
  const uint32_t bits = cidr.prefix_length % 8;
  if (std::memcmp(bytes.data(), cidr.address.data(), whole) != 0) return false;
  if (bits == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - bits));
  return (bytes[whole] & mask) == (cidr.address[whole] & mask);
}

bool IsAddressLiteral(const std::string& address) {
  std::array<uint8_t, 16> bytes{};
  return inet_pton(AF_INET, address.c_str(), bytes.data()) == 1 ||
         inet_pton(AF_INET6, address.c_str(), bytes.data()) == 1;
}

PlanVerdict Refuse(PlanRefusal refusal, std::string detail) {
  return PlanVerdict{refusal, std::move(detail)};
}

}  // namespace

std::vector<std::string> DefaultAllowedTargetCidrs() {
  return {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"};
}

const char* PlanRefusalName(PlanRefusal refusal) {
  switch (refusal) {
    case PlanRefusal::kStaleVersion:
      return "stale_version";
    case PlanRefusal::kInterval:
      return "interval";
    case PlanRefusal::kPayloadSize:
      return "payload_size";
    case PlanRefusal::kTargetCount:
      return "target_count";
    case PlanRefusal::kBadTarget:
      return "bad_target";
    case PlanRefusal::kTargetOutside:
      return "target_outside_cidrs";
  }
  return "unknown";
}

PlanVerdict CheckProbePlan(const v1::ProbePlan& plan, const PlanLimits& limits) {
  // An unset interval keeps the current one; a set one must not be below the floor (a zero
  // or negative duration is as hostile as a microsecond).
  if (plan.has_interval()) {
    const auto interval = FromDuration(plan.interval());
    if (interval < limits.min_interval) {
      return Refuse(PlanRefusal::kInterval,
                    "interval " + FormatDuration(std::max(interval, decltype(interval){0})) +
                        " is below the floor of " + FormatDuration(limits.min_interval));
    }
  }
  if (plan.payload_size() > limits.max_payload_size) {
    return Refuse(PlanRefusal::kPayloadSize, "payload_size " + std::to_string(plan.payload_size()) +
                                                 " bytes is above the maximum of " +
                                                 std::to_string(limits.max_payload_size));
  }
  if (static_cast<size_t>(plan.targets_size()) > limits.max_targets) {
    return Refuse(PlanRefusal::kTargetCount, std::to_string(plan.targets_size()) +
                                                 " targets, more than the maximum of " +
                                                 std::to_string(limits.max_targets));
  }
  for (const auto& target : plan.targets()) {
    const std::string& address = target.endpoint().address();
    if (!IsAddressLiteral(address) || target.endpoint().port() == 0 || target.endpoint().port() > 65535) {
      return Refuse(PlanRefusal::kBadTarget, "target " + target.node() + " at \"" + address + "\" port " +
                                                 std::to_string(target.endpoint().port()) +
                                                 " is not an IP address and port");
    }
    bool inside = false;
    for (const auto& cidr : limits.allowed_target_cidrs) {
      if (Contains(cidr, address)) {
        inside = true;
        break;
      }
    }
    if (!inside) {
      return Refuse(PlanRefusal::kTargetOutside,
                    "target " + target.node() + " at " + address + " is outside probe.allowed_target_cidrs");
    }
  }
  return PlanVerdict{};
}

bool PlanVersions::IsNewer(const std::string& aggregator, uint64_t version) const {
  auto it = last_.find(aggregator);
  return it == last_.end() || version > it->second;
}

void PlanVersions::Record(const std::string& aggregator, uint64_t version) {
  last_[aggregator] = version;
}

}  // namespace regionpulse
