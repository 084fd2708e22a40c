// ProbePlanner: k targets per region, every node probed by about k nodes of each region,
// rotation, determinism, plan versions, and O(n*k) growth.
#include "aggregator/probe_planner.h"

#include <cmath>
#include <map>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

const WallClock::time_point kT0 = WallClock::time_point(std::chrono::seconds(1'800'000'000));

std::vector<std::string> AddRegion(ProbePlanner& planner, const std::string& region, int nodes) {
  std::vector<std::string> names;
  for (int i = 0; i < nodes; ++i) {
    const std::string node = region + "-" + std::to_string(i);
    planner.Upsert({node, region, region + "a", {"10.0.0." + std::to_string(i), 862}});
    names.push_back(node);
  }
  return names;
}

// In-degree of every node from probers of each region: target -> source region -> count.
std::map<std::string, std::map<std::string, int>> InDegrees(ProbePlanner& planner,
                                                            const std::vector<std::string>& nodes,
                                                            WallClock::time_point now) {
  std::map<std::string, std::map<std::string, int>> in;
  for (const auto& node : nodes) {
    const auto plan = planner.PlanFor(node, now);
    const std::string source_region = node.substr(0, node.rfind('-'));
    for (const auto& target : plan->targets()) ++in[target.node()][source_region];
  }
  return in;
}

TEST(ProbePlannerTest, KTargetsInEveryRemoteRegionAndInTheOwnNeverItself) {
  ProbePlanner planner;  // k = 3
  std::vector<std::string> all;
  for (const auto& region : {"us-east-1", "eu-west-1", "ap-southeast-1"}) {
    const auto nodes = AddRegion(planner, region, 10);
    all.insert(all.end(), nodes.begin(), nodes.end());
  }
  for (const auto& node : all) {
    const auto plan = planner.PlanFor(node, kT0);
    ASSERT_TRUE(plan.has_value());
    std::map<std::string, int> per_region;
    std::set<std::string> distinct;
    for (const auto& target : plan->targets()) {
      EXPECT_NE(target.node(), node);
      EXPECT_EQ(target.endpoint().port(), 862u);
      ++per_region[target.region()];
      distinct.insert(target.node());
    }
    EXPECT_EQ(distinct.size(), static_cast<size_t>(plan->targets_size())) << node;
    EXPECT_EQ(per_region,
              (std::map<std::string, int>{{"ap-southeast-1", 3}, {"eu-west-1", 3}, {"us-east-1", 3}}))
        << node;
    EXPECT_EQ(FromDuration(plan->interval()), 100ms);
  }
  EXPECT_FALSE(planner.PlanFor("nobody", kT0).has_value());
}

TEST(ProbePlannerTest, EveryNodeIsProbedByAboutKNodesOfEachRegion) {
  ProbePlanner planner;
  std::vector<std::string> all;
  const std::map<std::string, int> sizes = {{"us-east-1", 12}, {"eu-west-1", 7}, {"ap-southeast-1", 20}};
  for (const auto& [region, n] : sizes) {
    const auto nodes = AddRegion(planner, region, n);
    all.insert(all.end(), nodes.begin(), nodes.end());
  }
  for (int rotation = 0; rotation < 5; ++rotation) {
    const auto now = kT0 + std::chrono::seconds(300 * rotation);
    const auto in = InDegrees(planner, all, now);
    for (const auto& target : all) {
      const std::string target_region = target.substr(0, target.rfind('-'));
      for (const auto& [source_region, n] : sizes) {
        const int degree =
            in.count(target) && in.at(target).count(source_region) ? in.at(target).at(source_region) : 0;
        if (source_region == target_region) {
          EXPECT_EQ(degree, 3) << target << " from its own region";
          continue;
        }
        // k probers per target when sizes match, k * n / m in general, give or take one.
        const double expected = 3.0 * n / sizes.at(target_region);
        EXPECT_GE(degree, std::floor(expected) - 1) << target << " from " << source_region;
        EXPECT_LE(degree, std::ceil(expected) + 1) << target << " from " << source_region;
      }
    }
  }
}

TEST(ProbePlannerTest, SmallRegionsGetEveryPeerOnce) {
  ProbePlanner planner;
  AddRegion(planner, "us-east-1", 2);
  AddRegion(planner, "eu-west-1", 1);
  const auto plan = planner.PlanFor("us-east-1-0", kT0);
  ASSERT_EQ(plan->targets_size(), 2);
  std::set<std::string> targets;
  for (const auto& t : plan->targets()) targets.insert(t.node());
  EXPECT_EQ(targets, (std::set<std::string>{"eu-west-1-0", "us-east-1-1"}));
  EXPECT_EQ(planner.PlanFor("eu-west-1-0", kT0)->targets_size(), 2);  // both of us-east-1, none of its own
}

TEST(ProbePlannerTest, RotationChangesTargetsDeterministically) {
  ProbePlannerConfig config;
  config.seed = 7;
  ProbePlanner a(config);
  ProbePlanner b(config);
  config.seed = 8;
  ProbePlanner other_seed(config);
  std::vector<std::string> nodes;
  for (auto* planner : {&a, &b, &other_seed}) {
    nodes = AddRegion(*planner, "us-east-1", 30);
    AddRegion(*planner, "eu-west-1", 30);
  }
  auto targets = [](const std::optional<v1::ProbePlan>& plan) {
    std::vector<std::string> out;
    for (const auto& t : plan->targets()) out.push_back(t.node());
    return out;
  };
  int rotated = 0;
  int differs_by_seed = 0;
  for (const auto& node : nodes) {
    const auto now = targets(a.PlanFor(node, kT0));
    EXPECT_EQ(now, targets(b.PlanFor(node, kT0))) << "same seed, same inputs, same plan";
    EXPECT_EQ(now, targets(a.PlanFor(node, kT0 + 299s))) << "same epoch, same plan";
    if (now != targets(a.PlanFor(node, kT0 + 300s))) ++rotated;
    if (now != targets(other_seed.PlanFor(node, kT0))) ++differs_by_seed;
    a.PlanFor(node, kT0);  // back to the first epoch for the next node
  }
  EXPECT_GE(rotated, 25);
  EXPECT_GE(differs_by_seed, 25);
}

TEST(ProbePlannerTest, PlanVersionIncreasesOnlyWhenThePlanChanges) {
  ProbePlanner planner;
  AddRegion(planner, "us-east-1", 5);
  AddRegion(planner, "eu-west-1", 5);
  const uint64_t v1 = planner.PlanFor("us-east-1-0", kT0)->plan_version();
  EXPECT_GT(v1, 0u);
  EXPECT_EQ(planner.PlanFor("us-east-1-0", kT0 + 1s)->plan_version(), v1);
  EXPECT_EQ(planner.PlanVersion("us-east-1-0"), v1);
  EXPECT_EQ(planner.CurrentPlanVersion("us-east-1-0", kT0 + 1s), v1);
  EXPECT_EQ(planner.CurrentPlanVersion("nobody", kT0), 0u);
  // A peer's reflector moves: the plan changes.
  planner.Upsert({"eu-west-1-0", "eu-west-1", "eu-west-1a", {"10.9.9.9", 8620}});
  for (int i = 1; i < 5; ++i)
    planner.Upsert({"eu-west-1-" + std::to_string(i), "eu-west-1", "", {"10.9.9.9", 8620}});
  const uint64_t v2 = planner.CurrentPlanVersion("us-east-1-0", kT0 + 2s);
  EXPECT_GT(v2, v1);
  EXPECT_EQ(planner.PlanFor("us-east-1-0", kT0 + 2s)->plan_version(), v2);
  // Only the zone of a target changes: still a new plan.
  planner.Upsert({"eu-west-1-0", "eu-west-1", "eu-west-1b", {"10.9.9.9", 8620}});
  planner.Upsert({"eu-west-1-1", "eu-west-1", "eu-west-1b", {"10.9.9.9", 8620}});
  planner.Upsert({"eu-west-1-2", "eu-west-1", "eu-west-1b", {"10.9.9.9", 8620}});
  planner.Upsert({"eu-west-1-3", "eu-west-1", "eu-west-1b", {"10.9.9.9", 8620}});
  planner.Upsert({"eu-west-1-4", "eu-west-1", "eu-west-1b", {"10.9.9.9", 8620}});
  EXPECT_GT(planner.CurrentPlanVersion("us-east-1-0", kT0 + 2s), v2);
  // A rotation that changes the targets, too; versions come from the clock, so a restarted
  // planner still issues higher versions than before.
  ProbePlanner restarted;
  AddRegion(restarted, "us-east-1", 5);
  EXPECT_GT(restarted.PlanFor("us-east-1-0", kT0 + 3s)->plan_version(), v2);
}

// The aggregator pushes plans only when the revision moved: it must move with everything a plan
// depends on, and only then.
TEST(ProbePlannerTest, RevisionMovesWithMembershipAndEpochOnly) {
  ProbePlanner planner;
  AddRegion(planner, "us-east-1", 4);
  AddRegion(planner, "eu-west-1", 4);
  const auto start = planner.CurrentRevision(kT0);
  (void)planner.PlanFor("us-east-1-0", kT0);
  EXPECT_EQ(planner.CurrentRevision(kT0 + 1s), start) << "asking for plans changes nothing";
  planner.Upsert({"us-east-1-0", "us-east-1", "us-east-1a", {"10.0.0.0", 862}});
  EXPECT_EQ(planner.CurrentRevision(kT0), start) << "a Hello repeating what is known changes nothing";

  planner.Upsert({"us-east-1-9", "us-east-1", "us-east-1a", {"10.0.0.9", 862}});
  const auto joined = planner.CurrentRevision(kT0);
  EXPECT_NE(joined, start) << "a node joined";
  planner.Upsert({"us-east-1-9", "us-east-1", "us-east-1a", {"10.0.0.99", 862}});
  const auto moved = planner.CurrentRevision(kT0);
  EXPECT_NE(moved, joined) << "its reflector moved";
  planner.Upsert({"us-east-1-9", "us-east-1", "us-east-1b", {"10.0.0.99", 862}});
  const auto rezoned = planner.CurrentRevision(kT0);
  EXPECT_NE(rezoned, moved) << "its zone changed";
  planner.Remove("us-east-1-9");
  const auto removed = planner.CurrentRevision(kT0);
  EXPECT_NE(removed, rezoned) << "it was removed";
  planner.Remove("us-east-1-9");
  EXPECT_EQ(planner.CurrentRevision(kT0), removed) << "removing an unknown node changes nothing";

  // kT0 is a multiple of the default 300 s rotation: the next epoch starts 300 s later.
  EXPECT_EQ(planner.CurrentRevision(kT0 + 299s), removed);
  EXPECT_NE(planner.CurrentRevision(kT0 + 300s), removed) << "a new rotation epoch";
}

TEST(ProbePlannerTest, RemovedNodesAreNoLongerTargets) {
  ProbePlanner planner;
  AddRegion(planner, "us-east-1", 4);
  const auto eu = AddRegion(planner, "eu-west-1", 4);
  planner.Remove("eu-west-1-2");
  EXPECT_EQ(planner.size(), 7u);
  for (int i = 0; i < 4; ++i) {
    const auto plan = planner.PlanFor("us-east-1-" + std::to_string(i), kT0);
    for (const auto& t : plan->targets()) EXPECT_NE(t.node(), "eu-west-1-2");
  }
  // Ids are reused safely: a new node takes the freed slot.
  planner.Upsert({"eu-west-1-9", "eu-west-1", "", {"10.0.0.99", 862}});
  EXPECT_EQ(planner.PlanFor("eu-west-1-9", kT0)->targets_size(), 6);
}

TEST(ProbePlannerTest, ProbesGrowAsNTimesKNotNSquared) {
  for (int per_region : {100, 1000}) {
    ProbePlanner planner;
    std::vector<std::string> all;
    for (const auto& region : {"us-east-1", "eu-west-1", "ap-southeast-1"}) {
      const auto nodes = AddRegion(planner, region, per_region);
      all.insert(all.end(), nodes.begin(), nodes.end());
    }
    size_t total = 0;
    for (const auto& node : all) {
      const auto plan = planner.PlanFor(node, kT0);
      EXPECT_EQ(plan->targets_size(), 9);
      total += static_cast<size_t>(plan->targets_size());
    }
    EXPECT_EQ(total, all.size() * 9) << per_region << " per region";
  }
}

}  // namespace
}  // namespace regionpulse
