// How pulsectl prints a verdict for the engineer who was paged: the action and its target,
// what failing over would lose and whether a person must decide, each region's role and
// state with the loss's direction, the localised suspects, the replication flows, the reasons.
// Pure: the verdict and the time in, text out, so the layout is tested without a server.
#pragma once

#include <chrono>
#include <ostream>
#include <string>

#include "regionpulse/v1/verdicts.pb.h"

namespace regionpulse::pulsectl {

// "FAILOVER to eu-west-1", "HOLD (advice: eu-west-1)", "STAY".
std::string ActionWithTarget(const v1::Verdict& verdict);
// A region state for a table: "-" for one nobody has computed.
std::string ShortState(v1::RegionState state);
// "fwd", "rev", "both", "?" (unknown), "-" (no loss): short enough for a table column.
std::string ShortDirection(v1::LossDirection direction);

// The whole `pulsectl status` text; at most 80 columns except the free-text evidence and reasons.
void PrintVerdict(const v1::Verdict& verdict, std::chrono::system_clock::time_point now, std::ostream& out);

}  // namespace regionpulse::pulsectl
