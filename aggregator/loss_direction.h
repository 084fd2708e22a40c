// Loss direction read from both ends: a sender's probe counts joined with what the target's
// reflector said it received from the sender's sessions over the same time. One rule, used by
// the verdict evidence, GetPaths and GetRegionMatrix alike.
#pragma once

#include <cstdint>
#include <optional>

#include "aggregator/verdict_evidence.h"

namespace regionpulse {

// `sender` is what the sender reported over some span of time: sent S, known to have reached
// the reflector F (received_forward, from the reflector's reply numbering), returned R, and lost
// in a direction it cannot tell U (lost_unknown). `reflected` is what the target's reflector
// reported receiving from the sender's sessions over windows covering that span, X; nullopt
// when the target reported no such windows (its agent is silent).
//
// With the reflector's side, the unknown part is split: reached = F + clamp(X - F, 0, U), and
// nothing stays unknown — forward loss is what was sent and not reflected, reverse loss what
// was reflected and not returned. The clamp keeps the sender's own split (F, and the forward
// losses its numbering proves) as it is, and absorbs window-edge effects: the two agents' windows
// are not aligned, so X may run a few probes ahead of or behind S.
//
// Without the reflector's side the unknown stays unknown: it is never taken as forward. The same
// holds when the two ends evidently could not be joined: the reflector's numbering proves that
// probes arrived (F > 0) yet its report lists nothing from the session (X = 0), e.g. because a
// NAT changed the sender's address on the way.
//
// Counts are first made consistent (ConsistentProbeCounts): reports are validated for R <= F <= S
// but a sender's F + U may still exceed S, and a reflector's X is whatever it says; neither may
// move a probe into a direction it was not lost in, nor count one twice.
ProbeCounts ReconcileLossDirection(const ProbeCounts& sender, std::optional<uint64_t> reflected);

// `counts` with F <= S, R <= F and U <= S - F: what a buggy or hostile agent claims beyond what
// it sent is dropped, the proven part (F, then R) first kept.
ProbeCounts ConsistentProbeCounts(const ProbeCounts& counts);

// Whether a reflector's count can be joined with the sender's: false when the reflector's
// numbering proves probes arrived (F > 0) and its report lists none (X = 0).
bool ReflectorCountUsable(const ProbeCounts& sender, uint64_t reflected);

}  // namespace regionpulse
