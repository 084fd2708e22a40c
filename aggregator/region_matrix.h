// RegionMatrix: what the reports say about the network, over a sliding window. Region by region
// (complete) and node by node (bounded), merged histograms so percentiles are true ones; both
// ends of every probe path (what the sender got back, what the target's reflector received),
// reconciled into loss direction by one rule (loss_direction.h).
// Pure state: time is passed in; memory is bounded by time-slotted rings that overwrite
// themselves (slot_ring.h), and by a cap on node-to-node paths. The verdict's evidence is read
// from it by BuildVerdictEvidence (verdict_evidence.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "aggregator/agent_registry.h"
#include "aggregator/region_thresholds.h"
#include "common/proto_convert.h"
#include "regionpulse/v1/ingest.pb.h"
#include "regionpulse/v1/query.pb.h"

namespace regionpulse {

struct RegionMatrixState;

struct RegionMatrixConfig {
  // Retention and default query window.
  std::chrono::seconds window{60};
  // Slot width of node-to-node paths and region pairs (the window's resolution).
  std::chrono::seconds slot{5};
  // How far back the verdict evidence reaches (1 s slots).
  std::chrono::seconds evidence_window{10};
  // How long a replication flow's newest report stays after its nodes stopped reporting, for
  // the verdict's data at risk: at least hold + dwell (the aggregator derives it from them).
  // Never below the window.
  std::chrono::seconds replication_retention{60};
  // Node-to-node paths kept; paths beyond are not tracked one by one (the region pairs and
  // the verdict evidence still count them).
  size_t max_paths = 50'000;
  // (observer, target node) pairs kept over the evidence window, the verdict's per-node
  // evidence (12 per agent with the default plan: 120,000 at 10,000 agents); pairs beyond are
  // not tracked (counted).
  size_t max_targets = 200'000;
  // Sender sessions known, to join what reflectors received with who sent it; beyond, a new
  // session is not joined (counted) and its target's side of loss direction stays unknown.
  size_t max_sessions = 250'000;
  // Reflector counts held for sessions whose sender has not reported them yet (the two ends'
  // reports of one second arrive in either order); beyond, or once older than the evidence
  // window, they are dropped (counted).
  size_t max_pending_reflected = 20'000;
  // Distinct names (nodes, regions) interned, ever: names are never forgotten, so this bounds
  // what hostile or mistaken reports naming ever new peers can grow. Beyond, the report (or
  // its entry) naming a new one is not filed (counted).
  size_t max_names = 100'000;
  // (source region, target region) pairs with rings; beyond, a new pair is not tracked.
  size_t max_region_pairs = 1'024;
  // Replication flows (node, name, remote region) tracked; beyond, a new one is not.
  size_t max_flows = 100'000;
  // GetPaths limit when the request says 0, and the most it may ask for.
  uint32_t default_path_limit = 100;
  uint32_t max_path_limit = 10'000;
  // Cell states in GetRegionMatrix and flows at risk in GetFlows: the verdict's thresholds.
  RegionThresholds thresholds{};
};

// The replication retention for a verdict engine with `hold` and `dwell`: max(window, hold +
// dwell + 60 s). A FAILOVER is decided a hold after the active region went dark and stays
// decided, with what it would lose, through the dwell; the flows' last reports from before the
// dark must still be there for all of it. The 60 s cover the evidence window and reports still
// in flight when the region went dark.
std::chrono::seconds ReplicationRetentionFor(std::chrono::seconds window, std::chrono::nanoseconds hold,
                                             std::chrono::nanoseconds dwell);

struct RegionMatrixStats {
  size_t paths = 0;
  size_t observer_regions = 0;
  size_t flows = 0;
  size_t targets = 0;
  size_t sessions = 0;
  // New node-to-node paths not tracked because max_paths was reached, since start.
  uint64_t paths_not_tracked = 0;
  // New (observer, target node) pairs and sender sessions refused at their caps, since start.
  uint64_t targets_not_tracked = 0;
  uint64_t sessions_not_tracked = 0;
  // Reflector counts dropped because no sender reported the session in time, since start
  // (also what a foreign STAMP sender probing our reflectors causes).
  uint64_t reflected_unmatched = 0;
  // Reports (or parts) older than the window, ignored.
  uint64_t stale_windows_ignored = 0;
  // New names, region pairs and flows refused at max_names, max_region_pairs, max_flows.
  uint64_t names_not_interned = 0;
  uint64_t pairs_not_tracked = 0;
  uint64_t flows_not_tracked = 0;
  size_t names = 0;
  size_t pairs = 0;
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
  // Node-to-node paths matching the request's filters, worst loss first, up to its limit, with
  // loss by direction read from both ends. max_limit caps the request's limit (default:
  // config.max_path_limit; the aggregator's query snapshot takes every path).
  v1::GetPathsResponse Paths(const v1::GetPathsRequest& request, WallClock::time_point now,
                             std::optional<uint32_t> max_limit = std::nullopt) const;
  // Replication flows per node matching the filters.
  v1::GetFlowsResponse Flows(const v1::GetFlowsRequest& request, WallClock::time_point now) const;

  // Drops everything about a node (the registry forgot it).
  void Forget(const std::string& node);
  // Drops data older than the window. Add() calls it once per slot; callable any time.
  void Evict(WallClock::time_point now);

  RegionMatrixStats Stats() const;
  const RegionMatrixConfig& config() const { return config_; }
  // What the matrix holds, for BuildVerdictEvidence (verdict_evidence.h), which reads the
  // verdict's evidence straight from the rings; the layout is in region_matrix_state.h.
  const RegionMatrixState& state() const { return *state_; }

 private:
  RegionMatrixConfig config_;
  std::unique_ptr<RegionMatrixState> state_;
};

}  // namespace regionpulse
