// The reconciliation of a sender's and a reflector's counts (loss_direction.h).
#include "aggregator/loss_direction.h"

#include <algorithm>

namespace regionpulse {

bool ReflectorCountUsable(const ProbeCounts& sender, uint64_t reflected) {
  return reflected > 0 || sender.received_forward == 0;
}

ProbeCounts ReconcileLossDirection(const ProbeCounts& sender, std::optional<uint64_t> reflected) {
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
