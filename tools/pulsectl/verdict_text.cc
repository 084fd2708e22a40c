// pulsectl's verdict text: header lines, the region table, data at risk, suspects, flows.
#include "tools/pulsectl/verdict_text.h"

#include <algorithm>
#include <cstdio>

#include "common/config_text.h"
#include "common/proto_convert.h"
#include "tools/pulsectl/table.h"

namespace regionpulse::pulsectl {
namespace {

// "45s", "12m", "3h", "2d": the SINCE column stays four characters wide.
std::string CompactAge(const google::protobuf::Timestamp& at, std::chrono::system_clock::time_point now) {
  if (at.seconds() == 0 && at.nanos() == 0) return "-";
  const int64_t seconds = std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() - at.seconds());
  if (seconds < 120) return std::to_string(seconds) + "s";
  if (seconds < 120 * 60) return std::to_string(seconds / 60) + "m";
  if (seconds < 48 * 3600) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

// "0 s", "2.2 s", "45 s", "3 min 10 s": a lag or a loss of writes, readable at any size.
const char* RoleName(v1::RegionRole role) {
  switch (role) {
    case v1::REGION_ROLE_ACTIVE:
      return "active";
    case v1::REGION_ROLE_STANDBY:
      return "standby";
    case v1::REGION_ROLE_OBSERVER:
      return "observer";
    default:
      return "-";
  }
}

const char* ReplicaName(v1::ReplicationStatus status) {
  switch (status) {
    case v1::REPLICATION_STATUS_CURRENT:
      return "replica current";
    case v1::REPLICATION_STATUS_STALE:
      return "replica stale";
    case v1::REPLICATION_STATUS_UNKNOWN:
      return "replication unknown";
    default:
      return "replication -";
  }
}

// Which way a region's loss mostly goes, from its three parts. Unknown wins ties: a direction
// is shown only when the far ends' own counts say so.
v1::LossDirection DominantDirection(const v1::RegionHealth& region) {
  const double forward = region.loss_forward(), reverse = region.loss_reverse(),
               unknown = region.loss_unknown();
  if (forward + reverse + unknown <= 0.0) return v1::LOSS_DIRECTION_NONE;
  if (unknown >= forward && unknown >= reverse) return v1::LOSS_DIRECTION_UNKNOWN;
  if (std::min(forward, reverse) >= 0.25 * std::max(forward, reverse)) return v1::LOSS_DIRECTION_BOTH;
  return forward > reverse ? v1::LOSS_DIRECTION_FORWARD : v1::LOSS_DIRECTION_REVERSE;
}

std::string LossCell(const v1::RegionHealth& region) {
  if (region.observer_regions_reporting() == 0 && region.loss() == 0.0) return "-";
  const v1::LossDirection direction = DominantDirection(region);
  return FormatPercentShort(region.loss()) +
         (direction == v1::LOSS_DIRECTION_NONE ? "" : " " + ShortDirection(direction));
}

std::string SuspectSubject(const v1::Suspect& suspect) {
  const std::string peer = suspect.peer_region() == "*" ? "every other region" : suspect.peer_region();
  switch (suspect.kind()) {
    case v1::SUSPECT_KIND_NODE:
      return "node " + suspect.node() + " (" + suspect.region() + ") <-> " + peer;
    case v1::SUSPECT_KIND_LINK:
      return "link " + suspect.region() + " <-> " + peer;
    case v1::SUSPECT_KIND_REGION:
      return "region " + suspect.region();
    default:
      return suspect.region();
  }
}

void PrintHeader(const v1::Verdict& verdict, std::chrono::system_clock::time_point now, std::ostream& out) {
  out << "action      " << ActionWithTarget(verdict) << "\n";
  if (verdict.manual_decision()) {
    out << "decision    MANUAL: failing over would lose more than max_data_loss ("
        << FormatSpan(FromDuration(verdict.max_data_loss())) << "); a person must decide\n";
  }
  out << "active      " << (verdict.active_region().empty() ? "-" : verdict.active_region()) << "\n";
  if (verdict.standby_regions_size() > 0) {
    std::string standbys;
    for (const auto& standby : verdict.standby_regions()) {
      std::string replica = ReplicaName(v1::REPLICATION_STATUS_UNSPECIFIED);
      for (const auto& region : verdict.regions()) {
        if (region.region() == standby) replica = ReplicaName(region.replication_status());
      }
      standbys += (standbys.empty() ? "" : ", ") + standby + " (" + replica + ")";
    }
    out << "standbys    " << standbys << "\n";
  }
  if (verdict.has_max_data_loss())
    out << "max loss    " << FormatSpan(FromDuration(verdict.max_data_loss())) << "\n";
  out << "generation  " << verdict.generation() << "\n";
  out << "computed    " << FormatTime(verdict.computed_at()) << " (" << FormatAge(verdict.computed_at(), now)
      << ")\n";
  out << "aggregator  " << (verdict.aggregator_region().empty() ? "-" : verdict.aggregator_region()) << "\n";
}

void PrintRegions(const v1::Verdict& verdict, std::chrono::system_clock::time_point now, std::ostream& out) {
  if (verdict.regions_size() == 0) return;
  // QUORUM: observer regions that see this region's state / observer regions reporting on it.
  Table table({{"REGION"},
               {"ROLE"},
               {"STATE"},
               {"SINCE", Table::Align::kRight},
               {"QUORUM", Table::Align::kRight},
               {"LOSS", Table::Align::kRight},
               {"RTT P99", Table::Align::kRight},
               {"AGENTS", Table::Align::kRight}});
  for (const auto& region : verdict.regions()) {
    table.AddRow(
        {region.region(), RoleName(region.role()), ShortState(region.state()),
         CompactAge(region.since(), now),
         std::to_string(region.observer_regions_agreeing()) + "/" +
             std::to_string(region.observer_regions_reporting()),
         LossCell(region), FormatMillis(region.rtt_p99()),
         std::to_string(region.agents_reporting()) + "/" + std::to_string(region.agents_not_reporting())});
  }
  out << "\n";
  table.Print(out);
}

void PrintDataAtRisk(const v1::Verdict& verdict, std::chrono::system_clock::time_point now,
                     std::ostream& out) {
  if (verdict.data_at_risk_size() == 0) return;
  // AT MOST = LAG + GAP: the replica's lag in the last report before the cut, plus the time
  // from that report to the last moment the active region was seen answering.
  Table table({{"FLOW"},
               {"INTO"},
               {"LAG", Table::Align::kRight},
               {"GAP", Table::Align::kRight},
               {"AT MOST", Table::Align::kRight},
               {"UNACKED", Table::Align::kRight},
               {"AS OF", Table::Align::kRight}});
  bool any_silent = false;
  for (const auto& risk : verdict.data_at_risk()) {
    any_silent = any_silent || risk.source_silent();
    table.AddRow({risk.flow() + (risk.source_silent() ? "*" : ""), risk.target_region(),
                  FormatSpan(FromDuration(risk.replica_lag())), FormatSpan(FromDuration(risk.evidence_gap())),
                  FormatSpan(FromDuration(risk.at_most())), FormatBytes(risk.bytes_outstanding()),
                  CompactAge(risk.as_of(), now)});
  }
  out << "\ndata at risk if failing over\n";
  table.Print(out);
  if (any_silent) out << "  * the active region's agents are silent: the lag is from their last report\n";
}

void PrintSuspects(const v1::Verdict& verdict, std::chrono::system_clock::time_point now, std::ostream& out) {
  if (verdict.suspects_size() == 0) return;
  out << "\nsuspects\n";
  for (const auto& suspect : verdict.suspects()) {
    const bool directed = suspect.direction() != v1::LOSS_DIRECTION_NONE &&
                          suspect.direction() != v1::LOSS_DIRECTION_UNSPECIFIED;
    out << "  - " << SuspectSubject(suspect) << ": " << ShortState(suspect.severity())
        << (directed ? ", loss " + ShortDirection(suspect.direction()) : "") << ", for "
        << CompactAge(suspect.since(), now) << "\n";
    if (!suspect.evidence().empty()) out << "      " << suspect.evidence() << "\n";
  }
}

void PrintReplication(const v1::Verdict& verdict, std::ostream& out) {
  Table flows({{"REGION"},
               {"FLOW"},
               {"STALENESS", Table::Align::kRight},
               {"RATE", Table::Align::kRight},
               {"MIN RATE", Table::Align::kRight},
               {"AT RISK"}});
  for (const auto& region : verdict.regions()) {
    for (const auto& flow : region.replication()) {
      flows.AddRow({flow.remote_region(), flow.name(), FormatSeconds(flow.staleness()),
                    FormatRate(flow.rate_bps()),
                    flow.expected_min_rate_bps() ? FormatRate(flow.expected_min_rate_bps()) : "-",
                    flow.at_risk() ? "yes" : "no"});
    }
  }
  if (flows.empty()) return;
  out << "\nreplication\n";
  flows.Print(out);
}

}  // namespace

std::string ActionWithTarget(const v1::Verdict& verdict) {
  std::string text = ActionName(verdict.action());
  if (!verdict.target_region().empty()) {
    text += verdict.action() == v1::ACTION_FAILOVER ? " to " + verdict.target_region()
                                                    : " (advice: " + verdict.target_region() + ")";
  }
  return text;
}

std::string ShortState(v1::RegionState state) {
  return state == v1::REGION_STATE_UNSPECIFIED ? "-" : RegionStateName(state);
}

std::string ShortDirection(v1::LossDirection direction) {
  switch (direction) {
    case v1::LOSS_DIRECTION_FORWARD:
      return "fwd";
    case v1::LOSS_DIRECTION_REVERSE:
      return "rev";
    case v1::LOSS_DIRECTION_BOTH:
      return "both";
    case v1::LOSS_DIRECTION_UNKNOWN:
      return "?";
    default:
      return "-";
  }
}

void PrintVerdict(const v1::Verdict& verdict, std::chrono::system_clock::time_point now, std::ostream& out) {
  PrintHeader(verdict, now, out);
  PrintRegions(verdict, now, out);
  PrintDataAtRisk(verdict, now, out);
  PrintSuspects(verdict, now, out);
  PrintReplication(verdict, out);
  if (verdict.reasons_size() > 0) {
    out << "\nreasons\n";
    for (const auto& reason : verdict.reasons()) out << "  - " << reason << "\n";
  }
}

}  // namespace regionpulse::pulsectl
