// ProbePlanner: which peers each agent probes. k targets per remote region and k in its own,
// spread so every node is probed by about k nodes of each region, rotated every period.
// Deterministic given (seed, membership, epoch): aggregators with the same inputs send the
// same plans. O(n*k) probes in all, never n^2.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "aggregator/agent_registry.h"
#include "common/clocks.h"
#include "common/proto_convert.h"
#include "regionpulse/v1/ingest.pb.h"

namespace regionpulse {

struct ProbePlannerConfig {
  // Targets per region (remote regions and the agent's own).
  uint32_t targets_per_region = 3;
  // Interval between probes to one target, and STAMP padding, sent in the plan.
  std::chrono::milliseconds interval{100};
  uint32_t payload_size = 0;
  // The assignment is reshuffled every rotation period (epoch = unix time / rotation).
  std::chrono::seconds rotation{300};
  // Mixed into the shuffle; equal seeds give equal plans.
  uint64_t seed = 0;
};

// A node the planner knows, as a probe target and as a prober.
struct PlannedAgent {
  std::string node;
  std::string region;
  std::string zone;
  ReflectorEndpoint endpoint;
};

// Not thread-safe: the caller serialises calls. Upsert/Remove are O(region size) (a sorted
// insert), PlanFor O(regions x (log n + k)); a new rotation epoch costs one sort per region.
class ProbePlanner {
 public:
  explicit ProbePlanner(ProbePlannerConfig config = {});

  // Adds or updates a node (Hello). Agents that stop reporting stay planned: probes to them
  // are exactly the evidence the verdict needs.
  void Upsert(const PlannedAgent& agent);
  void Remove(const std::string& node);

  // The node's current plan. plan_version increases whenever the target list changes (and
  // is time-based, so it keeps increasing across aggregator restarts). nullopt for an
  // unknown node.
  std::optional<v1::ProbePlan> PlanFor(const std::string& node, WallClock::time_point now);
  // The version PlanFor would return now, without building the plan: a cheap check, for
  // every stream every second, of whether a new plan has to be sent. 0 for an unknown node.
  uint64_t CurrentPlanVersion(const std::string& node, WallClock::time_point now);
  // Version of the last plan computed for the node (by PlanFor or CurrentPlanVersion); 0 when none.
  uint64_t PlanVersion(const std::string& node) const;

  // What every plan depends on: the membership (changed by every Upsert that adds a node or
  // changes one, and every Remove) and the rotation epoch at `now`. While it stays equal, no
  // node's plan changes, so the plans sent last are still current: the aggregator asks every
  // stream for a newer plan only when it moved, not 10,000 times every tick.
  struct Revision {
    uint64_t membership = 0;
    int64_t epoch = 0;
    bool operator==(const Revision&) const = default;
  };
  Revision CurrentRevision(WallClock::time_point now) const;

  size_t size() const { return ids_.size(); }
  const ProbePlannerConfig& config() const { return config_; }

 private:
  struct Member {
    uint64_t key;  // shuffle key for the current epoch
    uint32_t id;   // index into agents_
    bool operator<(const Member& other) const { return key != other.key ? key < other.key : id < other.id; }
  };
  struct Agent {
    PlannedAgent info;
    bool present = false;
    uint64_t key = 0;               // this epoch's shuffle key
    uint64_t plan_fingerprint = 0;  // hash of the last plan's targets and endpoints
    uint64_t plan_version = 0;
  };

  // The node's targets in the current epoch, by id.
  std::vector<uint32_t> TargetsOf(uint32_t self_id) const;
  // Enters now's epoch, computes the node's targets and bumps its version when they changed.
  std::optional<std::vector<uint32_t>> Refresh(const std::string& node, WallClock::time_point now);
  uint64_t KeyOf(const std::string& node, int64_t epoch) const;
  uint64_t RegionOffset(const std::string& source, const std::string& target, int64_t epoch) const;
  void EnterEpoch(int64_t epoch);
  void InsertMember(uint32_t id);
  void EraseMember(uint32_t id);
  size_t IndexInRegion(uint32_t id) const;

  ProbePlannerConfig config_;
  std::vector<Agent> agents_;  // by id; removed ids are reused
  std::vector<uint32_t> free_ids_;
  std::unordered_map<std::string, uint32_t> ids_;       // node -> id
  std::map<std::string, std::vector<Member>> regions_;  // region -> members sorted by key
  int64_t epoch_ = -1;
  uint64_t membership_changes_ = 0;
};

}  // namespace regionpulse
