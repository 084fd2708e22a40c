// The region thresholds: one classifier of a loss/RTT observation and one "at risk" rule for
// replication, used by the matrix's cells and the verdict alike.
#include "aggregator/region_thresholds.h"

#include <gtest/gtest.h>

#include <chrono>

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

TEST(RegionThresholdsTest, DefaultsAreTheDesigns) {
  const RegionThresholds t;
  EXPECT_DOUBLE_EQ(t.degraded_loss, 0.05);
  EXPECT_EQ(t.degraded_rtt_p99, 250ms);
  EXPECT_DOUBLE_EQ(t.unreachable_loss, 0.99);
  EXPECT_DOUBLE_EQ(t.quorum_fraction, 0.5);
  EXPECT_EQ(t.min_observer_nodes, 2u);
  EXPECT_EQ(t.replication_staleness, 30s);
}

TEST(RegionThresholdsTest, LossIsWhatDidNotComeBackAndZeroWithoutProbes) {
  EXPECT_DOUBLE_EQ(LossRatio(0, 0), 0.0);
  EXPECT_DOUBLE_EQ(LossRatio(10, 10), 0.0);
  EXPECT_DOUBLE_EQ(LossRatio(10, 9), 0.1);
  EXPECT_DOUBLE_EQ(LossRatio(10, 0), 1.0);
}

TEST(RegionThresholdsTest, LossThresholdsAreInclusive) {
  const RegionThresholds t;
  EXPECT_EQ(ClassifyObservation(t, 0.0), v1::REGION_STATE_HEALTHY);
  EXPECT_EQ(ClassifyObservation(t, 0.049), v1::REGION_STATE_HEALTHY);
  EXPECT_EQ(ClassifyObservation(t, 0.05), v1::REGION_STATE_DEGRADED);
  EXPECT_EQ(ClassifyObservation(t, 0.98), v1::REGION_STATE_DEGRADED);
  EXPECT_EQ(ClassifyObservation(t, 0.99), v1::REGION_STATE_UNREACHABLE);
  EXPECT_EQ(ClassifyObservation(t, 1.0), v1::REGION_STATE_UNREACHABLE);
}

TEST(RegionThresholdsTest, RttAboveItsThresholdDegradesAndZeroDisablesTheRule) {
  RegionThresholds t;
  EXPECT_EQ(ClassifyObservation(t, 0.0, 250ms), v1::REGION_STATE_HEALTHY);
  EXPECT_EQ(ClassifyObservation(t, 0.0, 251ms), v1::REGION_STATE_DEGRADED);
  EXPECT_EQ(ClassifyObservation(t, 0.0, std::nullopt), v1::REGION_STATE_HEALTHY);
  // Loss decides first: an unreachable region is not merely slow.
  EXPECT_EQ(ClassifyObservation(t, 1.0, 900ms), v1::REGION_STATE_UNREACHABLE);
  t.degraded_rtt_p99 = 0ms;
  EXPECT_EQ(ClassifyObservation(t, 0.0, 10s), v1::REGION_STATE_HEALTHY);
}

TEST(RegionThresholdsTest, ReplicationIsAtRiskWhenStaleOrBelowItsMinimumRate) {
  const RegionThresholds t;
  EXPECT_FALSE(ReplicationAtRisk(t, 29s, 0, 0));
  EXPECT_TRUE(ReplicationAtRisk(t, 30s, 1'000'000, 0));
  EXPECT_TRUE(ReplicationAtRisk(t, 1s, 999, 1'000));
  EXPECT_FALSE(ReplicationAtRisk(t, 1s, 1'000, 1'000));
}

}  // namespace
}  // namespace regionpulse
