// The verdict rules: per-region assessment from one evidence snapshot, then hysteresis over
// time, then the action for the active region.
#include "aggregator/verdict_engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace regionpulse {
namespace {

using std::chrono::nanoseconds;

std::string Seconds(nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

std::string Percent(double ratio) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f%%", ratio * 100.0);
  return buffer;
}

std::string Millis(nanoseconds d) {
  char buffer[32];
  const double ms = static_cast<double>(d.count()) / 1e6;
  std::snprintf(buffer, sizeof buffer, ms < 10.0 ? "%.2f ms" : "%.0f ms", ms);
  return buffer;
}

// "a", "a and b", "a, b and c".
std::string JoinWords(const std::vector<std::string>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() ? " and " : ", ";
    out += words[i];
  }
  return out;
}

std::string Plural(size_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// What one evidence snapshot says about one region, before hysteresis.
struct Assessment {
  v1::RegionState state = v1::REGION_STATE_UNKNOWN;
  std::string reason;
  // "; 2/4 agents of us-east-1 not reporting", or empty.
  std::string agents_note;
  std::string Why() const { return reason + agents_note; }
  uint32_t observers_reporting = 0;  // observers elsewhere that probed it
  uint32_t healthy_observers = 0;
  uint32_t isolated_observers = 0;
  uint32_t observers_lost = 0;      // healthy observers that lost (nearly) every probe
  uint32_t observers_agreeing = 0;  // observers whose view supports `state`
  std::vector<std::string> lost_observer_regions;
  double loss = 0.0;
  std::optional<nanoseconds> p50;
  std::optional<nanoseconds> p99;
  nanoseconds replication_staleness{0};
  RegionAgents agents;
};

bool Reached(const ObserverView& observer, const std::string& region, const RegionThresholds& thresholds) {
  const auto it = observer.to_region.find(region);
  return it != observer.to_region.end() && it->second.sent > 0 &&
         ClassifyObservation(thresholds, it->second.Loss()) != v1::REGION_STATE_UNREACHABLE;
}

// An observer is evidence about `target` only when it reaches some third place: a region that
// is neither its own nor the target. Otherwise it may be the one cut off.
bool HealthyObserver(const ObserverView& observer, const std::string& target,
                     const RegionThresholds& thresholds) {
  for (const auto& [region, counts] : observer.to_region) {
    if (region == observer.region || region == target) continue;
    if (Reached(observer, region, thresholds)) return true;
  }
  return false;
}

Assessment AssessProbes(const RegionThresholds& thresholds, const VerdictEvidence& evidence,
                        const std::string& region) {
  Assessment a;
  if (auto it = evidence.agents.find(region); it != evidence.agents.end()) a.agents = it->second;
  if (auto it = evidence.latency_into.find(region); it != evidence.latency_into.end()) {
    a.p50 = it->second.p50;
    a.p99 = it->second.p99;
  }
  const PassiveSignals passive = [&] {
    const auto it = evidence.passive.find(region);
    return it == evidence.passive.end() ? PassiveSignals{} : it->second;
  }();

  struct RegionTally {
    uint32_t healthy = 0;
    uint32_t reaching = 0;
  };
  std::map<std::string, RegionTally> by_region;
  std::set<std::string> lost_regions;
  uint64_t sent = 0;
  uint64_t reverse = 0;
  uint32_t over_loss_threshold = 0;
  bool lost_nearly_all = false;  // some "lost" observer still got a reply or two
  for (const ObserverView& observer : evidence.observers) {
    if (observer.region == region) continue;
    const auto it = observer.to_region.find(region);
    if (it == observer.to_region.end() || it->second.sent == 0) continue;
    ++a.observers_reporting;
    const ProbeCounts& counts = it->second;
    const v1::RegionState seen = ClassifyObservation(thresholds, counts.Loss());
    const bool lost = seen == v1::REGION_STATE_UNREACHABLE;
    // Reaching the region is evidence by itself; failing to is evidence only from an observer
    // that is itself connected.
    if (lost && !HealthyObserver(observer, region, thresholds)) {
      ++a.isolated_observers;
      continue;
    }
    ++a.healthy_observers;
    sent += counts.sent;
    reverse += counts.received_reverse;
    RegionTally& tally = by_region[observer.region];
    ++tally.healthy;
    if (lost) {
      ++a.observers_lost;
      if (counts.received_reverse > 0) lost_nearly_all = true;
      lost_regions.insert(observer.region);
    } else {
      ++tally.reaching;
      if (seen == v1::REGION_STATE_DEGRADED) ++over_loss_threshold;
    }
  }
  a.lost_observer_regions.assign(lost_regions.begin(), lost_regions.end());
  a.loss = LossRatio(sent, reverse);

  const std::string isolated_note =
      a.isolated_observers == 0
          ? ""
          : "; " + Plural(a.isolated_observers, "isolated observer") + " (reaching no other region) ignored";

  if (a.healthy_observers == 0) {
    a.state = v1::REGION_STATE_UNKNOWN;
    a.reason = a.observers_reporting == 0 ? "no observer in another region probed " + region
                                          : "no healthy observer of " + region + isolated_note;
    return a;
  }

  const std::string lost_phrase =
      std::to_string(a.observers_lost) + "/" + std::to_string(a.healthy_observers) + " observers" +
      (a.lost_observer_regions.empty() ? "" : " in " + JoinWords(a.lost_observer_regions)) +
      (lost_nearly_all ? " lost " + Percent(thresholds.unreachable_loss) + " or more of their probes to "
                       : " lost every probe to ") +
      region;
  const bool quorum = static_cast<double>(a.observers_lost) >
                          thresholds.quorum_fraction * static_cast<double>(a.healthy_observers) &&
                      a.observers_lost >= thresholds.min_observer_nodes;
  if (quorum) {
    std::vector<std::string> still_reaching;
    for (const auto& [observer_region, tally] : by_region) {
      if (tally.reaching * 2 > tally.healthy) still_reaching.push_back(observer_region);
    }
    if (!still_reaching.empty()) {
      // A link between two regions is down, not the region: somebody else still gets there.
      a.state = v1::REGION_STATE_DEGRADED;
      a.observers_agreeing = a.observers_lost;
      a.reason =
          lost_phrase + ", but observers in " + JoinWords(still_reaching) + " still reach it" + isolated_note;
      return a;
    }
    if (passive.Alive()) {
      std::string alive =
          "traffic from " + region + " still arrives at " + Plural(passive.nodes_receiving, "node");
      if (passive.flows_progressing > 0) {
        alive += " and " + Plural(passive.flows_progressing, "replication flow") + " to it still progress";
      }
      a.observers_agreeing = a.observers_lost;
      if (a.agents.reporting == 0 && a.agents.not_reporting > 0) {
        // Our responders are gone, the region is not: the monitoring must not fail it over.
        a.state = v1::REGION_STATE_UNKNOWN;
        a.reason = "agents not reporting in " + region + " (0/" + std::to_string(a.agents.not_reporting) +
                   "): " + lost_phrase + ", but " + alive;
      } else {
        a.state = v1::REGION_STATE_DEGRADED;
        a.reason = lost_phrase + ", but " + alive;
      }
      return a;
    }
    a.state = v1::REGION_STATE_UNREACHABLE;
    a.observers_agreeing = a.observers_lost;
    a.reason = lost_phrase + isolated_note;
    return a;
  }
  if (a.observers_lost > 0) {
    a.state = v1::REGION_STATE_DEGRADED;
    a.observers_agreeing = a.observers_lost;
    a.reason = lost_phrase + " (no quorum: need more than " + Percent(thresholds.quorum_fraction) +
               " and at least " + std::to_string(thresholds.min_observer_nodes) + ")" + isolated_note;
    return a;
  }
  // No healthy observer lost the region: the thresholds on the loss merged over them (never
  // UNREACHABLE here: each of them had less loss than that), then on the RTT into the region.
  if (ClassifyObservation(thresholds, a.loss) != v1::REGION_STATE_HEALTHY) {
    a.state = v1::REGION_STATE_DEGRADED;
    a.observers_agreeing = over_loss_threshold;
    a.reason = region + " degraded: probe loss " + Percent(a.loss) + " (threshold " +
               Percent(thresholds.degraded_loss) + ") seen by " + std::to_string(a.healthy_observers) +
               " observers";
    return a;
  }
  if (ClassifyObservation(thresholds, a.loss, a.p99) != v1::REGION_STATE_HEALTHY) {
    a.state = v1::REGION_STATE_DEGRADED;
    a.observers_agreeing = a.healthy_observers;
    a.reason = region + " degraded: RTT p99 " + Millis(*a.p99) + " (threshold " +
               Millis(thresholds.degraded_rtt_p99) + ")";
    return a;
  }
  a.state = v1::REGION_STATE_HEALTHY;
  a.observers_agreeing = a.healthy_observers;
  a.reason = region + " healthy: " + std::to_string(a.healthy_observers) + "/" +
             std::to_string(a.healthy_observers) + " observers reach it, loss " + Percent(a.loss) +
             (a.p99 ? ", RTT p99 " + Millis(*a.p99) : "") + isolated_note;
  return a;
}

// The probe assessment, plus the region's silent agents when some are: lost probes to them
// are expected, and an operator wants to know.
Assessment Assess(const VerdictEngineConfig& config, const VerdictEvidence& evidence,
                  const std::string& region) {
  Assessment a = AssessProbes(config.thresholds, evidence, region);
  if (a.agents.not_reporting > 0 && a.reason.find("agents not reporting") == std::string::npos) {
    a.agents_note = "; " + std::to_string(a.agents.not_reporting) + "/" +
                    std::to_string(a.agents.reporting + a.agents.not_reporting) + " agents of " + region +
                    " not reporting";
  }
  return a;
}

int SeverityOf(v1::RegionState state) {
  switch (state) {
    case v1::REGION_STATE_DEGRADED:
      return 1;
    case v1::REGION_STATE_UNREACHABLE:
      return 2;
    default:
      return 0;
  }
}

v1::RegionState StateOfSeverity(int severity) {
  switch (severity) {
    case 1:
      return v1::REGION_STATE_DEGRADED;
    case 2:
      return v1::REGION_STATE_UNREACHABLE;
    default:
      return v1::REGION_STATE_HEALTHY;
  }
}

}  // namespace

VerdictEngine::VerdictEngine(VerdictEngineConfig config) : config_(std::move(config)) {
  current_.set_action(v1::ACTION_HOLD);
  current_.set_active_region(config_.active_region);
  current_.set_aggregator_region(config_.own_region);
}

void VerdictEngine::Reconfigure(VerdictEngineConfig config) {
  if (config.active_region != config_.active_region) {
    failover_latched_ = false;
    failover_target_.clear();
    advice_target_.clear();
  }
  config_ = std::move(config);
}

VerdictEvaluation VerdictEngine::Evaluate(const VerdictEvidence& evidence, WallClock::time_point now) {
  std::set<std::string> region_set(config_.regions.begin(), config_.regions.end());
  region_set.insert(evidence.regions.begin(), evidence.regions.end());
  if (!config_.active_region.empty()) region_set.insert(config_.active_region);
  const std::vector<std::string> regions(region_set.begin(), region_set.end());

  if (!first_data_at_ && !evidence.observers.empty()) first_data_at_ = now;

  // Replication per region it flows to.
  std::map<std::string, std::vector<const ReplicationEvidence*>> replication_to;
  for (const auto& flow : evidence.replication) replication_to[flow.remote_region].push_back(&flow);
  auto at_risk = [&](const ReplicationEvidence& flow) {
    return ReplicationAtRisk(config_.thresholds, flow.staleness, flow.rate_bps, flow.expected_min_rate_bps);
  };

  // 1. Assess every region from this snapshot, then apply hysteresis.
  std::map<std::string, Assessment> assessments;
  for (const auto& region : regions) {
    Assessment a = Assess(config_, evidence, region);
    for (const auto* flow : replication_to[region])
      a.replication_staleness = std::max(a.replication_staleness, flow->staleness);
    RegionHistory& h = history_[region];
    if (a.state != v1::REGION_STATE_UNKNOWN) {
      const int severity = SeverityOf(a.state);
      for (int s = 0; s < kSeverityCount; ++s) {
        if (severity >= s) {
          h.below_since[s].reset();
          h.ever_at[s] = true;
        } else if (h.ever_at[s] && !h.below_since[s]) {
          h.below_since[s] = now;
        }
      }
    }
    if (a.state == v1::REGION_STATE_UNREACHABLE) {
      if (!h.raw_unreachable_since) h.raw_unreachable_since = now;
    } else {
      h.raw_unreachable_since.reset();
    }
    v1::RegionState reported = v1::REGION_STATE_UNKNOWN;
    if (a.state != v1::REGION_STATE_UNKNOWN) {
      // Worse at once; better only once the better state held for the dwell.
      int severity = 0;
      for (int s = kSeverityCount - 1; s > 0; --s) {
        const bool held = h.ever_at[s] && (!h.below_since[s] || now - *h.below_since[s] < config_.dwell);
        if (held) {
          severity = s;
          break;
        }
      }
      reported = StateOfSeverity(std::max(severity, SeverityOf(a.state)));
    }
    if (reported != h.state || h.since == WallClock::time_point{}) {
      h.since = now;
      h.state = reported;
    }
    assessments.emplace(region, std::move(a));
  }

  // 2. The action for the active region.
  std::vector<std::string> reasons;
  v1::Action action = v1::ACTION_HOLD;
  std::string target;

  auto pick_target = [&](const std::string& sticky) -> std::string {
    auto eligible = [&](const std::string& region) {
      if (region == config_.active_region) return false;
      const auto state = history_[region].state;
      return state == v1::REGION_STATE_HEALTHY || state == v1::REGION_STATE_DEGRADED;
    };
    if (!sticky.empty() && region_set.count(sticky) && eligible(sticky)) return sticky;
    std::string best;
    auto rank = [&](const std::string& region) {
      return std::make_pair(history_[region].state == v1::REGION_STATE_HEALTHY ? 0 : 1,
                            assessments[region].replication_staleness);
    };
    for (const auto& region : regions) {
      if (!eligible(region)) continue;
      if (best.empty() || rank(region) < rank(best)) best = region;
    }
    return best;
  };
  auto target_reason = [&](const std::string& region) {
    return "target " + region + ": " + RegionStateName(history_[region].state) + ", replication staleness " +
           Seconds(assessments[region].replication_staleness);
  };

  const std::string& active = config_.active_region;
  bool active_explained = false;
  uint32_t elsewhere_total = 0;
  uint32_t elsewhere_reporting = 0;
  for (const auto& [region, agents] : evidence.agents) {
    if (region == config_.own_region) continue;
    elsewhere_total += agents.reporting + agents.not_reporting;
    elsewhere_reporting += agents.reporting;
  }
  const bool others_known = std::any_of(regions.begin(), regions.end(),
                                        [&](const std::string& r) { return r != config_.own_region; });
  const bool own_isolated = !config_.own_region.empty() && others_known && elsewhere_reporting == 0;

  if (regions.empty()) {
    reasons.push_back("no regions known (no configuration and no agents)");
  } else if (active.empty()) {
    reasons.push_back("no active region configured");
  } else if (!first_data_at_ || now - *first_data_at_ < config_.hold) {
    reasons.push_back(first_data_at_
                          ? "aggregator has " + Seconds(now - *first_data_at_) +
                                " of data; HOLD until it has the hold time of " + Seconds(config_.hold)
                          : "aggregator has no probe data yet; HOLD until it has the hold time of " +
                                Seconds(config_.hold));
  } else if (own_isolated) {
    reasons.push_back("aggregator's region " + config_.own_region + " hears from no other region (" +
                      std::to_string(elsewhere_reporting) + "/" + std::to_string(elsewhere_total) +
                      " agents elsewhere reporting): cannot tell an outage from our own isolation");
  } else {
    active_explained = true;
    RegionHistory& h = history_[active];
    const Assessment& a = assessments[active];
    if (h.state == v1::REGION_STATE_HEALTHY || h.state == v1::REGION_STATE_DEGRADED) {
      failover_latched_ = false;
      failover_target_.clear();
    }
    if (h.raw_unreachable_since && now - *h.raw_unreachable_since >= config_.hold) failover_latched_ = true;

    if (failover_latched_) {
      target = pick_target(failover_target_);
      if (target.empty()) {
        reasons.push_back(
            active + " is unreachable but no other region is healthy or degraded: nowhere to fail over to");
      } else {
        failover_target_ = target;
        action = v1::ACTION_FAILOVER;
        if (h.raw_unreachable_since) {
          reasons.push_back(a.reason + " for " + Seconds(now - *h.raw_unreachable_since) + a.agents_note);
        } else {
          const auto recovering = h.below_since[kUnreachable];
          reasons.push_back(active + " failed over; " +
                            (recovering ? "recovering for " + Seconds(now - *recovering) + " of the " +
                                              Seconds(config_.dwell) + " dwell"
                                        : "no evidence of recovery yet") +
                            " (" + a.Why() + ")");
        }
        reasons.push_back(target_reason(target));
      }
    } else {
      switch (h.state) {
        case v1::REGION_STATE_HEALTHY:
          action = v1::ACTION_STAY;
          reasons.push_back(a.Why());
          break;
        case v1::REGION_STATE_DEGRADED:
          action = v1::ACTION_STAY;
          reasons.push_back(a.state == v1::REGION_STATE_DEGRADED
                                ? a.Why()
                                : active + " degraded within the last " + Seconds(config_.dwell) +
                                      "; now: " + a.Why());
          target = pick_target(advice_target_);
          advice_target_ = target;
          if (!target.empty()) reasons.push_back("advice if it worsens: " + target_reason(target));
          break;
        case v1::REGION_STATE_UNREACHABLE:
          if (h.raw_unreachable_since) {
            reasons.push_back(a.reason + " for " + Seconds(now - *h.raw_unreachable_since) + a.agents_note +
                              "; FAILOVER after " + Seconds(config_.hold));
          } else {
            const auto better = h.below_since[kUnreachable];
            reasons.push_back(active + " was unreachable " +
                              (better ? Seconds(now - *better) + " ago" : "recently") +
                              " and must stay reachable for " + Seconds(config_.dwell) +
                              " before STAY; never unreachable for the hold time of " +
                              Seconds(config_.hold) + "; now: " + a.Why());
          }
          break;
        default:
          reasons.push_back("too little evidence about " + active + ": " + a.Why());
          break;
      }
    }
  }

  // Other regions' trouble (and the active region's, when the action did not explain it) and
  // replication at risk, for the people reading the verdict.
  for (const auto& region : regions) {
    if (region == active && active_explained) continue;
    const auto state = history_[region].state;
    if (state == v1::REGION_STATE_DEGRADED || state == v1::REGION_STATE_UNREACHABLE) {
      const Assessment& a = assessments[region];
      reasons.push_back(region + " " + RegionStateName(state) + ": " +
                        (a.state == state
                             ? a.Why()
                             : "held for the " + Seconds(config_.dwell) + " dwell; now: " + a.Why()));
    }
  }
  for (const auto& flow : evidence.replication) {
    if (!at_risk(flow)) continue;
    std::string why = flow.staleness >= config_.thresholds.replication_staleness
                          ? "stale for " + Seconds(flow.staleness) + " (threshold " +
                                Seconds(config_.thresholds.replication_staleness) + ")"
                          : "at " + std::to_string(flow.rate_bps) + " B/s, below its minimum " +
                                std::to_string(flow.expected_min_rate_bps) + " B/s";
    reasons.push_back("replication " + flow.name + " " + flow.source_region + " -> " + flow.remote_region +
                      " " + why);
  }

  // 3. The verdict message, and what changed since the last one.
  v1::Verdict verdict;
  *verdict.mutable_computed_at() = ToTimestamp(now);
  verdict.set_active_region(active);
  verdict.set_action(action);
  verdict.set_target_region(target);
  verdict.set_aggregator_region(config_.own_region);
  for (const auto& region : regions) {
    const RegionHistory& h = history_[region];
    const Assessment& a = assessments[region];
    v1::RegionHealth* health = verdict.add_regions();
    health->set_region(region);
    health->set_state(h.state);
    *health->mutable_since() = ToTimestamp(h.since);
    health->set_observers_agreeing(h.state == a.state ? a.observers_agreeing : 0);
    health->set_observers_reporting(a.observers_reporting);
    health->set_loss(a.loss);
    if (a.p50) *health->mutable_rtt_p50() = ToDuration(*a.p50);
    if (a.p99) *health->mutable_rtt_p99() = ToDuration(*a.p99);
    *health->mutable_replication_staleness() = ToDuration(a.replication_staleness);
    health->set_agents_reporting(a.agents.reporting);
    health->set_agents_not_reporting(a.agents.not_reporting);
    for (const auto* flow : replication_to[region]) {
      v1::ReplicationHealth* r = health->add_replication();
      r->set_name(flow->name);
      r->set_remote_region(flow->remote_region);
      *r->mutable_staleness() = ToDuration(flow->staleness);
      r->set_rate_bps(flow->rate_bps);
      r->set_expected_min_rate_bps(flow->expected_min_rate_bps);
      r->set_at_risk(at_risk(*flow));
    }
  }
  for (auto& reason : reasons) verdict.add_reasons(std::move(reason));

  VerdictEvaluation evaluation;
  evaluation.previous_action = current_.generation() == 0 ? v1::ACTION_UNSPECIFIED : current_.action();
  if (current_.generation() == 0) evaluation.changes.push_back("first verdict");
  if (current_.action() != action) {
    evaluation.changes.push_back(std::string("action: ") + ActionName(current_.action()) + " -> " +
                                 ActionName(action));
  }
  if (current_.target_region() != target) {
    evaluation.changes.push_back("target: '" + current_.target_region() + "' -> '" + target + "'");
  }
  std::map<std::string, v1::RegionState> before;
  for (const auto& health : current_.regions()) before[health.region()] = health.state();
  for (const auto& health : verdict.regions()) {
    const auto it = before.find(health.region());
    const v1::RegionState previous = it == before.end() ? v1::REGION_STATE_UNSPECIFIED : it->second;
    if (previous != health.state()) {
      evaluation.changes.push_back(health.region() + ": " + RegionStateName(previous) + " -> " +
                                   RegionStateName(health.state()));
    }
    before.erase(health.region());
  }
  for (const auto& [region, state] : before) evaluation.changes.push_back(region + ": no longer known");
  evaluation.changed = !evaluation.changes.empty();
  verdict.set_generation(current_.generation() + (evaluation.changed ? 1 : 0));
  current_ = verdict;
  evaluation.verdict = std::move(verdict);
  return evaluation;
}

}  // namespace regionpulse
