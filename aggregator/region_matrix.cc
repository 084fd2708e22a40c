// Filing reports into the matrix's per-path, per-observer, per-region-pair and per-flow slot
// rings; the queries over them; eviction.
#include "aggregator/region_matrix.h"

#include "aggregator/region_matrix_state.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace regionpulse {
namespace {

using std::chrono::nanoseconds;

int64_t NsSinceEpoch(WallClock::time_point t) {
  return std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
}

// The wire form without re-validating it (the registry did): one allocation, no checks.
LatencyHistogram FromWire(const v1::LatencyHistogram& h) {
  const int n = std::min(h.bucket_index_size(), h.bucket_count_size());
  LatencyHistogram::Buckets buckets;
  buckets.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (h.bucket_count(i) != 0) buckets.emplace_back(h.bucket_index(i), h.bucket_count(i));
  }
  return LatencyHistogram::FromParts(std::move(buckets), h.sum_ns(), h.min_ns(), h.max_ns());
}

// Sets a Duration field only when there is a value (an unset field means "no data").
template <typename MutableField>
void SetDuration(std::optional<nanoseconds> d, MutableField mutable_field) {
  if (d) *mutable_field() = ToDuration(*d);
}

// Loss on the way back, of the probes that got there. None got there but some were sent: 1,
// as nothing came back.
double ReverseLoss(uint64_t sent, uint64_t forward, uint64_t reverse) {
  if (forward == 0) return sent == 0 ? 0.0 : 1.0;
  return LossRatio(forward, reverse);
}

// A path's probe counters into a slot that has them (observer, region pair, path).
template <typename Slot>
void AddProbes(const v1::PathStats& path, Slot* slot) {
  slot->sent += path.probes_sent();
  slot->forward += path.received_forward();
  slot->reverse += path.received_reverse();
}

// The loss and RTT figures a region-pair cell and a node-to-node path both carry.
template <typename Summary>
void SetProbeFigures(uint64_t sent, uint64_t forward, uint64_t reverse, const LatencyHistogram& kernel,
                     const LatencyHistogram& user, Summary* out) {
  out->set_loss_forward(LossRatio(sent, forward));
  out->set_loss_reverse(ReverseLoss(sent, forward, reverse));
  SetDuration(PercentileOf(kernel, 0.50), [&] { return out->mutable_rtt_p50(); });
  SetDuration(PercentileOf(kernel, 0.99), [&] { return out->mutable_rtt_p99(); });
  SetDuration(PercentileOf(user, 0.50), [&] { return out->mutable_user_rtt_p50(); });
  SetDuration(PercentileOf(user, 0.99), [&] { return out->mutable_user_rtt_p99(); });
}

uint64_t PairKey(uint32_t a, uint32_t b) {
  return (static_cast<uint64_t>(a) << 32) | b;
}

}  // namespace

RegionMatrix::RegionMatrix(RegionMatrixConfig config) : config_(std::move(config)) {
  // Sub-second slots or windows would make the epoch arithmetic meaningless.
  config_.slot = std::max(config_.slot, std::chrono::seconds(1));
  config_.window = std::max(config_.window, config_.slot);
  config_.evidence_window = std::max(config_.evidence_window, std::chrono::seconds(1));
  state_ = std::make_unique<RegionMatrixState>(RingSize(config_.evidence_window, std::chrono::seconds(1)));
}

RegionMatrix::~RegionMatrix() = default;

void RegionMatrix::Add(const AgentIdentity& source, const v1::HealthReport& report,
                       WallClock::time_point now) {
  RegionMatrixState& s = *state_;
  Evict(now);
  const auto window_start = FromTimestamp(report.window_start());
  const auto window_end = FromTimestamp(report.window_end());
  if (window_end < now - config_.window) {
    ++s.stale_windows_ignored;
    return;
  }
  // A window ending exactly on a slot boundary belongs to the slot it covered.
  const auto placed_at = window_end - nanoseconds(1);
  const int64_t coarse = EpochOf(placed_at, config_.slot);
  const int64_t fine = EpochOf(placed_at, std::chrono::seconds(1));
  const size_t coarse_ring = RingSize(config_.window, config_.slot);

  const uint32_t node = s.Intern(source.node);
  const uint32_t region = s.Intern(source.region);
  s.regions.insert(region);

  auto observer_slot = [&](uint32_t observer) { return s.observer_rings.At(observer, fine); };
  auto pair_slot = [&](uint32_t target_region) -> PairSlot* {
    auto [it, inserted] = s.pairs.try_emplace({region, target_region},
                                              RegionMatrixState::Pair{SlotRing<PairSlot>(coarse_ring)});
    return it->second.ring.At(coarse);
  };

  std::vector<RegionMatrixState::PeerRef>& peers = s.peers_of[node];
  for (int i = 0; i < report.paths_size(); ++i) {
    const v1::PathStats& path = report.paths(i);
    // An agent's peers change only when its plan does: the names of its last report are
    // compared first, so the common case interns nothing.
    const auto index = static_cast<size_t>(i);
    if (index >= peers.size()) peers.resize(index + 1);
    RegionMatrixState::PeerRef& peer = peers[index];
    if (peer.node != path.peer_node() || peer.region != path.peer_region()) {
      peer = {path.peer_node(), path.peer_region(), s.Intern(path.peer_node()), s.Intern(path.peer_region())};
      s.regions.insert(peer.region_id);
    }
    const uint32_t target = peer.node_id;
    const uint32_t target_region = peer.region_id;

    const uint32_t observer = s.ObserverEntry(node, region, target_region);
    if (ObserverSlot* slot = observer_slot(observer)) AddProbes(path, slot);
    if (path.probes_sent() > 0) {
      RegionMatrixState::ObserverRegion& observed = s.observer_regions[observer];
      observed.last_probed = std::max(observed.last_probed.value_or(window_end), window_end);
    }
    if (PairSlot* slot = pair_slot(target_region)) {
      AddProbes(path, slot);
      slot->kernel.MergeWire(path.rtt_kernel());
      slot->user.MergeWire(path.rtt_user());
    }

    const uint64_t key = PairKey(node, target);
    auto it = s.paths.find(key);
    if (it == s.paths.end()) {
      if (s.paths.size() >= config_.max_paths) {
        ++s.paths_not_tracked;
        continue;
      }
      it = s.paths
               .emplace(key,
                        RegionMatrixState::Path{
                            node, target, region, target_region, SlotRing<PathSlot>(coarse_ring), {}, {}})
               .first;
    }
    RegionMatrixState::Path& p = it->second;
    p.target_region = target_region;
    p.source_region = region;
    if (PathSlot* slot = p.ring.At(coarse)) {
      AddProbes(path, slot);
      slot->duplicates += path.duplicates();
      slot->reordered += path.reordered();
      slot->kernel.Merge(FromWire(path.rtt_kernel()));
      slot->user.Merge(FromWire(path.rtt_user()));
    }
    if (window_end >= p.last_window_end) {
      p.last_window_end = window_end;
      p.jitter = FromDuration(path.jitter());
    }
  }

  for (const auto& traffic : report.traffic()) {
    const uint32_t target_region = s.Intern(traffic.remote_region());
    s.regions.insert(target_region);
    if (ObserverSlot* slot = observer_slot(s.ObserverEntry(node, region, target_region)))
      slot->rx_packets += traffic.rx_packets();
    if (PairSlot* slot = pair_slot(target_region)) {
      slot->tx_bytes += traffic.tx_bytes();
      slot->rx_bytes += traffic.rx_bytes();
      slot->tcp_retransmits += traffic.tcp_retransmits();
    }
  }

  const int64_t window_ns = std::max<int64_t>(0, NsSinceEpoch(window_end) - NsSinceEpoch(window_start));
  for (const auto& flow : report.flows()) {
    const uint32_t remote = s.Intern(flow.remote_region());
    s.regions.insert(remote);
    std::string key = source.node;
    key.append(1, '\0').append(flow.name()).append(1, '\0').append(flow.remote_region());
    auto it = s.flows.find(key);
    if (it == s.flows.end()) {
      it = s.flows
               .emplace(std::move(key),
                        RegionMatrixState::Flow(node, region, remote, flow.name(), coarse_ring))
               .first;
    }
    RegionMatrixState::Flow& f = it->second;
    if (FlowSlot* slot = f.ring.At(coarse)) {
      slot->bytes_acked += flow.bytes_acked();
      slot->retransmits += flow.retransmits();
      slot->established += flow.established();
      slot->failed_connects += flow.failed_connects();
      slot->resets += flow.resets();
      const auto srtt = FromDuration(flow.srtt());
      if (srtt > nanoseconds::zero()) {
        slot->srtt_sum_ns += srtt.count();
        ++slot->srtt_samples;
      }
      slot->covered_ns += window_ns;
    }
    if (window_end >= f.last_window_end) {
      f.node_region = region;
      f.last_window_end = window_end;
      f.last_progress_age = FromDuration(flow.last_progress_age());
      f.srtt = FromDuration(flow.srtt());
      f.connections = flow.connections();
      f.expected_min_rate_bps = flow.expected_min_rate_bps();
    }
    if (flow.bytes_acked() > 0) f.last_acked = std::max(f.last_acked.value_or(window_end), window_end);
  }
}

namespace {

// A region-pair cell's state by the verdict's thresholds; no probes, no state.
v1::RegionState ClassifyCell(const RegionThresholds& thresholds, uint64_t sent, uint64_t reverse,
                             std::optional<nanoseconds> p99) {
  if (sent == 0) return v1::REGION_STATE_UNKNOWN;
  return ClassifyObservation(thresholds, LossRatio(sent, reverse), p99);
}

nanoseconds EffectiveRange(nanoseconds range, std::chrono::seconds window) {
  if (range <= nanoseconds::zero() || range > window) return window;
  return range;
}

}  // namespace

v1::GetRegionMatrixResponse RegionMatrix::Matrix(nanoseconds range, WallClock::time_point now) const {
  const RegionMatrixState& s = *state_;
  range = EffectiveRange(range, config_.window);
  const int64_t from = EpochOf(now - range, config_.slot);

  // Distinct observers per pair: an observer counts when its last probe falls in the range.
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> observers;
  for (const RegionMatrixState::ObserverRegion& observed : s.observer_regions) {
    if (observed.last_probed && *observed.last_probed >= now - range) {
      ++observers[{observed.node_region, observed.target_region}];
    }
  }

  v1::GetRegionMatrixResponse response;
  std::set<std::string> region_names;
  for (uint32_t region : s.regions) region_names.insert(s.Name(region));
  for (const auto& name : region_names) response.add_regions(name);

  std::vector<std::pair<std::pair<std::string, std::string>, v1::RegionPairStats>> cells;
  for (const auto& [key, pair] : s.pairs) {
    if (!pair.ring.HasDataSince(from)) continue;
    PairSlot total;
    pair.ring.ForEachSince(from, [&](const PairSlot& slot) {
      total.sent += slot.sent;
      total.forward += slot.forward;
      total.reverse += slot.reverse;
      slot.kernel.MergeInto(&total.kernel);
      slot.user.MergeInto(&total.user);
      total.tx_bytes += slot.tx_bytes;
      total.rx_bytes += slot.rx_bytes;
      total.tcp_retransmits += slot.tcp_retransmits;
    });
    v1::RegionPairStats cell;
    cell.set_source_region(s.Name(key.first));
    cell.set_target_region(s.Name(key.second));
    if (auto it = observers.find(key); it != observers.end()) cell.set_observers(it->second);
    cell.set_probes_sent(total.sent);
    cell.set_received_forward(total.forward);
    cell.set_received_reverse(total.reverse);
    const LatencyHistogram kernel = total.kernel.ToSparse();
    SetProbeFigures(total.sent, total.forward, total.reverse, kernel, total.user.ToSparse(), &cell);
    cell.set_tx_bytes(total.tx_bytes);
    cell.set_rx_bytes(total.rx_bytes);
    cell.set_tcp_retransmits(total.tcp_retransmits);
    cell.set_state(ClassifyCell(config_.thresholds, total.sent, total.reverse, PercentileOf(kernel, 0.99)));
    cells.emplace_back(std::make_pair(cell.source_region(), cell.target_region()), std::move(cell));
  }
  std::sort(cells.begin(), cells.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [names, cell] : cells) *response.add_cells() = std::move(cell);
  *response.mutable_window() = ToDuration(range);
  *response.mutable_computed_at() = ToTimestamp(now);
  return response;
}

v1::GetPathsResponse RegionMatrix::Paths(const v1::GetPathsRequest& request,
                                         WallClock::time_point now) const {
  const RegionMatrixState& s = *state_;
  const nanoseconds range = EffectiveRange(FromDuration(request.range().window()), config_.window);
  const int64_t from = EpochOf(now - range, config_.slot);
  const auto region = request.region().empty() ? std::nullopt : s.IdOf(request.region());
  const auto node = request.node().empty() ? std::nullopt : s.IdOf(request.node());
  v1::GetPathsResponse response;
  // A filter naming something never seen matches nothing.
  if ((!request.region().empty() && !region) || (!request.node().empty() && !node)) return response;

  // Rank every matching path by loss from its counters alone; merge histograms and build
  // summaries only for the rows returned.
  struct Row {
    double loss;
    const RegionMatrixState::Path* path;
  };
  std::vector<Row> rows;
  for (const auto& [key, path] : s.paths) {
    if (region && path.source_region != *region && path.target_region != *region) continue;
    if (node && path.source != *node && path.target != *node) continue;
    if (!path.ring.HasDataSince(from)) continue;
    uint64_t sent = 0;
    uint64_t reverse = 0;
    path.ring.ForEachSince(from, [&](const PathSlot& slot) {
      sent += slot.sent;
      reverse += slot.reverse;
    });
    rows.push_back({LossRatio(sent, reverse), &path});
  }
  // Worst first: what an engineer looks for is the broken path.
  std::sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    if (a.loss != b.loss) return a.loss > b.loss;
    return std::tie(s.Name(a.path->source), s.Name(a.path->target)) <
           std::tie(s.Name(b.path->source), s.Name(b.path->target));
  });
  uint32_t limit = request.limit() == 0 ? config_.default_path_limit : request.limit();
  limit = std::min(limit, config_.max_path_limit);
  response.set_truncated(rows.size() > limit);
  for (size_t i = 0; i < rows.size() && i < limit; ++i) {
    const RegionMatrixState::Path& path = *rows[i].path;
    PathSlot total;
    path.ring.ForEachSince(from, [&](const PathSlot& slot) {
      total.sent += slot.sent;
      total.forward += slot.forward;
      total.reverse += slot.reverse;
      total.duplicates += slot.duplicates;
      total.reordered += slot.reordered;
      total.kernel.Merge(slot.kernel);
      total.user.Merge(slot.user);
    });
    v1::PathSummary* summary = response.add_paths();
    summary->set_source_node(s.Name(path.source));
    summary->set_source_region(s.Name(path.source_region));
    summary->set_target_node(s.Name(path.target));
    summary->set_target_region(s.Name(path.target_region));
    summary->set_probes_sent(total.sent);
    SetProbeFigures(total.sent, total.forward, total.reverse, total.kernel, total.user, summary);
    *summary->mutable_jitter() = ToDuration(path.jitter);
    summary->set_duplicates(total.duplicates);
    summary->set_reordered(total.reordered);
    *summary->mutable_last_window_end() = ToTimestamp(path.last_window_end);
  }
  return response;
}

v1::GetFlowsResponse RegionMatrix::Flows(const v1::GetFlowsRequest& request,
                                         WallClock::time_point now) const {
  const RegionMatrixState& s = *state_;
  const int64_t from = EpochOf(now - config_.window, config_.slot);
  v1::GetFlowsResponse response;
  std::vector<v1::FlowSummary> rows;
  for (const auto& [key, flow] : s.flows) {
    if (!flow.ring.HasDataSince(from)) continue;
    const std::string& node_region = s.Name(flow.node_region);
    const std::string& remote = s.Name(flow.remote_region);
    if (!request.region().empty() && node_region != request.region() && remote != request.region()) continue;
    if (!request.name().empty() && flow.name != request.name()) continue;
    FlowTotals totals;
    flow.ring.ForEachSince(from, [&](const FlowSlot& slot) { totals.Add(slot); });
    v1::FlowSummary& summary = rows.emplace_back();
    summary.set_node(s.Name(flow.node));
    summary.set_region(node_region);
    summary.set_name(flow.name);
    summary.set_remote_region(remote);
    summary.set_rate_bps(totals.RateBps());
    summary.set_expected_min_rate_bps(flow.expected_min_rate_bps);
    *summary.mutable_srtt() = ToDuration(flow.srtt);
    summary.set_retransmits(totals.retransmits);
    *summary.mutable_last_progress_age() = ToDuration(flow.last_progress_age);
    summary.set_connections(flow.connections);
    summary.set_established(totals.established);
    summary.set_failed_connects(totals.failed_connects);
    summary.set_resets(totals.resets);
    summary.set_at_risk(ReplicationAtRisk(config_.thresholds, flow.last_progress_age, totals.RateBps(),
                                          flow.expected_min_rate_bps));
  }
  std::sort(rows.begin(), rows.end(), [](const v1::FlowSummary& a, const v1::FlowSummary& b) {
    return std::tie(a.name(), a.region(), a.node(), a.remote_region()) <
           std::tie(b.name(), b.region(), b.node(), b.remote_region());
  });
  for (auto& row : rows) *response.add_flows() = std::move(row);
  return response;
}

void RegionMatrix::Forget(const std::string& node) {
  RegionMatrixState& s = *state_;
  const auto id = s.IdOf(node);
  if (!id) return;
  std::erase_if(s.paths,
                [&](const auto& entry) { return entry.second.source == *id || entry.second.target == *id; });
  s.DropObserverEntries(
      [&](const RegionMatrixState::ObserverRegion& entry, size_t) { return entry.node == *id; });
  std::erase_if(s.flows, [&](const auto& entry) { return entry.second.node == *id; });
  s.peers_of.erase(*id);
}

void RegionMatrix::Evict(WallClock::time_point now) {
  RegionMatrixState& s = *state_;
  const int64_t epoch = EpochOf(now, config_.slot);
  if (epoch == s.last_evict_epoch) return;
  s.last_evict_epoch = epoch;
  const int64_t from = EpochOf(now - config_.window, config_.slot);
  const int64_t fine_from = EpochOf(now - config_.window, std::chrono::seconds(1));
  std::erase_if(s.paths, [&](const auto& entry) { return !entry.second.ring.HasDataSince(from); });
  // Observer entries keep last_probed for the matrix's observer counts over the window.
  s.DropObserverEntries([&](const RegionMatrixState::ObserverRegion&, size_t number) {
    return !s.observer_rings.HasDataSince(number, fine_from);
  });
  std::erase_if(s.flows, [&](const auto& entry) { return !entry.second.ring.HasDataSince(from); });
  std::erase_if(s.pairs, [&](const auto& entry) { return !entry.second.ring.HasDataSince(from); });
}

RegionMatrixStats RegionMatrix::Stats() const {
  const RegionMatrixState& s = *state_;
  return {s.paths.size(), s.observer_regions.size(), s.flows.size(), s.paths_not_tracked,
          s.stale_windows_ignored};
}

}  // namespace regionpulse
