// The region matrix's storage: interned names, the slot rings and what each slot sums. Shared
// by region_matrix.cc, which fills and queries it, and verdict_evidence.cc, which reads the
// verdict's evidence from it; nothing else includes it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "aggregator/slot_ring.h"
#include "common/dense_histogram.h"
#include "common/latency_histogram.h"
#include "common/proto_convert.h"

namespace regionpulse {

struct PathSlot {
  uint64_t sent = 0;
  uint64_t forward = 0;
  uint64_t reverse = 0;
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  LatencyHistogram kernel;
  LatencyHistogram user;
};

struct ObserverSlot {
  uint64_t sent = 0;
  uint64_t forward = 0;
  uint64_t reverse = 0;
  uint64_t rx_packets = 0;  // passive traffic received from the target region
};

struct PairSlot {
  uint64_t sent = 0;
  uint64_t forward = 0;
  uint64_t reverse = 0;
  DenseHistogram kernel;
  DenseHistogram user;
  uint64_t tx_bytes = 0;
  uint64_t rx_bytes = 0;
  uint64_t tcp_retransmits = 0;
};

struct FlowSlot {
  uint64_t bytes_acked = 0;
  uint64_t retransmits = 0;
  uint64_t established = 0;
  uint64_t failed_connects = 0;
  uint64_t resets = 0;
  int64_t srtt_sum_ns = 0;
  uint64_t srtt_samples = 0;
  int64_t covered_ns = 0;  // total window length reported, for rates
};

// One flow's slots summed over a range.
struct FlowTotals {
  uint64_t bytes_acked = 0;
  uint64_t retransmits = 0;
  uint64_t established = 0;
  uint64_t failed_connects = 0;
  uint64_t resets = 0;
  int64_t covered_ns = 0;

  void Add(const FlowSlot& slot) {
    bytes_acked += slot.bytes_acked;
    retransmits += slot.retransmits;
    established += slot.established;
    failed_connects += slot.failed_connects;
    resets += slot.resets;
    covered_ns += slot.covered_ns;
  }
  // Acknowledged bytes per second over the windows reported.
  uint64_t RateBps() const {
    if (covered_ns <= 0) return 0;
    return static_cast<uint64_t>(static_cast<double>(bytes_acked) * 1e9 / static_cast<double>(covered_ns));
  }
};

// A percentile as a duration; nullopt when the histogram is empty.
inline std::optional<std::chrono::nanoseconds> PercentileOf(const LatencyHistogram& h, double q) {
  if (auto p = h.Percentile(q)) return std::chrono::nanoseconds(*p);
  return std::nullopt;
}

// Everything RegionMatrix holds (region_matrix.h: bounds, cost, thread-safety).
struct RegionMatrixState {
  struct Path {
    uint32_t source = 0;
    uint32_t target = 0;
    uint32_t source_region = 0;
    uint32_t target_region = 0;
    SlotRing<PathSlot> ring;
    WallClock::time_point last_window_end;
    std::chrono::nanoseconds jitter{0};
  };
  // One observer node towards one target region; its ring is the same number in observer_rings.
  struct ObserverRegion {
    uint32_t node = 0;
    uint32_t node_region = 0;
    uint32_t target_region = 0;
    std::optional<WallClock::time_point> last_probed;  // window_end of the last probes to it
  };
  struct Pair {
    SlotRing<PairSlot> ring;
  };
  struct Flow {
    Flow(uint32_t node, uint32_t node_region, uint32_t remote_region, std::string name, size_t ring_size)
        : node(node),
          node_region(node_region),
          remote_region(remote_region),
          name(std::move(name)),
          ring(ring_size) {}
    uint32_t node = 0;
    uint32_t node_region = 0;
    uint32_t remote_region = 0;
    std::string name;
    SlotRing<FlowSlot> ring;
    WallClock::time_point last_window_end;
    std::chrono::nanoseconds last_progress_age{0};
    std::chrono::nanoseconds srtt{0};
    uint32_t connections = 0;
    uint64_t expected_min_rate_bps = 0;
    std::optional<WallClock::time_point> last_acked;  // window_end of the last window that acked bytes
  };

  // The peers of each source's last report, by position (see Add).
  struct PeerRef {
    std::string node;
    std::string region;
    uint32_t node_id = 0;
    uint32_t region_id = 0;
  };
  std::unordered_map<uint32_t, std::vector<PeerRef>> peers_of;

  // Interned names: the hot maps key on small integers.
  std::vector<std::string> names;
  std::unordered_map<std::string, uint32_t> ids;

  std::unordered_map<uint64_t, Path> paths;  // (source << 32 | target)
  // Observer entries and their 1 s rings, by number; observer_index finds the number of
  // (node << 32 | region).
  std::vector<ObserverRegion> observer_regions;
  PackedSlotRings<ObserverSlot> observer_rings;
  std::unordered_map<uint64_t, uint32_t> observer_index;
  std::map<std::pair<uint32_t, uint32_t>, Pair> pairs;  // (source region, target region)
  std::unordered_map<std::string, Flow> flows;          // node \0 name \0 remote region
  std::set<uint32_t> regions;

  int64_t last_evict_epoch = std::numeric_limits<int64_t>::min();
  uint64_t paths_not_tracked = 0;
  uint64_t stale_windows_ignored = 0;

  explicit RegionMatrixState(size_t fine_ring_size) : observer_rings(fine_ring_size) {}

  // The number of the observer entry (node, target region), appended when new.
  uint32_t ObserverEntry(uint32_t node, uint32_t node_region, uint32_t target_region) {
    auto [it, inserted] = observer_index.try_emplace((static_cast<uint64_t>(node) << 32) | target_region,
                                                     static_cast<uint32_t>(observer_regions.size()));
    if (inserted) {
      observer_regions.push_back({node, node_region, target_region, {}});
      observer_rings.Append();
    }
    return it->second;
  }
  // Drops the observer entries for which drop(entry, number) is true; the others keep their
  // order and are renumbered.
  template <typename Drop>
  void DropObserverEntries(Drop&& drop) {
    std::vector<bool> keep(observer_regions.size());
    bool any_dropped = false;
    for (size_t i = 0; i < observer_regions.size(); ++i) {
      keep[i] = !drop(observer_regions[i], i);
      any_dropped |= !keep[i];
    }
    if (!any_dropped) return;
    observer_rings.Compact([&](size_t ring) { return keep[ring]; });
    size_t kept = 0;
    for (size_t i = 0; i < observer_regions.size(); ++i) {
      if (keep[i]) observer_regions[kept++] = observer_regions[i];
    }
    observer_regions.resize(kept);
    observer_index.clear();
    for (size_t i = 0; i < observer_regions.size(); ++i) {
      const ObserverRegion& entry = observer_regions[i];
      observer_index.emplace((static_cast<uint64_t>(entry.node) << 32) | entry.target_region,
                             static_cast<uint32_t>(i));
    }
  }

  uint32_t Intern(const std::string& name) {
    auto [it, inserted] = ids.try_emplace(name, static_cast<uint32_t>(names.size()));
    if (inserted) names.push_back(name);
    return it->second;
  }
  std::optional<uint32_t> IdOf(const std::string& name) const {
    const auto it = ids.find(name);
    if (it == ids.end()) return std::nullopt;
    return it->second;
  }
  const std::string& Name(uint32_t id) const { return names[id]; }

  // Each id's position in name order, so that the evaluation tick sorts ids by name with
  // integer compares. Names are only ever added: recomputed only after new ones appeared.
  mutable std::vector<uint32_t> name_ranks;
  const std::vector<uint32_t>& NameRanks() const {
    if (name_ranks.size() != names.size()) {
      std::vector<uint32_t> order(names.size());
      for (uint32_t id = 0; id < order.size(); ++id) order[id] = id;
      std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return names[a] < names[b]; });
      name_ranks.resize(names.size());
      for (uint32_t rank = 0; rank < order.size(); ++rank) name_ranks[order[rank]] = rank;
    }
    return name_ranks;
  }
};

}  // namespace regionpulse
