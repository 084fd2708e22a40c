// Time-slotted rings: the region matrix's bounded memory. A fixed number of slots per ring,
// reused in a circle, so memory stays constant however long the aggregator runs.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace regionpulse {

// A slot belongs to one epoch (time / slot width); writing to a newer epoch recycles the slot,
// writing to an epoch older than the ring holds is refused.
constexpr int64_t kNoEpoch = std::numeric_limits<int64_t>::min();

// The epoch of `t` for slots `width` wide: floor(t / width), also for times before the epoch.
template <typename Clock, typename Duration>
int64_t EpochOf(std::chrono::time_point<Clock, Duration> t, std::chrono::seconds width) {
  const int64_t a = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  const int64_t b = std::chrono::duration_cast<std::chrono::nanoseconds>(width).count();
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Slots to cover `window` at `slot` width: the partial slot at each end, plus one for
// windows stamped slightly in the future (the clock-skew allowance).
inline size_t RingSize(std::chrono::seconds window, std::chrono::seconds slot) {
  return static_cast<size_t>((window.count() + slot.count() - 1) / slot.count()) + 2;
}

template <typename Slot>
struct RingEntry {
  int64_t epoch = kNoEpoch;
  Slot data;
};

// The slot of `epoch` in the ring [entries, entries + size) whose newest epoch is *newest.
template <typename Slot>
Slot* RingAt(RingEntry<Slot>* entries, size_t ring_size, int64_t* newest, int64_t epoch) {
  const auto size = static_cast<int64_t>(ring_size);
  if (*newest != kNoEpoch && epoch <= *newest - size) return nullptr;
  RingEntry<Slot>& entry = entries[static_cast<size_t>(((epoch % size) + size) % size)];
  if (entry.epoch != epoch) {
    if (entry.epoch != kNoEpoch && entry.epoch > epoch) return nullptr;
    entry.data = Slot{};
    entry.epoch = epoch;
  }
  *newest = std::max(*newest, epoch);
  return &entry.data;
}

template <typename Slot, typename F>
void RingForEachSince(const RingEntry<Slot>* entries, size_t size, int64_t from_epoch, F&& f) {
  for (size_t i = 0; i < size; ++i) {
    if (entries[i].epoch != kNoEpoch && entries[i].epoch >= from_epoch) f(entries[i].data);
  }
}

// As RingForEachSince, with each slot's epoch: f(epoch, data).
template <typename Slot, typename F>
void RingForEachEpochSince(const RingEntry<Slot>* entries, size_t size, int64_t from_epoch, F&& f) {
  for (size_t i = 0; i < size; ++i) {
    if (entries[i].epoch != kNoEpoch && entries[i].epoch >= from_epoch) f(entries[i].epoch, entries[i].data);
  }
}

// The slot of `epoch` when the ring holds it, for reading; nullptr otherwise.
template <typename Slot>
const Slot* RingFind(const RingEntry<Slot>* entries, size_t ring_size, int64_t epoch) {
  const auto size = static_cast<int64_t>(ring_size);
  const RingEntry<Slot>& entry = entries[static_cast<size_t>(((epoch % size) + size) % size)];
  return entry.epoch == epoch ? &entry.data : nullptr;
}

template <typename Slot>
class SlotRing {
 public:
  explicit SlotRing(size_t size) : entries_(size) {}

  Slot* At(int64_t epoch) { return RingAt(entries_.data(), entries_.size(), &newest_, epoch); }

  template <typename F>
  void ForEachSince(int64_t from_epoch, F&& f) const {
    RingForEachSince(entries_.data(), entries_.size(), from_epoch, f);
  }
  template <typename F>
  void ForEachEpochSince(int64_t from_epoch, F&& f) const {
    RingForEachEpochSince(entries_.data(), entries_.size(), from_epoch, f);
  }
  const Slot* Find(int64_t epoch) const { return RingFind(entries_.data(), entries_.size(), epoch); }

  int64_t newest() const { return newest_; }
  bool HasDataSince(int64_t from_epoch) const { return newest_ != kNoEpoch && newest_ >= from_epoch; }

 private:
  std::vector<RingEntry<Slot>> entries_;
  int64_t newest_ = kNoEpoch;
};

// Many rings of one size, numbered 0..size()-1, side by side in one array in the order they
// were added. For the entries the evaluation tick reads every second (every observer and
// target region, 40,000 at 10,000 agents): rings each in their own heap block, reached through
// hash-map nodes, made that walk bound by cache and TLB misses; this one is sequential.
template <typename Slot>
class PackedSlotRings {
 public:
  explicit PackedSlotRings(size_t ring_size) : ring_size_(ring_size) {}

  size_t size() const { return newest_.size(); }
  // Appends an empty ring; returns its number.
  size_t Append() {
    entries_.resize(entries_.size() + ring_size_);
    newest_.push_back(kNoEpoch);
    return newest_.size() - 1;
  }
  Slot* At(size_t ring, int64_t epoch) { return RingAt(Entries(ring), ring_size_, &newest_[ring], epoch); }
  template <typename F>
  void ForEachSince(size_t ring, int64_t from_epoch, F&& f) const {
    RingForEachSince(&entries_[ring * ring_size_], ring_size_, from_epoch, f);
  }
  template <typename F>
  void ForEachEpochSince(size_t ring, int64_t from_epoch, F&& f) const {
    RingForEachEpochSince(&entries_[ring * ring_size_], ring_size_, from_epoch, f);
  }
  bool HasDataSince(size_t ring, int64_t from_epoch) const {
    return newest_[ring] != kNoEpoch && newest_[ring] >= from_epoch;
  }
  // Keeps the rings for which keep(ring) is true, in order, renumbered from 0.
  template <typename Keep>
  void Compact(Keep&& keep) {
    size_t kept = 0;
    for (size_t ring = 0; ring < size(); ++ring) {
      if (!keep(ring)) continue;
      if (kept != ring) {
        std::copy_n(Entries(ring), ring_size_, Entries(kept));
        newest_[kept] = newest_[ring];
      }
      ++kept;
    }
    newest_.resize(kept);
    entries_.resize(kept * ring_size_);
  }

 private:
  RingEntry<Slot>* Entries(size_t ring) { return &entries_[ring * ring_size_]; }

  size_t ring_size_;
  std::vector<RingEntry<Slot>> entries_;
  std::vector<int64_t> newest_;
};

}  // namespace regionpulse
