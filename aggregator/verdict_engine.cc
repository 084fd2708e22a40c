// The verdict rules as five steps over one evidence snapshot: localise node and link faults,
// assess each region from what remains, apply hysteresis, decide the action and target, and
// describe it (verdict_engine.h).
#include "aggregator/verdict_engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "common/config_text.h"
#include "common/proto_convert.h"

namespace regionpulse {
namespace {

using std::chrono::nanoseconds;

constexpr const char* kAnyRegion = "*";

// ---- Words ----

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

std::string Bytes(uint64_t bytes) {
  char buffer[32];
  if (bytes < 1024) {
    std::snprintf(buffer, sizeof buffer, "%llu B", static_cast<unsigned long long>(bytes));
  } else if (bytes < 1024 * 1024) {
    std::snprintf(buffer, sizeof buffer, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  }
  return buffer;
}

// "12:00:03Z": the time of day in UTC, enough to line a reason up with logs.
std::string ClockTime(WallClock::time_point t) {
  const std::time_t seconds = WallClock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[16];
  std::strftime(buffer, sizeof buffer, "%H:%M:%SZ", &utc);
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

std::string Fraction(uint32_t part, uint32_t whole) {
  return std::to_string(part) + "/" + std::to_string(whole);
}

const char* ReplicationStatusName(v1::ReplicationStatus status) {
  switch (status) {
    case v1::REPLICATION_STATUS_CURRENT:
      return "current";
    case v1::REPLICATION_STATUS_STALE:
      return "stale";
    default:
      return "unknown";
  }
}

// ---- Views ----

// What one observer's probes say about a target (a node, or a region's nodes merged).
enum class View { kNone, kGood, kBad, kLost };

View ViewOf(const ProbeCounts& counts, const RegionThresholds& t) {
  if (counts.sent == 0) return View::kNone;
  const double loss = counts.Loss();
  if (loss >= t.unreachable_loss) return View::kLost;
  if (loss >= t.degraded_loss) return View::kBad;
  return View::kGood;
}

// Strictly more than `fraction` of `whole` (and at least one).
bool Majority(uint32_t part, uint32_t whole, double fraction) {
  return part > 0 && static_cast<double>(part) > fraction * static_cast<double>(whole);
}

// Loss between two ends, seen from one of them (`near`): probes it sent, probes the far end
// sent, merged so that "forward" always means near -> far. The near end's own probes lose
// forward on the way out; the far end's probes lose their replies on the way out of near.
struct DirectedLoss {
  uint64_t sent = 0;
  uint64_t out_lost = 0;  // near -> far
  uint64_t in_lost = 0;   // far -> near
  uint64_t unknown = 0;

  void AddNearProbes(const ProbeCounts& c) {
    sent += c.sent;
    out_lost += c.LostForward();
    in_lost += c.LostReverse();
    unknown += c.lost_unknown;
  }
  void AddFarProbes(const ProbeCounts& c) {
    sent += c.sent;
    in_lost += c.LostForward();
    out_lost += c.LostReverse();
    unknown += c.lost_unknown;
  }
  ProbeCounts AsCounts() const {
    ProbeCounts c;
    c.sent = sent;
    c.lost_unknown = std::min(unknown, sent);
    const uint64_t gone = std::min(sent - c.lost_unknown, out_lost);
    c.received_forward = sent - c.lost_unknown - gone;
    c.received_reverse = c.received_forward - std::min(c.received_forward, in_lost);
    return c;
  }
};

// "cannot send to us-east-1", "receives nothing from us-east-1", ...
std::string DirectionWords(v1::LossDirection direction, const std::string& peer, bool total) {
  const std::string peer_words = peer == kAnyRegion ? "any other region" : peer;
  switch (direction) {
    case v1::LOSS_DIRECTION_FORWARD:
      return (total ? "cannot send to " : "loses traffic to ") + peer_words;
    case v1::LOSS_DIRECTION_REVERSE:
      return (total ? "receives nothing from " : "loses traffic from ") + peer_words;
    case v1::LOSS_DIRECTION_BOTH:
      return (total ? "cannot exchange packets with " : "loses traffic both ways with ") + peer_words;
    default:
      return (total ? "is cut off from " : "loses probes with ") + peer_words + " (direction unknown)";
  }
}

std::string LossFigures(const ProbeCounts& c) {
  if (c.sent == 0) return "no probes";
  std::string out = Percent(c.Loss()) + " of " + std::to_string(c.sent) + " probes lost";
  std::vector<std::string> parts;
  if (c.LostForward() > 0) parts.push_back(std::to_string(c.LostForward()) + " forward");
  if (c.LostReverse() > 0) parts.push_back(std::to_string(c.LostReverse()) + " reverse");
  if (c.lost_unknown > 0) parts.push_back(std::to_string(c.lost_unknown) + " direction unknown");
  if (!parts.empty()) out += ": " + JoinWords(parts);
  return out;
}

// ---- Step results ----

struct SuspectFinding {
  v1::SuspectKind kind = v1::SUSPECT_KIND_UNSPECIFIED;
  std::string node;
  std::string region;
  std::string peer_region;
  DirectedLoss loss;  // seen from node/region towards peer_region
  v1::RegionState severity = v1::REGION_STATE_DEGRADED;
  std::string evidence;

  std::string Key() const { return std::to_string(kind) + "|" + node + "|" + region + "|" + peer_region; }
};

// One observer region's view of one target region, after node faults are set aside.
struct RegionView {
  uint32_t observers = 0;  // healthy observers with a view
  uint32_t good = 0;
  uint32_t bad = 0;
  uint32_t lost = 0;
  uint32_t isolated = 0;  // lost it but reach no third place: not evidence
  ProbeCounts counts;     // merged over the counted observers
  View Verdict(double fraction) const {
    if (observers == 0) return View::kNone;
    if (Majority(lost, observers, fraction)) return View::kLost;
    if (Majority(good, observers, fraction)) return View::kGood;
    return View::kBad;
  }
};

// What one evidence snapshot says about one region, before hysteresis.
struct Assessment {
  v1::RegionState state = v1::REGION_STATE_UNKNOWN;
  std::string reason;
  // "; 2/4 agents of us-east-1 not reporting", or empty.
  std::string agents_note;
  std::string Why() const { return reason + agents_note; }
  uint32_t observers_reporting = 0;  // healthy observers elsewhere that probed it
  uint32_t observers_agreeing = 0;
  uint32_t observer_regions_reporting = 0;
  uint32_t observer_regions_agreeing = 0;
  ProbeCounts counts;
  std::optional<nanoseconds> p50;
  std::optional<nanoseconds> p99;
  nanoseconds replication_staleness{0};
  RegionAgents agents;
};

struct TargetChoice {
  std::string region;
  v1::ReplicationStatus status = v1::REPLICATION_STATUS_UNKNOWN;
  std::vector<v1::DataAtRisk> data_at_risk;
  nanoseconds at_most{0};  // the largest at_most of data_at_risk
};

int SeverityOf(v1::RegionState state) {
  switch (state) {
    case v1::REGION_STATE_DEGRADED:
      return VerdictEngine::kDegraded;
    case v1::REGION_STATE_UNREACHABLE:
      return VerdictEngine::kUnreachable;
    default:
      return VerdictEngine::kHealthy;
  }
}

v1::RegionState StateOfSeverity(int severity) {
  switch (severity) {
    case VerdictEngine::kDegraded:
      return v1::REGION_STATE_DEGRADED;
    case VerdictEngine::kUnreachable:
      return v1::REGION_STATE_UNREACHABLE;
    default:
      return v1::REGION_STATE_HEALTHY;
  }
}

bool Reachable(v1::RegionState state) {
  return state == v1::REGION_STATE_HEALTHY || state == v1::REGION_STATE_DEGRADED;
}

}  // namespace

// The five steps of one evaluation, over one evidence snapshot; the engine keeps the state.
class VerdictEngineSteps {
 public:
  VerdictEngineSteps(VerdictEngine& engine, const VerdictEvidence& evidence, WallClock::time_point now)
      : engine_(engine),
        config_(engine.config_),
        t_(engine.config_.thresholds),
        evidence_(evidence),
        now_(now) {}

  VerdictEvaluation Run() {
    Index();
    Localise();
    Assess();
    ApplyHysteresis();
    Decide();
    return Describe();
  }

 private:
  // ---- Indexing ----

  void Index() {
    std::set<std::string> region_set(config_.regions.begin(), config_.regions.end());
    region_set.insert(evidence_.regions.begin(), evidence_.regions.end());
    if (!config_.active_region.empty()) region_set.insert(config_.active_region);
    for (const auto& standby : config_.standby_regions) region_set.insert(standby);
    for (const ObserverView& o : evidence_.observers) {
      region_set.insert(o.region);
      for (const auto& [region, counts] : o.to_region) region_set.insert(region);
      for (const TargetProbes& target : o.to_node) region_set.insert(target.region);
    }
    regions_.assign(region_set.begin(), region_set.end());
    if (!engine_.first_data_at_ && !evidence_.observers.empty()) engine_.first_data_at_ = now_;
  }

  bool Reaches(const ObserverView& o, const std::string& region) const {
    const auto it = o.to_region.find(region);
    return it != o.to_region.end() && it->second.sent > 0 && it->second.Loss() < t_.unreachable_loss;
  }

  // An observer's lost probes to `target` are evidence only when it reaches some third place
  // (neither its own region nor the target); otherwise it may be the one cut off.
  bool Healthy(const ObserverView& o, const std::string& target) const {
    for (const auto& [region, counts] : o.to_region) {
      if (region != o.region && region != target && Reaches(o, region)) return true;
    }
    return false;
  }

  bool ObserverExcluded(const ObserverView& o, const std::string& target) const {
    const auto it = excluded_observer_.find(o.node);
    return it != excluded_observer_.end() && (it->second.count(target) || it->second.count(kAnyRegion));
  }
  bool TargetExcluded(const std::string& node, const std::string& observer_region) const {
    const auto it = excluded_target_.find(node);
    return it != excluded_target_.end() &&
           (it->second.count(observer_region) || it->second.count(kAnyRegion));
  }

  // The observer's probes to `target`'s nodes, leaving out nodes set aside as faulty.
  ProbeCounts CountsTo(const ObserverView& o, const std::string& target) const {
    ProbeCounts sum;
    for (const TargetProbes& probed : o.to_node) {
      if (probed.region != target || TargetExcluded(probed.node, o.region)) continue;
      sum.Add(probed.counts);
    }
    return sum;
  }

  // ---- Step 1: localise ----

  void Localise() {
    FindTargetNodeFaults();
    FindObserverNodeFaults();
    FindLinkFaults();
    SetAsideCutOffObserverRegions();
  }

  // Observers of region R see one node N of region T badly while N's region-mates answer them
  // well: N's fault (towards R), not T's.
  void FindTargetNodeFaults() {
    struct NodeTally {
      std::string_view target_region;
      uint32_t observers = 0;
      uint32_t good = 0;
      uint32_t bad = 0;   // bad or lost
      DirectedLoss loss;  // seen from the target node
    };
    // (observer region, target node) -> tally. Views into the evidence, which outlives the
    // steps: no string copies per probed node (there are observers x targets of them).
    using Key = std::pair<std::string_view, std::string_view>;
    struct KeyHash {
      size_t operator()(const Key& key) const {
        return std::hash<std::string_view>()(key.first) * 31 + std::hash<std::string_view>()(key.second);
      }
    };
    std::unordered_map<Key, NodeTally, KeyHash> tallies;
    for (const ObserverView& o : evidence_.observers) {
      for (const TargetProbes& probed : o.to_node) {
        if (probed.region == o.region || probed.counts.sent == 0) continue;
        const View view = ViewOf(probed.counts, t_);
        if (view == View::kLost && !Healthy(o, probed.region)) continue;
        NodeTally& tally = tallies[{o.region, probed.node}];
        tally.target_region = probed.region;
        ++tally.observers;
        (view == View::kGood ? tally.good : tally.bad) += 1;
        tally.loss.AddFarProbes(probed.counts);
      }
    }
    // (observer region, target region) -> target nodes seen, and seen well by a majority.
    struct RegionTally {
      uint32_t nodes = 0;
      uint32_t good = 0;
    };
    std::map<Key, RegionTally> region_tallies;
    for (const auto& [key, tally] : tallies) {
      RegionTally& region_tally = region_tallies[{key.first, tally.target_region}];
      ++region_tally.nodes;
      if (Majority(tally.good, tally.observers, t_.quorum_fraction)) ++region_tally.good;
    }
    // node -> (observer region, tally), in name order so suspects come out in a stable order.
    std::map<std::string_view, std::vector<std::pair<std::string_view, const NodeTally*>>> faulty_from;
    for (const auto& [key, tally] : tallies) {
      const auto& [observer_region, node] = key;
      if (!Majority(tally.bad, tally.observers, t_.quorum_fraction)) continue;
      // Its region-mates seen from the same observer region: the region's tally without this
      // node (which is seen badly, so not among the good ones).
      const RegionTally& region_tally = region_tallies[{observer_region, tally.target_region}];
      const uint32_t mates = region_tally.nodes - 1;
      const uint32_t mates_good = region_tally.good;
      if (!Majority(mates_good, mates, t_.quorum_fraction)) continue;
      faulty_from[node].emplace_back(observer_region, &tally);
    }
    for (auto& [node, from] : faulty_from) {
      std::sort(from.begin(), from.end());
      for (const auto& [observer_region, tally] : from) {
        excluded_target_[std::string(node)].insert(std::string(observer_region));
        AddNodeFault(std::string(node), std::string(tally->target_region), std::string(observer_region),
                     tally->loss,
                     Plural(tally->bad, "observer") + " in " + std::string(observer_region) + " of " +
                         std::to_string(tally->observers) + " lose " + std::string(node) +
                         " while they reach its region-mates");
      }
    }
  }

  // One observer sees a region badly (or reaches no other region at all) while its
  // region-mates see it well: the observer's fault.
  void FindObserverNodeFaults() {
    // Each observer's view of each other region, computed once; then, per (observer region,
    // target region), how many observers have a view that counts and how many of them see it
    // well. An observer's region-mates are those tallies without itself: O(observers x
    // regions), not O(observers x region-mates), which matters at thousands of nodes.
    struct TargetView {
      const std::string* target;
      ProbeCounts counts;
      View view;
      bool counts_as_evidence;  // a view, and not a loss that may be its own isolation
    };
    struct Tally {
      uint32_t counted = 0;
      uint32_t good = 0;
    };
    std::vector<std::vector<TargetView>> views(evidence_.observers.size());
    std::map<std::pair<std::string, std::string>, Tally> tallies;  // (observer region, target)
    std::map<std::string, uint32_t> reaching_elsewhere;            // region -> its observers reaching another
    for (size_t i = 0; i < evidence_.observers.size(); ++i) {
      const ObserverView& o = evidence_.observers[i];
      bool reaches_other = false;
      for (const auto& [target, counts] : o.to_region) {
        if (target == o.region) continue;
        if (counts.sent > 0 && Reaches(o, target)) reaches_other = true;
        TargetView tv{&target, CountsTo(o, target), View::kNone, false};
        tv.view = ViewOf(tv.counts, t_);
        tv.counts_as_evidence = tv.view != View::kNone && !(tv.view == View::kLost && !Healthy(o, target));
        if (tv.counts_as_evidence) {
          Tally& tally = tallies[{o.region, target}];
          ++tally.counted;
          if (tv.view == View::kGood) ++tally.good;
        }
        views[i].push_back(std::move(tv));
      }
      if (reaches_other) ++reaching_elsewhere[o.region];
    }
    for (size_t i = 0; i < evidence_.observers.size(); ++i) {
      const ObserverView& o = evidence_.observers[i];
      bool reaches_any_other = false;
      bool probes_any_other = false;
      for (const auto& [region, counts] : o.to_region) {
        if (region == o.region || counts.sent == 0) continue;
        probes_any_other = true;
        if (Reaches(o, region)) reaches_any_other = true;
      }
      if (probes_any_other && !reaches_any_other) {
        // Cut off from everywhere: a node fault when a region-mate still reaches elsewhere.
        if (reaching_elsewhere[o.region] > 0) {
          DirectedLoss loss;
          for (const TargetProbes& probed : o.to_node) {
            if (probed.region != o.region) loss.AddNearProbes(probed.counts);
          }
          excluded_observer_[o.node].insert(kAnyRegion);
          AddNodeFault(o.node, o.region, kAnyRegion, loss,
                       o.node + " reaches no other region; its region-mates do");
        }
        continue;
      }
      for (const TargetView& tv : views[i]) {
        if (tv.view != View::kBad && tv.view != View::kLost) continue;
        if (!tv.counts_as_evidence) continue;
        // Its region-mates: the tally without this observer (which counted, and not as good).
        const Tally& tally = tallies[{o.region, *tv.target}];
        const uint32_t others = tally.counted - 1;
        const uint32_t good = tally.good;
        if (!Majority(good, others, t_.quorum_fraction)) continue;
        excluded_observer_[o.node].insert(*tv.target);
        DirectedLoss loss;
        loss.AddNearProbes(tv.counts);
        AddNodeFault(o.node, o.region, *tv.target, loss,
                     o.node + " " + LossFigures(tv.counts) + " to " + *tv.target + "; " +
                         Fraction(good, others) + " of its region-mates reach it");
      }
    }
  }

  void AddNodeFault(const std::string& node, const std::string& region, const std::string& peer,
                    const DirectedLoss& loss, const std::string& evidence) {
    const auto key = std::make_pair(node, peer);
    auto it = node_faults_.find(key);
    if (it == node_faults_.end()) {
      SuspectFinding finding;
      finding.kind = v1::SUSPECT_KIND_NODE;
      finding.node = node;
      finding.region = region;
      finding.peer_region = peer;
      finding.loss = loss;
      finding.evidence = evidence;
      node_faults_.emplace(key, std::move(finding));
      return;
    }
    // Both ends point at the same fault (the node as observer and as target): one suspect.
    SuspectFinding& finding = it->second;
    finding.loss.sent += loss.sent;
    finding.loss.out_lost += loss.out_lost;
    finding.loss.in_lost += loss.in_lost;
    finding.loss.unknown += loss.unknown;
    finding.evidence += "; " + evidence;
  }

  // One observer region's view of one target region after node faults are set aside.
  RegionView ViewFrom(const std::string& observer_region, const std::string& target) const {
    RegionView view;
    for (const ObserverView& o : evidence_.observers) {
      if (o.region != observer_region || ObserverExcluded(o, target)) continue;
      const ProbeCounts counts = CountsTo(o, target);
      const View v = ViewOf(counts, t_);
      if (v == View::kNone) continue;
      if (v == View::kLost && !Healthy(o, target)) {
        ++view.isolated;
        continue;
      }
      ++view.observers;
      view.counts.Add(counts);
      switch (v) {
        case View::kGood:
          ++view.good;
          break;
        case View::kBad:
          ++view.bad;
          break;
        default:
          ++view.lost;
      }
    }
    return view;
  }

  // Two regions lose each other, or see heavy loss between them, while a third region sees
  // both well: the link between them, not either region.
  void FindLinkFaults() {
    for (const auto& a : regions_) {
      for (const auto& b : regions_) {
        if (a == b) continue;
        views_[{a, b}] = ViewFrom(a, b);
      }
    }
    auto clean = [&](const RegionView& v) {
      return v.Verdict(t_.quorum_fraction) == View::kGood && v.counts.Loss() < t_.degraded_loss;
    };
    auto troubled = [&](const RegionView& v) {
      const View verdict = v.Verdict(t_.quorum_fraction);
      return verdict == View::kLost || (verdict != View::kNone && v.counts.Loss() >= t_.degraded_loss);
    };
    for (size_t i = 0; i < regions_.size(); ++i) {
      for (size_t j = i + 1; j < regions_.size(); ++j) {
        const std::string& a = regions_[i];
        const std::string& b = regions_[j];
        const RegionView& ab = views_[{a, b}];
        const RegionView& ba = views_[{b, a}];
        if (!troubled(ab) && !troubled(ba)) continue;
        std::vector<std::string> thirds;
        for (const auto& q : regions_) {
          if (q == a || q == b) continue;
          if (clean(views_[{q, a}]) && clean(views_[{q, b}])) thirds.push_back(q);
        }
        if (thirds.empty()) continue;
        excluded_views_.insert({a, b});
        excluded_views_.insert({b, a});
        SuspectFinding finding;
        finding.kind = v1::SUSPECT_KIND_LINK;
        finding.region = a;
        finding.peer_region = b;
        finding.loss.AddNearProbes(ab.counts);
        finding.loss.AddFarProbes(ba.counts);
        const bool cut =
            ab.Verdict(t_.quorum_fraction) == View::kLost || ba.Verdict(t_.quorum_fraction) == View::kLost;
        finding.evidence = (cut ? "the link between " + a + " and " + b + " is down: "
                                : "the link between " + a + " and " + b + " loses traffic: ") +
                           a + " -> " + b + " " + LossFigures(ab.counts) + ", " + b + " -> " + a + " " +
                           LossFigures(ba.counts) + "; " + JoinWords(thirds) + " reach" +
                           (thirds.size() == 1 ? "es" : "") + " both";
        link_faults_.push_back(std::move(finding));
      }
    }
  }

  // An observer region that sees every other region badly while those regions see each other
  // well is the one cut off (its uplink, or the moments while it is being cut off): its views
  // are not evidence against the others. The others' views of it judge it. Being cut off is
  // not instantaneous (windows straddle it), so the rule also applies one view at a time.
  void SetAsideCutOffObserverRegions() {
    auto clean = [&](const std::string& from, const std::string& to) {
      const RegionView& v = views_[{from, to}];
      return v.Verdict(t_.quorum_fraction) == View::kGood && v.counts.Loss() < t_.degraded_loss;
    };
    for (const auto& r : regions_) {
      std::vector<std::string> others;
      bool all_troubled = true;
      for (const auto& t : regions_) {
        if (t == r) continue;
        const RegionView& v = views_[{r, t}];
        const View verdict = v.Verdict(t_.quorum_fraction);
        if (verdict == View::kNone) continue;
        others.push_back(t);
        if (verdict != View::kLost && v.counts.Loss() < t_.degraded_loss) all_troubled = false;
      }
      if (others.size() < 2 || !all_troubled) continue;
      bool others_fine = true;
      for (size_t i = 0; i < others.size() && others_fine; ++i) {
        for (size_t j = i + 1; j < others.size() && others_fine; ++j) {
          others_fine = clean(others[i], others[j]) && clean(others[j], others[i]);
        }
      }
      if (!others_fine) continue;
      for (const auto& t : others) excluded_views_.insert({r, t});
    }
    // The same one view at a time: r sees t badly, while a third region q sees t well and sees
    // r badly. The trouble is at r's end (it is being cut off, or its uplink is bad), not t's.
    // When t is really down, no q sees it well; when only the r-t link is down, q sees both
    // well and that is a link fault (above).
    auto troubled = [&](const std::string& from, const std::string& to) {
      const RegionView& v = views_[{from, to}];
      const View verdict = v.Verdict(t_.quorum_fraction);
      return verdict == View::kLost || (verdict != View::kNone && v.counts.Loss() >= t_.degraded_loss);
    };
    for (const auto& r : regions_) {
      for (const auto& t : regions_) {
        if (r == t || excluded_views_.count({r, t}) || !troubled(r, t)) continue;
        for (const auto& q : regions_) {
          if (q == r || q == t) continue;
          if (clean(q, t) && troubled(q, r)) {
            excluded_views_.insert({r, t});
            break;
          }
        }
      }
    }
  }

  // ---- Step 2: assess ----

  void Assess() {
    for (const auto& region : regions_) assessments_.emplace(region, AssessRegion(region));
  }

  // Probes from observers in other regions that `region`'s reflectors refused (ProbeCounts).
  uint64_t RefusedInto(const std::string& region) const {
    uint64_t refused = 0;
    for (const ObserverView& observer : evidence_.observers) {
      if (observer.region == region) continue;
      if (const auto it = observer.to_region.find(region); it != observer.to_region.end()) {
        refused += it->second.refused;
      }
    }
    return refused;
  }

  Assessment AssessRegion(const std::string& region) {
    Assessment a;
    if (auto it = evidence_.agents.find(region); it != evidence_.agents.end()) a.agents = it->second;
    if (auto it = evidence_.latency_into.find(region); it != evidence_.latency_into.end()) {
      a.p50 = it->second.p50;
      a.p99 = it->second.p99;
    }
    for (const auto& flow : evidence_.replication) {
      if (flow.remote_region == region)
        a.replication_staleness = std::max(a.replication_staleness, flow.staleness);
    }
    const PassiveSignals passive = [&] {
      const auto it = evidence_.passive.find(region);
      return it == evidence_.passive.end() ? PassiveSignals{} : it->second;
    }();

    std::vector<std::string> lost_regions;
    std::vector<std::string> reaching_regions;
    std::vector<std::string> bad_regions;
    std::vector<std::string> lost_node_counts;
    uint32_t lost_observers = 0;
    uint32_t isolated = 0;
    uint32_t over_loss_threshold = 0;
    for (const auto& observer_region : regions_) {
      if (observer_region == region) continue;
      const RegionView& view = views_[{observer_region, region}];
      isolated += view.isolated;
      if (view.observers == 0 || excluded_views_.count({observer_region, region})) continue;
      ++a.observer_regions_reporting;
      a.observers_reporting += view.observers;
      a.counts.Add(view.counts);
      over_loss_threshold += view.bad;
      switch (view.Verdict(t_.quorum_fraction)) {
        case View::kLost:
          lost_regions.push_back(observer_region);
          lost_observers += view.lost;
          lost_node_counts.push_back(observer_region + " " + Fraction(view.lost, view.observers));
          break;
        case View::kGood:
          reaching_regions.push_back(observer_region);
          break;
        default:
          bad_regions.push_back(observer_region);
      }
    }
    const std::string isolated_note =
        isolated == 0 ? ""
                      : "; " + Plural(isolated, "isolated observer") + " (reaching no other region) ignored";
    if (a.agents.not_reporting > 0) {
      a.agents_note = "; " + Fraction(a.agents.not_reporting, a.agents.reporting + a.agents.not_reporting) +
                      " agents of " + region + " not reporting";
    }

    if (a.observers_reporting == 0) {
      a.state = v1::REGION_STATE_UNKNOWN;
      const uint64_t refused = RefusedInto(region);
      if (isolated > 0) {
        a.reason = "no healthy observer of " + region + isolated_note;
      } else if (refused > 0) {
        // Probes that reached it and were refused measured nothing of the network: say why
        // there is no evidence rather than "nobody probed".
        a.reason = "no observer in another region could measure " + region + ": its reflectors refused all " +
                   std::to_string(refused) +
                   " probes sent to it (wrong key, stale timestamp, rate limit or replay; not loss)";
      } else {
        a.reason = "no observer in another region probed " + region;
      }
      return a;
    }
    const auto lost_phrase = [&] {
      return Fraction(static_cast<uint32_t>(lost_regions.size()), a.observer_regions_reporting) +
             " observer regions lost every probe to " + region + " (" + JoinWords(lost_node_counts) +
             " observers)";
    };
    const bool quorum = Majority(static_cast<uint32_t>(lost_regions.size()), a.observer_regions_reporting,
                                 t_.quorum_fraction) &&
                        reaching_regions.empty() && lost_observers >= t_.min_observer_nodes;
    if (quorum) {
      a.observers_agreeing = lost_observers;
      a.observer_regions_agreeing = static_cast<uint32_t>(lost_regions.size());
      if (passive.Alive()) {
        std::string alive =
            "traffic from " + region + " still arrives at " + Plural(passive.nodes_receiving, "node");
        if (passive.flows_progressing > 0) {
          alive += " and " + Plural(passive.flows_progressing, "replication flow") + " to it still progress";
        }
        if (a.agents.reporting == 0 && a.agents.not_reporting > 0) {
          // Our responders are gone, the region is not: the monitoring must not fail it over.
          a.state = v1::REGION_STATE_UNKNOWN;
          a.reason = "agents not reporting in " + region + " (0/" + std::to_string(a.agents.not_reporting) +
                     "): " + lost_phrase() + ", but " + alive;
          a.agents_note.clear();
        } else {
          a.state = v1::REGION_STATE_DEGRADED;
          a.reason = lost_phrase() + ", but " + alive;
        }
        return a;
      }
      a.state = v1::REGION_STATE_UNREACHABLE;
      a.reason = lost_phrase() + isolated_note;
      return a;
    }
    if (!lost_regions.empty()) {
      a.state = v1::REGION_STATE_DEGRADED;
      a.observers_agreeing = lost_observers;
      a.observer_regions_agreeing = static_cast<uint32_t>(lost_regions.size());
      a.reason =
          lost_phrase() + ", not a quorum of observer regions (" +
          (reaching_regions.empty() ? "need more than " + Percent(t_.quorum_fraction) + " of them and " +
                                          std::to_string(t_.min_observer_nodes) + " observers"
                                    : JoinWords(reaching_regions) + " still reach it") +
          ")" + isolated_note;
      return a;
    }
    const double loss = a.counts.Loss();
    if (loss >= t_.degraded_loss) {
      a.state = v1::REGION_STATE_DEGRADED;
      a.observers_agreeing = over_loss_threshold;
      a.observer_regions_agreeing = static_cast<uint32_t>(bad_regions.size());
      a.reason = region + " degraded: " + LossFigures(a.counts) + " (threshold " + Percent(t_.degraded_loss) +
                 ") from " + Plural(a.observers_reporting, "observer") + " in " +
                 Plural(a.observer_regions_reporting, "region");
      return a;
    }
    if (t_.degraded_rtt_p99 > nanoseconds::zero() && a.p99 && *a.p99 > t_.degraded_rtt_p99) {
      a.state = v1::REGION_STATE_DEGRADED;
      a.observers_agreeing = a.observers_reporting;
      a.observer_regions_agreeing = a.observer_regions_reporting;
      a.reason = region + " degraded: RTT p99 " + Millis(*a.p99) + " (threshold " +
                 Millis(std::chrono::duration_cast<nanoseconds>(t_.degraded_rtt_p99)) + ")";
      return a;
    }
    a.state = v1::REGION_STATE_HEALTHY;
    a.observers_agreeing = a.observers_reporting;
    a.observer_regions_agreeing = a.observer_regions_reporting;
    a.reason = region + " healthy: " + Fraction(a.observers_reporting, a.observers_reporting) +
               " observers in " + Plural(a.observer_regions_reporting, "region") + " reach it, loss " +
               Percent(loss) + (a.p99 ? ", RTT p99 " + Millis(*a.p99) : "") + isolated_note;
    return a;
  }

  // ---- Step 3: hysteresis ----

  void ApplyHysteresis() {
    for (const auto& region : regions_) {
      const Assessment& a = assessments_[region];
      VerdictEngine::RegionHistory& h = engine_.history_[region];
      if (a.state != v1::REGION_STATE_UNKNOWN) {
        const int severity = SeverityOf(a.state);
        for (int s = 0; s < VerdictEngine::kSeverityCount; ++s) {
          if (severity >= s) {
            h.below_since[s].reset();
            h.ever_at[s] = true;
          } else if (h.ever_at[s] && !h.below_since[s]) {
            h.below_since[s] = now_;
          }
        }
      }
      if (a.state == v1::REGION_STATE_UNREACHABLE) {
        if (!h.raw_unreachable_since) h.raw_unreachable_since = DarkSince(region);
      } else {
        h.raw_unreachable_since.reset();
      }
      v1::RegionState reported = v1::REGION_STATE_UNKNOWN;
      if (a.state != v1::REGION_STATE_UNKNOWN) {
        // Worse at once; better only once the better state held for the dwell.
        int severity = 0;
        for (int s = VerdictEngine::kSeverityCount - 1; s > 0; --s) {
          const bool held = h.ever_at[s] && (!h.below_since[s] || now_ - *h.below_since[s] < config_.dwell);
          if (held) {
            severity = s;
            break;
          }
        }
        reported = StateOfSeverity(std::max(severity, SeverityOf(a.state)));
      }
      if (reported != h.state || h.since == WallClock::time_point{}) {
        h.since = now_;
        h.state = reported;
      }
    }
  }

  // When a region just found UNREACHABLE went dark: the end of the last window in which an
  // observer elsewhere got its reply, within the evidence window that showed it dark.
  WallClock::time_point DarkSince(const std::string& region) const {
    WallClock::time_point since = now_ - config_.evidence_window;
    if (auto it = evidence_.last_answered.find(region); it != evidence_.last_answered.end()) {
      since = std::max(since, it->second);
    }
    return std::min(since, now_);
  }

  // ---- Step 4: decide ----

  v1::RegionState StateOf(const std::string& region) const {
    const auto it = engine_.history_.find(region);
    return it == engine_.history_.end() ? v1::REGION_STATE_UNKNOWN : it->second.state;
  }

  bool IsStandby(const std::string& region) const {
    return std::find(config_.standby_regions.begin(), config_.standby_regions.end(), region) !=
           config_.standby_regions.end();
  }

  // When the active region was last seen answering, if it is dark now; else now.
  WallClock::time_point CutEnd() const {
    const auto& active = config_.active_region;
    const auto& h = engine_.history_[active];
    if (h.raw_unreachable_since || h.state == v1::REGION_STATE_UNREACHABLE) {
      if (auto it = evidence_.last_answered.find(active); it != evidence_.last_answered.end()) {
        return std::min(it->second, now_);
      }
    }
    return now_;
  }

  // What failing over to `standby` would lose, flow by flow, and whether it is within policy.
  TargetChoice AssessStandby(const std::string& standby) const {
    TargetChoice choice;
    choice.region = standby;
    const WallClock::time_point cut_end = CutEnd();
    for (const ReplicationEvidence& flow : evidence_.replication) {
      if (flow.source_region != config_.active_region || flow.remote_region != standby) continue;
      v1::DataAtRisk risk;
      risk.set_flow(flow.name);
      risk.set_source_region(flow.source_region);
      risk.set_target_region(flow.remote_region);
      *risk.mutable_replica_lag() = ToDuration(flow.last_progress_age);
      risk.set_bytes_outstanding(flow.bytes_outstanding);
      *risk.mutable_as_of() = ToTimestamp(flow.as_of);
      const nanoseconds gap = std::max(nanoseconds::zero(), cut_end - flow.as_of);
      *risk.mutable_evidence_gap() = ToDuration(gap);
      const nanoseconds at_most = flow.last_progress_age + gap;
      *risk.mutable_at_most() = ToDuration(at_most);
      risk.set_source_silent(flow.source_silent);
      choice.at_most = std::max(choice.at_most, at_most);
      choice.data_at_risk.push_back(std::move(risk));
    }
    if (choice.data_at_risk.empty()) {
      choice.status = v1::REPLICATION_STATUS_UNKNOWN;
    } else {
      choice.status = choice.at_most <= config_.max_data_loss ? v1::REPLICATION_STATUS_CURRENT
                                                              : v1::REPLICATION_STATUS_STALE;
    }
    return choice;
  }

  // The best reachable standby: current replication first, then stale, then unknown; within
  // each, the configured order of preference.
  std::optional<TargetChoice> ChooseTarget() const {
    std::optional<TargetChoice> best;
    auto rank = [](v1::ReplicationStatus status) {
      return status == v1::REPLICATION_STATUS_CURRENT ? 0 : status == v1::REPLICATION_STATUS_STALE ? 1 : 2;
    };
    for (const auto& standby : config_.standby_regions) {
      if (standby == config_.active_region || !Reachable(StateOf(standby))) continue;
      TargetChoice choice = AssessStandby(standby);
      if (!best || rank(choice.status) < rank(best->status)) best = std::move(choice);
    }
    return best;
  }

  std::string DataAtRiskWords(const v1::DataAtRisk& risk) const {
    const nanoseconds lag = FromDuration(risk.replica_lag());
    const nanoseconds gap = FromDuration(risk.evidence_gap());
    std::string words =
        risk.flow() + ": " + risk.target_region() + "'s replica was " +
        (lag == nanoseconds::zero() ? "current" : FormatSpan(lag) + " behind") + " at " +
        ClockTime(FromTimestamp(risk.as_of())) + " (" +
        (risk.source_silent() ? "the last report from " + risk.source_region() : "the newest report") +
        "), " + Bytes(risk.bytes_outstanding()) + " not yet acknowledged";
    if (gap > nanoseconds::zero()) {
      words += "; " + risk.source_region() + " was last seen answering " + FormatSpan(gap) + " after that";
    }
    return words + ": failing over loses at most " + FormatSpan(FromDuration(risk.at_most())) + " of writes";
  }

  std::string TargetWords(const TargetChoice& choice) const {
    std::string words = "target " + choice.region + " (standby, " + RegionStateName(StateOf(choice.region)) +
                        "), replication " + ReplicationStatusName(choice.status);
    if (choice.status == v1::REPLICATION_STATUS_UNKNOWN) {
      return words + ": no replication flow from " + config_.active_region + " into " + choice.region +
             " has been reported, so what failing over would lose is unknown";
    }
    return words + " (max_data_loss " + FormatSpan(config_.max_data_loss) + ")";
  }

  void Decide() {
    const std::string& active = config_.active_region;
    uint32_t elsewhere_total = 0;
    uint32_t elsewhere_reporting = 0;
    for (const auto& [region, agents] : evidence_.agents) {
      if (region == config_.own_region) continue;
      elsewhere_total += agents.reporting + agents.not_reporting;
      elsewhere_reporting += agents.reporting;
    }
    const bool others_known = std::any_of(regions_.begin(), regions_.end(),
                                          [&](const std::string& r) { return r != config_.own_region; });
    const bool own_isolated = !config_.own_region.empty() && others_known && elsewhere_reporting == 0;

    if (regions_.empty()) {
      reasons_.push_back("no regions known (no configuration and no agents)");
      return;
    }
    if (active.empty()) {
      reasons_.push_back("no active region configured");
      return;
    }
    if (!engine_.first_data_at_ || now_ - *engine_.first_data_at_ < config_.hold) {
      reasons_.push_back(engine_.first_data_at_
                             ? "aggregator has " + Seconds(now_ - *engine_.first_data_at_) +
                                   " of data; HOLD until it has the hold time of " + Seconds(config_.hold)
                             : "aggregator has no probe data yet; HOLD until it has the hold time of " +
                                   Seconds(config_.hold));
      if (engine_.latch_) {
        reasons_.push_back("a FAILOVER to " + engine_.latch_->target + " decided at " +
                           ClockTime(engine_.latch_->at) + " is still in force and resumes with the data");
      }
      return;
    }
    if (own_isolated) {
      reasons_.push_back("aggregator's region " + config_.own_region + " hears from no other region (" +
                         Fraction(elsewhere_reporting, elsewhere_total) +
                         " agents elsewhere reporting): cannot tell an outage from our own isolation");
      return;
    }
    active_explained_ = true;
    VerdictEngine::RegionHistory& h = engine_.history_[active];
    const Assessment& a = assessments_[active];
    if (Reachable(h.state)) engine_.latch_.reset();

    if (engine_.latch_) {
      const VerdictEngine::Latch& latch = *engine_.latch_;
      action_ = v1::ACTION_FAILOVER;
      target_ = latch.target;
      data_at_risk_ = latch.data_at_risk;
      if (h.raw_unreachable_since) {
        reasons_.push_back(a.reason + " for " + Seconds(now_ - *h.raw_unreachable_since) + a.agents_note);
      } else {
        const auto recovering = h.below_since[VerdictEngine::kUnreachable];
        reasons_.push_back(active + " failed over at " + ClockTime(latch.at) + "; " +
                           (recovering ? "recovering for " + Seconds(now_ - *recovering) + " of the " +
                                             Seconds(config_.dwell) + " dwell"
                                       : "no evidence of recovery yet") +
                           " (" + a.Why() + ")");
      }
      reasons_.push_back("target " + latch.target + " (standby, " + RegionStateName(StateOf(latch.target)) +
                         "), decided at " + ClockTime(latch.at));
      for (const auto& risk : data_at_risk_) reasons_.push_back(DataAtRiskWords(risk));
      if (!latch.policy_note.empty()) reasons_.push_back(latch.policy_note);
      return;
    }

    if (h.raw_unreachable_since && now_ - *h.raw_unreachable_since >= config_.hold) {
      const std::string outage =
          a.reason + " for " + Seconds(now_ - *h.raw_unreachable_since) + a.agents_note;
      const std::optional<TargetChoice> choice = ChooseTarget();
      if (!choice) {
        std::vector<std::string> standbys;
        for (const auto& standby : config_.standby_regions) {
          if (standby != active) standbys.push_back(standby + " " + RegionStateName(StateOf(standby)));
        }
        reasons_.push_back(outage);
        reasons_.push_back("no standby reachable: nowhere to fail over to (" +
                           (standbys.empty() ? std::string("no standby regions configured")
                                             : "standbys: " + JoinWords(standbys)) +
                           "; observer regions are never targets)");
        return;
      }
      target_ = choice->region;
      data_at_risk_ = choice->data_at_risk;
      reasons_.push_back(outage);
      reasons_.push_back(TargetWords(*choice));
      for (const auto& risk : data_at_risk_) reasons_.push_back(DataAtRiskWords(risk));
      if (choice->status != v1::REPLICATION_STATUS_CURRENT && !config_.prefer_availability) {
        manual_decision_ = true;
        reasons_.push_back("manual decision: failing over to " + choice->region + " would lose " +
                           (choice->status == v1::REPLICATION_STATUS_UNKNOWN
                                ? std::string("an unknown amount of")
                                : "up to " + FormatSpan(choice->at_most) + " of") +
                           " writes, more than max_data_loss " + FormatSpan(config_.max_data_loss) +
                           " allows; HOLD until a person decides (or set prefer_availability)");
        return;
      }
      std::string policy_note;
      if (choice->status != v1::REPLICATION_STATUS_CURRENT) {
        policy_note = "prefer_availability: failing over although it may lose more than max_data_loss " +
                      FormatSpan(config_.max_data_loss);
        reasons_.push_back(policy_note);
      }
      action_ = v1::ACTION_FAILOVER;
      engine_.latch_ = VerdictEngine::Latch{target_, now_, data_at_risk_, policy_note};
      return;
    }

    switch (h.state) {
      case v1::REGION_STATE_HEALTHY:
        action_ = v1::ACTION_STAY;
        reasons_.push_back(a.Why());
        break;
      case v1::REGION_STATE_DEGRADED: {
        action_ = v1::ACTION_STAY;
        reasons_.push_back(a.state == v1::REGION_STATE_DEGRADED
                               ? a.Why()
                               : active + " degraded within the last " + Seconds(config_.dwell) +
                                     "; now: " + a.Why());
        std::optional<TargetChoice> choice = ChooseTarget();
        if (choice && !engine_.advice_target_.empty() && choice->region != engine_.advice_target_ &&
            IsStandby(engine_.advice_target_) && Reachable(StateOf(engine_.advice_target_))) {
          choice = AssessStandby(engine_.advice_target_);  // keep the advice steady while it stays valid
        }
        engine_.advice_target_ = choice ? choice->region : "";
        if (choice) {
          target_ = choice->region;
          data_at_risk_ = choice->data_at_risk;
          reasons_.push_back("advice if it worsens: " + TargetWords(*choice));
        }
        break;
      }
      case v1::REGION_STATE_UNREACHABLE:
        if (h.raw_unreachable_since) {
          reasons_.push_back(a.reason + " for " + Seconds(now_ - *h.raw_unreachable_since) + a.agents_note +
                             "; FAILOVER after " + Seconds(config_.hold));
        } else {
          const auto better = h.below_since[VerdictEngine::kUnreachable];
          reasons_.push_back(active + " was unreachable " +
                             (better ? Seconds(now_ - *better) + " ago" : "recently") +
                             " and must stay reachable for " + Seconds(config_.dwell) +
                             " before STAY; never unreachable for the hold time of " + Seconds(config_.hold) +
                             "; now: " + a.Why());
        }
        break;
      default:
        reasons_.push_back("too little evidence about " + active + ": " + a.Why());
        break;
    }
  }

  // ---- Step 5: describe ----

  std::vector<SuspectFinding> Suspects() {
    std::vector<SuspectFinding> suspects;
    for (const auto& region : regions_) {
      const Assessment& a = assessments_[region];
      if (a.state != v1::REGION_STATE_DEGRADED && a.state != v1::REGION_STATE_UNREACHABLE) continue;
      SuspectFinding finding;
      finding.kind = v1::SUSPECT_KIND_REGION;
      finding.region = region;
      finding.severity = a.state;
      // Probes into the region: forward = its inbound traffic is lost, reverse = its outbound.
      finding.loss.AddFarProbes(a.counts);
      std::swap(finding.loss.out_lost, finding.loss.in_lost);
      finding.evidence = a.reason;
      suspects.push_back(std::move(finding));
    }
    for (auto& link : link_faults_) suspects.push_back(link);
    for (auto& [key, node] : node_faults_) suspects.push_back(node);
    // A node faulty towards every other region is one suspect, towards "*".
    std::map<std::string, std::vector<size_t>> by_node;
    for (size_t i = 0; i < suspects.size(); ++i) {
      if (suspects[i].kind == v1::SUSPECT_KIND_NODE) by_node[suspects[i].node].push_back(i);
    }
    std::vector<bool> drop(suspects.size(), false);
    for (const auto& [node, indices] : by_node) {
      if (indices.size() < 2) continue;
      std::set<std::string> peers;
      for (size_t i : indices) peers.insert(suspects[i].peer_region);
      const std::string& home = suspects[indices.front()].region;
      const bool everywhere = std::all_of(regions_.begin(), regions_.end(), [&](const std::string& r) {
        return r == home || peers.count(r) || views_[{r, home}].observers == 0;
      });
      if (!everywhere) continue;
      SuspectFinding merged = suspects[indices.front()];
      merged.peer_region = kAnyRegion;
      for (size_t k = 1; k < indices.size(); ++k) {
        const SuspectFinding& other = suspects[indices[k]];
        merged.loss.sent += other.loss.sent;
        merged.loss.out_lost += other.loss.out_lost;
        merged.loss.in_lost += other.loss.in_lost;
        merged.loss.unknown += other.loss.unknown;
        merged.evidence += "; " + other.evidence;
        drop[indices[k]] = true;
      }
      suspects[indices.front()] = std::move(merged);
    }
    std::vector<SuspectFinding> kept;
    for (size_t i = 0; i < suspects.size(); ++i) {
      if (!drop[i]) kept.push_back(std::move(suspects[i]));
    }
    auto order = [](const SuspectFinding& s) {
      return std::make_tuple(-SeverityOf(s.severity), static_cast<int>(s.kind), s.region, s.node,
                             s.peer_region);
    };
    std::sort(kept.begin(), kept.end(), [&](const auto& x, const auto& y) { return order(x) < order(y); });
    return kept;
  }

  std::string SuspectWords(const SuspectFinding& s, v1::LossDirection direction) const {
    const bool total = s.loss.AsCounts().Loss() >= t_.unreachable_loss;
    switch (s.kind) {
      case v1::SUSPECT_KIND_NODE:
        return "node fault: " + s.node + " (" + s.region + ") " +
               DirectionWords(direction, s.peer_region, total) + "; its region-mates are fine, so " +
               s.region + " is not blamed (" + s.evidence + ")";
      case v1::SUSPECT_KIND_LINK:
        return "link fault: " + s.region + " " + DirectionWords(direction, s.peer_region, total) +
               "; neither region is blamed (" + s.evidence + ")";
      default:
        return "";
    }
  }

  VerdictEvaluation Describe() {
    const std::string& active = config_.active_region;
    // Other regions' trouble (and the active region's, when the action did not explain it),
    // localised faults and replication at risk, for the people reading the verdict.
    for (const auto& region : regions_) {
      if (region == active && active_explained_) continue;
      const auto state = StateOf(region);
      if (state == v1::REGION_STATE_DEGRADED || state == v1::REGION_STATE_UNREACHABLE) {
        const Assessment& a = assessments_[region];
        reasons_.push_back(region + " " + RegionStateName(state) + ": " +
                           (a.state == state
                                ? a.Why()
                                : "held for the " + Seconds(config_.dwell) + " dwell; now: " + a.Why()));
      }
    }
    const std::vector<SuspectFinding> suspects = Suspects();
    const double noise = t_.degraded_loss / 2;
    std::set<std::string> seen;
    for (const SuspectFinding& s : suspects) {
      if (s.kind != v1::SUSPECT_KIND_REGION)
        reasons_.push_back(SuspectWords(s, LossDirectionOf(s.loss.AsCounts(), noise)));
      seen.insert(s.Key());
    }
    std::erase_if(engine_.suspect_since_, [&](const auto& entry) { return !seen.count(entry.first); });
    for (const auto& flow : evidence_.replication) {
      if (!ReplicationAtRisk(t_, flow.staleness, flow.rate_bps, flow.expected_min_rate_bps)) continue;
      const std::string why = flow.staleness >= t_.replication_staleness
                                  ? "stale for " + Seconds(flow.staleness) + " (threshold " +
                                        Seconds(t_.replication_staleness) + ")"
                                  : "at " + std::to_string(flow.rate_bps) + " B/s, below its minimum " +
                                        std::to_string(flow.expected_min_rate_bps) + " B/s";
      reasons_.push_back("replication " + flow.name + " " + flow.source_region + " -> " + flow.remote_region +
                         " " + why);
    }

    v1::Verdict verdict;
    *verdict.mutable_computed_at() = ToTimestamp(now_);
    verdict.set_active_region(active);
    verdict.set_action(action_);
    verdict.set_target_region(target_);
    verdict.set_aggregator_region(config_.own_region);
    verdict.set_manual_decision(manual_decision_);
    *verdict.mutable_max_data_loss() = ToDuration(config_.max_data_loss);
    for (const auto& standby : config_.standby_regions) verdict.add_standby_regions(standby);
    for (auto& risk : data_at_risk_) *verdict.add_data_at_risk() = risk;
    for (const SuspectFinding& s : suspects) {
      v1::Suspect* out = verdict.add_suspects();
      out->set_kind(s.kind);
      out->set_node(s.node);
      out->set_region(s.region);
      out->set_peer_region(s.peer_region);
      out->set_direction(LossDirectionOf(s.loss.AsCounts(), noise));
      out->set_severity(s.severity);
      out->set_evidence(s.evidence);
      const auto [it, fresh] = engine_.suspect_since_.try_emplace(s.Key(), now_);
      *out->mutable_since() = ToTimestamp(it->second);
    }
    for (const auto& region : regions_) {
      const VerdictEngine::RegionHistory& h = engine_.history_[region];
      const Assessment& a = assessments_[region];
      v1::RegionHealth* health = verdict.add_regions();
      health->set_region(region);
      health->set_state(h.state);
      *health->mutable_since() = ToTimestamp(h.since);
      health->set_role(region == active    ? v1::REGION_ROLE_ACTIVE
                       : IsStandby(region) ? v1::REGION_ROLE_STANDBY
                                           : v1::REGION_ROLE_OBSERVER);
      const bool agrees = h.state == a.state;
      health->set_observers_agreeing(agrees ? a.observers_agreeing : 0);
      health->set_observers_reporting(a.observers_reporting);
      health->set_observer_regions_agreeing(agrees ? a.observer_regions_agreeing : 0);
      health->set_observer_regions_reporting(a.observer_regions_reporting);
      health->set_loss(a.counts.Loss());
      if (a.counts.sent > 0) {
        const double sent = static_cast<double>(a.counts.sent);
        health->set_loss_forward(static_cast<double>(a.counts.LostForward()) / sent);
        health->set_loss_reverse(static_cast<double>(a.counts.LostReverse()) / sent);
        health->set_loss_unknown(static_cast<double>(a.counts.lost_unknown) / sent);
      }
      if (a.p50) *health->mutable_rtt_p50() = ToDuration(*a.p50);
      if (a.p99) *health->mutable_rtt_p99() = ToDuration(*a.p99);
      *health->mutable_replication_staleness() = ToDuration(a.replication_staleness);
      health->set_agents_reporting(a.agents.reporting);
      health->set_agents_not_reporting(a.agents.not_reporting);
      if (IsStandby(region) && region != active) health->set_replication_status(AssessStandby(region).status);
      for (const auto& flow : evidence_.replication) {
        if (flow.remote_region != region) continue;
        v1::ReplicationHealth* r = health->add_replication();
        r->set_name(flow.name);
        r->set_remote_region(flow.remote_region);
        *r->mutable_staleness() = ToDuration(flow.staleness);
        r->set_rate_bps(flow.rate_bps);
        r->set_expected_min_rate_bps(flow.expected_min_rate_bps);
        r->set_at_risk(ReplicationAtRisk(t_, flow.staleness, flow.rate_bps, flow.expected_min_rate_bps));
      }
    }
    for (auto& reason : reasons_) verdict.add_reasons(std::move(reason));

    const v1::Verdict& current = engine_.current_;
    VerdictEvaluation evaluation;
    evaluation.previous_action =
        current.computed_at().seconds() == 0 ? v1::ACTION_UNSPECIFIED : current.action();
    if (current.computed_at().seconds() == 0) evaluation.changes.push_back("first verdict");
    if (current.action() != action_) {
      evaluation.changes.push_back(std::string("action: ") + ActionName(current.action()) + " -> " +
                                   ActionName(action_));
    }
    if (current.target_region() != target_) {
      evaluation.changes.push_back("target: '" + current.target_region() + "' -> '" + target_ + "'");
    }
    if (current.manual_decision() != manual_decision_) {
      evaluation.changes.push_back(manual_decision_ ? "manual decision needed"
                                                    : "manual decision no longer needed");
    }
    std::map<std::string, v1::RegionState> before;
    for (const auto& health : current.regions()) before[health.region()] = health.state();
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
    verdict.set_generation(current.generation() + (evaluation.changed ? 1 : 0));
    engine_.current_ = verdict;
    evaluation.verdict = std::move(verdict);
    return evaluation;
  }

  VerdictEngine& engine_;
  const VerdictEngineConfig& config_;
  const RegionThresholds& t_;
  const VerdictEvidence& evidence_;
  const WallClock::time_point now_;

  std::vector<std::string> regions_;
  std::map<std::string, std::set<std::string>> excluded_observer_;  // observer -> target regions
  std::map<std::string, std::set<std::string>> excluded_target_;    // target node -> observer regions
  std::set<std::pair<std::string, std::string>> excluded_views_;    // (observer region, target region)
  std::map<std::pair<std::string, std::string>, RegionView> views_;
  std::map<std::pair<std::string, std::string>, SuspectFinding> node_faults_;  // (node, peer)
  std::vector<SuspectFinding> link_faults_;
  std::map<std::string, Assessment> assessments_;

  v1::Action action_ = v1::ACTION_HOLD;
  std::string target_;
  bool manual_decision_ = false;
  bool active_explained_ = false;
  std::vector<v1::DataAtRisk> data_at_risk_;
  std::vector<std::string> reasons_;
};

VerdictEngine::VerdictEngine(VerdictEngineConfig config) : config_(std::move(config)) {
  current_.set_action(v1::ACTION_HOLD);
  current_.set_active_region(config_.active_region);
  current_.set_aggregator_region(config_.own_region);
}

void VerdictEngine::Reconfigure(VerdictEngineConfig config) {
  if (config.active_region != config_.active_region) {
    latch_.reset();
    advice_target_.clear();
  }
  config_ = std::move(config);
}

VerdictEvaluation VerdictEngine::Evaluate(const VerdictEvidence& evidence, WallClock::time_point now) {
  return VerdictEngineSteps(*this, evidence, now).Run();
}

v1::VerdictEngineState VerdictEngine::SaveState() const {
  v1::VerdictEngineState state;
  state.set_generation(current_.generation());
  state.set_active_region(config_.active_region);
  for (const auto& [region, h] : history_) {
    v1::RegionDecisionState* out = state.add_regions();
    out->set_region(region);
    out->set_state(h.state);
    *out->mutable_since() = ToTimestamp(h.since);
    for (bool ever : h.ever_at) out->add_ever_at(ever);
  }
  if (latch_) {
    state.set_failover_latched(true);
    state.set_failover_target(latch_->target);
    *state.mutable_latched_at() = ToTimestamp(latch_->at);
    for (const auto& risk : latch_->data_at_risk) *state.add_data_at_risk() = risk;
  }
  return state;
}

bool VerdictEngine::RestoreState(const v1::VerdictEngineState& state) {
  // Generations continue whatever the active region: numbers must never repeat.
  current_.set_generation(std::max(current_.generation(), state.generation()));
  if (state.active_region() != config_.active_region) return false;
  for (const auto& saved : state.regions()) {
    RegionHistory& h = history_[saved.region()];
    h.state = saved.state();
    h.since = FromTimestamp(saved.since());
    for (int s = 0; s < kSeverityCount && s < saved.ever_at_size(); ++s) h.ever_at[s] = saved.ever_at(s);
    // Nothing was seen while down: the dwell and the hold start again with the next evidence.
    h.below_since.fill(std::nullopt);
    h.raw_unreachable_since.reset();
    v1::RegionHealth* health = current_.add_regions();
    health->set_region(saved.region());
    health->set_state(saved.state());
    *health->mutable_since() = saved.since();
  }
  if (state.failover_latched() && !state.failover_target().empty()) {
    Latch latch;
    latch.target = state.failover_target();
    latch.at = FromTimestamp(state.latched_at());
    latch.data_at_risk.assign(state.data_at_risk().begin(), state.data_at_risk().end());
    latch_ = std::move(latch);
  }
  return true;
}

}  // namespace regionpulse
