// The region matrix's storage: interned names, the slot rings and what each slot sums. Shared
// by region_matrix.cc, which fills and queries it, and verdict_evidence.cc, which reads the
// verdict's evidence from it; nothing else includes it.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "aggregator/loss_direction.h"
#include "aggregator/slot_ring.h"
#include "common/dense_histogram.h"
#include "common/latency_histogram.h"
#include "common/proto_convert.h"

namespace regionpulse {

// Probe slots carry the sender's counts (sent, known reached, returned, lost with the direction
// unknown) and, in `reflected` and `refused`, what the target's reflector reported receiving
// and refusing from the sender's sessions, placed by the reflector's window (loss_direction.h).
struct PathSlot {
  uint64_t sent = 0;
  uint64_t forward = 0;
  uint64_t reverse = 0;
  uint64_t unknown = 0;
  uint64_t reflected = 0;
  RefusedCounts refused;  // what the target's reflector refused of the sender's probes
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  LatencyHistogram kernel;
  LatencyHistogram user;
};

// One observer node and one target region in one 1 s slot: passive traffic received from it.
struct ObserverSlot {
  uint64_t rx_packets = 0;
};

// One observer node and one target node in one 1 s slot, read for every pair on every
// evaluation tick (120,000 at 10,000 agents): 32-bit counters keep the rings at half the size,
// and a second of probes to one node fits them many times over (adds saturate regardless).
struct TargetSlot {
  uint32_t sent = 0;
  uint32_t forward = 0;
  uint32_t reverse = 0;
  uint32_t unknown = 0;
  uint32_t reflected = 0;
  uint32_t refused = 0;  // all reasons: the verdict needs only how many were not loss
};

inline void AddSaturating(uint32_t* to, uint64_t value) {
  const uint64_t sum = static_cast<uint64_t>(*to) + value;
  *to = sum > std::numeric_limits<uint32_t>::max() ? std::numeric_limits<uint32_t>::max()
                                                   : static_cast<uint32_t>(sum);
}

// How much of a slot's time a node's reports cover: the lengths of its windows placed there.
struct CoverageSlot {
  int64_t covered_ns = 0;
};

struct PairSlot {
  uint64_t sent = 0;
  uint64_t forward = 0;
  uint64_t reverse = 0;
  uint64_t unknown = 0;
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

// A sender's STAMP session as the target's reflector names it: the reflector's node, the
// sender's address (IPv4 as IPv4-mapped IPv6, so both spellings meet), source port and SSID.
// `any_address`: the sender reported its source without an address (bound to the wildcard), so
// only its port and SSID can be matched.
struct SessionKey {
  uint32_t reflector = 0;
  uint16_t port = 0;
  uint16_t ssid = 0;
  bool any_address = false;
  std::array<uint8_t, 16> address{};

  bool operator==(const SessionKey&) const = default;
};

struct SessionKeyHash {
  size_t operator()(const SessionKey& key) const {
    uint64_t h =
        (static_cast<uint64_t>(key.reflector) << 32) ^ (static_cast<uint64_t>(key.port) << 16) ^ key.ssid;
    for (size_t i = 0; i < key.address.size(); i += 8) {
      uint64_t word = 0;
      for (size_t j = 0; j < 8; ++j) word = (word << 8) | key.address[i + j];
      h = (h ^ word) * 0x9E3779B97F4A7C15ULL;
    }
    return static_cast<size_t>(h ^ (h >> 29) ^ (key.any_address ? 1 : 0));
  }
};

// A pair's probe slots over a range, split for the loss-direction rule: the slots whose time the
// target's reports cover (with what its reflector received from the sender's sessions there),
// and the others, where the unknown stays unknown.
struct CoveredCounts {
  ProbeCounts covered;
  uint64_t reflected = 0;
  uint64_t refused = 0;
  RefusedCounts refused_by_reason;  // from path slots only (target slots keep the total)
  bool any_covered = false;
  ProbeCounts uncovered;

  ProbeCounts Sender() const {
    ProbeCounts total = covered;
    total.Add(uncovered);
    return total;
  }
  ProbeCounts Reconciled() const {
    ProbeCounts total = ReconcileLossDirection(
        covered, any_covered ? std::optional<uint64_t>(reflected) : std::nullopt, refused);
    total.Add(uncovered);
    return total;
  }
  // The target's reflector reported over this time and its count could be joined with the
  // sender's: the direction comes from both ends.
  bool ReflectorReported() const { return any_covered && ReflectorCountUsable(covered, reflected); }

  // Adds one slot's counts to the covered or the uncovered side.
  template <typename Slot>
  void Add(bool slot_covered, const Slot& slot) {
    (slot_covered ? covered : uncovered).Add({slot.sent, slot.forward, slot.reverse, slot.unknown});
    if (slot_covered) {
      reflected += slot.reflected;
      if constexpr (std::is_same_v<Slot, PathSlot>) {
        refused += slot.refused.Total();
        refused_by_reason.Add(slot.refused);
      } else {
        refused += slot.refused;
      }
      any_covered = true;
    }
  }
};

// Whether the target's reports cover a slot's time as well as the observer's do. Windows of
// the two agents are not aligned and may land in neighbouring slots; a slot where the target
// reported less than nine tenths of the observer's time (its newest window not in yet, or it
// went silent) is left to the unknown rather than read as "received nothing".
inline bool SlotCovered(const CoverageSlot* target, const CoverageSlot* observer) {
  if (target == nullptr || target->covered_ns <= 0) return false;
  const int64_t observer_ns = observer ? observer->covered_ns : 0;
  return target->covered_ns * 10 >= observer_ns * 9;
}

// Entries of one kind, each with a ring in `rings` of the same number, found by a 64-bit key
// (two interned ids): the evaluation tick walks the rings in order, Add finds them by key.
template <typename Entry, typename Slot>
struct KeyedRings {
  std::vector<Entry> entries;
  PackedSlotRings<Slot> rings;
  std::unordered_map<uint64_t, uint32_t> index;

  explicit KeyedRings(size_t ring_size) : rings(ring_size) {}

  size_t size() const { return entries.size(); }
  std::optional<uint32_t> Find(uint64_t key) const {
    const auto it = index.find(key);
    if (it == index.end()) return std::nullopt;
    return it->second;
  }
  // The number of the entry with `key`, appended as `entry` when new.
  uint32_t Insert(uint64_t key, const Entry& entry) {
    auto [it, inserted] = index.try_emplace(key, static_cast<uint32_t>(entries.size()));
    if (inserted) {
      entries.push_back(entry);
      rings.Append();
    }
    return it->second;
  }
  // Drops the entries for which drop(entry, number) is true; the others keep their order and are
  // renumbered.
  // Whether any was dropped (numbers then changed).
  template <typename Drop>
  bool DropIf(Drop&& drop) {
    std::vector<bool> keep(entries.size());
    bool any_dropped = false;
    for (size_t i = 0; i < entries.size(); ++i) {
      keep[i] = !drop(entries[i], i);
      any_dropped |= !keep[i];
    }
    if (!any_dropped) return false;
    rings.Compact([&](size_t ring) { return keep[ring]; });
    size_t kept = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (keep[i]) entries[kept++] = entries[i];
    }
    entries.resize(kept);
    index.clear();
    for (size_t i = 0; i < entries.size(); ++i) index.emplace(entries[i].Key(), static_cast<uint32_t>(i));
    return true;
  }
};

inline uint64_t PairKey(uint32_t a, uint32_t b) {
  return (static_cast<uint64_t>(a) << 32) | b;
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
  // One observer node towards one target region: passive traffic from it, and when it last
  // probed a node there (the matrix's observer counts over its window).
  struct ObserverRegion {
    uint32_t node = 0;
    uint32_t node_region = 0;
    uint32_t target_region = 0;
    std::optional<WallClock::time_point> last_probed;  // window_end of the last probes to it
    uint64_t Key() const { return PairKey(node, target_region); }
  };
  // One observer node towards one target node: its probes over the evidence window, in 1 s
  // slots (TargetSlot), which the verdict evidence reads per target node.
  struct ObserverTarget {
    uint32_t node = 0;
    uint32_t node_region = 0;
    uint32_t target = 0;
    uint32_t target_region = 0;
    uint64_t Key() const { return PairKey(node, target); }
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
    // What the newest report said (window end, progress, bytes outstanding): kept for the
    // replication retention after the ring has emptied.
    WallClock::time_point last_window_end;
    std::chrono::nanoseconds last_progress_age{0};
    uint64_t bytes_outstanding = 0;
    std::chrono::nanoseconds srtt{0};
    uint32_t connections = 0;
    uint64_t expected_min_rate_bps = 0;
    std::optional<WallClock::time_point> last_acked;  // window_end of the last window that acked bytes
  };
  // The windows a node reported, by the time they cover: whether its reflector's silence about a
  // sender means "received nothing" or "did not say".
  struct NodeWindows {
    NodeWindows(size_t fine_size, size_t coarse_size) : fine(fine_size), coarse(coarse_size) {}
    SlotRing<CoverageSlot> fine;
    SlotRing<CoverageSlot> coarse;
    WallClock::time_point last_window_end{};
    // Its reports list what its reflector received (region_matrix.cc, SpeaksForReflector);
    // until one does, its windows cover nothing.
    bool speaks_for_reflector = false;
    // status.reflected_senders_dropped of its newest report (a count since the agent's start).
    uint64_t reflected_senders_dropped = 0;
  };
  // Which observer a reflector's count for a session belongs to, from the sender's own reports.
  struct SenderSession {
    uint32_t observer = 0;
    WallClock::time_point last_seen{};
  };
  // A reflector's count for a session no sender has reported (yet): the two agents' reports of
  // the same second arrive in either order.
  struct PendingReflected {
    WallClock::time_point window_end{};
    uint64_t received = 0;
    RefusedCounts refused;
  };

  // Bumped whenever an entry of `paths`, `observer_regions`, `observer_targets` or
  // `sender_sessions` is removed (entries renumbered, pointers dangling): what a node's last
  // report found there (NodeRefs) is then looked up again. Only eviction and Forget remove.
  uint64_t layout_generation = 1;

  // What each source's last report named and where its entries were filed, by position: an
  // agent's report names the same peers and sessions window after window (until its plan
  // changes), so the next report's entries are filed without interning, address parsing or hash
  // lookups. Places are cached only once found (something not tracked is looked for again) and
  // only for `generation`.
  struct PeerRef {
    std::string node;
    std::string region;
    uint32_t node_id = 0;
    uint32_t region_id = 0;
    uint64_t generation = 0;
    std::optional<uint32_t> observer_entry;  // observer_regions (node, target region)
    std::optional<uint32_t> target_entry;    // observer_targets (node, target node)
    Path* path = nullptr;
    // The path was refused at max_paths: it cannot be tracked until something is removed (a new
    // generation), so it is not looked for again meanwhile.
    bool path_refused = false;
    // The path's own session as the target's reflector names it (its source and SSID).
    std::string source_address;
    uint32_t source_port = 0;
    uint32_t ssid = 0;
    SenderSession* session = nullptr;
  };
  // A reflected entry: the sender's session, and where its counts were filed for that observer.
  struct ReflectedRef {
    std::string sender_address;
    uint32_t sender_port = 0;
    uint32_t ssid = 0;
    uint64_t generation = 0;
    const SenderSession* session = nullptr;
    uint32_t observer = 0;                 // session->observer when the places below were found
    std::optional<uint32_t> target_entry;  // observer_targets (observer, this node)
    Path* path = nullptr;                  // paths (observer, this node)
    // None was there while paths were at max_paths: none can appear before something is
    // removed (a new generation).
    bool no_path_at_cap = false;
  };
  struct NodeRefs {
    std::vector<PeerRef> paths;
    std::vector<ReflectedRef> reflected;
  };
  std::unordered_map<uint32_t, NodeRefs> refs_of;

  // Interned names: the hot maps key on small integers.
  std::vector<std::string> names;
  std::unordered_map<std::string, uint32_t> ids;

  std::unordered_map<uint64_t, Path> paths;  // (source << 32 | target)
  // Paths that may have something for the matrix's region cells to settle (a slot with unknown
  // loss or with refused probes): path key -> the newest such slot's epoch. Kept by Add, so
  // Matrix visits these instead of every path's slots under the core lock; a key may outlive
  // its path (Forget) or its slots until the next Evict, never the other way round.
  std::unordered_map<uint64_t, int64_t> unsettled_paths;
  void MarkUnsettled(const Path& path, int64_t epoch) {
    int64_t& newest = unsettled_paths.try_emplace(PairKey(path.source, path.target), epoch).first->second;
    newest = std::max(newest, epoch);
  }
  KeyedRings<ObserverRegion, ObserverSlot> observer_regions;
  KeyedRings<ObserverTarget, TargetSlot> observer_targets;
  std::map<std::pair<uint32_t, uint32_t>, Pair> pairs;  // (source region, target region)
  std::unordered_map<std::string, Flow> flows;          // node \0 name \0 remote region
  std::unordered_map<uint32_t, NodeWindows> node_windows;
  std::unordered_map<SessionKey, SenderSession, SessionKeyHash> sender_sessions;
  std::unordered_map<SessionKey, std::vector<PendingReflected>, SessionKeyHash> pending_reflected;
  size_t pending_reflected_entries = 0;
  // Per region: the newest window end in which an observer elsewhere got a reply from it.
  std::unordered_map<uint32_t, WallClock::time_point> last_answered;
  std::set<uint32_t> regions;

  int64_t last_evict_epoch = std::numeric_limits<int64_t>::min();
  uint64_t paths_not_tracked = 0;
  uint64_t targets_not_tracked = 0;
  uint64_t sessions_not_tracked = 0;
  uint64_t reflected_unmatched = 0;
  uint64_t stale_windows_ignored = 0;
  uint64_t names_not_interned = 0;
  uint64_t pairs_not_tracked = 0;
  uint64_t flows_not_tracked = 0;

  explicit RegionMatrixState(size_t fine_ring_size)
      : observer_regions(fine_ring_size), observer_targets(fine_ring_size) {}

  // The number of the observer entry (node, target region), appended when new.
  uint32_t ObserverEntry(uint32_t node, uint32_t node_region, uint32_t target_region) {
    return observer_regions.Insert(PairKey(node, target_region), {node, node_region, target_region, {}});
  }

  // Names are never forgotten (ids stay valid for as long as anything may hold one), so their
  // number is capped: a name beyond max_names is not interned and what it names is not
  // tracked (counted in names_not_interned).
  size_t max_names = std::numeric_limits<size_t>::max();
  std::optional<uint32_t> Intern(const std::string& name) {
    if (const auto it = ids.find(name); it != ids.end()) return it->second;
    if (names.size() >= max_names) {
      ++names_not_interned;
      return std::nullopt;
    }
    const auto id = static_cast<uint32_t>(names.size());
    ids.emplace(name, id);
    names.push_back(name);
    return id;
  }
  std::optional<uint32_t> IdOf(const std::string& name) const {
    const auto it = ids.find(name);
    if (it == ids.end()) return std::nullopt;
    return it->second;
  }
  const std::string& Name(uint32_t id) const { return names[id]; }

  const NodeWindows* WindowsOf(uint32_t node) const {
    const auto it = node_windows.find(node);
    return it == node_windows.end() ? nullptr : &it->second;
  }

  // One pair's 1 s target slots since `from`, split by the target's coverage (CoveredCounts).
  CoveredCounts TargetCounts(uint32_t number, int64_t from) const {
    const ObserverTarget& entry = observer_targets.entries[number];
    const NodeWindows* target = WindowsOf(entry.target);
    const NodeWindows* observer = WindowsOf(entry.node);
    CoveredCounts out;
    observer_targets.rings.ForEachEpochSince(number, from, [&](int64_t epoch, const TargetSlot& slot) {
      out.Add(target != nullptr &&
                  SlotCovered(target->fine.Find(epoch), observer ? observer->fine.Find(epoch) : nullptr),
              slot);
    });
    return out;
  }

  // One path's coarse slots since `from`, split the same way.
  CoveredCounts PathCounts(const Path& path, int64_t from) const {
    const NodeWindows* target = WindowsOf(path.target);
    const NodeWindows* observer = WindowsOf(path.source);
    CoveredCounts out;
    path.ring.ForEachEpochSince(from, [&](int64_t epoch, const PathSlot& slot) {
      out.Add(target != nullptr &&
                  SlotCovered(target->coarse.Find(epoch), observer ? observer->coarse.Find(epoch) : nullptr),
              slot);
    });
    return out;
  }

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
