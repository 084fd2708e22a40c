// Filing reports into the matrix's per-path, per-observer, per-region-pair and per-flow slot
// rings, and the reflectors' counts next to the senders' they belong to; the queries over them;
// eviction.
#include "aggregator/region_matrix.h"

#include "aggregator/region_matrix_state.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>

namespace regionpulse {
namespace {

using std::chrono::nanoseconds;

// Loss below this shows no direction in the queries: a probe or two lost in a minute says
// nothing about which way.
constexpr double kDirectionNoiseFloor = 0.01;

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

// Loss on the way back, of the probes known to have got there. None is known to have got
// there: nothing can have been lost on the way back (the loss is forward, or unknown).
void SetRefused(const RefusedCounts& refused, v1::RefusedProbes* out) {
  out->set_wrong_key(refused.wrong_key);
  out->set_stale_timestamp(refused.stale_timestamp);
  out->set_rate_limited(refused.rate_limited);
  out->set_replayed(refused.replayed);
}

double ReverseLoss(uint64_t forward, uint64_t reverse) {
  return forward == 0 ? 0.0 : LossRatio(forward, reverse);
}

// A path's probe counters as filed: consistent (loss_direction.h), so that one report claiming
// more than it sent cannot borrow from the others it is summed with.
ProbeCounts ReportedCounts(const v1::PathStats& path) {
  return ConsistentProbeCounts(
      {path.probes_sent(), path.received_forward(), path.received_reverse(), path.lost_direction_unknown()});
}

// A path's probe counters into a slot that has them (region pair, path).
template <typename Slot>
void AddProbes(const ProbeCounts& counts, Slot* slot) {
  slot->sent += counts.sent;
  slot->forward += counts.received_forward;
  slot->reverse += counts.received_reverse;
  slot->unknown += counts.lost_unknown;
}

// Whether a report speaks for its node's reflector: it lists the sessions its reflector
// answered, counts some it left out, or names its own probe sessions (agents that report one
// half report the other). An agent from before loss direction does none of these, and its
// silence about a sender must not be read as "received nothing".
bool SpeaksForReflector(const v1::HealthReport& report) {
  if (report.reflected_size() > 0 || report.status().reflected_senders_dropped() > 0) return true;
  return std::any_of(report.paths().begin(), report.paths().end(),
                     [](const v1::PathStats& path) { return path.has_source(); });
}

// The loss figures a region-pair cell and a node-to-node path both carry, from reconciled
// counts: forward = sent and not reflected, over sent; reverse = reflected and not returned,
// over reflected (as the agents report it); the direction.
template <typename Summary>
void SetLossFigures(const ProbeCounts& counts, Summary* out) {
  out->set_loss_forward(
      counts.sent == 0 ? 0.0 : static_cast<double>(counts.LostForward()) / static_cast<double>(counts.sent));
  out->set_loss_reverse(ReverseLoss(counts.received_forward, counts.received_reverse));
  out->set_direction(LossDirectionOf(counts, kDirectionNoiseFloor));
}

void SetRttFigures(const LatencyHistogram& kernel, const LatencyHistogram& user, auto* out) {
  SetDuration(PercentileOf(kernel, 0.50), [&] { return out->mutable_rtt_p50(); });
  SetDuration(PercentileOf(kernel, 0.99), [&] { return out->mutable_rtt_p99(); });
  SetDuration(PercentileOf(user, 0.50), [&] { return out->mutable_user_rtt_p50(); });
  SetDuration(PercentileOf(user, 0.99), [&] { return out->mutable_user_rtt_p99(); });
}

// The key under which a reflector names a sender's session (region_matrix_state.h); nullopt
// when the endpoint says nothing (an agent that does not report its sessions) or is no IP.
std::optional<SessionKey> SessionKeyOf(uint32_t reflector, const v1::Endpoint& endpoint, uint32_t ssid) {
  if (endpoint.address().empty() && endpoint.port() == 0) return std::nullopt;
  SessionKey key;
  key.reflector = reflector;
  key.port = static_cast<uint16_t>(endpoint.port());
  key.ssid = static_cast<uint16_t>(ssid);
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, endpoint.address().c_str(), &v4) == 1) {
    key.address[10] = 0xff;
    key.address[11] = 0xff;
    std::memcpy(&key.address[12], &v4, 4);
    key.any_address = v4.s_addr == INADDR_ANY;
  } else if (inet_pton(AF_INET6, endpoint.address().c_str(), &v6) == 1) {
    std::memcpy(key.address.data(), &v6, 16);
    key.any_address = IN6_IS_ADDR_UNSPECIFIED(&v6);
  } else if (endpoint.address().empty()) {
    key.any_address = true;
  } else {
    return std::nullopt;
  }
  if (key.any_address) key.address = {};
  return key;
}

// The number of the (observer, target node) entry, appended when new and under the cap.
std::optional<uint32_t> TargetEntry(RegionMatrixState& s, const RegionMatrixConfig& config, uint32_t node,
                                    uint32_t node_region, uint32_t target, uint32_t target_region) {
  const uint64_t key = PairKey(node, target);
  if (auto number = s.observer_targets.Find(key)) {
    s.observer_targets.entries[*number].target_region = target_region;
    return number;
  }
  if (s.observer_targets.size() >= config.max_targets) {
    ++s.targets_not_tracked;
    return std::nullopt;
  }
  return s.observer_targets.Insert(key, {node, node_region, target, target_region});
}

// A reflected entry's refusals, by reason.
RefusedCounts RefusedOf(const v1::ReflectedStats& reflected) {
  return {reflected.refused_wrong_key(), reflected.refused_stale_timestamp(),
          reflected.refused_rate_limited(), reflected.refused_replayed()};
}

// Where a reflector's counts for an observer's session go: the sender's counts of the same pair
// (nullopt / nullptr when the sender reported none).
struct ReflectedPlaces {
  std::optional<uint32_t> target_entry;
  RegionMatrixState::Path* path = nullptr;
};

ReflectedPlaces FindReflectedPlaces(RegionMatrixState& s, uint32_t observer, uint32_t reflector) {
  const uint64_t key = PairKey(observer, reflector);
  ReflectedPlaces places;
  places.target_entry = s.observer_targets.Find(key);
  if (auto it = s.paths.find(key); it != s.paths.end()) places.path = &it->second;
  return places;
}

// Files a reflector's counts for a session (received, refused) next to the sender's counts of
// the same pair.
void FileReflectedAt(RegionMatrixState& s, const RegionMatrixConfig& config, const ReflectedPlaces& places,
                     WallClock::time_point window_end, uint64_t received, const RefusedCounts& refused) {
  const auto placed_at = window_end - nanoseconds(1);
  // Only next to counts the sender reported: a reflector's count alone has nothing to split.
  if (places.target_entry) {
    const uint32_t number = *places.target_entry;
    if (TargetSlot* slot = s.observer_targets.rings.At(number, EpochOf(placed_at, std::chrono::seconds(1)))) {
      AddSaturating(&slot->reflected, received);
      AddSaturating(&slot->refused, refused.Total());
    }
    // A refusal is an answer from the region as much as a reply: its reflector is up and
    // reachable, so the region is not dark (verdict_engine.cc, DarkSince).
    const RegionMatrixState::ObserverTarget& entry = s.observer_targets.entries[number];
    if (refused.Total() > 0 && entry.target_region != entry.node_region) {
      WallClock::time_point& answered = s.last_answered[entry.target_region];
      answered = std::max(answered, window_end);
    }
  }
  if (places.path != nullptr) {
    const int64_t epoch = EpochOf(placed_at, config.slot);
    if (PathSlot* slot = places.path->ring.At(epoch)) {
      slot->reflected += received;
      slot->refused.Add(refused);
      if (refused.Total() > 0) s.MarkUnsettled(*places.path, epoch);
    }
  }
}

void FileReflected(RegionMatrixState& s, const RegionMatrixConfig& config, uint32_t observer,
                   uint32_t reflector, WallClock::time_point window_end, uint64_t received,
                   const RefusedCounts& refused) {
  FileReflectedAt(s, config, FindReflectedPlaces(s, observer, reflector), window_end, received, refused);
}

// Files what reflectors reported for `session` before its sender did; each count once.
void FilePending(RegionMatrixState& s, const RegionMatrixConfig& config, const SessionKey& session,
                 uint32_t observer, WallClock::time_point now) {
  auto file = [&](std::vector<RegionMatrixState::PendingReflected>& held) {
    for (const auto& count : held) {
      if (count.window_end >= now - config.evidence_window) {
        FileReflected(s, config, observer, session.reflector, count.window_end, count.received,
                      count.refused);
      } else {
        ++s.reflected_unmatched;
      }
    }
    s.pending_reflected_entries -= held.size();
  };
  if (!session.any_address) {
    if (auto pending = s.pending_reflected.find(session); pending != s.pending_reflected.end()) {
      file(pending->second);
      s.pending_reflected.erase(pending);
    }
    return;
  }
  // A sender known by port and SSID only matches any address the reflector saw. New sessions
  // are rare and the pending counts few: a scan.
  for (auto it = s.pending_reflected.begin(); it != s.pending_reflected.end();) {
    const SessionKey& key = it->first;
    if (key.reflector == session.reflector && key.port == session.port && key.ssid == session.ssid) {
      file(it->second);
      it = s.pending_reflected.erase(it);
    } else {
      ++it;
    }
  }
}

// A session seen again in a sender's report. A sender that restarted may reuse the key with a
// new observer name; the newest report wins.
void SeenSession(RegionMatrixState::SenderSession& session, uint32_t observer,
                 WallClock::time_point window_end) {
  session.observer = observer;
  session.last_seen = std::max(session.last_seen, window_end);
}

// Notes which observer a session belongs to, as the sender reported it; nullptr when it is not
// tracked (max_sessions).
RegionMatrixState::SenderSession* RegisterSession(RegionMatrixState& s, const RegionMatrixConfig& config,
                                                  const SessionKey& session, uint32_t observer,
                                                  WallClock::time_point window_end,
                                                  WallClock::time_point now) {
  auto it = s.sender_sessions.find(session);
  if (it == s.sender_sessions.end()) {
    if (s.sender_sessions.size() >= config.max_sessions) {
      ++s.sessions_not_tracked;
      return nullptr;
    }
    it = s.sender_sessions.emplace(session, RegionMatrixState::SenderSession{observer, window_end}).first;
    // The reflector's counts that arrived before the sender's first report of the session.
    FilePending(s, config, session, observer, now);
  }
  SeenSession(it->second, observer, window_end);
  return &it->second;
}

// The sender session a reflector's count belongs to; nullptr when no sender reported it.
const RegionMatrixState::SenderSession* FindSession(const RegionMatrixState& s, const SessionKey& session) {
  if (auto it = s.sender_sessions.find(session); it != s.sender_sessions.end()) return &it->second;
  // The sender reported its source without an address: its port and SSID name it.
  if (!session.any_address) {
    SessionKey any = session;
    any.any_address = true;
    any.address = {};
    if (auto it = s.sender_sessions.find(any); it != s.sender_sessions.end()) return &it->second;
  }
  return nullptr;
}

}  // namespace

std::chrono::seconds ReplicationRetentionFor(std::chrono::seconds window, std::chrono::nanoseconds hold,
                                             std::chrono::nanoseconds dwell) {
  const auto needed = std::chrono::ceil<std::chrono::seconds>(hold + dwell) + std::chrono::seconds(60);
  return std::max(window, needed);
}

RegionMatrix::RegionMatrix(RegionMatrixConfig config) : config_(std::move(config)) {
  // Sub-second slots or windows would make the epoch arithmetic meaningless.
  config_.slot = std::max(config_.slot, std::chrono::seconds(1));
  config_.window = std::max(config_.window, config_.slot);
  config_.evidence_window = std::max(config_.evidence_window, std::chrono::seconds(1));
  config_.replication_retention = std::max(config_.replication_retention, config_.window);
  state_ = std::make_unique<RegionMatrixState>(RingSize(config_.evidence_window, std::chrono::seconds(1)));
  state_->max_names = config_.max_names;
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
  const size_t fine_ring = RingSize(config_.evidence_window, std::chrono::seconds(1));
  const int64_t window_ns = std::max<int64_t>(0, NsSinceEpoch(window_end) - NsSinceEpoch(window_start));

  const auto node_id = s.Intern(source.node);
  const auto region_id = s.Intern(source.region);
  // A sender whose names cannot be kept is not filed at all (names_not_interned says so).
  if (!node_id || !region_id) return;
  const uint32_t node = *node_id;
  const uint32_t region = *region_id;
  s.regions.insert(region);

  // The time this report covers: what makes its reflector's silence about a sender mean
  // "received nothing" rather than "did not say".
  {
    auto [it, inserted] = s.node_windows.try_emplace(node, fine_ring, coarse_ring);
    RegionMatrixState::NodeWindows& windows = it->second;
    windows.speaks_for_reflector |= SpeaksForReflector(report);
    // A window in which the reflector left senders out of the report (more sessions than a
    // report carries) is no evidence that it received nothing from the ones not listed.
    const uint64_t dropped = report.status().reflected_senders_dropped();
    const bool list_complete = dropped <= windows.reflected_senders_dropped;
    windows.reflected_senders_dropped = dropped;  // since the agent's start: follows restarts
    if (windows.speaks_for_reflector && list_complete) {
      if (CoverageSlot* slot = windows.fine.At(fine)) slot->covered_ns += window_ns;
      if (CoverageSlot* slot = windows.coarse.At(coarse)) slot->covered_ns += window_ns;
    }
    windows.last_window_end = std::max(windows.last_window_end, window_end);
  }

  auto pair_slot = [&](uint32_t target_region) -> PairSlot* {
    auto it = s.pairs.find({region, target_region});
    if (it == s.pairs.end()) {
      if (s.pairs.size() >= config_.max_region_pairs) {
        ++s.pairs_not_tracked;
        return nullptr;
      }
      it = s.pairs
               .try_emplace({region, target_region}, RegionMatrixState::Pair{SlotRing<PairSlot>(coarse_ring)})
               .first;
    }
    return it->second.ring.At(coarse);
  };

  RegionMatrixState::NodeRefs& refs = s.refs_of[node];
  std::vector<RegionMatrixState::PeerRef>& peers = refs.paths;
  for (int i = 0; i < report.paths_size(); ++i) {
    const v1::PathStats& path = report.paths(i);
    // An agent's peers change only when its plan does: the names of its last report are
    // compared first, so the common case interns nothing.
    const auto index = static_cast<size_t>(i);
    if (index >= peers.size()) peers.resize(index + 1);
    RegionMatrixState::PeerRef& peer = peers[index];
    if (peer.node != path.peer_node() || peer.region != path.peer_region()) {
      const auto peer_node = s.Intern(path.peer_node());
      const auto peer_region = s.Intern(path.peer_region());
      if (!peer_node || !peer_region) {
        // Not remembered either: the next report tries the names again.
        peer = {};
        continue;
      }
      // A new peer at this position: nothing of the old one's places holds.
      peer = {};
      peer.node = path.peer_node();
      peer.region = path.peer_region();
      peer.node_id = *peer_node;
      peer.region_id = *peer_region;
      s.regions.insert(peer.region_id);
    }
    if (peer.generation != s.layout_generation) {
      // Something was removed since these places were found: look them up again.
      peer.generation = s.layout_generation;
      peer.observer_entry.reset();
      peer.target_entry.reset();
      peer.path = nullptr;
      peer.path_refused = false;
      peer.session = nullptr;
    }
    const uint32_t target = peer.node_id;
    const uint32_t target_region = peer.region_id;
    const ProbeCounts reported = ReportedCounts(path);

    if (!peer.observer_entry) peer.observer_entry = s.ObserverEntry(node, region, target_region);
    const uint32_t observer = *peer.observer_entry;
    // The slot keeps the entry (and its last_probed) alive over the window.
    s.observer_regions.rings.At(observer, fine);
    if (path.probes_sent() > 0) {
      RegionMatrixState::ObserverRegion& observed = s.observer_regions.entries[observer];
      observed.last_probed = std::max(observed.last_probed.value_or(window_end), window_end);
    }
    if (path.received_reverse() > 0 && target_region != region) {
      WallClock::time_point& answered = s.last_answered[target_region];
      answered = std::max(answered, window_end);
    }
    if (!peer.target_entry) peer.target_entry = TargetEntry(s, config_, node, region, target, target_region);
    if (peer.target_entry) {
      if (TargetSlot* slot = s.observer_targets.rings.At(*peer.target_entry, fine)) {
        AddSaturating(&slot->sent, reported.sent);
        AddSaturating(&slot->forward, reported.received_forward);
        AddSaturating(&slot->reverse, reported.received_reverse);
        AddSaturating(&slot->unknown, reported.lost_unknown);
      }
    }
    if (PairSlot* slot = pair_slot(target_region)) {
      AddProbes(reported, slot);
      slot->kernel.MergeWire(path.rtt_kernel());
      slot->user.MergeWire(path.rtt_user());
    }

    if (peer.path_refused) {
      ++s.paths_not_tracked;
    } else if (peer.path == nullptr) {
      const uint64_t key = PairKey(node, target);
      auto it = s.paths.find(key);
      if (it == s.paths.end()) {
        if (s.paths.size() >= config_.max_paths) {
          ++s.paths_not_tracked;
          peer.path_refused = true;
        } else {
          it = s.paths
                   .emplace(key,
                            RegionMatrixState::Path{
                                node, target, region, target_region, SlotRing<PathSlot>(coarse_ring), {}, {}})
                   .first;
        }
      }
      if (it != s.paths.end()) peer.path = &it->second;
    }
    if (peer.path != nullptr) {
      RegionMatrixState::Path& p = *peer.path;
      p.target_region = target_region;
      p.source_region = region;
      if (PathSlot* slot = p.ring.At(coarse)) {
        AddProbes(reported, slot);
        if (reported.lost_unknown > 0) s.MarkUnsettled(p, coarse);
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
    if (path.has_source()) {
      const v1::Endpoint& source_endpoint = path.source();
      if (peer.session != nullptr && peer.source_address == source_endpoint.address() &&
          peer.source_port == source_endpoint.port() && peer.ssid == path.ssid()) {
        SeenSession(*peer.session, node, window_end);
      } else {
        peer.session = nullptr;
        if (auto session = SessionKeyOf(target, source_endpoint, path.ssid())) {
          peer.session = RegisterSession(s, config_, *session, node, window_end, now);
        }
        peer.source_address = source_endpoint.address();
        peer.source_port = source_endpoint.port();
        peer.ssid = path.ssid();
      }
    }
  }

  // What this node's reflector received, per sender session: the far end's half of the
  // senders' loss direction, filed next to the sender's counts.
  std::vector<RegionMatrixState::ReflectedRef>& reflected_refs = refs.reflected;
  if (reflected_refs.size() < static_cast<size_t>(report.reflected_size())) {
    reflected_refs.resize(static_cast<size_t>(report.reflected_size()));
  }
  for (int i = 0; i < report.reflected_size(); ++i) {
    const v1::ReflectedStats& reflected = report.reflected(i);
    RegionMatrixState::ReflectedRef& ref = reflected_refs[static_cast<size_t>(i)];
    const v1::Endpoint& sender_endpoint = reflected.sender();
    const bool same_session = ref.generation == s.layout_generation && ref.session != nullptr &&
                              ref.sender_address == sender_endpoint.address() &&
                              ref.sender_port == sender_endpoint.port() && ref.ssid == reflected.ssid();
    if (!same_session) {
      ref = {};
      const auto session = SessionKeyOf(node, sender_endpoint, reflected.ssid());
      if (!session) continue;
      // Kept for the next report only when found under its own key: a session found by port and
      // SSID alone (its sender reported no address) gives way to an exact one registered later.
      const auto exact = s.sender_sessions.find(*session);
      const RegionMatrixState::SenderSession* sender =
          exact != s.sender_sessions.end() ? &exact->second : FindSession(s, *session);
      if (sender == nullptr) {
        // Its sender's report of the same second may still be on its way.
        if (s.pending_reflected_entries >= config_.max_pending_reflected) {
          ++s.reflected_unmatched;
          continue;
        }
        s.pending_reflected[*session].push_back({window_end, reflected.received(), RefusedOf(reflected)});
        ++s.pending_reflected_entries;
        continue;
      }
      ref.sender_address = sender_endpoint.address();
      ref.sender_port = sender_endpoint.port();
      ref.ssid = reflected.ssid();
      ref.generation = exact != s.sender_sessions.end() ? s.layout_generation : 0;
      ref.session = sender;
    }
    // The session's observer may have changed (a restarted sender); the places follow it. They
    // are kept once both are found: the sender's own reports create them, and until then each
    // report looks again.
    if (ref.observer != ref.session->observer || !ref.target_entry ||
        (ref.path == nullptr && !ref.no_path_at_cap)) {
      ref.observer = ref.session->observer;
      const ReflectedPlaces places = FindReflectedPlaces(s, ref.observer, node);
      ref.target_entry = places.target_entry;
      ref.path = places.path;
      ref.no_path_at_cap = places.path == nullptr && s.paths.size() >= config_.max_paths;
    }
    FileReflectedAt(s, config_, {ref.target_entry, ref.path}, window_end, reflected.received(),
                    RefusedOf(reflected));
  }

  for (const auto& traffic : report.traffic()) {
    const auto target_region_id = s.Intern(traffic.remote_region());
    if (!target_region_id) continue;
    const uint32_t target_region = *target_region_id;
    s.regions.insert(target_region);
    if (ObserverSlot* slot = s.observer_regions.rings.At(s.ObserverEntry(node, region, target_region), fine))
      slot->rx_packets += traffic.rx_packets();
    if (PairSlot* slot = pair_slot(target_region)) {
      slot->tx_bytes += traffic.tx_bytes();
      slot->rx_bytes += traffic.rx_bytes();
      slot->tcp_retransmits += traffic.tcp_retransmits();
    }
  }

  for (const auto& flow : report.flows()) {
    const auto remote_id = s.Intern(flow.remote_region());
    if (!remote_id) continue;
    const uint32_t remote = *remote_id;
    s.regions.insert(remote);
    std::string key = source.node;
    key.append(1, '\0').append(flow.name()).append(1, '\0').append(flow.remote_region());
    auto it = s.flows.find(key);
    if (it == s.flows.end()) {
      if (s.flows.size() >= config_.max_flows) {
        ++s.flows_not_tracked;
        continue;
      }
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
      f.bytes_outstanding = flow.bytes_outstanding();
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
  for (const RegionMatrixState::ObserverRegion& observed : s.observer_regions.entries) {
    if (observed.last_probed && *observed.last_probed >= now - range) {
      ++observers[{observed.node_region, observed.target_region}];
    }
  }

  // What the targets' reflectors settled of the senders' unknown loss, per region pair, over the
  // tracked paths (the rule is applied path by path: one target's silence must not be read with
  // another's report). The unknown of paths beyond max_paths stays unknown.
  struct Settled {
    uint64_t reached = 0;  // unknown found to have reached the reflector
    uint64_t placed = 0;   // unknown given a direction, forward or reverse
    uint64_t refused = 0;  // lost (forward or unknown) found refused by the reflector
    RefusedCounts refused_by_reason;
  };
  std::map<std::pair<uint32_t, uint32_t>, Settled> settled;
  // Most paths lose nothing in an unknown direction and have nothing refused: nothing to
  // settle. Add keeps the few that may have (unsettled_paths); at 10,000 agents visiting every
  // path's slots was most of this function, under the core lock.
  for (const auto& [key, newest] : s.unsettled_paths) {
    if (newest < from) continue;
    const auto found = s.paths.find(key);
    if (found == s.paths.end()) continue;
    const RegionMatrixState::Path& path = found->second;
    if (!path.ring.HasDataSince(from)) continue;
    bool anything_to_settle = false;
    path.ring.ForEachSince(from, [&](const PathSlot& slot) {
      anything_to_settle |= slot.unknown > 0 || slot.refused.Total() > 0;
    });
    if (!anything_to_settle) continue;
    const CoveredCounts counts = s.PathCounts(path, from);
    const ProbeCounts sender = counts.Sender();
    if (sender.lost_unknown == 0 && counts.refused == 0) continue;
    const ProbeCounts reconciled = counts.Reconciled();
    Settled& pair = settled[{path.source_region, path.target_region}];
    pair.reached += reconciled.received_forward - sender.received_forward;
    pair.placed += sender.lost_unknown - reconciled.lost_unknown;
    pair.refused += reconciled.refused;
    pair.refused_by_reason.Add(counts.refused_by_reason.UpTo(reconciled.refused));
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
      total.unknown += slot.unknown;
      slot.kernel.MergeInto(&total.kernel);
      slot.user.MergeInto(&total.user);
      total.tx_bytes += slot.tx_bytes;
      total.rx_bytes += slot.rx_bytes;
      total.tcp_retransmits += slot.tcp_retransmits;
    });
    ProbeCounts counts{total.sent, total.forward, total.reverse, total.unknown};
    v1::RegionPairStats cell;
    if (auto it = settled.find(key); it != settled.end()) {
      counts.received_forward += it->second.reached;
      counts.lost_unknown -= std::min(counts.lost_unknown, it->second.placed);
      // Refused probes leave `sent`: the loss figures are over the probes the reflectors would
      // answer, and the cell shows the refused beside them.
      counts.refused =
          std::min(it->second.refused, counts.sent - counts.received_forward - counts.lost_unknown);
      counts.sent -= counts.refused;
      SetRefused(it->second.refused_by_reason.UpTo(counts.refused), cell.mutable_refused());
    }
    cell.set_source_region(s.Name(key.first));
    cell.set_target_region(s.Name(key.second));
    if (auto it = observers.find(key); it != observers.end()) cell.set_observers(it->second);
    cell.set_probes_sent(counts.sent + counts.refused);
    cell.set_received_forward(counts.received_forward);
    cell.set_received_reverse(counts.received_reverse);
    cell.set_lost_direction_unknown(counts.lost_unknown);
    SetLossFigures(counts, &cell);
    const LatencyHistogram kernel = total.kernel.ToSparse();
    SetRttFigures(kernel, total.user.ToSparse(), &cell);
    cell.set_tx_bytes(total.tx_bytes);
    cell.set_rx_bytes(total.rx_bytes);
    cell.set_tcp_retransmits(total.tcp_retransmits);
    cell.set_state(
        ClassifyCell(config_.thresholds, counts.sent, counts.received_reverse, PercentileOf(kernel, 0.99)));
    cells.emplace_back(std::make_pair(cell.source_region(), cell.target_region()), std::move(cell));
  }
  std::sort(cells.begin(), cells.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [names, cell] : cells) *response.add_cells() = std::move(cell);
  *response.mutable_window() = ToDuration(range);
  *response.mutable_computed_at() = ToTimestamp(now);
  return response;
}

v1::GetPathsResponse RegionMatrix::Paths(const v1::GetPathsRequest& request, WallClock::time_point now,
                                         std::optional<uint32_t> max_limit) const {
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
  // Plain values for the loop: GCC under -fsanitize=thread warns the optionals may be read
  // uninitialized (they are not).
  const bool by_region = region.has_value();
  const uint32_t region_id = region.value_or(0);
  const bool by_node = node.has_value();
  const uint32_t node_id = node.value_or(0);
  for (const auto& [key, path] : s.paths) {
    if (by_region && path.source_region != region_id && path.target_region != region_id) continue;
    if (by_node && path.source != node_id && path.target != node_id) continue;
    if (!path.ring.HasDataSince(from)) continue;
    uint64_t sent = 0;
    uint64_t reverse = 0;
    uint64_t refused = 0;
    path.ring.ForEachSince(from, [&](const PathSlot& slot) {
      sent += slot.sent;
      reverse += slot.reverse;
      refused += slot.refused.Total();
    });
    // Refused probes are not loss (the summary's rule, approximated without the coverage walk).
    rows.push_back({LossRatio(sent - std::min(refused, sent - std::min(reverse, sent)), reverse), &path});
  }
  // Worst first: what an engineer looks for is the broken path.
  std::sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    if (a.loss != b.loss) return a.loss > b.loss;
    return std::tie(s.Name(a.path->source), s.Name(a.path->target)) <
           std::tie(s.Name(b.path->source), s.Name(b.path->target));
  });
  uint32_t limit = request.limit() == 0 ? config_.default_path_limit : request.limit();
  limit = std::min(limit, max_limit.value_or(config_.max_path_limit));
  response.set_truncated(rows.size() > limit);
  for (size_t i = 0; i < rows.size() && i < limit; ++i) {
    const RegionMatrixState::Path& path = *rows[i].path;
    PathSlot total;
    path.ring.ForEachSince(from, [&](const PathSlot& slot) {
      total.duplicates += slot.duplicates;
      total.reordered += slot.reordered;
      total.kernel.Merge(slot.kernel);
      total.user.Merge(slot.user);
    });
    const CoveredCounts covered = s.PathCounts(path, from);
    const ProbeCounts counts = covered.Reconciled();
    v1::PathSummary* summary = response.add_paths();
    summary->set_source_node(s.Name(path.source));
    summary->set_source_region(s.Name(path.source_region));
    summary->set_target_node(s.Name(path.target));
    summary->set_target_region(s.Name(path.target_region));
    summary->set_probes_sent(counts.sent + counts.refused);
    if (counts.refused > 0)
      SetRefused(covered.refused_by_reason.UpTo(counts.refused), summary->mutable_refused());
    SetLossFigures(counts, summary);
    summary->set_loss_unknown(
        counts.sent == 0 ? 0.0 : static_cast<double>(counts.lost_unknown) / static_cast<double>(counts.sent));
    summary->set_reflector_reported(covered.ReflectorReported());
    SetRttFigures(total.kernel, total.user, summary);
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
    summary.set_bytes_outstanding(flow.bytes_outstanding);
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
  ++s.layout_generation;
  std::erase_if(s.paths,
                [&](const auto& entry) { return entry.second.source == *id || entry.second.target == *id; });
  s.observer_regions.DropIf(
      [&](const RegionMatrixState::ObserverRegion& entry, size_t) { return entry.node == *id; });
  s.observer_targets.DropIf([&](const RegionMatrixState::ObserverTarget& entry, size_t) {
    return entry.node == *id || entry.target == *id;
  });
  std::erase_if(s.flows, [&](const auto& entry) { return entry.second.node == *id; });
  std::erase_if(s.sender_sessions, [&](const auto& entry) {
    return entry.first.reflector == *id || entry.second.observer == *id;
  });
  std::erase_if(s.pending_reflected, [&](const auto& entry) {
    if (entry.first.reflector != *id) return false;
    s.pending_reflected_entries -= entry.second.size();
    return true;
  });
  s.node_windows.erase(*id);
  s.refs_of.erase(*id);
}

void RegionMatrix::Evict(WallClock::time_point now) {
  RegionMatrixState& s = *state_;
  const int64_t epoch = EpochOf(now, config_.slot);
  if (epoch == s.last_evict_epoch) return;
  s.last_evict_epoch = epoch;
  const int64_t from = EpochOf(now - config_.window, config_.slot);
  const int64_t fine_from = EpochOf(now - config_.window, std::chrono::seconds(1));
  const int64_t evidence_from = EpochOf(now - config_.evidence_window, std::chrono::seconds(1));
  bool removed =
      std::erase_if(s.paths, [&](const auto& entry) { return !entry.second.ring.HasDataSince(from); }) > 0;
  // Observer entries keep last_probed for the matrix's observer counts over the window.
  removed |= s.observer_regions.DropIf([&](const RegionMatrixState::ObserverRegion&, size_t number) {
    return !s.observer_regions.rings.HasDataSince(number, fine_from);
  });
  // Per-target counts serve the evidence window only.
  removed |= s.observer_targets.DropIf([&](const RegionMatrixState::ObserverTarget&, size_t number) {
    return !s.observer_targets.rings.HasDataSince(number, evidence_from);
  });
  std::erase_if(s.node_windows, [&](const auto& entry) { return !entry.second.coarse.HasDataSince(from); });
  removed |= std::erase_if(s.sender_sessions, [&](const auto& entry) {
               return entry.second.last_seen < now - config_.window;
             }) > 0;
  if (removed) ++s.layout_generation;
  // Reflector counts whose sender never reported the session in time.
  for (auto it = s.pending_reflected.begin(); it != s.pending_reflected.end();) {
    auto& held = it->second;
    const size_t before = held.size();
    std::erase_if(held, [&](const auto& count) { return count.window_end < now - config_.evidence_window; });
    s.reflected_unmatched += before - held.size();
    s.pending_reflected_entries -= before - held.size();
    it = held.empty() ? s.pending_reflected.erase(it) : std::next(it);
  }
  // Flows stay for the replication retention after their last report: what they said before an
  // outage is the data at risk when the decision comes, after hold + dwell.
  std::erase_if(s.flows, [&](const auto& entry) {
    return entry.second.last_window_end < now - config_.replication_retention;
  });
  std::erase_if(s.last_answered,
                [&](const auto& entry) { return entry.second < now - config_.replication_retention; });
  std::erase_if(s.pairs, [&](const auto& entry) { return !entry.second.ring.HasDataSince(from); });
  std::erase_if(s.unsettled_paths,
                [&](const auto& entry) { return entry.second < from || !s.paths.contains(entry.first); });
}

RegionMatrixStats RegionMatrix::Stats() const {
  const RegionMatrixState& s = *state_;
  RegionMatrixStats stats;
  stats.paths = s.paths.size();
  stats.observer_regions = s.observer_regions.size();
  stats.flows = s.flows.size();
  stats.targets = s.observer_targets.size();
  stats.sessions = s.sender_sessions.size();
  stats.paths_not_tracked = s.paths_not_tracked;
  stats.targets_not_tracked = s.targets_not_tracked;
  stats.sessions_not_tracked = s.sessions_not_tracked;
  stats.reflected_unmatched = s.reflected_unmatched;
  stats.stale_windows_ignored = s.stale_windows_ignored;
  stats.names_not_interned = s.names_not_interned;
  stats.pairs_not_tracked = s.pairs_not_tracked;
  stats.flows_not_tracked = s.flows_not_tracked;
  stats.names = s.names.size();
  stats.pairs = s.pairs.size();
  return stats;
}

}  // namespace regionpulse
