// AgentRegistry: which agents have said Hello, whether their reports are acceptable, and
// whether they are still reporting. Pure state: time is passed in, nothing is read or sent.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clocks.h"
#include "common/config_text.h"
#include "common/proto_convert.h"
#include "common/region_list.h"
#include "common/report_validation.h"
#include "regionpulse/v1/ingest.pb.h"
#include "regionpulse/v1/query.pb.h"

namespace regionpulse {

// Who sent a report: what the matrix needs to file it.
struct AgentIdentity {
  std::string node;
  std::string region;
  std::string zone;
};

// Where an agent's STAMP reflector listens.
struct ReflectorEndpoint {
  std::string address;
  uint32_t port = 0;
};

// An agent and whether its reports arrive, as the verdict and the probe planner see it.
struct AgentPresence {
  std::string node;
  std::string region;
  std::string zone;
  ReflectorEndpoint endpoint;
  // False once no report arrived for not_reporting_windows windows: that is evidence too.
  bool reporting = false;
  // When the last report arrived (or Hello, before the first report).
  WallClock::time_point last_heard;
};

struct AgentRegistryConfig {
  // Stateless limits (size, counts, window length) applied to every report.
  ReportLimits limits;
  // A report whose window ends later than now + this is refused: the agent's clock is ahead.
  std::chrono::milliseconds clock_skew_allowance{5'000};
  // A report stored this long or longer after its window ended is late (counted per agent).
  std::chrono::milliseconds late_window_after{10'000};
  // An agent is NOT_REPORTING after no report for the longer of this timeout and
  // not_reporting_windows of its own windows (Hello.window), so a slow window never flaps.
  std::chrono::milliseconds not_reporting_timeout{10'000};
  uint32_t not_reporting_windows = 5;
  // Window length assumed when Hello does not state one.
  std::chrono::milliseconds default_window{1'000};
  // Agents silent this long are forgotten by Expire() (a node deleted from the cluster).
  std::chrono::hours forget_after{24};
  // The configured regions: a Hello from any other region is refused, and so is one whose
  // probe endpoint lies outside its region's CIDRs. Empty: every region is accepted (nothing
  // is configured, so the verdict is HOLD anyway).
  std::vector<RegionSpec> regions;
  // Agents known at once: a Hello from one more node is refused (a node already known may
  // always say Hello again). Each costs its Hello's fields and a place in every plan.
  size_t max_agents = 20'000;
  // A Hello's size as serialized, and its attached interfaces: what one agent stores here.
  size_t max_hello_bytes = 64 * 1024;
  size_t max_hello_interfaces = 256;
};

// Why a Hello was refused; the service picks the gRPC status by it and the metrics count it.
enum class HelloRefusal {
  kNone,
  // Malformed (empty node, bad endpoint, window out of range).
  kInvalid,
  // The region is not among the configured regions.
  kUnknownRegion,
  // The probe endpoint is not inside the region's CIDRs.
  kEndpointOutsideRegion,
  // Another instance of the node holds a live stream.
  kDuplicateNode,
  // The Hello claims another node or region than the client certificate (checked by the
  // aggregator, not the registry).
  kIdentityMismatch,
  // A new node while limits.max_agents are known: there may be room later.
  kTooManyAgents,
};
// "invalid", "unknown_region", ...: metric label values.
const char* HelloRefusalLabel(HelloRefusal refusal);

// Outcome of Hello.
struct HelloResult {
  bool ok = false;
  // Why Hello was refused, in a word and in plain text.
  HelloRefusal refusal = HelloRefusal::kNone;
  std::string reason;
  // Identifies this stream's registration; Accept() takes it back. A newer Hello from the
  // same instance supersedes its older session (a reconnect the old stream has not noticed);
  // another instance is refused while the session is live.
  uint64_t session = 0;
  AgentIdentity agent;
  // Highest stored sequence of this instance (reports up to it are already stored; the
  // service may Ack it at once so the agent can drop its replay buffer).
  uint64_t highest_sequence = 0;
  // The cap that refused it ("agents", "hello_size"), for the limit metric; null otherwise.
  const char* limit = nullptr;
};

enum class AcceptStatus {
  // New report: store it in the matrix and Ack.
  kAccepted,
  // Already stored (replay after a reconnect): Ack it, store nothing. Harmless.
  kDuplicate,
  // No Hello on this session, or a newer stream of the same node replaced it.
  kUnknownAgent,
  // Fails the stateless checks (ReportProblems), including the size limits.
  kInvalid,
  // window_end lies in the future beyond the clock-skew allowance.
  kFutureWindow,
  // Lower sequence than one already sent on this stream.
  kSequenceBackwards,
};

// The gRPC status a service should answer a refused report with.
enum class RejectCode { kOk, kInvalidArgument, kFailedPrecondition };
RejectCode RejectCodeOf(AcceptStatus status);
// "accepted", "duplicate", "unknown agent", ...: for logs and metrics labels.
const char* AcceptStatusName(AcceptStatus status);

struct AcceptResult {
  AcceptStatus status = AcceptStatus::kUnknownAgent;
  // Why the report was refused, in plain words naming the field; empty when accepted.
  std::string reason;
  // The sender (valid for kAccepted and kDuplicate).
  AgentIdentity agent;
  // What to Ack: every report of instance_id with sequence <= highest_sequence is stored.
  uint64_t instance_id = 0;
  uint64_t highest_sequence = 0;
  // kAccepted only: stored late_window_after or more after its window ended.
  bool late = false;
  // kAccepted only: receive time - window end of this report.
  std::chrono::nanoseconds delay{0};

  bool stored_now() const { return status == AcceptStatus::kAccepted; }
  bool acknowledged() const {
    return status == AcceptStatus::kAccepted || status == AcceptStatus::kDuplicate;
  }
};

// What DropUnknownRegionEntries removed from a report, by kind.
struct DroppedRegionEntries {
  size_t paths = 0;
  size_t traffic = 0;
  size_t flows = 0;
  size_t total() const { return paths + traffic + flows; }
};

// Removes the report's paths, traffic and flows that name a region not in `regions` (a region
// that does not exist can neither hold up nor receive a FAILOVER). Keeps everything when
// `regions` is empty.
DroppedRegionEntries DropUnknownRegionEntries(v1::HealthReport& report,
                                              const std::vector<RegionSpec>& regions);
// Whether DropUnknownRegionEntries would remove anything.
bool NamesUnknownRegion(const v1::HealthReport& report, const std::vector<RegionSpec>& regions);

// Not thread-safe: the caller serialises calls (one mutex in the service is enough; every
// call is O(1) or O(report size), List/Presence are O(agents)).
class AgentRegistry {
 public:
  explicit AgentRegistry(AgentRegistryConfig config = {});

  // Registers (or re-registers) the agent. A new instance_id restarts its sequence numbers.
  // `peer` (the stream's address) names the holder of a live session when another instance
  // of the node is refused.
  HelloResult Hello(const v1::Hello& hello, WallClock::time_point now, const std::string& peer = {});
  // Stateful and stateless checks of one report on the session Hello returned.
  AcceptResult Accept(uint64_t session, const v1::HealthReport& report, WallClock::time_point now);
  // The same with the stateless checks already done: `problems` is what ReportProblems(report,
  // config().limits) found. The aggregator runs those outside its core lock.
  AcceptResult Accept(uint64_t session, const v1::HealthReport& report,
                      const std::vector<std::string>& problems, WallClock::time_point now);
  // The stream of this session ended; the agent stays known (its silence is evidence).
  void EndSession(uint64_t session);

  // Every known agent, reporting or not, as Query.ListAgents shows it (plan_version unset).
  std::vector<v1::AgentInfo> List(WallClock::time_point now, const std::string& region_filter = {}) const;
  // Every known agent's presence, for the matrix's verdict evidence and the probe planner.
  std::vector<AgentPresence> Presence(WallClock::time_point now) const;
  std::optional<AgentPresence> Find(const std::string& node, WallClock::time_point now) const;
  bool IsReporting(const std::string& node, WallClock::time_point now) const;

  // Forgets agents silent for forget_after; returns their node names (so the matrix and
  // planner can drop them too).
  std::vector<std::string> Expire(WallClock::time_point now);

  size_t size() const { return agents_.size(); }
  const AgentRegistryConfig& config() const { return config_; }

 private:
  struct Agent {
    AgentIdentity identity;
    std::string agent_version;
    ReflectorEndpoint endpoint;
    v1::Capabilities capabilities;
    std::vector<v1::AttachedInterface> interfaces;
    std::chrono::nanoseconds window{0};
    uint64_t instance_id = 0;
    uint64_t highest_sequence = 0;  // highest stored report of instance_id
    uint64_t current_session = 0;
    std::string session_peer;            // address of current_session's stream
    uint64_t session_last_sequence = 0;  // last sequence seen on current_session
    WallClock::time_point registered_at;
    std::optional<WallClock::time_point> last_report_at;
    uint64_t late_windows = 0;              // of instance_id
    uint64_t probes_refused_wrong_key = 0;  // from the newest report
    // receive time - window end of the last kRecentDelays stored reports, oldest overwritten.
    static constexpr size_t kRecentDelays = 16;
    std::array<std::chrono::nanoseconds, kRecentDelays> recent_delays{};
    size_t delays_recorded = 0;
    std::optional<std::chrono::nanoseconds> ClockSkew() const;
  };

  std::chrono::nanoseconds NotReportingTimeout(const Agent& agent) const;
  bool Reporting(const Agent& agent, WallClock::time_point now) const;
  WallClock::time_point LastHeard(const Agent& agent) const;
  AgentPresence PresenceOf(const Agent& agent, WallClock::time_point now) const;

  // Why the Hello's region or endpoint is not acceptable; empty when it is.
  std::string RegionProblem(const v1::Hello& hello) const;

  AgentRegistryConfig config_;
  // config_.regions' CIDRs, parsed once, by region name.
  std::unordered_map<std::string, std::vector<Cidr>> region_cidrs_;
  std::unordered_map<std::string, Agent> agents_;       // by node name
  std::unordered_map<uint64_t, std::string> sessions_;  // session -> node

  // agents_ in node order, for Presence(); rebuilt after an agent was added or forgotten.
  // Points into agents_, so a copied or moved registry starts without it.
  struct AgentsByNode {
    AgentsByNode() = default;
    AgentsByNode(const AgentsByNode&) {}
    AgentsByNode& operator=(const AgentsByNode&) {
      Invalidate();
      return *this;
    }
    void Invalidate() {
      agents.clear();
      valid = false;
    }
    std::vector<const Agent*> agents;
    bool valid = false;
  };
  mutable AgentsByNode by_node_;
  // agents_ in (region, node) order, for List(); rebuilt after an agent was added, forgotten
  // or said Hello from another region (sorting the AgentInfo copies was a third of List at
  // 10,000 agents, in the query snapshot, under the aggregator's core lock).
  mutable AgentsByNode by_region_node_;
  uint64_t next_session_ = 1;
};

}  // namespace regionpulse
