// Window folding: probe bookkeeping per session, settlement per window, counter deltas.
#include "agent/window_folder.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <unordered_map>

#include <absl/container/flat_hash_map.h>
#include <utility>

#include "agent/probe_ring.h"
#include "common/proto_convert.h"

namespace regionpulse {
namespace {

using std::chrono::nanoseconds;

uint64_t Delta(uint64_t now, uint64_t before) {
  return now >= before ? now - before : now;
}

v1::AttachMode ToAttachMode(bool tcx) {
  return tcx ? v1::ATTACH_MODE_TCX : v1::ATTACH_MODE_CLSACT;
}

}  // namespace

KernelRttCheck CheckKernelRtt(const std::optional<KernelStamps>& kernel,
                              std::optional<nanoseconds> reflector_turnaround, nanoseconds user_rtt) {
  KernelRttCheck check;
  if (!kernel) return check;
  const auto& t = kernel->t;
  // Without t1 and t4 this host's kernel did not stamp: no kernel figure, nothing to reject.
  if (t[0] == 0 || t[3] == 0) return check;
  const int64_t outer = static_cast<int64_t>(t[3] - t[0]);
  int64_t residence = 0;
  if (t[1] != 0 && t[2] != 0) {
    residence = static_cast<int64_t>(t[2] - t[1]);
  } else if (reflector_turnaround) {
    residence = reflector_turnaround->count();
  } else {
    return check;
  }
  const int64_t rtt = outer - residence;
  check.rtt = nanoseconds(rtt);
  // Kernel stamps sit outside the HMAC; the signed user-space RTT bounds what they may claim.
  const bool plausible = t[3] > t[0] && residence >= 0 && rtt > 0 && rtt <= user_rtt.count();
  check.outcome = plausible ? KernelRttCheck::Outcome::kAccepted : KernelRttCheck::Outcome::kRejected;
  return check;
}

void JitterEstimator::Add(nanoseconds transit) {
  if (last_) {
    const double d = std::fabs(static_cast<double>((transit - *last_).count()));
    jitter_ns_ += (d - jitter_ns_) / 16.0;
  }
  last_ = transit;
  ++samples_;
}

DatapathSnapshot TakeSnapshot(const KernelDatapath& datapath) {
  DatapathSnapshot s;
  s.regions = datapath.RegionCounters();
  s.flows = datapath.FlowCountersNow();
  s.interfaces = datapath.Attachments();
  s.programs = datapath.ProgramStats();
  s.samples_dropped = datapath.SamplesDropped();
  return s;
}

// ---- state ---------------------------------------------------------------------------------

namespace {

struct ProbeRecord {
  MonoTime sent_at;
  uint64_t window_id = 0;
  bool answered = false;
  uint32_t reflector_sequence = 0;
};

using PathId = uint32_t;

struct Session {
  SessionInfo info;
  uint64_t serial = 0;  // unique over the folder's life, from 1
  PathId path = 0;
  // Bumped when `info` changes, so a window's path copies the session's description only then.
  uint64_t info_version = 0;
  // Whether the prober may still send under this session's id (no OnSessionEnded yet).
  bool attached = true;
  // Probes of windows not yet reported, by sender sequence.
  ProbeRing<ProbeRecord> probes;
  // The last answered probe before every probe in `probes` (sender, reflector sequence);
  // (first - 1, -1) at the start of a session, whose reflector numbering starts at 0.
  int64_t anchor_sender = -1;
  int64_t anchor_reflector = -1;
  bool anchored = false;
  std::optional<uint32_t> highest_replied;
  int64_t settled_through = -1;  // highest sender sequence already reported
  MonoTime last_sent;
  JitterEstimator jitter_user;
  JitterEstimator jitter_kernel;
};

struct PathAccumulator {
  PeerInfo peer;
  // The session and source of the newest probe sent in the window, and which description of
  // it they were copied from.
  uint16_t ssid = 0;
  std::string source_address;
  uint16_t source_port = 0;
  uint64_t described_by = 0;  // Session::serial, 0: none yet
  uint64_t described_version = 0;
  uint64_t sent = 0;
  // Settled probes of the window: sent, received by the reflector (forward), answered
  // (reverse), lost in a direction not known.
  uint64_t settled = 0;
  uint64_t received_forward = 0;
  uint64_t received_reverse = 0;
  uint64_t lost_unknown = 0;
  LatencyHistogram rtt_kernel;
  LatencyHistogram rtt_user;
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  uint64_t auth_failures = 0;
  uint64_t kernel_rejected = 0;
  std::optional<nanoseconds> jitter_user;
  std::optional<nanoseconds> jitter_kernel;
};

// A sender session as this node's reflector saw it: address bytes, port, SSID (no text per
// probe; the address is formatted once per entry when the report is built).
using ReflectedKey = SenderKey;
using ReflectedKeyHash = SenderKeyHash;

struct ReflectedCounts {
  uint64_t received = 0;
  uint64_t replied = 0;
  // Refused, by reason (ProbeRefusal's order).
  std::array<uint64_t, 4> refused{};

  uint64_t RefusedTotal() const { return refused[0] + refused[1] + refused[2] + refused[3]; }
};

struct Window {
  uint64_t id = 0;
  MonoTime start;
  MonoTime end;
  WallTime wall_start;
  WallTime wall_end;
  // The paths probed or answered in the window, and where each PathId's is (-1: none yet).
  std::vector<PathAccumulator> paths;
  std::vector<int32_t> path_index;
  // What the reflector received while the window was open, per sender session.
  // Hashed: looked up once per probe received; sorted once, for the report.
  absl::flat_hash_map<ReflectedKey, ReflectedCounts, ReflectedKeyHash> reflected;
  uint64_t reflections_untracked = 0;  // of sessions beyond the tracking bound

  // The counts of `key`'s session; a new session only while fewer than `bound` are tracked
  // (nullptr beyond).
  ReflectedCounts* ReflectedSession(ReflectedKey key, size_t bound) {
    auto it = reflected.find(key);
    if (it == reflected.end()) {
      if (reflected.size() >= bound) return nullptr;
      it = reflected.emplace(std::move(key), ReflectedCounts{}).first;
    }
    return &it->second;
  }
  // Filled when the window closes.
  std::vector<v1::TrafficStats> traffic;
  std::vector<v1::FlowStats> flows;
  v1::AgentStatus status;
};

struct FlowState {
  std::optional<MonoTime> stalled_since;
  // The last reading that saw a connection of the flow, and what it said about outstanding
  // data; unset while the flow never had one.
  std::optional<MonoTime> last_seen_connected;
  bool outstanding_when_seen = false;
  uint64_t bytes_outstanding_when_seen = 0;
  // While no connection is open after there was one: the moment the staleness counts from.
  std::optional<MonoTime> stale_since;
};

std::optional<MonoTime> ProgressTime(const FlowCounters* counters) {
  if (counters == nullptr || counters->last_progress_ns == 0) return std::nullopt;
  return MonoTime(nanoseconds(counters->last_progress_ns));
}

}  // namespace

struct WindowFolder::State {
  WindowFolderConfig config;
  uint64_t next_window_id = 1;
  uint64_t next_sequence = 1;
  Window open;
  std::deque<Window> closed;  // awaiting settlement, oldest first
  // Every session with probes pending or recently sent, and the prober's ids of those still
  // attached; a session the prober ended stays until its probes are reported.
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<Session*> by_id;
  // A path per peer node: its id, and how many sessions name it. Ids are reused once no
  // session and no pending window refers to them.
  std::map<std::string, PathId> path_ids;
  std::vector<uint32_t> path_references;  // by PathId
  std::vector<std::string> path_nodes;    // by PathId
  std::vector<PathId> free_paths;
  DatapathSnapshot previous;
  std::map<std::string, FlowState> flow_state;
  std::vector<std::string> errors;
  uint64_t reports_dropped = 0;
  uint64_t reflected_senders_dropped = 0;  // since start

  Window* WindowById(uint64_t id) {
    if (open.id == id) return &open;
    for (auto& w : closed) {
      if (w.id == id) return &w;
    }
    return nullptr;
  }

  PathAccumulator& PathIn(Window& w, const Session& session) {
    if (w.path_index.size() <= session.path) w.path_index.resize(session.path + 1, -1);
    int32_t& index = w.path_index[session.path];
    if (index < 0) {
      index = static_cast<int32_t>(w.paths.size());
      w.paths.emplace_back();
    }
    PathAccumulator& path = w.paths[static_cast<size_t>(index)];
    if (path.described_by == 0) Describe(path, session);
    return path;
  }

  // The path names the session of its newest probe: copied when that changed, not per probe.
  static void Describe(PathAccumulator& path, const Session& session) {
    if (path.described_by == session.serial && path.described_version == session.info_version) return;
    path.peer = session.info.peer;
    path.ssid = session.info.ssid;
    path.source_address = session.info.source_address;
    path.source_port = session.info.source_port;
    path.described_by = session.serial;
    path.described_version = session.info_version;
  }

  PathId PathOf(const std::string& node) {
    if (auto it = path_ids.find(node); it != path_ids.end()) {
      ++path_references[it->second];
      return it->second;
    }
    PathId id;
    if (!free_paths.empty()) {
      id = free_paths.back();
      free_paths.pop_back();
      path_nodes[id] = node;
    } else {
      id = static_cast<PathId>(path_nodes.size());
      path_nodes.push_back(node);
      path_references.push_back(0);
    }
    path_ids.emplace(node, id);
    path_references[id] = 1;
    return id;
  }

  bool PathInUse(const Window& w, PathId id) const {
    return id < w.path_index.size() && w.path_index[id] >= 0;
  }

  void ReleasePath(PathId id) {
    if (--path_references[id] > 0) return;
    if (PathInUse(open, id)) return;
    for (const auto& w : closed) {
      if (PathInUse(w, id)) return;
    }
    path_ids.erase(path_nodes[id]);
    path_nodes[id].clear();
    free_paths.push_back(id);
  }

  // Paths whose last session went while a window still held them: freed once none does.
  void ReleaseUnreferencedPaths() {
    for (const auto& [node, id] : path_ids) {
      if (path_references[id] == 0) {
        ++path_references[id];
        pending_release.push_back(id);
      }
    }
    for (PathId id : pending_release) ReleasePath(id);
    pending_release.clear();
  }
  std::vector<PathId> pending_release;
  std::vector<uint32_t> settled_sequences;  // reused by Settle
  uint64_t session_serials = 0;

  Session* SessionById(SessionId id) { return id < by_id.size() ? by_id[id] : nullptr; }

  void StartWindow(MonoTime start, WallTime wall_start) {
    open = Window{};
    open.id = next_window_id++;
    open.start = start;
    open.wall_start = wall_start;
  }

  void FillCounters(Window& w, const DatapathSnapshot& now) {
    for (const auto& [region, counters] : now.regions) {
      if (region == 0 || region > config.region_names.size()) continue;
      RegionTrafficCounters before;
      if (auto it = previous.regions.find(region); it != previous.regions.end()) before = it->second;
      v1::TrafficStats t;
      t.set_remote_region(config.region_names[region - 1]);
      t.set_tx_bytes(Delta(counters.tx_bytes, before.tx_bytes));
      t.set_rx_bytes(Delta(counters.rx_bytes, before.rx_bytes));
      t.set_tx_packets(Delta(counters.tx_packets, before.tx_packets));
      t.set_rx_packets(Delta(counters.rx_packets, before.rx_packets));
      t.set_tcp_retransmits(Delta(counters.tcp_retransmits, before.tcp_retransmits));
      t.set_tcp_resets(Delta(counters.tcp_resets, before.tcp_resets));
      t.set_tcp_failed_connects(Delta(counters.tcp_failed_connects, before.tcp_failed_connects));
      t.set_tcp_established(Delta(counters.tcp_established, before.tcp_established));
      const uint64_t srtt_samples = Delta(counters.tcp_srtt_samples, before.tcp_srtt_samples);
      const uint64_t srtt_sum = Delta(counters.tcp_srtt_us_sum, before.tcp_srtt_us_sum);
      if (srtt_samples > 0) {
        *t.mutable_tcp_srtt() = ToDuration(std::chrono::microseconds(srtt_sum / srtt_samples));
      }
      const bool any = t.tx_bytes() || t.rx_bytes() || t.tx_packets() || t.rx_packets() ||
                       t.tcp_retransmits() || t.tcp_resets() || t.tcp_failed_connects() ||
                       t.tcp_established() || srtt_samples;
      if (any) w.traffic.push_back(std::move(t));
    }

    for (const auto& expected : config.flows) {
      const FlowCounters* cur = nullptr;
      const FlowCounters* before = nullptr;
      for (const auto& f : now.flows) {
        if (f.name == expected.name) cur = &f;
      }
      for (const auto& f : previous.flows) {
        if (f.name == expected.name) before = &f;
      }
      v1::FlowStats stats;
      stats.set_name(expected.name);
      stats.set_remote_region(expected.remote_region);
      stats.set_expected_min_rate_bps(expected.expected_min_rate_bps);
      FlowState& state = flow_state[expected.name];
      uint64_t acked = 0;
      if (cur) {
        acked = Delta(cur->bytes_acked, before ? before->bytes_acked : 0);
        const uint64_t samples = Delta(cur->srtt_samples, before ? before->srtt_samples : 0);
        const uint64_t sum = Delta(cur->srtt_us_sum, before ? before->srtt_us_sum : 0);
        if (samples > 0) *stats.mutable_srtt() = ToDuration(std::chrono::microseconds(sum / samples));
        stats.set_retransmits(Delta(cur->retransmits, before ? before->retransmits : 0));
        stats.set_established(Delta(cur->established, before ? before->established : 0));
        stats.set_failed_connects(Delta(cur->failed_connects, before ? before->failed_connects : 0));
        stats.set_resets(Delta(cur->resets, before ? before->resets : 0));
        stats.set_connections(cur->connections);
      }
      stats.set_bytes_acked(acked);
      nanoseconds age{0};
      if (cur && cur->connections > 0) {
        state.stale_since.reset();
        if (acked > 0 || !cur->data_outstanding) {
          state.stalled_since.reset();
        } else {
          if (cur->last_progress_ns != 0) {
            state.stalled_since = ProgressTime(cur);
          } else if (!state.stalled_since) {
            state.stalled_since = w.start;  // never progressed: stalled since we first saw it
          }
          age = w.end - *state.stalled_since;
        }
        state.last_seen_connected = w.end;
        state.outstanding_when_seen = cur->data_outstanding;
        state.bytes_outstanding_when_seen = cur->bytes_outstanding;
        stats.set_bytes_outstanding(cur->bytes_outstanding);
      } else if (state.last_seen_connected) {
        // Its connections vanished: a stopped replica must not read as an idle one.
        if (!state.stale_since) {
          const std::optional<MonoTime> progress = ProgressTime(cur);
          if (state.outstanding_when_seen) {
            // Stuck with data outstanding when last seen: behind since its last progress.
            state.stale_since =
                progress ? *progress : state.stalled_since.value_or(*state.last_seen_connected);
          } else {
            state.stale_since = std::max(*state.last_seen_connected, progress.value_or(MonoTime::min()));
          }
          state.stalled_since.reset();
        }
        age = w.end - *state.stale_since;
        if (state.outstanding_when_seen) stats.set_bytes_outstanding(state.bytes_outstanding_when_seen);
      } else {
        state.stalled_since.reset();  // never connected since we started: nothing known behind
      }
      *stats.mutable_last_progress_age() = ToDuration(std::max(nanoseconds(0), age));
      w.flows.push_back(std::move(stats));
    }

    for (const auto& iface : now.interfaces) {
      auto* out = w.status.add_interfaces();
      out->set_name(iface.name);
      out->set_ifindex(iface.ifindex);
      out->set_mode(ToAttachMode(iface.tcx));
      out->set_l3_only(iface.l3_only);
    }
    for (const auto& program : now.programs) {
      auto* out = w.status.add_programs();
      out->set_name(program.name);
      out->set_run_count(program.run_count);
      out->set_run_time_ns(program.run_time_ns);
    }
    w.status.set_samples_dropped(now.samples_dropped);
    for (auto& e : errors) w.status.add_errors(std::move(e));
    errors.clear();
    previous = now;
  }

  void CloseOpen(MonoTime now, WallTime wall_now, const DatapathSnapshot& counters) {
    open.end = std::max(now, open.start + nanoseconds(1));
    // A wall clock stepped backwards must not make an invalid window: keep it 1 ns long.
    open.wall_end = std::max(
        wall_now, open.wall_start + std::chrono::duration_cast<WallTime::duration>(nanoseconds(1000)));
    FillCounters(open, counters);
    closed.push_back(std::move(open));
    StartWindow(closed.back().end, closed.back().wall_end);
  }

  enum class LostWhere { kOnTheWayBack, kOnTheWayOut, kUnknown };

  // Where an unanswered probe was lost, from the answered probes around it.
  static LostWhere WhereLost(const Session& session, uint32_t probe, int64_t prev_sender,
                             int64_t prev_reflector) {
    uint32_t next = 0;
    const ProbeRecord* answered = session.probes.NextAfter(
        probe, [](const ProbeRecord& r) { return r.answered; }, &next);
    // No later reply: the reflector's numbering says nothing about this probe.
    if (answered == nullptr) return LostWhere::kUnknown;
    const int64_t gap = static_cast<int64_t>(next) - prev_sender - 1;
    const int64_t reached =
        std::clamp<int64_t>(static_cast<int64_t>(answered->reflector_sequence) - prev_reflector - 1, 0, gap);
    const int64_t index = static_cast<int64_t>(probe) - prev_sender - 1;
    return index < reached ? LostWhere::kOnTheWayBack : LostWhere::kOnTheWayOut;
  }

  // The window's reflected entries, at most max_reflected_senders: the sessions with the most
  // probes received, in (address, port, SSID) order.
  void AddReflected(Window& w, v1::HealthReport& report) {
    using Entry = std::pair<const ReflectedKey*, const ReflectedCounts*>;
    std::vector<Entry> entries;
    entries.reserve(w.reflected.size());
    for (const auto& [key, counts] : w.reflected) entries.emplace_back(&key, &counts);
    uint64_t dropped = w.reflections_untracked;
    if (entries.size() > config.max_reflected_senders) {
      const auto busiest = entries.begin() + static_cast<std::ptrdiff_t>(config.max_reflected_senders);
      // Received first: a session only refusals are heard from (they may name any session)
      // never pushes out one the reflector answered.
      std::nth_element(entries.begin(), busiest, entries.end(), [](const Entry& a, const Entry& b) {
        if (a.second->received != b.second->received) return a.second->received > b.second->received;
        if (a.second->RefusedTotal() != b.second->RefusedTotal()) {
          return a.second->RefusedTotal() > b.second->RefusedTotal();
        }
        return *a.first < *b.first;
      });
      dropped += entries.size() - config.max_reflected_senders;
      entries.erase(busiest, entries.end());
    }
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return *a.first < *b.first; });
    for (const auto& [key, counts] : entries) {
      auto* out = report.add_reflected();
      out->mutable_sender()->set_address(key->address.ToText());
      out->mutable_sender()->set_port(key->port);
      out->set_ssid(key->ssid);
      out->set_received(counts->received);
      out->set_replied(counts->replied);
      out->set_refused_wrong_key(counts->refused[static_cast<size_t>(ProbeRefusal::kWrongKey)]);
      out->set_refused_stale_timestamp(counts->refused[static_cast<size_t>(ProbeRefusal::kStaleTimestamp)]);
      out->set_refused_rate_limited(counts->refused[static_cast<size_t>(ProbeRefusal::kRateLimited)]);
      out->set_refused_replayed(counts->refused[static_cast<size_t>(ProbeRefusal::kReplayed)]);
    }
    reflected_senders_dropped += dropped;
  }

  v1::HealthReport Settle(Window& w, MonoTime now, FolderCounters& totals) {
    v1::HealthReport report;
    for (auto& session_ptr : sessions) {
      Session& session = *session_ptr;
      int64_t prev_sender = session.anchor_sender;
      int64_t prev_reflector = session.anchor_reflector;
      settled_sequences.clear();
      session.probes.ForEach([&](uint32_t sequence, ProbeRecord& probe) {
        if (probe.window_id != w.id) {
          if (probe.answered) {
            prev_sender = sequence;
            prev_reflector = probe.reflector_sequence;
          }
          return true;
        }
        const bool settled = probe.answered || now >= probe.sent_at + config.probe_timeout;
        if (settled) {
          // Its window's path: the probe was counted there when sent.
          PathAccumulator& path = PathIn(w, session);
          ++path.settled;
          if (probe.answered) {
            ++path.received_forward;
            ++path.received_reverse;
          } else {
            switch (WhereLost(session, sequence, prev_sender, prev_reflector)) {
              case LostWhere::kOnTheWayBack:
                ++path.received_forward;
                break;
              case LostWhere::kOnTheWayOut:
                break;
              case LostWhere::kUnknown:
                ++path.lost_unknown;
                break;
            }
          }
          ++totals.probes_settled;
        }
        if (probe.answered) {
          prev_sender = sequence;
          prev_reflector = probe.reflector_sequence;
          session.anchor_sender = prev_sender;
          session.anchor_reflector = prev_reflector;
        }
        session.settled_through = std::max<int64_t>(session.settled_through, sequence);
        settled_sequences.push_back(sequence);
        return true;
      });
      for (uint32_t sequence : settled_sequences) session.probes.Erase(sequence);
    }
    // A session the prober ended (plans rotate peers) is forgotten once nothing of it is
    // pending and a late reply is no longer plausible.
    std::erase_if(sessions, [&](const std::unique_ptr<Session>& session) {
      if (session->attached || !session->probes.empty() ||
          now - session->last_sent <= 10 * config.probe_timeout)
        return false;
      --path_references[session->path];
      return true;
    });
    ReleaseUnreferencedPaths();

    report.set_sequence(next_sequence++);
    *report.mutable_window_start() = ToTimestamp(w.wall_start);
    *report.mutable_window_end() = ToTimestamp(w.wall_end);
    // Paths in peer node order, as readers of a report expect them.
    std::vector<const PathAccumulator*> ordered;
    ordered.reserve(w.paths.size());
    for (const auto& path : w.paths) ordered.push_back(&path);
    std::sort(ordered.begin(), ordered.end(),
              [](const PathAccumulator* a, const PathAccumulator* b) { return a->peer.node < b->peer.node; });
    for (const PathAccumulator* path_ptr : ordered) {
      const PathAccumulator& path = *path_ptr;
      auto* out = report.add_paths();
      out->set_peer_node(path.peer.node);
      out->set_peer_region(path.peer.region);
      out->set_peer_zone(path.peer.zone);
      out->mutable_peer_endpoint()->set_address(path.peer.address);
      out->mutable_peer_endpoint()->set_port(path.peer.port);
      const uint64_t n = path.settled;
      const uint64_t forward = path.received_forward;
      const uint64_t reverse = path.received_reverse;
      const uint64_t lost_unknown = path.lost_unknown;
      out->set_probes_sent(n);
      out->set_received_forward(forward);
      out->set_received_reverse(reverse);
      out->set_lost_direction_unknown(lost_unknown);
      // Only what is known to be lost on the way out: unknown loss is in neither figure.
      out->set_loss_forward(n ? static_cast<double>(n - forward - lost_unknown) / static_cast<double>(n)
                              : 0.0);
      out->set_loss_reverse(forward ? 1.0 - static_cast<double>(reverse) / static_cast<double>(forward)
                                    : 0.0);
      out->set_duplicates(path.duplicates);
      out->set_reordered(path.reordered);
      ToProto(path.rtt_kernel, out->mutable_rtt_kernel());
      ToProto(path.rtt_user, out->mutable_rtt_user());
      const auto jitter = path.jitter_kernel ? path.jitter_kernel : path.jitter_user;
      if (jitter) *out->mutable_jitter() = ToDuration(*jitter);
      out->set_auth_failures(path.auth_failures);
      out->set_kernel_stamps_rejected(path.kernel_rejected);
      out->set_ssid(path.ssid);
      if (!path.source_address.empty()) {
        out->mutable_source()->set_address(path.source_address);
        out->mutable_source()->set_port(path.source_port);
      }
    }
    for (auto& t : w.traffic) *report.add_traffic() = std::move(t);
    for (auto& f : w.flows) *report.add_flows() = std::move(f);
    AddReflected(w, report);
    *report.mutable_status() = std::move(w.status);
    report.mutable_status()->set_reports_dropped(reports_dropped);
    report.mutable_status()->set_reflected_senders_dropped(reflected_senders_dropped);
    ++totals.reports;
    return report;
  }
};

WindowFolder::WindowFolder(WindowFolderConfig config, MonoTime start, WallTime wall_start,
                           DatapathSnapshot baseline)
    : state_(std::make_unique<State>()) {
  state_->config = std::move(config);
  state_->previous = std::move(baseline);
  // A flow connected when the folder starts has had a connection: should it vanish before the
  // first window closes, that is a stale flow, not one that never connected.
  for (const auto& flow : state_->previous.flows) {
    if (flow.connections == 0) continue;
    FlowState& state = state_->flow_state[flow.name];
    state.last_seen_connected = start;
    state.outstanding_when_seen = flow.data_outstanding;
    state.bytes_outstanding_when_seen = flow.bytes_outstanding;
  }
  state_->StartWindow(start, wall_start);
}

WindowFolder::~WindowFolder() = default;

void WindowFolder::OnSession(const SessionInfo& info) {
  auto& s = *state_;
  if (info.session >= s.by_id.size()) s.by_id.resize(info.session + 1, nullptr);
  Session*& slot = s.by_id[info.session];
  if (slot != nullptr && slot->info.ssid == info.ssid && slot->info.peer.node == info.peer.node) {
    if (!(slot->info == info)) {
      slot->info = info;
      ++slot->info_version;
    }
    return;
  }
  // A new session under this id (the prober ended the last one, or tells of a new SSID).
  if (slot != nullptr) slot->attached = false;
  auto session = std::make_unique<Session>();
  session->info = info;
  session->serial = ++s.session_serials;
  session->path = s.PathOf(info.peer.node);
  slot = session.get();
  s.sessions.push_back(std::move(session));
}

void WindowFolder::OnSessionEnded(SessionId id) {
  auto& s = *state_;
  if (Session* session = s.SessionById(id)) {
    session->attached = false;
    s.by_id[id] = nullptr;
  }
}

void WindowFolder::OnProbeSent(const ProbeSent& sent) {
  auto& s = *state_;
  Session* session_ptr = s.SessionById(sent.session);
  if (session_ptr == nullptr) return;  // the prober names every session before its probes
  Session& session = *session_ptr;
  if (!session.anchored) {
    session.anchor_sender = static_cast<int64_t>(sent.sequence) - 1;
    session.anchor_reflector = -1;
    session.anchored = true;
  }
  session.probes.Insert(sent.sequence, ProbeRecord{sent.sent_at, s.open.id, false, 0});
  session.last_sent = sent.sent_at;
  PathAccumulator& path = s.PathIn(s.open, session);
  State::Describe(path, session);
  ++path.sent;
}

void WindowFolder::OnProbeReflected(const ProbeReflected& reflected) {
  auto& s = *state_;
  Window& w = s.open;
  ReflectedCounts* counts =
      w.ReflectedSession(ReflectedKey{reflected.sender_address, reflected.sender_port, reflected.ssid},
                         s.config.max_reflected_senders * kReflectedSessionsTracked);
  if (counts == nullptr) {
    ++w.reflections_untracked;
    return;
  }
  ++counts->received;
  if (reflected.replied) ++counts->replied;
}

void WindowFolder::OnProbeRefused(const ProbeRefused& refused) {
  auto& s = *state_;
  Window& w = s.open;
  // A refused packet may name any session (nothing in it was verified): refusals alone open
  // at most max_reflected_senders sessions a window, so a flood of them leaves the rest of the
  // tracking bound to the sessions the reflector answers.
  ReflectedCounts* counts =
      w.ReflectedSession(ReflectedKey{refused.sender_address, refused.sender_port, refused.ssid},
                         s.config.max_reflected_senders);
  if (counts == nullptr) {
    ++counters_.refusals_untracked;
    return;
  }
  ++counts->refused[static_cast<size_t>(refused.reason)];
}

void WindowFolder::OnProbeReply(const ProbeReply& reply) {
  auto& s = *state_;
  Session* session_ptr = s.SessionById(reply.session);
  if (session_ptr == nullptr) {
    ++counters_.unknown_replies;
    return;
  }
  Session& session = *session_ptr;
  ProbeRecord* probe_ptr = session.probes.Find(reply.sender_sequence);
  if (probe_ptr == nullptr) {
    // Its window has been reported already (or it was never sent).
    if (static_cast<int64_t>(reply.sender_sequence) <= session.settled_through) {
      ++counters_.late_replies;
    } else {
      ++counters_.unknown_replies;
    }
    return;
  }
  ProbeRecord& probe = *probe_ptr;
  Window* w = s.WindowById(probe.window_id);
  if (!w) {
    ++counters_.late_replies;
    return;
  }
  PathAccumulator& path = s.PathIn(*w, session);
  if (probe.answered) {
    ++path.duplicates;
    ++counters_.duplicates;
    return;
  }
  const nanoseconds user_rtt = std::chrono::duration_cast<nanoseconds>(reply.received_at - probe.sent_at);
  if (user_rtt > s.config.probe_timeout || user_rtt.count() < 0) {
    ++counters_.late_replies;
    return;
  }
  probe.answered = true;
  probe.reflector_sequence = reply.reflector_sequence;
  if (session.highest_replied && reply.sender_sequence < *session.highest_replied) {
    ++path.reordered;
    ++counters_.reordered;
  } else {
    session.highest_replied = reply.sender_sequence;
  }
  path.rtt_user.Record(static_cast<uint64_t>(user_rtt.count()));
  session.jitter_user.Add(user_rtt);
  if (session.jitter_user.HasValue()) path.jitter_user = session.jitter_user.Value();
  const KernelRttCheck kernel = CheckKernelRtt(reply.kernel, reply.reflector_turnaround, user_rtt);
  if (kernel.outcome == KernelRttCheck::Outcome::kAccepted) {
    path.rtt_kernel.Record(static_cast<uint64_t>(kernel.rtt.count()));
    session.jitter_kernel.Add(kernel.rtt);
    if (session.jitter_kernel.HasValue()) path.jitter_kernel = session.jitter_kernel.Value();
  } else if (kernel.outcome == KernelRttCheck::Outcome::kRejected) {
    ++path.kernel_rejected;
    ++counters_.kernel_stamps_rejected;
  }
}

void WindowFolder::OnReplyRejected(const std::string& node, DecodeProblem problem, MonoTime /*at*/) {
  auto& s = *state_;
  if (problem == DecodeProblem::kBadMac) {
    ++counters_.auth_failures;
    // Only attributed to a path the report has: a reply from a peer never probed is noise.
    for (const auto& session : s.sessions) {
      if (session->info.peer.node == node) {
        ++s.PathIn(s.open, *session).auth_failures;
        break;
      }
    }
  } else {
    ++counters_.malformed_replies;
  }
}

std::vector<v1::HealthReport> WindowFolder::CloseWindow(MonoTime now, WallTime wall_now,
                                                        const DatapathSnapshot& counters) {
  auto& s = *state_;
  s.CloseOpen(now, wall_now, counters);
  std::vector<v1::HealthReport> reports;
  while (!s.closed.empty() && s.closed.front().end + s.config.probe_timeout <= now) {
    reports.push_back(s.Settle(s.closed.front(), now, counters_));
    s.closed.pop_front();
  }
  return reports;
}

std::vector<v1::HealthReport> WindowFolder::Drain(MonoTime now, WallTime wall_now,
                                                  const DatapathSnapshot& counters) {
  auto& s = *state_;
  s.CloseOpen(now, wall_now, counters);
  std::vector<v1::HealthReport> reports;
  while (!s.closed.empty()) {
    Window& w = s.closed.front();
    // Settle leaves probes still in flight out of the counts: neither sent nor lost.
    reports.push_back(s.Settle(w, now, counters_));
    s.closed.pop_front();
  }
  return reports;
}

void WindowFolder::AddError(std::string error) {
  auto& s = *state_;
  if (s.errors.size() < s.config.max_errors) s.errors.push_back(std::move(error));
}

void WindowFolder::SetReportsDropped(uint64_t dropped) {
  state_->reports_dropped = dropped;
}

size_t WindowFolder::PendingWindows() const {
  return state_->closed.size();
}

}  // namespace regionpulse
