// The failover controller's rules (see failover_decider.h) and its state file format.
#include "failover_decider.h"

#include <sstream>

namespace regionpulse::controller {

std::string ActionName(Action action) {
  switch (action) {
    case Action::kStay:
      return "STAY";
    case Action::kFailover:
      return "FAILOVER";
    case Action::kHold:
      return "HOLD";
    default:
      return "UNSPECIFIED";
  }
}

Decision Decide(const ObservedVerdict& verdict, const ControllerState& state,
                const std::set<std::string>& hooked_regions) {
  Decision decision;
  if (verdict.aggregator_region.empty() || verdict.aggregator_region == verdict.active_region) {
    decision.why = "verdict from " +
                   (verdict.aggregator_region.empty()
                        ? std::string("an aggregator that names no region")
                        : "the active region's own aggregator (" + verdict.aggregator_region + ")") +
                   ": it cannot tell an outage of its region from its own isolation; ignored";
    return decision;
  }
  if (state.failover) {
    const FailoverRecord& done = *state.failover;
    if (verdict.active_region == done.from_region) {
      decision.why = "already failed over from " + done.from_region + " to " + done.to_region +
                     " (generation " + std::to_string(done.generation) + ", " + done.outcome +
                     "); nothing more until re-armed";
      return decision;
    }
    if (verdict.action == Action::kStay) {
      decision.kind = DecisionKind::kRearm;
      decision.why = "the aggregators now name " + verdict.active_region + " active and say STAY: re-armed";
      return decision;
    }
    decision.why = "failed over from " + done.from_region +
                   "; not re-armed until a STAY for the new active " + "region (now " +
                   ActionName(verdict.action) + " for " + verdict.active_region + ")";
    return decision;
  }
  if (verdict.action != Action::kFailover) {
    decision.why = ActionName(verdict.action) + ": nothing to do";
    return decision;
  }
  if (verdict.target_region.empty() || verdict.target_region == verdict.active_region) {
    decision.why = "FAILOVER without a target other than the active region; ignored";
    return decision;
  }
  if (!hooked_regions.count(verdict.target_region)) {
    decision.why =
        "FAILOVER to " + verdict.target_region + ", but no hook is configured for it: a human decides";
    return decision;
  }
  decision.kind = DecisionKind::kFailover;
  decision.from_region = verdict.active_region;
  decision.to_region = verdict.target_region;
  decision.why = "FAILOVER from " + verdict.active_region + " to " + verdict.target_region;
  return decision;
}

ControllerState Apply(const ControllerState& state, const Decision& decision, uint64_t generation,
                      double now) {
  ControllerState next = state;
  switch (decision.kind) {
    case DecisionKind::kFailover:
      next.failover = FailoverRecord{decision.from_region, decision.to_region, generation, now, "running"};
      break;
    case DecisionKind::kRearm:
      next.failover.reset();
      break;
    case DecisionKind::kNothing:
      break;
  }
  return next;
}

std::string SerializeState(const ControllerState& state) {
  std::ostringstream out;
  out << "# regionpulse-failover-controller state; delete the failover_ lines (or run --rearm) to re-arm\n";
  if (state.failover) {
    const FailoverRecord& f = *state.failover;
    out << "failover_from " << f.from_region << "\n"
        << "failover_to " << f.to_region << "\n"
        << "failover_generation " << f.generation << "\n"
        << "failover_started_at " << std::fixed << f.started_at << "\n"
        << "failover_outcome " << f.outcome << "\n";
  }
  return out.str();
}

Result<ControllerState> ParseState(const std::string& text) {
  ControllerState state;
  FailoverRecord record;
  bool any = false;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.find(' ');
    const std::string key = line.substr(0, space);
    const std::string value = space == std::string::npos ? "" : line.substr(space + 1);
    try {
      if (key == "failover_from") {
        record.from_region = value;
      } else if (key == "failover_to") {
        record.to_region = value;
      } else if (key == "failover_generation") {
        record.generation = std::stoull(value);
      } else if (key == "failover_started_at") {
        record.started_at = std::stod(value);
      } else if (key == "failover_outcome") {
        record.outcome = value;
      } else {
        return Error{"state line " + std::to_string(number) + ": unknown key '" + key + "'"};
      }
    } catch (const std::exception&) {
      return Error{"state line " + std::to_string(number) + ": bad value for " + key + ": '" + value + "'"};
    }
    any = true;
  }
  if (any) {
    if (record.from_region.empty() || record.to_region.empty())
      return Error{"state: a failover record needs failover_from and failover_to"};
    state.failover = record;
  }
  return state;
}

}  // namespace regionpulse::controller
