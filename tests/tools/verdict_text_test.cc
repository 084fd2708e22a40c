// pulsectl's verdict text, from hand-built verdicts: what a paged engineer must read at once
// (manual decision, data at risk, which node or link is at fault, which way the loss goes)
// is there, and the tables fit 80 columns.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "common/proto_convert.h"
#include "tools/pulsectl/verdict_text.h"

namespace regionpulse::pulsectl {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));

google::protobuf::Timestamp Ago(std::chrono::seconds age) {
  return ToTimestamp(kNow - age);
}

v1::RegionHealth* AddRegion(v1::Verdict& verdict, const std::string& name, v1::RegionRole role,
                            v1::RegionState state) {
  v1::RegionHealth* region = verdict.add_regions();
  region->set_region(name);
  region->set_role(role);
  region->set_state(state);
  *region->mutable_since() = Ago(754s);
  region->set_observer_regions_agreeing(2);
  region->set_observer_regions_reporting(2);
  region->set_agents_reporting(2);
  return region;
}

// The seed's incident with a replica too far behind: HOLD for a person to decide.
v1::Verdict ActiveDarkReplicaBehind() {
  v1::Verdict verdict;
  verdict.set_action(v1::ACTION_HOLD);
  verdict.set_target_region("eu-west-1");
  verdict.set_manual_decision(true);
  verdict.set_active_region("us-east-1");
  verdict.set_aggregator_region("ap-southeast-1");
  verdict.add_standby_regions("eu-west-1");
  *verdict.mutable_max_data_loss() = ToDuration(120s);
  v1::RegionHealth* active =
      AddRegion(verdict, "us-east-1", v1::REGION_ROLE_ACTIVE, v1::REGION_STATE_UNREACHABLE);
  active->set_loss(1.0);
  active->set_loss_unknown(1.0);
  active->set_agents_reporting(0);
  active->set_agents_not_reporting(2);
  v1::RegionHealth* standby =
      AddRegion(verdict, "eu-west-1", v1::REGION_ROLE_STANDBY, v1::REGION_STATE_HEALTHY);
  standby->set_replication_status(v1::REPLICATION_STATUS_STALE);
  *standby->mutable_rtt_p99() = ToDuration(71ms);
  v1::RegionHealth* observer =
      AddRegion(verdict, "ap-southeast-1", v1::REGION_ROLE_OBSERVER, v1::REGION_STATE_HEALTHY);
  observer->set_loss(0.25);
  observer->set_loss_forward(0.02);
  observer->set_loss_reverse(0.23);
  v1::DataAtRisk* risk = verdict.add_data_at_risk();
  risk->set_flow("postgres");
  risk->set_source_region("us-east-1");
  risk->set_target_region("eu-west-1");
  *risk->mutable_replica_lag() = ToDuration(170s);
  *risk->mutable_evidence_gap() = ToDuration(10s);
  *risk->mutable_at_most() = ToDuration(180s);
  risk->set_bytes_outstanding(3 * 1024 * 1024);
  *risk->mutable_as_of() = Ago(40s);
  risk->set_source_silent(true);
  v1::Suspect* node = verdict.add_suspects();
  node->set_kind(v1::SUSPECT_KIND_NODE);
  node->set_node("euw1-b");
  node->set_region("eu-west-1");
  node->set_peer_region("ap-southeast-1");
  node->set_direction(v1::LOSS_DIRECTION_FORWARD);
  node->set_severity(v1::REGION_STATE_DEGRADED);
  node->set_evidence("euw1-b cannot send to ap-southeast-1; its region-mates can");
  *node->mutable_since() = Ago(95s);
  verdict.add_reasons("failing over to eu-west-1 would lose up to 3 min of postgres");
  return verdict;
}

std::string Text(const v1::Verdict& verdict) {
  std::ostringstream out;
  PrintVerdict(verdict, kNow, out);
  return out.str();
}

TEST(VerdictText, ManualDecisionSaysWhatFailingOverWouldLose) {
  const std::string text = Text(ActiveDarkReplicaBehind());
  EXPECT_THAT(text, HasSubstr("action      HOLD (advice: eu-west-1)\n"));
  EXPECT_THAT(text, HasSubstr("decision    MANUAL: failing over would lose more than max_data_loss (2m)"));
  EXPECT_THAT(text, HasSubstr("standbys    eu-west-1 (replica stale)\n"));
  EXPECT_THAT(text, HasSubstr("data at risk if failing over"));
  EXPECT_THAT(text, ContainsRegex("postgres\\* +eu-west-1 +170s +10s +3m +3.0 MiB +40s"));
  EXPECT_THAT(text, HasSubstr("the active region's agents are silent"));
}

TEST(VerdictText, RegionsShowRoleQuorumAndWhichWayTheLossGoes) {
  const std::string text = Text(ActiveDarkReplicaBehind());
  EXPECT_THAT(text, ContainsRegex("REGION +ROLE +STATE +SINCE +QUORUM +LOSS +RTT P99 +AGENTS"));
  // Nobody on the far side reported what it received: the direction is unknown, not forward.
  EXPECT_THAT(text, ContainsRegex("us-east-1 +active +UNREACHABLE +12m +2/2 +100% \\? +- +0/2"));
  EXPECT_THAT(text, ContainsRegex("eu-west-1 +standby +HEALTHY .* 0% +71.0+ ms"));
  EXPECT_THAT(text, ContainsRegex("ap-southeast-1 +observer +HEALTHY .* 25% rev"));
}

TEST(VerdictText, SuspectsNameTheNodeTheDirectionAndTheEvidence) {
  const std::string text = Text(ActiveDarkReplicaBehind());
  EXPECT_THAT(
      text,
      HasSubstr("suspects\n  - node euw1-b (eu-west-1) <-> ap-southeast-1: DEGRADED, loss fwd, for 95s\n"
                "      euw1-b cannot send to ap-southeast-1; its region-mates can\n"));
}

TEST(VerdictText, TablesFitEightyColumns) {
  std::istringstream lines(Text(ActiveDarkReplicaBehind()));
  for (std::string line; std::getline(lines, line);) {
    // Free text (evidence under a suspect, reasons) wraps in the terminal; tables must not.
    if (line.rfind("      ", 0) == 0 || line.rfind("  - ", 0) == 0 || line.rfind("decision", 0) == 0)
      continue;
    EXPECT_LE(line.size(), 80u) << line;
  }
}

TEST(VerdictText, FailoverNamesItsTargetAndAHealthyVerdictHasNoSections) {
  v1::Verdict verdict;
  verdict.set_action(v1::ACTION_STAY);
  verdict.set_active_region("us-east-1");
  AddRegion(verdict, "us-east-1", v1::REGION_ROLE_ACTIVE, v1::REGION_STATE_HEALTHY);
  std::string text = Text(verdict);
  EXPECT_THAT(text, HasSubstr("action      STAY\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("suspects")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("data at risk")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("decision")));
  verdict.set_action(v1::ACTION_FAILOVER);
  verdict.set_target_region("eu-west-1");
  EXPECT_THAT(Text(verdict), HasSubstr("action      FAILOVER to eu-west-1\n"));
}

}  // namespace
}  // namespace regionpulse::pulsectl
