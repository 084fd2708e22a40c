// The failover controller's decision, without I/O: a verdict read from an aggregator and what
// the controller remembers in, what to do out. This is the part a user's own controller (a
// kubebuilder operator, a script) must get right, so it is small and tested on its own.
//
// The rules:
//   - A verdict from the active region's own aggregator is ignored: from inside, an outage of
//     its region and its own isolation look the same.
//   - Only FAILOVER acts; HOLD and STAY never do.
//   - At most once per failover: the failover is recorded (and saved) before the hooks run, so
//     a crash half-way never promotes twice. A FAILOVER away from a region already failed over
//     from is not acted on again, however many generations repeat it.
//   - Re-arming: automatically once the aggregators name another active region and say STAY
//     for it (they were reconfigured after the failover, and the new region is healthy); or
//     by the operator (`--rearm`, which clears the record).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"

namespace regionpulse::controller {

enum class Action { kUnspecified, kStay, kFailover, kHold };
std::string ActionName(Action action);

// What the controller reads from a Verdict (the edge converts the protobuf at once).
struct ObservedVerdict {
  uint64_t generation = 0;
  Action action = Action::kUnspecified;
  std::string active_region;
  std::string target_region;
  std::string aggregator_region;
  std::vector<std::string> reasons;
};

// A failover the controller started: survives restarts in the state file.
struct FailoverRecord {
  std::string from_region;
  std::string to_region;
  uint64_t generation = 0;
  double started_at = 0;  // unix seconds
  std::string outcome;    // "running", "succeeded", "failed: ..."

  bool operator==(const FailoverRecord&) const = default;
};

struct ControllerState {
  std::optional<FailoverRecord> failover;

  bool operator==(const ControllerState&) const = default;
};

enum class DecisionKind {
  kNothing,   // log why, do nothing
  kFailover,  // record, then run the hooks of `to_region`
  kRearm,     // forget the recorded failover
};

struct Decision {
  DecisionKind kind = DecisionKind::kNothing;
  std::string from_region;
  std::string to_region;
  std::string why;
};

// `hooked_regions`: the regions the controller has hooks for; a FAILOVER to any other region
// is reported and left to a human.
Decision Decide(const ObservedVerdict& verdict, const ControllerState& state,
                const std::set<std::string>& hooked_regions);

// The state after acting on `decision` (kFailover records it as "running").
ControllerState Apply(const ControllerState& state, const Decision& decision, uint64_t generation,
                      double now);

// The state file: a few "key value" lines, readable and editable by an operator.
std::string SerializeState(const ControllerState& state);
Result<ControllerState> ParseState(const std::string& text);

}  // namespace regionpulse::controller
