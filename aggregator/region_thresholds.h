// RegionThresholds: when a region counts as degraded or unreachable, and when replication
// towards it is at risk. One set for the configuration, the matrix's cells and the verdict.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "regionpulse/v1/verdicts.pb.h"

namespace regionpulse {

// The defaults are the aggregator's documented ones (docs/aggregator.example.yaml, kept equal
// by aggregator_config_test); the config keys are thresholds.* (aggregator_config.h).
struct RegionThresholds {
  // Probe loss (forward and reverse combined) at or above which a region is DEGRADED.
  double degraded_loss = 0.05;
  // Kernel RTT p99 above which a region is DEGRADED; 0 disables the latency rule.
  std::chrono::milliseconds degraded_rtt_p99{250};
  // Loss at or above which an observer counts a region as not reached at all.
  double unreachable_loss = 0.99;
  // A quorum has lost a region when strictly more than this fraction of its healthy observers
  // (isolated ones excluded) lost it ...
  double quorum_fraction = 0.5;
  // ... and they are at least this many nodes. UNREACHABLE needs a quorum, and also that no
  // observer region mostly still reaches it and no passive signal shows it alive.
  uint32_t min_observer_nodes = 2;
  // A replication flow that has not progressed for this long is at risk.
  std::chrono::seconds replication_staleness{30};
};

// The three rules below are inline: the evaluation tick applies them to every observer and
// target region (40,000 times or more a second at 10,000 agents).

// Probe loss, forward and reverse combined: 1 - received / sent; 0 when nothing was sent.
inline double LossRatio(uint64_t sent, uint64_t received) {
  if (sent == 0) return 0.0;
  return 1.0 - static_cast<double>(received) / static_cast<double>(sent);
}

// What one loss/RTT observation (one observer's, or merged over many) says by the thresholds
// alone: UNREACHABLE at or above unreachable_loss; DEGRADED at or above degraded_loss, or with
// an RTT p99 above degraded_rtt_p99; else HEALTHY. The verdict puts the quorum, the third
// vantage point, passive signals and hysteresis on top (verdict_engine.h).
inline v1::RegionState ClassifyObservation(const RegionThresholds& thresholds, double loss,
                                           std::optional<std::chrono::nanoseconds> rtt_p99 = std::nullopt) {
  if (loss >= thresholds.unreachable_loss) return v1::REGION_STATE_UNREACHABLE;
  if (loss >= thresholds.degraded_loss) return v1::REGION_STATE_DEGRADED;
  if (thresholds.degraded_rtt_p99 > std::chrono::nanoseconds::zero() && rtt_p99 &&
      *rtt_p99 > thresholds.degraded_rtt_p99) {
    return v1::REGION_STATE_DEGRADED;
  }
  return v1::REGION_STATE_HEALTHY;
}

// A replication flow is at risk when it has not progressed for replication_staleness, or moves
// more slowly than the minimum rate configured for it (0: no minimum).
inline bool ReplicationAtRisk(const RegionThresholds& thresholds, std::chrono::nanoseconds staleness,
                              uint64_t rate_bps, uint64_t expected_min_rate_bps) {
  return staleness >= thresholds.replication_staleness ||
         (expected_min_rate_bps > 0 && rate_bps < expected_min_rate_bps);
}

}  // namespace regionpulse
