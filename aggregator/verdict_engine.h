// VerdictEngine: evidence + clock -> the failover verdict. Pure (no I/O, time passed in); the
// state it keeps is what hysteresis needs (since when each condition has held, a latched
// FAILOVER and what it would lose), and that state can be saved and restored across a restart.
//
// One evaluation runs five named steps (docs/design.md, section 4 "The verdict's rules, as implemented"):
// 1. Localise: before regions are judged, faults that one node or one region pair explains
//    are found and set aside. A node fault: one observer sees a region badly while its
//    region-mates see it well, or observers of one region see one target node badly while its
//    region-mates answer them well. A link fault: two regions lose each other (or see heavy
//    loss between them) while a third region reaches both well. Neither ever makes a region
//    DEGRADED or UNREACHABLE; each becomes a suspect with its direction (read from both ends:
//    forward = sent and not reflected, reverse = reflected and not returned, else unknown).
// 2. Assess: each region from the views that remain. Quorum counts regions, not nodes: a
//    region is UNREACHABLE only when more than quorum_fraction of the observer regions (each
//    by more than quorum_fraction of its own healthy observers) lost it, no observer region
//    still reaches it, at least min_observer_nodes observers lost it, and no passive signal
//    shows it alive. An observer counts only when it reaches a third place. Probes lost to a
//    region whose agents stopped reporting while passive signals show it alive mean "agents
//    not reporting" (UNKNOWN), never UNREACHABLE.
// 3. Apply hysteresis: states get worse at once and better only after the better state held
//    for the dwell.
// 4. Decide: FAILOVER needs the active region UNREACHABLE without a break for the hold time,
//    and a target: only a standby region (in preference order), reachable, ranked by whether
//    its replication from the active region is current, stale or unknown (unknown never counts
//    as current). What failing over would lose is the replica's lag at the last report before
//    the active region went dark plus the gap from that report to the cut; beyond
//    max_data_loss (or unknown) the action is HOLD for a manual decision unless
//    prefer_availability. A FAILOVER, once decided, stays (with its target and figure) until
//    the active region has recovered for the dwell. The aggregator's own region hearing from
//    no other region, or less than a hold time of data since start: HOLD.
// 5. Describe: the verdict message, reasons in plain words, and what changed.
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
#include "common/clocks.h"
#include "regionpulse/v1/engine_state.pb.h"
#include "regionpulse/v1/verdicts.pb.h"

namespace regionpulse {

struct VerdictEngineConfig {
  // Region currently active (a failover moves away from it). Empty: HOLD.
  std::string active_region;
  // Regions that hold replicas, in order of preference: the only FAILOVER targets. Every other
  // region only observes. The aggregator's configuration defaults this to every configured
  // region but the active one (and warns); an empty list here means no target ever.
  std::vector<std::string> standby_regions;
  // Region this aggregator runs in. Empty: the own-region isolation check is skipped.
  std::string own_region;
  // Regions from config; regions announced by agents are added from the evidence.
  std::vector<std::string> regions;

  // FAILOVER only after UNREACHABLE held this long without a break. The hold counts from when
  // the region was last seen answering, not from when enough evidence came in to say so:
  // the condition began then. That moment is taken no earlier than one evidence window
  // before the region was declared UNREACHABLE (the span the evidence itself covers).
  std::chrono::nanoseconds hold{std::chrono::seconds(120)};
  std::chrono::nanoseconds evidence_window{std::chrono::seconds(10)};
  // A region's state improves (and FAILOVER ends) only after the better state held this long.
  std::chrono::nanoseconds dwell{std::chrono::seconds(300)};
  RegionThresholds thresholds{};
  // The most writes (in time) a FAILOVER may lose: beyond it, or when nobody knows, the action
  // is HOLD for a manual decision ...
  std::chrono::nanoseconds max_data_loss{std::chrono::seconds(120)};
  // ... unless availability is preferred over data: then FAILOVER anyway, with the figure.
  bool prefer_availability = false;
};

// One evaluation's result.
struct VerdictEvaluation {
  v1::Verdict verdict;
  // True when the decision changed: action, target, manual decision or any region's state
  // (generation was incremented). Suspects and figures alone are evidence, not a change.
  bool changed = false;
  // Action before this evaluation.
  v1::Action previous_action = v1::ACTION_UNSPECIFIED;
  // What changed, in plain words ("us-east-1: HEALTHY -> UNREACHABLE", "action: HOLD -> FAILOVER").
  std::vector<std::string> changes;
};

// Not thread-safe: the caller serialises Evaluate() (O(observers x probed nodes)).
class VerdictEngine {
 public:
  explicit VerdictEngine(VerdictEngineConfig config);

  // Computes the verdict at `now` from the evidence and the engine's own history. Call it at
  // a steady cadence (e.g. every second); `now` must not go backwards.
  VerdictEvaluation Evaluate(const VerdictEvidence& evidence, WallClock::time_point now);

  // The last verdict (HOLD before the first Evaluate).
  const v1::Verdict& current() const { return current_; }

  // What must survive a restart: each region's state and since-when, a latched FAILOVER with
  // its target and data at risk, the generation. Changes only when the decision does.
  v1::VerdictEngineState SaveState() const;
  // Restores a saved state before the first Evaluate. Conservatively: the hold and the dwell
  // start again from the first evidence after the restart (nothing was seen while down), the
  // start-up HOLD applies again, a latched FAILOVER stays latched, and generations continue
  // from the saved one. A state saved for another active region is ignored (returns false).
  bool RestoreState(const v1::VerdictEngineState& state);

  // Replaces the configuration (e.g. an operator changed the active region after a
  // failover). Hysteresis history is kept; a FAILOVER latched for another region ends.
  void Reconfigure(VerdictEngineConfig config);
  const VerdictEngineConfig& config() const { return config_; }

  // Severity order of known states; UNKNOWN is kept outside it (absence of evidence neither
  // improves nor worsens a region).
  enum Severity { kHealthy = 0, kDegraded = 1, kUnreachable = 2, kSeverityCount = 3 };

 private:
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
  struct Latch {
    std::string target;
    WallClock::time_point at;
    std::vector<v1::DataAtRisk> data_at_risk;
    // Why it went ahead beyond max_data_loss (prefer_availability), or empty.
    std::string policy_note;
  };

  VerdictEngineConfig config_;
  v1::Verdict current_;
  std::map<std::string, RegionHistory> history_;
  std::optional<WallClock::time_point> first_data_at_;
  // FAILOVER decided for this active region, to this target, until it recovers.
  std::optional<Latch> latch_;
  // The standby advised while the active region is degraded: kept while it stays eligible.
  std::string advice_target_;
  // Since when each suspect (by kind, node, regions) has been seen without a break.
  std::map<std::string, WallClock::time_point> suspect_since_;

  friend class VerdictEngineSteps;
};

}  // namespace regionpulse
