// RegionMatrix: what the reports say about the network, over a sliding window. Region by region
// (complete) and node by node (bounded), merged histograms so percentiles are true ones.
// Pure state: time is passed in; memory is bounded by time-slotted rings that overwrite
// themselves, and by a cap on node-to-node paths.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent_registry.h"
#include "latency_histogram.h"
#include "proto_convert.h"
#include "region_thresholds.h"
#include "regionpulse/v1/ingest.pb.h"
#include "regionpulse/v1/query.pb.h"

namespace regionpulse {

// ---- What the verdict engine reads: a snapshot of recent evidence, no history. ----

// Probes of one observer towards one region over the evidence window.
struct ProbeCounts {
  uint64_t sent = 0;
  uint64_t received_forward = 0;
  uint64_t received_reverse = 0;
  // Combined forward+reverse loss, 1 - received_reverse / sent; 0 when nothing was sent.
  double Loss() const;
};

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

// One reporting agent as an observer: what it probed recently, per target region.
struct ObserverView {
  std::string node;
  std::string region;
  // Target region -> probes over the evidence window (including the observer's own region).
  RegionProbes to_region;
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

// One replication flow (by name and direction), merged over the nodes that run it.
struct ReplicationEvidence {
  std::string name;
  std::string source_region;
  std::string remote_region;
  // Upper bound of how stale the replica may be: the largest last_progress_age, plus the
  // time since the report for nodes that stopped reporting.
  std::chrono::nanoseconds staleness{0};
  // Acknowledged bytes per second over the matrix window, all nodes.
  uint64_t rate_bps = 0;
  uint64_t expected_min_rate_bps = 0;
  uint32_t nodes = 0;
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
};

// ---- The matrix ----

struct RegionMatrixConfig {
  // Retention and default query window.
  std::chrono::seconds window{60};
  // Slot width of node-to-node paths and region pairs (the window's resolution).
  std::chrono::seconds slot{5};
  // How far back the verdict evidence reaches (1 s slots).
  std::chrono::seconds evidence_window{10};
  // Node-to-node paths kept; paths beyond are not tracked one by one (the region pairs and
  // the verdict evidence still count them).
  size_t max_paths = 50'000;
  // GetPaths limit when the request says 0, and the most it may ask for.
  uint32_t default_path_limit = 100;
  uint32_t max_path_limit = 10'000;
  // Cell states in GetRegionMatrix and flows at risk in GetFlows: the verdict's thresholds.
  RegionThresholds thresholds{};
};

struct RegionMatrixStats {
  size_t paths = 0;
  size_t observer_regions = 0;
  size_t flows = 0;
  // New node-to-node paths not tracked because max_paths was reached, since start.
  uint64_t paths_not_tracked = 0;
  // Reports (or parts) older than the window, ignored.
  uint64_t stale_windows_ignored = 0;
};

// Not thread-safe: the caller serialises calls. Add() costs O(entries in the report), queries
// O(tracked paths) at most; nothing is rescanned per report (eviction runs once per slot).
class RegionMatrix {
 public:
  explicit RegionMatrix(RegionMatrixConfig config = {});
  ~RegionMatrix();
  RegionMatrix(const RegionMatrix&) = delete;
  RegionMatrix& operator=(const RegionMatrix&) = delete;

  // Files one accepted report under its sender. Windows are placed by their window_end.
  void Add(const AgentIdentity& source, const v1::HealthReport& report, WallClock::time_point now);

  // Region x region cells over `range` (0 = the configured window), ending at now.
  v1::GetRegionMatrixResponse Matrix(std::chrono::nanoseconds range, WallClock::time_point now) const;
  // Node-to-node paths matching the request's filters, worst loss first, up to its limit.
  v1::GetPathsResponse Paths(const v1::GetPathsRequest& request, WallClock::time_point now) const;
  // Replication flows per node matching the filters.
  v1::GetFlowsResponse Flows(const v1::GetFlowsRequest& request, WallClock::time_point now) const;

  // The verdict's input: recent probes per observer, passive signals, replication. `agents`
  // is the registry's Presence(now); `known_regions` the configured ones.
  VerdictEvidence Evidence(const std::vector<AgentPresence>& agents,
                           const std::vector<std::string>& known_regions, WallClock::time_point now) const;

  // Drops everything about a node (the registry forgot it).
  void Forget(const std::string& node);
  // Drops data older than the window. Add() calls it once per slot; callable any time.
  void Evict(WallClock::time_point now);

  RegionMatrixStats Stats() const;
  const RegionMatrixConfig& config() const { return config_; }

 private:
  struct State;
  RegionMatrixConfig config_;
  std::unique_ptr<State> state_;
};

}  // namespace regionpulse
