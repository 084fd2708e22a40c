// Agent registration and the stateful half of report acceptance.
#include "aggregator/agent_registry.h"

#include <arpa/inet.h>

#include <algorithm>
#include <tuple>

#include <google/protobuf/util/time_util.h>

namespace regionpulse {
namespace {

using google::protobuf::util::TimeUtil;

std::string JoinProblems(const std::vector<std::string>& problems) {
  std::string joined;
  for (const auto& problem : problems) {
    if (!joined.empty()) joined += "; ";
    joined += problem;
  }
  return joined;
}

bool IsIpLiteral(const std::string& address) {
  in6_addr buffer{};
  return inet_pton(AF_INET, address.c_str(), &buffer) == 1 ||
         inet_pton(AF_INET6, address.c_str(), &buffer) == 1;
}

std::string Milliseconds(std::chrono::nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

RejectCode RejectCodeOf(AcceptStatus status) {
  switch (status) {
    case AcceptStatus::kAccepted:
    case AcceptStatus::kDuplicate:
      return RejectCode::kOk;
    case AcceptStatus::kUnknownAgent:
      return RejectCode::kFailedPrecondition;
    case AcceptStatus::kInvalid:
    case AcceptStatus::kFutureWindow:
    case AcceptStatus::kSequenceBackwards:
      return RejectCode::kInvalidArgument;
  }
  return RejectCode::kInvalidArgument;
}

const char* AcceptStatusName(AcceptStatus status) {
  switch (status) {
    case AcceptStatus::kAccepted:
      return "accepted";
    case AcceptStatus::kDuplicate:
      return "duplicate";
    case AcceptStatus::kUnknownAgent:
      return "unknown agent";
    case AcceptStatus::kInvalid:
      return "invalid";
    case AcceptStatus::kFutureWindow:
      return "window in the future";
    case AcceptStatus::kSequenceBackwards:
      return "sequence backwards";
  }
  return "invalid";
}

namespace {

// A region name that is not configured; with no regions configured, none is unknown.
bool UnknownRegion(const std::string& name, const std::vector<RegionSpec>& regions) {
  return !regions.empty() &&
         std::none_of(regions.begin(), regions.end(), [&](const RegionSpec& r) { return r.name == name; });
}

}  // namespace

bool NamesUnknownRegion(const v1::HealthReport& report, const std::vector<RegionSpec>& regions) {
  if (regions.empty()) return false;
  for (const auto& path : report.paths()) {
    if (UnknownRegion(path.peer_region(), regions)) return true;
  }
  for (const auto& traffic : report.traffic()) {
    if (UnknownRegion(traffic.remote_region(), regions)) return true;
  }
  for (const auto& flow : report.flows()) {
    if (UnknownRegion(flow.remote_region(), regions)) return true;
  }
  return false;
}

DroppedRegionEntries DropUnknownRegionEntries(v1::HealthReport& report,
                                              const std::vector<RegionSpec>& regions) {
  DroppedRegionEntries dropped;
  if (regions.empty()) return dropped;
  auto unknown = [&](const std::string& name) { return UnknownRegion(name, regions); };
  auto drop = [&](auto* entries, auto region_of) {
    const int before = entries->size();
    for (int i = entries->size() - 1; i >= 0; --i) {
      if (unknown(region_of(entries->Get(i)))) entries->DeleteSubrange(i, 1);
    }
    return static_cast<size_t>(before - entries->size());
  };
  dropped.paths = drop(report.mutable_paths(), [](const v1::PathStats& p) { return p.peer_region(); });
  dropped.traffic =
      drop(report.mutable_traffic(), [](const v1::TrafficStats& t) { return t.remote_region(); });
  dropped.flows = drop(report.mutable_flows(), [](const v1::FlowStats& f) { return f.remote_region(); });
  return dropped;
}

const char* HelloRefusalLabel(HelloRefusal refusal) {
  switch (refusal) {
    case HelloRefusal::kNone:
      return "none";
    case HelloRefusal::kInvalid:
      return "invalid";
    case HelloRefusal::kUnknownRegion:
      return "unknown_region";
    case HelloRefusal::kEndpointOutsideRegion:
      return "endpoint_outside_region";
    case HelloRefusal::kDuplicateNode:
      return "duplicate_node";
    case HelloRefusal::kIdentityMismatch:
      return "identity_mismatch";
    case HelloRefusal::kTooManyAgents:
      return "too_many_agents";
  }
  return "invalid";
}

AgentRegistry::AgentRegistry(AgentRegistryConfig config) : config_(std::move(config)) {
  for (const auto& region : config_.regions) {
    auto& cidrs = region_cidrs_[region.name];
    // The configuration reader has checked every CIDR already; one that does not parse here
    // simply admits nothing.
    for (const auto& text : region.cidrs) {
      if (auto cidr = ParseCidr(text)) cidrs.push_back(*cidr);
    }
  }
}

std::string AgentRegistry::RegionProblem(const v1::Hello& hello) const {
  if (config_.regions.empty()) return {};
  const size_t max_name = config_.limits.max_name_length;
  const auto region = region_cidrs_.find(hello.region());
  if (region == region_cidrs_.end()) {
    std::string known;
    for (const auto& spec : config_.regions) known += (known.empty() ? "" : ", ") + spec.name;
    return "region '" + hello.region().substr(0, max_name) + "' is not a configured region (" + known + ")";
  }
  const std::string& address = hello.probe_endpoint().address();
  const bool ipv6 = address.find(':') != std::string::npos;
  const auto host = ParseCidr(address + (ipv6 ? "/128" : "/32"));
  if (host) {
    for (const auto& cidr : region->second) {
      if (cidr.Overlaps(*host)) return {};
    }
  }
  std::string ranges;
  for (const auto& cidr : region->second) ranges += (ranges.empty() ? "" : ", ") + cidr.text;
  return "probe_endpoint " + address + " is outside region " + hello.region() + "'s CIDRs (" + ranges + ")";
}

HelloResult AgentRegistry::Hello(const v1::Hello& hello, WallClock::time_point now, const std::string& peer) {
  HelloResult result;
  const size_t max_name = config_.limits.max_name_length;
  auto refuse = [&](std::string reason, HelloRefusal refusal = HelloRefusal::kInvalid) {
    result.refusal = refusal;
    result.reason = "hello from node '" + hello.node().substr(0, max_name) + "': " + std::move(reason);
    return result;
  };
  if (hello.node().empty()) return refuse("node is empty");
  // Sizes first: nothing below copies a field of a Hello that is too big to keep.
  if (const size_t bytes = hello.ByteSizeLong(); bytes > config_.max_hello_bytes) {
    result.limit = "hello_size";
    return refuse("Hello of " + std::to_string(bytes) + " bytes (limit " +
                  std::to_string(config_.max_hello_bytes) + ")");
  }
  if (static_cast<size_t>(hello.interfaces_size()) > config_.max_hello_interfaces) {
    result.limit = "hello_size";
    return refuse(std::to_string(hello.interfaces_size()) + " interfaces (limit " +
                  std::to_string(config_.max_hello_interfaces) + ")");
  }
  if (hello.agent_version().size() > max_name) {
    result.limit = "hello_size";
    return refuse("agent_version of " + std::to_string(hello.agent_version().size()) + " bytes (limit " +
                  std::to_string(max_name) + ")");
  }
  if (hello.region().empty()) return refuse("region is empty");
  for (const auto* field : {&hello.node(), &hello.region(), &hello.zone()}) {
    if (field->size() > max_name) {
      result.limit = "hello_size";
      return refuse("name of " + std::to_string(field->size()) + " bytes (limit " + std::to_string(max_name) +
                    ")");
    }
  }
  // Peers are planned to probe this address: without one the agent would be planned as a
  // target nobody can reach, and its silence would look like loss.
  if (hello.probe_endpoint().address().empty()) {
    return refuse("probe_endpoint has no address (set HOST_IP, or probe.listen_address to the node's IP)");
  }
  if (!IsIpLiteral(hello.probe_endpoint().address())) {
    return refuse("probe_endpoint address '" + hello.probe_endpoint().address().substr(0, max_name) +
                  "' is not an IPv4 or IPv6 address");
  }
  if (hello.probe_endpoint().port() == 0 || hello.probe_endpoint().port() > 65535) {
    return refuse("probe_endpoint port " + std::to_string(hello.probe_endpoint().port()) + " out of range");
  }
  // Checked before converting: a window past int64 nanoseconds must not wrap into range.
  const auto window = CheckedDuration(hello.window());
  if (!window) {
    return refuse("window (" + std::to_string(hello.window().seconds()) + " s, " +
                  std::to_string(hello.window().nanos()) + " ns) is not a valid duration");
  }
  if (*window < std::chrono::nanoseconds::zero() || *window > config_.limits.max_window) {
    return refuse("window " + Milliseconds(*window) + " out of range");
  }
  if (std::string problem = RegionProblem(hello); !problem.empty()) {
    const bool known_region = region_cidrs_.count(hello.region()) > 0;
    return refuse(problem,
                  known_region ? HelloRefusal::kEndpointOutsideRegion : HelloRefusal::kUnknownRegion);
  }
  // Two agents claiming one node would alternate its evidence; the second is refused while the
  // first stream is live. The same instance reconnecting replaces its own stream (the old one
  // is dead from the agent's side even if the server has not noticed yet), and a stream silent
  // past the not-reporting timeout is not live.
  if (const auto existing = agents_.find(hello.node());
      existing != agents_.end() && existing->second.current_session != 0 &&
      existing->second.instance_id != hello.instance_id() && Reporting(existing->second, now)) {
    return refuse("node already has a live stream from " +
                      (existing->second.session_peer.empty() ? std::string("an unknown peer")
                                                             : existing->second.session_peer) +
                      " (another agent instance); refused until that stream ends",
                  HelloRefusal::kDuplicateNode);
  }

  if (agents_.size() >= config_.max_agents && !agents_.contains(hello.node())) {
    result.limit = "agents";
    return refuse(std::to_string(agents_.size()) + " agents known already (limits.max_agents " +
                      std::to_string(config_.max_agents) +
                      "); a known node may reconnect, a new one waits until one is forgotten",
                  HelloRefusal::kTooManyAgents);
  }
  auto [it, first_hello] = agents_.try_emplace(hello.node());
  if (first_hello) by_node_.Invalidate();
  Agent& agent = it->second;
  if (first_hello || agent.identity.region != hello.region()) by_region_node_.Invalidate();
  if (agent.current_session != 0) sessions_.erase(agent.current_session);
  const bool new_instance = first_hello || agent.instance_id != hello.instance_id();
  agent.identity = {hello.node(), hello.region(), hello.zone()};
  agent.agent_version = hello.agent_version();
  agent.endpoint = {hello.probe_endpoint().address(), hello.probe_endpoint().port()};
  agent.capabilities = hello.capabilities();
  agent.interfaces.assign(hello.interfaces().begin(), hello.interfaces().end());
  agent.window = *window > std::chrono::nanoseconds::zero() ? *window : config_.default_window;
  if (new_instance) {
    agent.instance_id = hello.instance_id();
    agent.highest_sequence = 0;
    agent.late_windows = 0;
    agent.probes_refused_wrong_key = 0;
  }
  agent.registered_at = now;
  agent.current_session = next_session_++;
  agent.session_peer = peer;
  agent.session_last_sequence = 0;
  sessions_[agent.current_session] = hello.node();

  result.ok = true;
  result.session = agent.current_session;
  result.agent = agent.identity;
  result.highest_sequence = agent.highest_sequence;
  return result;
}

AcceptResult AgentRegistry::Accept(uint64_t session, const v1::HealthReport& report,
                                   WallClock::time_point now) {
  return Accept(session, report, ReportProblems(report, config_.limits), now);
}

AcceptResult AgentRegistry::Accept(uint64_t session, const v1::HealthReport& report,
                                   const std::vector<std::string>& problems, WallClock::time_point now) {
  AcceptResult result;
  const auto session_it = sessions_.find(session);
  if (session_it == sessions_.end()) {
    result.status = AcceptStatus::kUnknownAgent;
    result.reason = "report on a stream without a current Hello (session " + std::to_string(session) +
                    " unknown or replaced by a newer stream of the same node)";
    return result;
  }
  Agent& agent = agents_.at(session_it->second);
  result.agent = agent.identity;
  result.instance_id = agent.instance_id;
  result.highest_sequence = agent.highest_sequence;
  // Only refusals need it: built when one is made.
  const auto who = [&] {
    return "report " + std::to_string(report.sequence()) + " from " + agent.identity.node;
  };

  if (!problems.empty()) {
    result.status = AcceptStatus::kInvalid;
    result.reason = who() + ": " + JoinProblems(problems);
    return result;
  }
  const auto window_end = FromTimestamp(report.window_end());
  if (window_end > now + config_.clock_skew_allowance) {
    result.status = AcceptStatus::kFutureWindow;
    result.reason = who() + ": window_end " + TimeUtil::ToString(report.window_end()) + " is " +
                    Milliseconds(window_end - now) + " in the future (clock skew allowance " +
                    Milliseconds(config_.clock_skew_allowance) + ")";
    return result;
  }
  // Within one stream sequences only go up; a replay after a reconnect starts a new stream and
  // may repeat stored sequences, which are duplicates.
  if (report.sequence() < agent.session_last_sequence) {
    result.status = AcceptStatus::kSequenceBackwards;
    result.reason = who() + ": sequence went backwards on this stream (previous " +
                    std::to_string(agent.session_last_sequence) + ")";
    return result;
  }
  agent.session_last_sequence = report.sequence();
  if (report.sequence() <= agent.highest_sequence) {
    result.status = AcceptStatus::kDuplicate;
    return result;
  }
  agent.highest_sequence = report.sequence();
  agent.last_report_at = now;
  result.delay = now - window_end;
  result.late = result.delay >= config_.late_window_after;
  if (result.late) ++agent.late_windows;
  agent.probes_refused_wrong_key = report.status().probes_refused_wrong_key();
  agent.recent_delays[agent.delays_recorded++ % Agent::kRecentDelays] = result.delay;
  result.status = AcceptStatus::kAccepted;
  result.highest_sequence = agent.highest_sequence;
  return result;
}

void AgentRegistry::EndSession(uint64_t session) {
  const auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  if (auto agent = agents_.find(it->second);
      agent != agents_.end() && agent->second.current_session == session) {
    agent->second.current_session = 0;
    agent->second.session_peer.clear();
  }
  sessions_.erase(it);
}

std::optional<std::chrono::nanoseconds> AgentRegistry::Agent::ClockSkew() const {
  if (delays_recorded == 0) return std::nullopt;
  // The smallest recent delay: a replayed backlog arrives late without the clock being off.
  const size_t n = std::min(delays_recorded, kRecentDelays);
  return *std::min_element(recent_delays.begin(), recent_delays.begin() + static_cast<ptrdiff_t>(n));
}

std::chrono::nanoseconds AgentRegistry::NotReportingTimeout(const Agent& agent) const {
  return std::max<std::chrono::nanoseconds>(config_.not_reporting_timeout,
                                            agent.window * config_.not_reporting_windows);
}

WallClock::time_point AgentRegistry::LastHeard(const Agent& agent) const {
  return agent.last_report_at ? std::max(*agent.last_report_at, agent.registered_at) : agent.registered_at;
}

bool AgentRegistry::Reporting(const Agent& agent, WallClock::time_point now) const {
  // Before the first report the Hello counts: a fresh agent gets one timeout to send it.
  return now - LastHeard(agent) <= NotReportingTimeout(agent);
}

AgentPresence AgentRegistry::PresenceOf(const Agent& agent, WallClock::time_point now) const {
  return {agent.identity.node, agent.identity.region, agent.identity.zone,
          agent.endpoint,      Reporting(agent, now), LastHeard(agent)};
}

std::vector<v1::AgentInfo> AgentRegistry::List(WallClock::time_point now,
                                               const std::string& region_filter) const {
  if (!by_region_node_.valid) {
    by_region_node_.agents.clear();
    by_region_node_.agents.reserve(agents_.size());
    for (const auto& [node, agent] : agents_) by_region_node_.agents.push_back(&agent);
    std::sort(by_region_node_.agents.begin(), by_region_node_.agents.end(),
              [](const Agent* a, const Agent* b) {
                return std::tie(a->identity.region, a->identity.node) <
                       std::tie(b->identity.region, b->identity.node);
              });
    by_region_node_.valid = true;
  }
  std::vector<v1::AgentInfo> out;
  out.reserve(region_filter.empty() ? by_region_node_.agents.size() : 0);
  for (const Agent* listed : by_region_node_.agents) {
    const Agent& agent = *listed;
    if (!region_filter.empty() && agent.identity.region != region_filter) continue;
    v1::AgentInfo& info = out.emplace_back();
    info.set_node(agent.identity.node);
    info.set_region(agent.identity.region);
    info.set_zone(agent.identity.zone);
    info.set_agent_version(agent.agent_version);
    info.mutable_probe_endpoint()->set_address(agent.endpoint.address);
    info.mutable_probe_endpoint()->set_port(agent.endpoint.port);
    info.set_state(Reporting(agent, now) ? v1::AGENT_STATE_REPORTING : v1::AGENT_STATE_NOT_REPORTING);
    if (agent.last_report_at) *info.mutable_last_report_at() = ToTimestamp(*agent.last_report_at);
    info.set_last_sequence(agent.highest_sequence);
    for (const auto& interface : agent.interfaces) *info.add_interfaces() = interface;
    *info.mutable_capabilities() = agent.capabilities;
    info.set_late_windows(agent.late_windows);
    info.set_probes_refused_wrong_key(agent.probes_refused_wrong_key);
    if (auto skew = agent.ClockSkew()) *info.mutable_clock_skew() = ToDuration(*skew);
  }
  return out;
}

std::vector<AgentPresence> AgentRegistry::Presence(WallClock::time_point now) const {
  // The agents in node order change only when an agent is added or forgotten; sorting them
  // on every evaluation tick was a few milliseconds of it at 10,000 agents. (Pointers to
  // unordered_map elements stay valid until the element is erased.)
  if (!by_node_.valid) {
    by_node_.agents.clear();
    by_node_.agents.reserve(agents_.size());
    for (const auto& [node, agent] : agents_) by_node_.agents.push_back(&agent);
    std::sort(by_node_.agents.begin(), by_node_.agents.end(),
              [](const Agent* a, const Agent* b) { return a->identity.node < b->identity.node; });
    by_node_.valid = true;
  }
  std::vector<AgentPresence> out;
  out.reserve(by_node_.agents.size());
  for (const Agent* agent : by_node_.agents) out.push_back(PresenceOf(*agent, now));
  return out;
}

std::optional<AgentPresence> AgentRegistry::Find(const std::string& node, WallClock::time_point now) const {
  const auto it = agents_.find(node);
  if (it == agents_.end()) return std::nullopt;
  return PresenceOf(it->second, now);
}

bool AgentRegistry::IsReporting(const std::string& node, WallClock::time_point now) const {
  const auto it = agents_.find(node);
  return it != agents_.end() && Reporting(it->second, now);
}

std::vector<std::string> AgentRegistry::Expire(WallClock::time_point now) {
  std::vector<std::string> forgotten;
  for (auto it = agents_.begin(); it != agents_.end();) {
    // An agent with an open stream is never forgotten, however quiet.
    if (it->second.current_session == 0 && now - LastHeard(it->second) > config_.forget_after) {
      forgotten.push_back(it->first);
      it = agents_.erase(it);
      by_node_.Invalidate();
      by_region_node_.Invalidate();
    } else {
      ++it;
    }
  }
  std::sort(forgotten.begin(), forgotten.end());
  return forgotten;
}

}  // namespace regionpulse
