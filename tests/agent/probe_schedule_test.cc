// The prober's one schedule for all targets: every deadline due at a wake-up comes out in
// order, replaced and removed targets are skipped, and a late wake-up keeps the rate.
#include <gtest/gtest.h>

#include "agent/probe_schedule.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

const MonoTime kT0 = MonoTime(1000s);

std::vector<std::pair<uint32_t, MonoTime>> PopDue(ProbeSchedule& schedule, MonoTime now) {
  std::vector<std::pair<uint32_t, MonoTime>> due;
  schedule.PopDue(now, due);
  return due;
}

TEST(ProbeSchedule, FiresEveryDueTargetAtOneWakeupEarliestFirst) {
  ProbeSchedule schedule;
  schedule.Set(0, kT0 + 30ms);
  schedule.Set(1, kT0 + 10ms);
  schedule.Set(2, kT0 + 50ms);
  schedule.Set(3, kT0 + 20ms);
  EXPECT_EQ(schedule.NextDue(), kT0 + 10ms);
  EXPECT_TRUE(PopDue(schedule, kT0 + 5ms).empty());
  const auto due = PopDue(schedule, kT0 + 30ms);
  ASSERT_EQ(due.size(), 3u);
  EXPECT_EQ(due[0], std::make_pair(1u, kT0 + 10ms));
  EXPECT_EQ(due[1], std::make_pair(3u, kT0 + 20ms));
  EXPECT_EQ(due[2], std::make_pair(0u, kT0 + 30ms));
  // Popped targets are out until set again.
  EXPECT_EQ(schedule.size(), 1u);
  EXPECT_EQ(schedule.NextDue(), kT0 + 50ms);
}

TEST(ProbeSchedule, ReplacedAndRemovedTargetsAreSkipped) {
  ProbeSchedule schedule;
  schedule.Set(0, kT0 + 10ms);
  schedule.Set(1, kT0 + 20ms);
  schedule.Set(0, kT0 + 40ms);  // replaces 10 ms
  schedule.Remove(1);
  EXPECT_EQ(schedule.size(), 1u);
  EXPECT_EQ(schedule.NextDue(), kT0 + 40ms);
  const auto due = PopDue(schedule, kT0 + 1s);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].first, 0u);
  EXPECT_FALSE(schedule.NextDue().has_value());
  schedule.Remove(0);  // not scheduled: nothing happens
  EXPECT_EQ(schedule.size(), 0u);
}

TEST(ProbeSchedule, ManyRemovalsDoNotLeaveStaleEntriesFiring) {
  ProbeSchedule schedule;
  for (uint32_t slot = 0; slot < 1000; ++slot) schedule.Set(slot, kT0 + std::chrono::milliseconds(slot));
  for (uint32_t slot = 0; slot < 1000; ++slot) {
    if (slot % 10 != 0) schedule.Remove(slot);
  }
  EXPECT_EQ(schedule.size(), 100u);
  const auto due = PopDue(schedule, kT0 + 2s);
  ASSERT_EQ(due.size(), 100u);
  for (size_t i = 0; i < due.size(); ++i) EXPECT_EQ(due[i].first, i * 10);
}

TEST(ProbeSchedule, TheNextDeadlineFollowsThePreviousOneNotTheWakeup) {
  // Woken 5 ms late: the next probe is still due one delay after the previous deadline, so the
  // target's rate holds.
  EXPECT_EQ(ProbeSchedule::Following(kT0, 100ms, kT0 + 5ms, 90ms), kT0 + 100ms);
  // Woken 30 ms late: never closer than the smallest jittered gap to this probe.
  EXPECT_EQ(ProbeSchedule::Following(kT0, 100ms, kT0 + 30ms, 90ms), kT0 + 120ms);
  // After a stall longer than a delay beyond that, it restarts from now instead of bursting.
  EXPECT_EQ(ProbeSchedule::Following(kT0, 100ms, kT0 + 450ms, 90ms), kT0 + 550ms);
}

}  // namespace
}  // namespace regionpulse
