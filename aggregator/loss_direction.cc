// The reconciliation of a sender's and a reflector's counts (loss_direction.h).
#include "aggregator/loss_direction.h"

#include <algorithm>
#include <utility>

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

ProbeCounts ReconcileLossDirection(const ProbeCounts& reported, std::optional<uint64_t> reflected,
                                   uint64_t refused) {
  const ProbeCounts sender = ConsistentProbeCounts(reported);
  if (!reflected || !ReflectorCountUsable(sender, *reflected)) return sender;
  ProbeCounts out = sender;
  if (sender.lost_unknown > 0) {
    const uint64_t beyond_known =
        *reflected > sender.received_forward ? *reflected - sender.received_forward : 0;
    out.received_forward = sender.received_forward + std::min(beyond_known, sender.lost_unknown);
    out.lost_unknown = 0;
  }
  // What is left lost forward; refused probes are among them (never reflected, never numbered).
  const uint64_t not_reflected = out.sent - out.received_forward - out.lost_unknown;
  const uint64_t moved = std::min(refused, not_reflected);
  out.sent -= moved;
  out.refused += moved;
  return out;
}

RefusedCounts RefusedCounts::UpTo(uint64_t total) const {
  RefusedCounts out;
  for (auto [from, to] :
       {std::pair{wrong_key, &out.wrong_key}, std::pair{stale_timestamp, &out.stale_timestamp},
        std::pair{rate_limited, &out.rate_limited}, std::pair{replayed, &out.replayed}}) {
    *to = std::min(from, total);
    total -= *to;
  }
  return out;
}

}  // namespace regionpulse
