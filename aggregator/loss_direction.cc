// The reconciliation of a sender's and a reflector's counts (loss_direction.h).
#include "aggregator/loss_direction.h"

#include <algorithm>

namespace regionpulse {

bool ReflectorCountUsable(const ProbeCounts& sender, uint64_t reflected) {
  return reflected > 0 || sender.received_forward == 0;
}

ProbeCounts ConsistentProbeCounts(const ProbeCounts& counts) {
  ProbeCounts out = counts;
  out.received_forward = std::min(out.received_forward, out.sent);
  out.received_reverse = std::min(out.received_reverse, out.received_forward);
  out.lost_unknown = std::min(out.lost_unknown, out.sent - out.received_forward);
  return out;
}

ProbeCounts ReconcileLossDirection(const ProbeCounts& reported, std::optional<uint64_t> reflected) {
  const ProbeCounts sender = ConsistentProbeCounts(reported);
  if (!reflected || sender.lost_unknown == 0) return sender;
  if (!ReflectorCountUsable(sender, *reflected)) return sender;
  ProbeCounts out = sender;
  const uint64_t beyond_known =
      *reflected > sender.received_forward ? *reflected - sender.received_forward : 0;
  out.received_forward = sender.received_forward + std::min(beyond_known, sender.lost_unknown);
  out.lost_unknown = 0;
  return out;
}

}  // namespace regionpulse
