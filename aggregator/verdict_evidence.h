// VerdictEvidence: what the verdict engine judges, a snapshot of recent evidence with no
// history, and BuildVerdictEvidence, which reads it from the region matrix and the registry.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "aggregator/region_thresholds.h"
#include "common/proto_convert.h"

namespace regionpulse {

class RegionMatrix;
struct AgentPresence;

// Probes of one observer towards one target (a node, or a region merged over its nodes) over
// the evidence window, with both ends read: the sender's own counts and, where the target's
// reflector reported what it received from the sender's session, that half too.
struct ProbeCounts {
  uint64_t sent = 0;
  // Known to have reached the target's reflector: from the reflector's report when the target
  // reported, else from the sender's split by the reflector's reply numbering.
  uint64_t received_forward = 0;
  // Replies that came back.
  uint64_t received_reverse = 0;
  // Lost with the direction unknown: the sender could not split them and the target's reflector
  // did not report. Never counted as forward.
  uint64_t lost_unknown = 0;
  // Received and refused by the target's reflector (wrong key, stale timestamp, rate limited,
  // replayed; loss_direction.h): they reached it, so they are neither lost nor in `sent`, and
  // every figure above is over the probes the reflector would answer.
  uint64_t refused = 0;

  // Combined forward+reverse loss, 1 - received_reverse / sent; 0 when nothing was sent.
  double Loss() const { return LossRatio(sent, received_reverse); }
  // Lost on the way out (sent, not reflected), on the way back (reflected, not returned).
  uint64_t LostForward() const;
  uint64_t LostReverse() const;
  void Add(const ProbeCounts& other) {
    sent += other.sent;
    received_forward += other.received_forward;
    received_reverse += other.received_reverse;
    lost_unknown += other.lost_unknown;
    refused += other.refused;
  }
};

// Which way the loss of some probes goes (LOSS_DIRECTION_*), from the counts: NONE below
// `noise_floor` loss; UNKNOWN when most of the loss has no known direction; FORWARD or REVERSE
// when at least four fifths of the known loss goes that way; else BOTH.
v1::LossDirection LossDirectionOf(const ProbeCounts& counts, double noise_floor);

// Target region -> probes, sorted by region, in one small array: an observer probes a handful
// of regions, and the evaluation tick builds, reads and frees one per observer every second
// (10,000 at 10,000 agents), which a node per region made a good part of the tick. Reads like
// the std::map it replaces.
class RegionProbes {
 public:
  using value_type = std::pair<std::string, ProbeCounts>;
  using const_iterator = std::vector<value_type>::const_iterator;

  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const_iterator find(const std::string& region) const {
    const auto it = LowerBound(region);
    return it != entries_.end() && it->first == region ? const_iterator(it) : end();
  }
  size_t count(const std::string& region) const { return find(region) != end() ? 1 : 0; }
  const ProbeCounts& at(const std::string& region) const;
  // The counts for `region`, zero-initialised when new.
  ProbeCounts& operator[](const std::string& region) {
    auto it = LowerBound(region);
    if (it == entries_.end() || it->first != region) it = entries_.emplace(it, region, ProbeCounts{});
    return it->second;
  }
  void reserve(size_t n) { entries_.reserve(n); }

 private:
  std::vector<value_type>::iterator LowerBound(const std::string& region) {
    return std::lower_bound(entries_.begin(), entries_.end(), region,
                            [](const value_type& entry, const std::string& r) { return entry.first < r; });
  }
  std::vector<value_type>::const_iterator LowerBound(const std::string& region) const {
    return std::lower_bound(entries_.begin(), entries_.end(), region,
                            [](const value_type& entry, const std::string& r) { return entry.first < r; });
  }
  std::vector<value_type> entries_;
};

// One probed node, as one observer saw it.
struct TargetProbes {
  std::string node;
  std::string region;
  ProbeCounts counts;
};

// One reporting agent as an observer: what it probed recently, per target node and merged per
// target region.
struct ObserverView {
  std::string node;
  std::string region;
  // Target region -> probes over the evidence window (including the observer's own region):
  // the sum of to_node over the region's nodes.
  RegionProbes to_region;
  // Every node it probed in the evidence window, sorted by (region, node).
  std::vector<TargetProbes> to_node;
};

// Signs of life of a region that do not depend on our probes or agents: traffic from it
// arrives at nodes elsewhere, replication flows towards it get acknowledged.
struct PassiveSignals {
  // Nodes outside the region that received packets from it in the evidence window.
  uint32_t nodes_receiving = 0;
  uint64_t rx_packets = 0;
  // Replication flows towards the region whose acknowledged bytes advanced recently.
  uint32_t flows_progressing = 0;
  bool Alive() const { return nodes_receiving > 0 || flows_progressing > 0; }
};

// One replication flow (by name and direction), merged over the nodes that run it. Kept for
// the replication retention (at least hold + dwell) after its last report, so what it said
// before an outage is still there when the decision is made.
struct ReplicationEvidence {
  std::string name;
  std::string source_region;
  std::string remote_region;
  // Upper bound of how stale the replica may be: the largest last_progress_age, plus the
  // time since the report for nodes that stopped reporting.
  std::chrono::nanoseconds staleness{0};
  // Acknowledged bytes per second over the matrix window, all nodes (0 once none reports).
  uint64_t rate_bps = 0;
  uint64_t expected_min_rate_bps = 0;
  uint32_t nodes = 0;
  // The newest report of the flow (over its nodes): its window end, and what it said —
  // last_progress_age and bytes outstanding at that window's end.
  WallClock::time_point as_of{};
  std::chrono::nanoseconds last_progress_age{0};
  uint64_t bytes_outstanding = 0;
  // True when no node that runs the flow is reporting now.
  bool source_silent = false;
};

struct RegionAgents {
  uint32_t reporting = 0;
  uint32_t not_reporting = 0;
};

struct RegionLatency {
  // Kernel-stamped RTT percentiles from observers in other regions, over the evidence window.
  std::optional<std::chrono::nanoseconds> p50;
  std::optional<std::chrono::nanoseconds> p99;
};

struct VerdictEvidence {
  // Every region known: configured ones and those agents announced. Sorted.
  std::vector<std::string> regions;
  // Reporting agents that sent probe results in the evidence window.
  std::vector<ObserverView> observers;
  // Per region: its agents, reporting or not.
  std::map<std::string, RegionAgents> agents;
  // Per region: RTT into it from other regions.
  std::map<std::string, RegionLatency> latency_into;
  // Per region: passive signs of life seen from elsewhere.
  std::map<std::string, PassiveSignals> passive;
  std::vector<ReplicationEvidence> replication;
  // Per region: the end of the newest window in which an observer in another region got a
  // reply from one of its nodes, kept for the replication retention. When a region goes dark,
  // this is the last moment it was seen answering: the cut came after it.
  std::map<std::string, WallClock::time_point> last_answered;
};

// The verdict's input over the matrix's evidence window ending at `now`: recent probes per
// observer, RTT into each region, passive signals, replication. `agents` is the registry's
// Presence(now); `known_regions` the configured ones. O(observer entries + flows) plus a sort
// of the observers by name. ReadVerdictEvidence then FinishVerdictEvidence, with the matrix's
// names copied from scratch.
VerdictEvidence BuildVerdictEvidence(const RegionMatrix& matrix, const std::vector<AgentPresence>& agents,
                                     const std::vector<std::string>& known_regions,
                                     WallClock::time_point now);

// The matrix's interned names, copied. Names are only ever added (never changed or removed),
// so CopyNewNames appends only those interned since the last call: at 10,000 agents the whole
// table is ~10,000 strings, and the tick copies it under the core lock.
class MatrixNames {
 public:
  void CopyNewNames(const RegionMatrix& matrix);
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
};

// The part of the evidence that needs the matrix (and so the aggregator's core lock): every
// figure, with observers and targets as interned ids. FinishVerdictEvidence turns it into the
// VerdictEvidence with names, without the matrix: at 10,000 agents the ~120,000 per-target
// entries' name strings were most of the evidence's time under the lock.
struct VerdictEvidenceDraft {
  struct Probed {
    uint32_t node;
    uint32_t target;
    uint32_t target_region;
    ProbeCounts counts;
  };
  // Complete but for `observers`.
  VerdictEvidence evidence;
  // Every (observer, target node) entry with probes in the evidence window, in matrix order.
  std::vector<Probed> probed;
  // Observer node ids in first-seen order, and each one's region id (by node id).
  std::vector<uint32_t> observer_nodes;
  std::vector<uint32_t> observer_region;
  // Name order of every id (RegionMatrixState::NameRanks), copied.
  std::vector<uint32_t> ranks;
};

VerdictEvidenceDraft ReadVerdictEvidence(const RegionMatrix& matrix, const std::vector<AgentPresence>& agents,
                                         const std::vector<std::string>& known_regions,
                                         WallClock::time_point now);
// `names` must hold every name the draft's ids refer to (MatrixNames copied after the read).
VerdictEvidence FinishVerdictEvidence(VerdictEvidenceDraft draft, const std::vector<std::string>& names);

}  // namespace regionpulse
