// ProbeRing: the records of one session's probes in flight or awaiting their window's report,
// by sender sequence, in a ring indexed by sequence modulo its capacity. The prober numbers a
// session's probes 0, 1, 2, ... (a probe that never left leaves a gap), and records leave
// oldest first as their windows settle, so a ring holds them without an allocation per probe.
// The capacity is what the session needs, probes sent in a window plus the probe timeout at
// its rate: it starts at kInitialCapacity (2.8 s at 10 probes/s with room to spare) and doubles
// when a faster rate needs more, up to kMaxCapacity. Pure.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace regionpulse {

template <typename Record>
class ProbeRing {
 public:
  static constexpr size_t kInitialCapacity = 64;
  // Beyond this many sequences between the oldest record and a new one, the oldest are
  // forgotten (as if never sent): 65,536 probes is 109 minutes at 10/s.
  static constexpr size_t kMaxCapacity = 65536;

  ProbeRing() : slots_(kInitialCapacity) {}

  // Records the probe numbered `sequence`. Sequences come in increasing order; one below the
  // oldest held is ignored (returns false), one inside the held range fills its place.
  bool Insert(uint32_t sequence, const Record& record) {
    if (count_ == 0) {
      first_ = sequence;
      end_ = uint64_t{sequence} + 1;
    } else if (sequence < first_) {
      return false;
    } else if (uint64_t{sequence} >= end_) {
      end_ = uint64_t{sequence} + 1;
    }
    while (end_ - first_ > slots_.size()) {
      if (slots_.size() >= kMaxCapacity) {
        DropOldest();
      } else {
        Grow();
      }
    }
    Slot& slot = slots_[Index(sequence)];
    if (!slot.present) ++count_;
    slot = Slot{true, sequence, record};
    return true;
  }

  // The record of `sequence`, or nullptr.
  Record* Find(uint32_t sequence) {
    if (count_ == 0 || sequence < first_ || uint64_t{sequence} >= end_) return nullptr;
    Slot& slot = slots_[Index(sequence)];
    return slot.present && slot.sequence == sequence ? &slot.record : nullptr;
  }

  // Forgets the record of `sequence` (if held).
  void Erase(uint32_t sequence) {
    if (Find(sequence) == nullptr) return;
    slots_[Index(sequence)].present = false;
    --count_;
    AdvanceFirst();
  }

  // Calls f(sequence, record) for every record, oldest first; f returns false to stop.
  template <typename F>
  void ForEach(F&& f) {
    for (uint64_t s = first_; count_ > 0 && s < end_; ++s) {
      Slot& slot = slots_[Index(static_cast<uint32_t>(s))];
      if (!slot.present || slot.sequence != s) continue;
      if (!f(static_cast<uint32_t>(s), slot.record)) return;
    }
  }

  // The first held sequence after `sequence` whose record satisfies `pred`, if any.
  template <typename Pred>
  const Record* NextAfter(uint32_t sequence, Pred&& pred, uint32_t* found) const {
    for (uint64_t s = uint64_t{sequence} + 1; s < end_; ++s) {
      const Slot& slot = slots_[Index(static_cast<uint32_t>(s))];
      if (!slot.present || slot.sequence != s || !pred(slot.record)) continue;
      *found = static_cast<uint32_t>(s);
      return &slot.record;
    }
    return nullptr;
  }

  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  size_t capacity() const { return slots_.size(); }

 private:
  struct Slot {
    bool present = false;
    uint32_t sequence = 0;
    Record record{};
  };

  size_t Index(uint32_t sequence) const { return sequence & (slots_.size() - 1); }

  void Grow() {
    std::vector<Slot> bigger(slots_.size() * 2);
    for (const Slot& slot : slots_) {
      if (slot.present) bigger[slot.sequence & (bigger.size() - 1)] = slot;
    }
    slots_ = std::move(bigger);
  }

  void DropOldest() {
    Slot& slot = slots_[Index(static_cast<uint32_t>(first_))];
    if (slot.present && slot.sequence == first_) {
      slot.present = false;
      --count_;
    }
    ++first_;
    AdvanceFirst();
  }

  // Moves first_ to the oldest held record.
  void AdvanceFirst() {
    if (count_ == 0) return;
    while (first_ < end_) {
      const Slot& slot = slots_[Index(static_cast<uint32_t>(first_))];
      if (slot.present && slot.sequence == first_) return;
      ++first_;
    }
  }

  std::vector<Slot> slots_;  // a power of two
  uint64_t first_ = 0;       // the oldest held sequence, when count_ > 0
  uint64_t end_ = 0;         // one past the newest
  size_t count_ = 0;
};

}  // namespace regionpulse
