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
//
// `refused`, Q, is what the same reflector reported refusing from the sender's sessions over
// those windows (wrong key, stale timestamp, rate limited, replayed). The sender counts those
// as lost (no reply; its numbering even proves a refused probe "lost on the way out", as the
// reflector does not number it), yet they reached the reflector: min(Q, the probes left not
// reflected) move out of `sent` into `refused`, and no loss figure counts them. Q is only read
// with a usable reflector count, like X.
ProbeCounts ReconcileLossDirection(const ProbeCounts& sender, std::optional<uint64_t> reflected,
                                   uint64_t refused = 0);

// A reflector's refusals of one sender's probes, by reason (ReflectedStats.refused_*).
struct RefusedCounts {
  uint64_t wrong_key = 0;
  uint64_t stale_timestamp = 0;
  uint64_t rate_limited = 0;
  uint64_t replayed = 0;

  uint64_t Total() const { return wrong_key + stale_timestamp + rate_limited + replayed; }
  void Add(const RefusedCounts& other) {
    wrong_key += other.wrong_key;
    stale_timestamp += other.stale_timestamp;
    rate_limited += other.rate_limited;
    replayed += other.replayed;
  }
  // These counts cut down to `total` (what the reconciliation moved), reasons in the order
  // above: the figures shown then add up to the refused probes taken out of the loss.
  RefusedCounts UpTo(uint64_t total) const;
};

// `counts` with F <= S, R <= F and U <= S - F: what a buggy or hostile agent claims beyond what
// it sent is dropped, the proven part (F, then R) first kept.
ProbeCounts ConsistentProbeCounts(const ProbeCounts& counts);

// Whether a reflector's count can be joined with the sender's: false when the reflector's
// numbering proves probes arrived (F > 0) and its report lists none (X = 0).
bool ReflectorCountUsable(const ProbeCounts& sender, uint64_t reflected);

}  // namespace regionpulse
