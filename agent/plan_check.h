// What the agent accepts of a ProbePlan from an aggregator. A plan decides where this node
// sends packets and how many: an aggregator that is compromised, buggy or impersonated must
// not turn the fleet into a flood source, a scanner of arbitrary addresses, or freeze the
// plans of every other aggregator. Pure: plan and limits in, verdict out.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/config_text.h"
#include "regionpulse/v1/ingest.pb.h"

namespace regionpulse {

struct PlanLimits {
  // Shortest interval between probes to one target a plan may ask for.
  std::chrono::nanoseconds min_interval{100'000'000};
  // Largest STAMP payload a plan may ask for: one IPv6 packet on a 1500-byte MTU
  // (1500 - 40 IPv6 - 8 UDP), so a probe is never fragmented.
  uint32_t max_payload_size = 1452;
  // Most targets in one plan.
  size_t max_targets = 5000;
  // Every target address must be inside one of these; empty refuses every target.
  std::vector<Cidr> allowed_target_cidrs;
};

// The sane default for allowed_target_cidrs: private and shared address space, where node
// IPs live (RFC 1918, RFC 6598 shared CGN space some clouds use for nodes, RFC 4193 ULA).
std::vector<std::string> DefaultAllowedTargetCidrs();

// Why a plan was refused; the metric label (bounded: one value per enumerator).
enum class PlanRefusal {
  kStaleVersion,   // not newer than the last plan from the same aggregator
  kInterval,       // interval below the floor
  kPayloadSize,    // payload above the MTU-bound maximum
  kTargetCount,    // more targets than allowed
  kBadTarget,      // a target whose address or port is not usable
  kTargetOutside,  // a target outside the allowed CIDRs
};
const char* PlanRefusalName(PlanRefusal refusal);
inline constexpr PlanRefusal kAllPlanRefusals[] = {PlanRefusal::kStaleVersion, PlanRefusal::kInterval,
                                                   PlanRefusal::kPayloadSize,  PlanRefusal::kTargetCount,
                                                   PlanRefusal::kBadTarget,    PlanRefusal::kTargetOutside};

struct PlanVerdict {
  std::optional<PlanRefusal> refusal;  // empty: accepted
  std::string detail;                  // plain words for logs and the report's errors
  bool accepted() const { return !refusal.has_value(); }
};

// Checks the plan's content (everything but its version) against the limits.
PlanVerdict CheckProbePlan(const v1::ProbePlan& plan, const PlanLimits& limits);

// Plan versions, tracked per aggregator: each aggregator numbers its own plans, so one that
// sends version 2^63 only outdates its own later plans, never another aggregator's.
class PlanVersions {
 public:
  // True when `version` is newer than the last one accepted from `aggregator`.
  bool IsNewer(const std::string& aggregator, uint64_t version) const;
  // Records `version` as applied from `aggregator`.
  void Record(const std::string& aggregator, uint64_t version);

 private:
  std::map<std::string, uint64_t> last_;  // bounded: one entry per configured aggregator
};

}  // namespace regionpulse
