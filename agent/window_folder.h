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
// Loss per direction (RFC 8762 stateful reflector): the reflector numbers its replies per
// session, counting what it received. Between two answered probes a and b of a session
// (by sender sequence), s_b - s_a - 1 probes went unanswered and r_b - r_a - 1 of them
// reached the reflector (clamped to [0, gap]); those lost their reply on the way back, the
// rest were lost on the way out. Within a gap the first probes (by sequence) are taken as the
// ones that arrived: the split per window is then exact whenever a gap lies in one window,
// and the totals always are. Unanswered probes with no later answered probe by the time
// their window settles count as forward loss (there is no evidence the reflector saw them).
//
// Traffic and flows: deltas of the cumulative KernelDatapath counters between the snapshot
// at the window's start and at its end (a counter that went down restarted: its new value
// is the delta). Flow staleness: at window end, when data is outstanding and acknowledged
// bytes did not advance during the window, now - last progress (or - first time the folder
// saw the flow stalled, when it never progressed); 0 otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clocks.h"
#include "kernel_datapath.h"
#include "latency_histogram.h"
#include "probe_codec.h"
#include "probe_events.h"
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
};

// Counters over the folder's lifetime, for metrics.
struct FolderCounters {
  uint64_t probes_settled = 0;
  uint64_t late_replies = 0;     // after the probe's timeout, or of a forgotten probe
  uint64_t unknown_replies = 0;  // for a session or sequence never sent
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  uint64_t kernel_stamps_rejected = 0;
  uint64_t auth_failures = 0;
  uint64_t malformed_replies = 0;
  uint64_t reports = 0;
};

class WindowFolder final : public ProbeEventSink {
 public:
  // The first window starts at (start, wall_start); `baseline` is the counters then.
  WindowFolder(WindowFolderConfig config, MonoTime start, WallTime wall_start, DatapathSnapshot baseline);
  ~WindowFolder() override;
  WindowFolder(const WindowFolder&) = delete;
  WindowFolder& operator=(const WindowFolder&) = delete;

  void OnProbeSent(const ProbeSent& sent) override;
  void OnProbeReply(const ProbeReply& reply) override;
  void OnReplyRejected(const std::string& node, DecodeProblem problem, MonoTime at) override;

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
