// What the agent accepts of an aggregator's probe plan: hostile intervals, payloads, target
// counts and targets outside the allowed networks are refused with a reason; versions are
// compared per aggregator.
#include <gtest/gtest.h>

#include <limits>

#include "agent/agent.h"
#include "agent/agent_config.h"
#include "agent/plan_check.h"
#include "common/proto_convert.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

PlanLimits DefaultLimits() {
  PlanLimits limits;
  for (const auto& text : DefaultAllowedTargetCidrs())
    limits.allowed_target_cidrs.push_back(*ParseCidr(text));
  return limits;
}

v1::ProbePlan PlanTo(std::initializer_list<const char*> addresses) {
  v1::ProbePlan plan;
  plan.set_plan_version(1);
  int i = 0;
  for (const char* address : addresses) {
    auto* target = plan.add_targets();
    target->set_node("node-" + std::to_string(i++));
    target->mutable_endpoint()->set_address(address);
    target->mutable_endpoint()->set_port(862);
  }
  *plan.mutable_interval() = ToDuration(100ms);
  return plan;
}

TEST(CheckProbePlan, AnOrdinaryPlanIsAccepted) {
  auto plan = PlanTo({"10.1.0.10", "172.16.4.2", "192.168.1.1", "100.64.0.7", "fd00:1::2"});
  plan.set_payload_size(256);
  const auto verdict = CheckProbePlan(plan, DefaultLimits());
  EXPECT_TRUE(verdict.accepted()) << verdict.detail;
  // Unset interval and payload keep the current ones: nothing to refuse.
  EXPECT_TRUE(CheckProbePlan(v1::ProbePlan{}, DefaultLimits()).accepted());
}

TEST(CheckProbePlan, AOneMicrosecondIntervalIsRefused) {
  auto plan = PlanTo({"10.1.0.10"});
  *plan.mutable_interval() = ToDuration(1us);
  const auto verdict = CheckProbePlan(plan, DefaultLimits());
  ASSERT_FALSE(verdict.accepted());
  EXPECT_EQ(*verdict.refusal, PlanRefusal::kInterval);
  EXPECT_NE(verdict.detail.find("1us"), std::string::npos) << verdict.detail;
  *plan.mutable_interval() = ToDuration(-5s);
  EXPECT_EQ(CheckProbePlan(plan, DefaultLimits()).refusal, PlanRefusal::kInterval);
}

TEST(CheckProbePlan, AFourGibibytePayloadIsRefused) {
  auto plan = PlanTo({"10.1.0.10"});
  plan.set_payload_size(std::numeric_limits<uint32_t>::max());
  EXPECT_EQ(CheckProbePlan(plan, DefaultLimits()).refusal, PlanRefusal::kPayloadSize);
  plan.set_payload_size(1453);  // one past an unfragmented IPv6 packet on a 1500 MTU
  EXPECT_EQ(CheckProbePlan(plan, DefaultLimits()).refusal, PlanRefusal::kPayloadSize);
  plan.set_payload_size(1452);
  EXPECT_TRUE(CheckProbePlan(plan, DefaultLimits()).accepted());
}

TEST(CheckProbePlan, AHundredThousandTargetsAreRefused) {
  v1::ProbePlan plan = PlanTo({});
  for (int i = 0; i < 100'000; ++i) {
    auto* target = plan.add_targets();
    target->mutable_endpoint()->set_address("10.9." + std::to_string(i / 256 % 256) + "." +
                                            std::to_string(i % 256));
    target->mutable_endpoint()->set_port(862);
  }
  const auto verdict = CheckProbePlan(plan, DefaultLimits());
  ASSERT_FALSE(verdict.accepted());
  EXPECT_EQ(*verdict.refusal, PlanRefusal::kTargetCount);
  EXPECT_NE(verdict.detail.find("100000 targets"), std::string::npos) << verdict.detail;
}

TEST(CheckProbePlan, ATargetOutsideTheAllowedNetworksIsRefused) {
  for (const char* outside : {"8.8.8.8", "127.0.0.1", "169.254.169.254", "2001:db8::1", "::ffff:8.8.8.8"}) {
    const auto verdict = CheckProbePlan(PlanTo({"10.1.0.10", outside}), DefaultLimits());
    ASSERT_FALSE(verdict.accepted()) << outside;
    EXPECT_EQ(*verdict.refusal, PlanRefusal::kTargetOutside) << outside;
    EXPECT_NE(verdict.detail.find(outside), std::string::npos) << verdict.detail;
  }
  // An IPv4-mapped address is the IPv4 address it maps.
  EXPECT_TRUE(CheckProbePlan(PlanTo({"::ffff:10.1.0.10"}), DefaultLimits()).accepted());
  // A narrower configured list is what counts.
  PlanLimits narrow;
  narrow.allowed_target_cidrs = {*ParseCidr("10.1.0.0/16")};
  EXPECT_TRUE(CheckProbePlan(PlanTo({"10.1.200.3"}), narrow).accepted());
  EXPECT_EQ(CheckProbePlan(PlanTo({"10.2.0.3"}), narrow).refusal, PlanRefusal::kTargetOutside);
}

TEST(CheckProbePlan, ATargetThatIsNotAnAddressAndPortIsRefused) {
  EXPECT_EQ(CheckProbePlan(PlanTo({"example.com"}), DefaultLimits()).refusal, PlanRefusal::kBadTarget);
  auto plan = PlanTo({"10.1.0.10"});
  plan.mutable_targets(0)->mutable_endpoint()->set_port(70000);
  EXPECT_EQ(CheckProbePlan(plan, DefaultLimits()).refusal, PlanRefusal::kBadTarget);
}

TEST(PlanVersions, EachAggregatorsVersionsAreItsOwn) {
  PlanVersions versions;
  EXPECT_TRUE(versions.IsNewer("a:7700", 1));
  // A hostile or confused aggregator jumps to 2^63...
  versions.Record("evil:7700", uint64_t{1} << 63);
  // ...and the others' plans still apply.
  EXPECT_TRUE(versions.IsNewer("a:7700", 1));
  versions.Record("a:7700", 5);
  EXPECT_FALSE(versions.IsNewer("a:7700", 5));
  EXPECT_FALSE(versions.IsNewer("a:7700", 4));
  EXPECT_TRUE(versions.IsNewer("a:7700", 6));
  EXPECT_FALSE(versions.IsNewer("evil:7700", 7));
  EXPECT_TRUE(versions.IsNewer("b:7700", 1));
}

TEST(PlanLimitsFrom, ConfigKeysReachTheLimits) {
  auto config = ParseAgentConfig(
      "node: n\nregion: r\nprobe:\n  authenticated: false\n"
      "  allowed_target_cidrs: [10.7.0.0/16, fd07::/16]\n"
      "  plan_limits: {min_interval: 20ms, max_payload_size: 1200, max_targets: 10}\n",
      {});
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  const PlanLimits limits = PlanLimitsFrom(*config);
  EXPECT_EQ(limits.min_interval, 20ms);
  EXPECT_EQ(limits.max_payload_size, 1200u);
  EXPECT_EQ(limits.max_targets, 10u);
  ASSERT_EQ(limits.allowed_target_cidrs.size(), 2u);
  EXPECT_EQ(limits.allowed_target_cidrs[0].text, "10.7.0.0/16");

  auto defaults = ParseAgentConfig("node: n\nregion: r\nprobe: {authenticated: false}\n", {});
  ASSERT_TRUE(defaults.ok()) << defaults.error().ToString();
  EXPECT_EQ(defaults->probe.allowed_target_cidrs, DefaultAllowedTargetCidrs());
  EXPECT_EQ(PlanLimitsFrom(*defaults).min_interval, 100ms);

  auto bad = ParseAgentConfig(
      "node: n\nregion: r\nprobe: {authenticated: false, allowed_target_cidrs: [10.1.0.1/16]}\n", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().ToString().find("probe.allowed_target_cidrs[0]"), std::string::npos)
      << bad.error().ToString();
}

}  // namespace
}  // namespace regionpulse
