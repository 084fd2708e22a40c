// A token bucket: `rate` tokens a second up to `burst`, one taken per admitted event. Pure: the
// caller passes the time, so it is tested without clocks and shared by the reflector's per-source
// limit and the aggregator's limit on queries computed under its core lock.
#pragma once

#include <algorithm>
#include <chrono>

namespace regionpulse {

template <typename TimePoint>
class TokenBucket {
 public:
  // Starts full: a burst is admitted at once.
  TokenBucket(double rate_per_second, double burst, TimePoint now)
      : rate_(rate_per_second), burst_(burst), tokens_(burst), refilled_(now) {}

  // True, taking a token, when one is there at `now`. Time going backwards refills nothing.
  bool Take(TimePoint now) {
    const double elapsed = std::chrono::duration<double>(now - refilled_).count();
    if (elapsed > 0) {
      tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
      refilled_ = now;
    }
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  TimePoint refilled_;
};

}  // namespace regionpulse
