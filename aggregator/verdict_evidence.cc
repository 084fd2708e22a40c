// Reading the verdict's evidence from the region matrix's rings and the registry's presence.
#include "aggregator/verdict_evidence.h"

#include <limits>
#include <set>
#include <stdexcept>
#include <tuple>
#include <unordered_set>

#include "aggregator/agent_registry.h"
#include "aggregator/loss_direction.h"
#include "aggregator/region_matrix.h"
#include "aggregator/region_matrix_state.h"

namespace regionpulse {

uint64_t ProbeCounts::LostForward() const {
  const uint64_t accounted = received_forward + lost_unknown;
  return sent > accounted ? sent - accounted : 0;
}

uint64_t ProbeCounts::LostReverse() const {
  return received_forward > received_reverse ? received_forward - received_reverse : 0;
}

v1::LossDirection LossDirectionOf(const ProbeCounts& counts, double noise_floor) {
  if (counts.sent == 0 || counts.Loss() < noise_floor) return v1::LOSS_DIRECTION_NONE;
  const uint64_t forward = counts.LostForward();
  const uint64_t reverse = counts.LostReverse();
  const uint64_t known = forward + reverse;
  if (counts.lost_unknown >= known) return v1::LOSS_DIRECTION_UNKNOWN;
  if (forward * 5 >= known * 4) return v1::LOSS_DIRECTION_FORWARD;
  if (reverse * 5 >= known * 4) return v1::LOSS_DIRECTION_REVERSE;
  return v1::LOSS_DIRECTION_BOTH;
}

const ProbeCounts& RegionProbes::at(const std::string& region) const {
  const auto it = find(region);
  if (it == end()) throw std::out_of_range("no probes to region " + region);
  return it->second;
}

void MatrixNames::CopyNewNames(const RegionMatrix& matrix) {
  const std::vector<std::string>& interned = matrix.state().names;
  // Never expected (names are only added), but a shorter table is not a longer one's prefix.
  if (interned.size() < names_.size()) names_.clear();
  names_.insert(names_.end(), interned.begin() + static_cast<ptrdiff_t>(names_.size()), interned.end());
}

VerdictEvidence BuildVerdictEvidence(const RegionMatrix& matrix, const std::vector<AgentPresence>& agents,
                                     const std::vector<std::string>& known_regions,
                                     WallClock::time_point now) {
  return FinishVerdictEvidence(ReadVerdictEvidence(matrix, agents, known_regions, now), matrix.state().names);
}

VerdictEvidenceDraft ReadVerdictEvidence(const RegionMatrix& matrix, const std::vector<AgentPresence>& agents,
                                         const std::vector<std::string>& known_regions,
                                         WallClock::time_point now) {
  const RegionMatrixState& s = matrix.state();
  const RegionMatrixConfig& config = matrix.config();
  VerdictEvidenceDraft draft;
  VerdictEvidence& evidence = draft.evidence;
  const int64_t fine_from = EpochOf(now - config.evidence_window, std::chrono::seconds(1));
  const int64_t coarse_from = EpochOf(now - config.evidence_window, config.slot);

  std::set<std::string> regions(known_regions.begin(), known_regions.end());
  std::unordered_set<std::string> not_reporting;
  for (const auto& agent : agents) {
    regions.insert(agent.region);
    RegionAgents& count = evidence.agents[agent.region];
    (agent.reporting ? count.reporting : count.not_reporting) += 1;
    if (!agent.reporting) not_reporting.insert(agent.node);
  }

  // Traffic received from each region by nodes outside it.
  std::map<uint32_t, PassiveSignals> passive;  // by region id
  for (size_t number = 0; number < s.observer_regions.size(); ++number) {
    const RegionMatrixState::ObserverRegion& observed = s.observer_regions.entries[number];
    if (observed.node_region == observed.target_region) continue;
    uint64_t rx_packets = 0;
    s.observer_regions.rings.ForEachSince(number, fine_from,
                                          [&](const ObserverSlot& slot) { rx_packets += slot.rx_packets; });
    if (rx_packets == 0) continue;
    PassiveSignals& signals = passive[observed.target_region];
    ++signals.nodes_receiving;
    signals.rx_packets += rx_packets;
  }
  for (const auto& [region, signals] : passive) evidence.passive[s.Name(region)] = signals;

  // Observers and what they probed, per target node, as interned ids: the names are
  // FinishVerdictEvidence's, outside the core lock.
  constexpr uint32_t kNoObserver = std::numeric_limits<uint32_t>::max();
  std::vector<VerdictEvidenceDraft::Probed>& probed = draft.probed;
  probed.reserve(s.observer_targets.size());
  std::vector<uint32_t>& observer_region = draft.observer_region;  // by node id, for observers
  observer_region.assign(s.names.size(), kNoObserver);
  std::set<uint32_t> observed_regions;
  for (uint32_t number = 0; number < s.observer_targets.size(); ++number) {
    if (!s.observer_targets.rings.HasDataSince(number, fine_from)) continue;
    const RegionMatrixState::ObserverTarget& entry = s.observer_targets.entries[number];
    ProbeCounts counts;
    uint64_t refused = 0;
    s.observer_targets.rings.ForEachSince(number, fine_from, [&](const TargetSlot& slot) {
      counts.Add({slot.sent, slot.forward, slot.reverse, slot.unknown});
      refused += slot.refused;
    });
    if (counts.sent == 0) continue;
    // Only an unknown part, or probes the target's reflector refused, need the target's side
    // (and the walk over its coverage); without them the rule leaves the counts as they are.
    if (counts.lost_unknown > 0 || refused > 0) counts = s.TargetCounts(number, fine_from).Reconciled();
    if (observer_region[entry.node] == kNoObserver) {
      // An observer's region is that of the first of its entries met, as a node has one.
      observer_region[entry.node] = entry.node_region;
      draft.observer_nodes.push_back(entry.node);
      observed_regions.insert(entry.node_region);
    }
    probed.push_back({entry.node, entry.target, entry.target_region, counts});
    observed_regions.insert(entry.target_region);
  }
  for (uint32_t region : observed_regions) regions.insert(s.Name(region));
  draft.ranks = s.NameRanks();

  // Per region, the last moment an observer elsewhere got a reply from it (kept beyond the
  // evidence window, for the replication retention).
  for (const auto& [region, answered] : s.last_answered) {
    if (answered >= now - config.replication_retention) evidence.last_answered[s.Name(region)] = answered;
  }

  // RTT into each region from elsewhere, merged over observers (never percentiles of percentiles).
  std::map<uint32_t, DenseHistogram> into;
  for (const auto& [key, pair] : s.pairs) {
    if (key.first == key.second) continue;
    // Named apart: clang before 16 cannot capture a structured binding in a lambda.
    DenseHistogram& target = into[key.second];
    pair.ring.ForEachSince(coarse_from, [&](const PairSlot& slot) { slot.kernel.MergeInto(&target); });
  }
  for (const auto& [region, dense] : into) {
    const LatencyHistogram merged = dense.ToSparse();
    if (merged.Empty()) continue;
    evidence.latency_into[s.Name(region)] = {PercentileOf(merged, 0.50), PercentileOf(merged, 0.99)};
  }

  // Replication: per (name, source region, remote region), merged over nodes, for the
  // replication retention after the newest report: an outage must not erase what the flow said
  // before it.
  const int64_t window_from = EpochOf(now - config.window, config.slot);
  std::map<std::tuple<std::string, std::string, std::string>, ReplicationEvidence> replication;
  for (const auto& [key, flow] : s.flows) {
    if (flow.last_window_end < now - config.replication_retention) continue;
    const std::string& source_region = s.Name(flow.node_region);
    const std::string& remote = s.Name(flow.remote_region);
    auto [it, first_node] = replication.try_emplace({flow.name, source_region, remote});
    ReplicationEvidence& r = it->second;
    if (first_node) {
      r.name = flow.name;
      r.source_region = source_region;
      r.remote_region = remote;
      r.source_silent = true;
    }
    ++r.nodes;
    const bool reporting = !not_reporting.count(s.Name(flow.node));
    // A node that stopped reporting says nothing about progress since its last report: the
    // replica may be stale by that much more.
    std::chrono::nanoseconds staleness = flow.last_progress_age;
    if (!reporting) staleness += std::max(std::chrono::nanoseconds::zero(), now - flow.last_window_end);
    r.staleness = std::max(r.staleness, staleness);
    // Nor about its rate: bytes it acknowledged before going silent are no rate now.
    if (reporting) {
      FlowTotals totals;
      flow.ring.ForEachSince(window_from, [&](const FlowSlot& slot) { totals.Add(slot); });
      r.rate_bps += totals.RateBps();
      r.source_silent = false;
    }
    r.expected_min_rate_bps = std::max(r.expected_min_rate_bps, flow.expected_min_rate_bps);
    // The newest report over the flow's nodes, and what it said.
    if (r.nodes == 1 || flow.last_window_end > r.as_of) {
      r.as_of = flow.last_window_end;
      r.last_progress_age = flow.last_progress_age;
      r.bytes_outstanding = flow.bytes_outstanding;
    }
    if (flow.last_acked && *flow.last_acked >= now - config.evidence_window &&
        flow.node_region != flow.remote_region) {
      ++evidence.passive[remote].flows_progressing;
    }
  }
  for (auto& [key, r] : replication) evidence.replication.push_back(std::move(r));

  evidence.regions.assign(regions.begin(), regions.end());
  return draft;
}

VerdictEvidence FinishVerdictEvidence(VerdictEvidenceDraft draft, const std::vector<std::string>& names) {
  using Probed = VerdictEvidenceDraft::Probed;
  // Ids index the names: a copy older than the read would name targets wrongly, or read past it.
  if (names.size() < draft.ranks.size()) {
    throw std::logic_error("verdict evidence: " + std::to_string(names.size()) +
                           " names copied, the read interned " + std::to_string(draft.ranks.size()));
  }
  VerdictEvidence evidence = std::move(draft.evidence);
  const std::vector<uint32_t>& ranks = draft.ranks;
  std::vector<uint32_t>& observer_nodes = draft.observer_nodes;
  // Observers sorted by node name (names are unique per id). At 10,000 agents there are
  // ~120,000 (observer, target node) entries: each ObserverView is built once, in its final
  // place, rather than through maps and a sort of the views themselves.
  std::sort(observer_nodes.begin(), observer_nodes.end(),
            [&](uint32_t a, uint32_t b) { return ranks[a] < ranks[b]; });
  std::vector<uint32_t> observer_of(names.size());  // node id -> observer position
  evidence.observers.resize(observer_nodes.size());
  for (size_t i = 0; i < observer_nodes.size(); ++i) {
    const uint32_t node = observer_nodes[i];
    observer_of[node] = static_cast<uint32_t>(i);
    evidence.observers[i].node = names[node];
    evidence.observers[i].region = names[draft.observer_region[node]];
  }
  // Entries grouped by observer, each group in (target region, target node) name order: every
  // to_node and to_region is then built by appending at its end.
  const std::vector<Probed>& probed = draft.probed;
  std::vector<size_t> group_start(observer_nodes.size() + 1, 0);
  for (const Probed& entry : probed) ++group_start[observer_of[entry.node] + 1];
  for (size_t i = 1; i < group_start.size(); ++i) group_start[i] += group_start[i - 1];
  std::vector<const Probed*> grouped(probed.size());
  std::vector<size_t> next(group_start.begin(), group_start.end() - 1);
  for (const Probed& entry : probed) grouped[next[observer_of[entry.node]]++] = &entry;
  for (size_t i = 0; i < observer_nodes.size(); ++i) {
    const auto first = grouped.begin() + static_cast<ptrdiff_t>(group_start[i]);
    const auto last = grouped.begin() + static_cast<ptrdiff_t>(group_start[i + 1]);
    std::sort(first, last, [&](const Probed* a, const Probed* b) {
      if (a->target_region != b->target_region) return ranks[a->target_region] < ranks[b->target_region];
      return ranks[a->target] < ranks[b->target];
    });
    ObserverView& view = evidence.observers[i];
    view.to_node.reserve(static_cast<size_t>(last - first));
    for (auto it = first; it != last; ++it) {
      const Probed& entry = **it;
      const std::string& target_region = names[entry.target_region];
      view.to_node.push_back({names[entry.target], target_region, entry.counts});
      view.to_region[target_region].Add(entry.counts);
    }
  }
  return evidence;
}

}  // namespace regionpulse
