// WindowFolder: folds probe events and cumulative kernel counters into one HealthReport per
// window. Pure: every time is passed in; no I/O, no clock reads.
//
// Probes and windows. A probe belongs to the window it was SENT in. It is settled when its
// reply arrives, or when it has been unanswered for `probe_timeout` (then it is lost; a reply
// after that is "late" and counted only in counters()). A window's report therefore waits
// until every probe sent in it has settled: CloseWindow(now) ends the current window and
// returns the reports of earlier windows whose end + probe_timeout <= now, oldest first.
// With the defaults (1 s windows, 800 ms timeout) each report comes out one window after it
// ended; the timeout is shorter than the window so that a window timer firing a little late
// once does not hold a report back for a second window. Drain() at shutdown ends the current window and
// returns every pending report; probes still in flight then are left out of that report (neither sent nor
// lost).
//
// Loss per direction, this node as the sender (RFC 8762 stateful reflector): the reflector
// numbers its replies per session, counting what it received. Between two answered probes a
// and b of a session (by sender sequence), s_b - s_a - 1 probes went unanswered and
// r_b - r_a - 1 of them reached the reflector (clamped to [0, gap]); those lost their reply on
// the way back, the rest were lost on the way out. Within a gap the first probes (by sequence)
// are taken as the ones that arrived: the split per window is then exact whenever a gap lies
// in one window, and the totals are whenever the gap closed before its windows settled.
// Unanswered probes with no later answered probe of the session by the time their window
// settles say nothing about where they were lost: they are lost_direction_unknown, in neither
// received_forward nor loss_forward. With every reply gone (total reverse loss) or every
// probe gone (total forward loss) the sender alone sees the same thing, all probes unknown;
// the peer's reflector counts (below) tell the two apart at the aggregator. Each path names
// the session and source of its newest probe (ssid, source) for that join.
//
// Loss per direction, this node as the reflector: every valid probe the reflector received is
// counted in the window open when it arrived, per sender session (sender address, port,
// SSID), with how many were answered: the report's `reflected` entries. A report carries at
// most max_reflected_senders of them, the sessions with the most probes received (a prober
// sends about ten a second, a stray or one-off sender fewer); the rest are counted in
// status.reflected_senders_dropped. Memory is bounded too: a window tells apart at most
// kReflectedSessionsTracked per report entry; a session beyond that (only a flood of senders
// gets there) is not tracked and each of its probes counts as one dropped entry.
// The probes the reflector refused (wrong key, stale timestamp, rate limited, replayed) are
// counted per session beside them, by reason: the senders' "lost" probes that in fact arrived.
// Refusals alone open at most max_reflected_senders sessions a window, since a refused packet
// may claim any session.
//
// Traffic and flows: deltas of the cumulative KernelDatapath counters between the snapshot
// at the window's start and at its end (a counter that went down restarted: its new value
// is the delta). Flow staleness (last_progress_age) at window end:
//  - connections open: when data is outstanding and acknowledged bytes did not advance during
//    the window, now - last progress (or - first time the folder saw the flow stalled, when
//    it never progressed); 0 otherwise (moving, or idle with nothing outstanding);
//  - no connection open, but the flow had one since the folder started (the replica stopped,
//    the link dropped it): stale, now - the last moment it was known alive. That is the last
//    acknowledged progress when data was outstanding at the last reading that saw a
//    connection (as when stalled), else the later of that reading and the last progress. Its
//    bytes_outstanding stays what that reading said: never acknowledged, so at risk;
//  - never had a connection since the folder started: 0 (nothing known to be behind).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/kernel_datapath.h"
#include "agent/probe_codec.h"
#include "agent/probe_events.h"
#include "agent/reflection_events.h"
#include "common/clocks.h"
#include "common/latency_histogram.h"
#include "regionpulse/v1/ingest.pb.h"

namespace regionpulse {

// Kernel RTT of one probe, (t4 - t1) - (t3 - t2), or with the reflector's own turnaround in
// place of t3 - t2. kNone: not kernel-stamped (no datapath); kRejected: stamped but not
// positive or larger than the user-space RTT of the same probe.
struct KernelRttCheck {
  enum class Outcome { kNone, kAccepted, kRejected } outcome = Outcome::kNone;
  std::chrono::nanoseconds rtt{0};
};
KernelRttCheck CheckKernelRtt(const std::optional<KernelStamps>& kernel,
                              std::optional<std::chrono::nanoseconds> reflector_turnaround,
                              std::chrono::nanoseconds user_rtt);

// RFC 3550 6.4.1 interarrival jitter, applied to round-trip times: J += (|D| - J) / 16 where
// D is the difference between consecutive RTTs in arrival order.
class JitterEstimator {
 public:
  void Add(std::chrono::nanoseconds transit);
  std::chrono::nanoseconds Value() const {
    return std::chrono::nanoseconds(static_cast<int64_t>(jitter_ns_));
  }
  bool HasValue() const { return samples_ >= 2; }

 private:
  double jitter_ns_ = 0;
  std::optional<std::chrono::nanoseconds> last_;
  uint64_t samples_ = 0;
};

// The cumulative kernel-side counters at one instant.
struct DatapathSnapshot {
  std::map<RegionId, RegionTrafficCounters> regions;
  std::vector<FlowCounters> flows;
  std::vector<InterfaceAttachment> interfaces;
  std::vector<ProgramRunStats> programs;
  uint64_t samples_dropped = 0;
};
DatapathSnapshot TakeSnapshot(const KernelDatapath& datapath);

struct FlowExpectation {
  std::string name;
  std::string remote_region;
  uint64_t expected_min_rate_bps = 0;
};

struct WindowFolderConfig {
  std::vector<std::string> region_names;  // index = RegionId - 1
  std::vector<FlowExpectation> flows;     // every configured flow appears in every report
  std::chrono::nanoseconds probe_timeout{800'000'000};
  size_t max_errors = 16;  // status.errors per report
  // `reflected` entries per report. 1,024 sender sessions is far beyond what a probe plan
  // gives one node (a few dozen peers probe it), yet keeps the entries to about 60 KB of a 4 MB
  // report; ReportLimits::max_reflected allows four times as many.
  size_t max_reflected_senders = 1024;
};

// Sender sessions a window tells apart, per `reflected` entry a report may carry.
inline constexpr size_t kReflectedSessionsTracked = 16;

// Counters over the folder's lifetime, for metrics.
struct FolderCounters {
  uint64_t probes_settled = 0;
  uint64_t late_replies = 0;        // after the probe's timeout, or of a forgotten probe
  uint64_t unknown_replies = 0;     // for a session or sequence never sent
  uint64_t refusals_untracked = 0;  // reflector refusals naming a session beyond the bound
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  uint64_t kernel_stamps_rejected = 0;
  uint64_t auth_failures = 0;
  uint64_t malformed_replies = 0;
  uint64_t reports = 0;
};

class WindowFolder final : public ProbeEventSink, public ReflectionSink {
 public:
  // The first window starts at (start, wall_start); `baseline` is the counters then.
  WindowFolder(WindowFolderConfig config, MonoTime start, WallTime wall_start, DatapathSnapshot baseline);
  ~WindowFolder() override;
  WindowFolder(const WindowFolder&) = delete;
  WindowFolder& operator=(const WindowFolder&) = delete;

  void OnSession(const SessionInfo& session) override;
  void OnSessionEnded(SessionId session) override;
  void OnProbeSent(const ProbeSent& sent) override;
  void OnProbeReply(const ProbeReply& reply) override;
  void OnReplyRejected(const std::string& node, DecodeProblem problem, MonoTime at) override;
  void OnProbeReflected(const ProbeReflected& reflected) override;
  void OnProbeRefused(const ProbeRefused& refused) override;

  // Ends the current window at `now` and starts the next; returns every report now
  // complete, oldest first, sequence numbers 1, 2, ... in order. Each passes ReportProblems().
  std::vector<v1::HealthReport> CloseWindow(MonoTime now, WallTime wall_now,
                                            const DatapathSnapshot& counters);
  // Ends the current window and returns all pending reports (shutdown).
  std::vector<v1::HealthReport> Drain(MonoTime now, WallTime wall_now, const DatapathSnapshot& counters);

  // An error in plain words for status.errors of the next report (bounded).
  void AddError(std::string error);
  // Reports dropped by the caller's buffer since start (status.reports_dropped).
  void SetReportsDropped(uint64_t dropped);

  size_t PendingWindows() const;
  const FolderCounters& counters() const { return counters_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  FolderCounters counters_;
};

}  // namespace regionpulse
