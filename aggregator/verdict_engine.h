// VerdictEngine: evidence + clock -> the failover verdict. Pure (no I/O, time passed in);
// the only state it keeps is what hysteresis needs: since when each condition has held.
//
// Rules (docs/design.md, section 4 "The verdict's rules, as implemented"):
// - A region is UNREACHABLE only when more than quorum_fraction of the healthy observers in
//   other regions, and at least min_observer_nodes of them, lost (nearly) every probe to it,
//   no other region still mostly reaches it, and no passive signal shows it alive. An
//   observer's lost probes count only when it reaches some region other than its own and the
//   target (reaching the target is evidence by itself); isolated observers are not evidence. Like any quorum
//   this needs a third vantage point: with two regions, "the other region is gone" and "we are cut off" look
//   the same, so the answer stays HOLD.
// - Probes lost to a region whose agents stopped reporting, while passive signals show it
//   alive, mean "agents not reporting" (UNKNOWN, HOLD), never UNREACHABLE.
// - The aggregator's own region hearing from no other region: HOLD, never FAILOVER.
// - States get worse at once and better only after the better state held for the dwell;
//   FAILOVER needs UNREACHABLE held without a break for the hold time and stays until the
//   active region has recovered for the dwell. A flapping link therefore gives one steady
//   verdict (HOLD), never FAILOVER.
// - After a start the action is HOLD until the engine has seen a full hold time of data.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "aggregator/region_thresholds.h"
#include "aggregator/verdict_evidence.h"
#include "common/proto_convert.h"
#include "regionpulse/v1/verdicts.pb.h"

namespace regionpulse {

struct VerdictEngineConfig {
  // Region currently active (a failover moves away from it). Empty: HOLD.
  std::string active_region;
  // Region this aggregator runs in. Empty: the own-region isolation check is skipped.
  std::string own_region;
  // Regions from config; regions announced by agents are added from the evidence.
  std::vector<std::string> regions;

  // FAILOVER only after UNREACHABLE held this long without a break.
  std::chrono::nanoseconds hold{std::chrono::seconds(120)};
  // A region's state improves (and FAILOVER ends) only after the better state held this long.
  std::chrono::nanoseconds dwell{std::chrono::seconds(300)};

  // When a region counts as DEGRADED or UNREACHABLE, and replication as at risk.
  RegionThresholds thresholds{};
};

// One evaluation's result.
struct VerdictEvaluation {
  v1::Verdict verdict;
  // True when action, target or any region's state changed (generation was incremented).
  bool changed = false;
  // Action before this evaluation.
  v1::Action previous_action = v1::ACTION_UNSPECIFIED;
  // What changed, in plain words ("us-east-1: HEALTHY -> UNREACHABLE", "action: HOLD -> FAILOVER").
  std::vector<std::string> changes;
};

// Not thread-safe: the caller serialises Evaluate() (it is cheap: O(observers x regions)).
class VerdictEngine {
 public:
  explicit VerdictEngine(VerdictEngineConfig config);

  // Computes the verdict at `now` from the evidence and the engine's own history. Call it at
  // a steady cadence (e.g. every second); `now` must not go backwards.
  VerdictEvaluation Evaluate(const VerdictEvidence& evidence, WallClock::time_point now);

  // The last verdict (generation 0, HOLD, before the first Evaluate).
  const v1::Verdict& current() const { return current_; }

  // Replaces the configuration (e.g. an operator changed the active region after a
  // failover). Hysteresis history is kept; a FAILOVER latched for another region ends.
  void Reconfigure(VerdictEngineConfig config);
  const VerdictEngineConfig& config() const { return config_; }

 private:
  // Severity order of known states; UNKNOWN is kept outside it (absence of evidence neither
  // improves nor worsens a region).
  enum Severity { kHealthy = 0, kDegraded = 1, kUnreachable = 2, kSeverityCount = 3 };

  struct RegionHistory {
    v1::RegionState state = v1::REGION_STATE_UNKNOWN;
    WallClock::time_point since;
    // Per severity s: when the raw state last dropped below s (nullopt while it is at or
    // above s). "Better for the dwell" reads from here.
    std::array<std::optional<WallClock::time_point>, kSeverityCount> below_since;
    std::array<bool, kSeverityCount> ever_at{};
    // Raw UNREACHABLE without a break since then.
    std::optional<WallClock::time_point> raw_unreachable_since;
  };

  VerdictEngineConfig config_;
  v1::Verdict current_;
  std::map<std::string, RegionHistory> history_;
  std::optional<WallClock::time_point> first_data_at_;
  // FAILOVER decided for this active region, to this target, until it recovers.
  bool failover_latched_ = false;
  std::string failover_target_;
  std::string advice_target_;
};

}  // namespace regionpulse
