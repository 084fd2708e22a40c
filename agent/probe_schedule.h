// ProbeSchedule: when each target's next probe is due, for all targets at once. The prober
// arms one timer for the earliest deadline and, when it fires, sends every probe then due in
// one batch: one wake-up per batch instead of one timer (and mostly one wake-up) per probe.
// Each target keeps its own jittered deadline, so targets never fall into step (goldpinger
// #69). Pure: every time is passed in.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/clocks.h"

namespace regionpulse {

class ProbeSchedule {
 public:
  // Schedules `slot` (a small integer naming a target) at `due`, replacing any deadline it had.
  void Set(uint32_t slot, MonoTime due) {
    if (slot >= generation_.size()) generation_.resize(slot + 1, 0);
    const uint32_t generation = ++generation_[slot];
    heap_.push_back(Entry{due, slot, generation});
    std::push_heap(heap_.begin(), heap_.end(), Later);
    ++live_;
    if (scheduled_.size() <= slot) scheduled_.resize(slot + 1, false);
    if (scheduled_[slot]) --live_;  // replaced, not added
    scheduled_[slot] = true;
  }

  // Forgets `slot`'s deadline (its entry is skipped when it comes up).
  void Remove(uint32_t slot) {
    if (slot >= generation_.size() || !scheduled_[slot]) return;
    ++generation_[slot];
    scheduled_[slot] = false;
    --live_;
  }

  // The earliest deadline, if any target is scheduled.
  std::optional<MonoTime> NextDue() {
    DropStale();
    if (heap_.empty()) return std::nullopt;
    return heap_.front().due;
  }

  // Appends to `due` every slot whose deadline is <= now, earliest first, with its deadline;
  // each leaves the schedule until Set again.
  void PopDue(MonoTime now, std::vector<std::pair<uint32_t, MonoTime>>& due) {
    while (true) {
      DropStale();
      if (heap_.empty() || heap_.front().due > now) return;
      std::pop_heap(heap_.begin(), heap_.end(), Later);
      const Entry entry = heap_.back();
      heap_.pop_back();
      scheduled_[entry.slot] = false;
      --live_;
      due.emplace_back(entry.slot, entry.due);
    }
  }

  size_t size() const { return live_; }

  // The deadline after one due at `previous` and sent at `now`: `previous + delay`, so a late
  // wake-up does not push every later probe of the target back (the rate holds), yet never
  // sooner than `min_gap` after this send, so two probes of a target are never closer than the
  // jitter allows (interval * (1 - jitter)). After a stall of more than `delay` past that (a
  // suspended process, a starved core) it restarts from `now` instead of sending the missed
  // probes in a burst.
  static MonoTime Following(MonoTime previous, std::chrono::nanoseconds delay, MonoTime now,
                            std::chrono::nanoseconds min_gap) {
    const MonoTime next = previous + delay;
    if (next + delay < now) return now + delay;
    return std::max(next, now + min_gap);
  }

 private:
  struct Entry {
    MonoTime due;
    uint32_t slot;
    uint32_t generation;
  };
  static bool Later(const Entry& a, const Entry& b) {
    return a.due != b.due ? a.due > b.due : a.slot > b.slot;
  }
  void DropStale() {
    while (!heap_.empty() && heap_.front().generation != generation_[heap_.front().slot]) {
      std::pop_heap(heap_.begin(), heap_.end(), Later);
      heap_.pop_back();
    }
    // Removals leave entries behind; rebuild when they outnumber the live ones.
    if (heap_.size() > 64 && heap_.size() > 4 * live_) {
      std::erase_if(heap_, [&](const Entry& e) { return e.generation != generation_[e.slot]; });
      std::make_heap(heap_.begin(), heap_.end(), Later);
    }
  }

  std::vector<Entry> heap_;
  std::vector<uint32_t> generation_;  // by slot; an entry with an older one is stale
  std::vector<bool> scheduled_;       // by slot
  size_t live_ = 0;
};

}  // namespace regionpulse
