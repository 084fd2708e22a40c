// The region thresholds applied to one observation.
#include "region_thresholds.h"

namespace regionpulse {

double LossRatio(uint64_t sent, uint64_t received) {
  if (sent == 0) return 0.0;
  return 1.0 - static_cast<double>(received) / static_cast<double>(sent);
}

v1::RegionState ClassifyObservation(const RegionThresholds& thresholds, double loss,
                                    std::optional<std::chrono::nanoseconds> rtt_p99) {
  if (loss >= thresholds.unreachable_loss) return v1::REGION_STATE_UNREACHABLE;
  if (loss >= thresholds.degraded_loss) return v1::REGION_STATE_DEGRADED;
  if (thresholds.degraded_rtt_p99 > std::chrono::nanoseconds::zero() && rtt_p99 &&
      *rtt_p99 > thresholds.degraded_rtt_p99) {
    return v1::REGION_STATE_DEGRADED;
  }
  return v1::REGION_STATE_HEALTHY;
}

bool ReplicationAtRisk(const RegionThresholds& thresholds, std::chrono::nanoseconds staleness,
                       uint64_t rate_bps, uint64_t expected_min_rate_bps) {
  return staleness >= thresholds.replication_staleness ||
         (expected_min_rate_bps > 0 && rate_bps < expected_min_rate_bps);
}

}  // namespace regionpulse
