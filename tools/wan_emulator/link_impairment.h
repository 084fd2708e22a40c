// The WAN emulator's impairment of one direction of one relayed link: what a WAN does to a
// datagram (delay, jitter, loss, reordering, blackhole, a rate limit), decided per packet as
// "drop, and why" or "deliver at time T". Pure: time and randomness come from the caller.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/clocks.h"
#include "common/result.h"

namespace regionpulse::wan {

using Nanos = std::chrono::nanoseconds;

// The emulator's randomness; tests seed it, the program seeds it from the config or at random.
using Rng = std::mt19937_64;

// The longest delay, jitter or reorder hold accepted: a bound on how long a datagram can
// wait in memory (real paths stay far below a second).
inline constexpr Nanos kMaxDelay = std::chrono::seconds(10);

struct Impairment {
  // Fixed one-way delay added to every delivered datagram.
  Nanos delay{0};
  // Each datagram's delay is delay + U(-jitter, +jitter), never below zero. Uniform, not
  // normal: it is bounded (a test and a reader know the worst case exactly) and it is
  // netem's default too. Order is kept within a direction (see LinkDirection).
  Nanos jitter{0};
  // Probability in [0, 1] that a datagram is dropped (independent per datagram).
  double loss = 0;
  // Probability in [0, 1] that a datagram is held back by reorder_hold on top of its delay,
  // so the datagrams after it overtake it.
  double reorder = 0;
  Nanos reorder_hold = std::chrono::milliseconds(10);
  // Drops everything.
  bool blackhole = false;
  // Bits per second, 0 for unlimited: datagrams leave one after the other at this rate (a
  // serialising link), before the delay.
  uint64_t rate_bps = 0;

  bool operator==(const Impairment&) const = default;
};

// Sets one setting from its text form, as written in the config and in `ctl set`:
//   delay=35ms  jitter=2ms  loss=30%  reorder=1%  reorder_hold=10ms  blackhole=on|off
//   rate=100mbit (bit, kbit, mbit, gbit; 0 or off for unlimited)
// A duration of "0" is accepted without a unit. Percentages need their '%' sign: a bare
// "loss=1" could mean 1 % or 100 %. The error names the key and the refused text.
Status ApplyImpairmentSetting(Impairment& impairment, const std::string& key, const std::string& value);
// Applies "key=value" words in order; stops at the first error (nothing applied then).
Status ApplyImpairmentSettings(Impairment& impairment, const std::vector<std::string>& words);
// The keys ApplyImpairmentSetting knows, for error messages and the config schema.
const std::vector<std::string>& ImpairmentKeys();
// "delay=35ms jitter=2ms loss=30% ..." with every key, in a form ApplyImpairmentSettings reads back.
std::string FormatImpairment(const Impairment& impairment);
// Compact human forms used in tables: "35 ms", "0.25 ms", "30 %", "100 Mbit/s".
std::string FormatDurationShort(Nanos value);
std::string FormatPercentShort(double ratio);
std::string FormatRateShort(uint64_t bits_per_second);

enum class Fate { kDeliver, kDropLoss, kDropBlackhole };

struct Decision {
  Fate fate = Fate::kDeliver;
  // When to send it on (kDeliver only); may be <= the receive time: send at once.
  MonoTime deliver_at{};
  // Held back by the reorder impairment.
  bool reordered = false;
};

// The state of one direction of one link (A's datagrams to B): it remembers when the last
// ordinary datagram leaves, so that a datagram never overtakes an earlier one in the same
// direction because of jitter (a WAN path with jitter mostly keeps order; TCP over a path
// that reorders at every jitter sample would look far worse than a real one). Overtaking
// happens only through `reorder`. The price: when datagrams come faster than the jitter
// range, a datagram that drew a short delay waits for the one before it, so the delays
// skew towards the top of the range.
class LinkDirection {
 public:
  // `node_blackholed`: the sending or the receiving node is blackholed on its own.
  Decision Decide(const Impairment& impairment, bool node_blackholed, size_t bytes, MonoTime received,
                  Rng& rng);

 private:
  // Latest delivery time of an ordinary (not held back) datagram so far.
  MonoTime last_ordinary_delivery_{};
  // When the rate-limited link finishes sending what it has accepted.
  MonoTime link_free_at_{};
};

}  // namespace regionpulse::wan
