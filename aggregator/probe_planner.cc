// Probe assignment: per region a shuffled ring of nodes; every prober takes a block of k
// consecutive ring positions in each region, at a place proportional to its own position.
#include "aggregator/probe_planner.h"

#include <algorithm>

namespace regionpulse {
namespace {

// SplitMix64 finaliser: a well-mixed 64-bit hash step, stable across builds and machines
// (std::hash is neither), so every aggregator computes the same plans.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// FNV-1a over the bytes of a string.
uint64_t HashString(const std::string& text, uint64_t hash = 0xcbf29ce484222325ULL) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

int64_t UnixSeconds(WallClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

uint64_t UnixMillis(WallClock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  return ms < 0 ? 0 : static_cast<uint64_t>(ms);
}

// Everything of a node that goes into another node's plan (or decides its own).
bool SameAgent(const PlannedAgent& a, const PlannedAgent& b) {
  return a.node == b.node && a.region == b.region && a.zone == b.zone &&
         a.endpoint.address == b.endpoint.address && a.endpoint.port == b.endpoint.port;
}

}  // namespace

ProbePlanner::ProbePlanner(ProbePlannerConfig config) : config_(std::move(config)) {
  config_.rotation = std::max(config_.rotation, std::chrono::seconds(1));
}

uint64_t ProbePlanner::KeyOf(const std::string& node, int64_t epoch) const {
  return Mix(HashString(node) ^ Mix(config_.seed ^ Mix(static_cast<uint64_t>(epoch))));
}

uint64_t ProbePlanner::RegionOffset(const std::string& source, const std::string& target,
                                    int64_t epoch) const {
  // Decorrelates the blocks different source regions take in one target region.
  return Mix(HashString(target, HashString(source)) ^ Mix(config_.seed + static_cast<uint64_t>(epoch)));
}

void ProbePlanner::InsertMember(uint32_t id) {
  Agent& agent = agents_[id];
  agent.key = KeyOf(agent.info.node, epoch_);
  auto& members = regions_[agent.info.region];
  const Member member{agent.key, id};
  members.insert(std::lower_bound(members.begin(), members.end(), member), member);
}

void ProbePlanner::EraseMember(uint32_t id) {
  const Agent& agent = agents_[id];
  auto it = regions_.find(agent.info.region);
  if (it == regions_.end()) return;
  auto& members = it->second;
  const Member member{agent.key, id};
  auto pos = std::lower_bound(members.begin(), members.end(), member);
  if (pos != members.end() && pos->id == id) members.erase(pos);
  if (members.empty()) regions_.erase(it);
}

void ProbePlanner::Upsert(const PlannedAgent& agent) {
  auto [it, inserted] = ids_.try_emplace(agent.node, 0);
  if (inserted || !SameAgent(agents_[it->second].info, agent)) ++membership_changes_;
  if (inserted) {
    if (free_ids_.empty()) {
      it->second = static_cast<uint32_t>(agents_.size());
      agents_.emplace_back();
    } else {
      it->second = free_ids_.back();
      free_ids_.pop_back();
    }
    const uint32_t id = it->second;
    agents_[id] = Agent{};
    agents_[id].info = agent;
    agents_[id].present = true;
    InsertMember(id);
    return;
  }
  const uint32_t id = it->second;
  if (agents_[id].info.region != agent.region) {
    EraseMember(id);
    agents_[id].info = agent;
    InsertMember(id);
  } else {
    agents_[id].info = agent;
  }
}

void ProbePlanner::Remove(const std::string& node) {
  const auto it = ids_.find(node);
  if (it == ids_.end()) return;
  ++membership_changes_;
  EraseMember(it->second);
  agents_[it->second] = Agent{};
  free_ids_.push_back(it->second);
  ids_.erase(it);
}

void ProbePlanner::EnterEpoch(int64_t epoch) {
  epoch_ = epoch;
  for (auto& [region, members] : regions_) {
    for (Member& member : members) {
      agents_[member.id].key = KeyOf(agents_[member.id].info.node, epoch);
      member.key = agents_[member.id].key;
    }
    std::sort(members.begin(), members.end());
  }
}

size_t ProbePlanner::IndexInRegion(uint32_t id) const {
  const Agent& agent = agents_[id];
  const auto& members = regions_.at(agent.info.region);
  return static_cast<size_t>(std::lower_bound(members.begin(), members.end(), Member{agent.key, id}) -
                             members.begin());
}

std::vector<uint32_t> ProbePlanner::TargetsOf(uint32_t self_id) const {
  const Agent& self = agents_[self_id];
  const size_t self_index = IndexInRegion(self_id);
  const size_t own_size = regions_.at(self.info.region).size();
  const size_t k = config_.targets_per_region;
  std::vector<uint32_t> targets;
  targets.reserve(k * regions_.size());
  for (const auto& [region, members] : regions_) {
    const size_t m = members.size();
    if (region == self.info.region) {
      // The k ring successors: every node is probed by exactly k of its own region.
      const size_t count = std::min(k, m - 1);
      for (size_t j = 1; j <= count; ++j) targets.push_back(members[(self_index + j) % m].id);
      continue;
    }
    // Block of k starting at the prober's proportional position: each target is covered by
    // about k * (probers / targets) probers of this region.
    const size_t count = std::min(k, m);
    const size_t start = (self_index * m / own_size + RegionOffset(self.info.region, region, epoch_) % m) % m;
    for (size_t j = 0; j < count; ++j) targets.push_back(members[(start + j) % m].id);
  }
  return targets;
}

std::optional<std::vector<uint32_t>> ProbePlanner::Refresh(const std::string& node,
                                                           WallClock::time_point now) {
  const auto found = ids_.find(node);
  if (found == ids_.end()) return std::nullopt;
  const int64_t epoch = UnixSeconds(now) / config_.rotation.count();
  if (epoch != epoch_) EnterEpoch(epoch);
  std::vector<uint32_t> targets = TargetsOf(found->second);
  uint64_t fingerprint = 0xcbf29ce484222325ULL;
  for (uint32_t id : targets) {
    const PlannedAgent& peer = agents_[id].info;
    for (const std::string* part : {&peer.node, &peer.region, &peer.zone, &peer.endpoint.address}) {
      fingerprint = Mix(HashString(*part, fingerprint));
    }
    fingerprint = Mix(fingerprint ^ peer.endpoint.port);
  }
  Agent& self = agents_[found->second];
  if (self.plan_version == 0 || fingerprint != self.plan_fingerprint) {
    // Time-based, so versions keep increasing across aggregator restarts.
    self.plan_version = std::max(self.plan_version + 1, UnixMillis(now));
    self.plan_fingerprint = fingerprint;
  }
  return targets;
}

uint64_t ProbePlanner::CurrentPlanVersion(const std::string& node, WallClock::time_point now) {
  if (!Refresh(node, now)) return 0;
  return agents_[ids_.at(node)].plan_version;
}

std::optional<v1::ProbePlan> ProbePlanner::PlanFor(const std::string& node, WallClock::time_point now) {
  const auto targets = Refresh(node, now);
  if (!targets) return std::nullopt;
  v1::ProbePlan plan;
  for (uint32_t id : *targets) {
    const PlannedAgent& peer = agents_[id].info;
    v1::ProbeTarget* target = plan.add_targets();
    target->set_node(peer.node);
    target->set_region(peer.region);
    target->set_zone(peer.zone);
    target->mutable_endpoint()->set_address(peer.endpoint.address);
    target->mutable_endpoint()->set_port(peer.endpoint.port);
  }
  *plan.mutable_interval() = ToDuration(config_.interval);
  plan.set_payload_size(config_.payload_size);
  plan.set_plan_version(agents_[ids_.at(node)].plan_version);
  return plan;
}

ProbePlanner::Revision ProbePlanner::CurrentRevision(WallClock::time_point now) const {
  return Revision{membership_changes_, UnixSeconds(now) / config_.rotation.count()};
}

uint64_t ProbePlanner::PlanVersion(const std::string& node) const {
  const auto it = ids_.find(node);
  return it == ids_.end() ? 0 : agents_[it->second].plan_version;
}

}  // namespace regionpulse
