// ReportBuffer: order, replay, trimming by Ack and overflow accounting.
#include "agent/report_buffer.h"

#include <gtest/gtest.h>

#include <vector>

namespace regionpulse {
namespace {

constexpr uint64_t kInstance = 0xfeed;

v1::HealthReport Report(uint64_t sequence) {
  v1::HealthReport report;
  report.set_sequence(sequence);
  return report;
}

// The sequences a fresh replay (after a reconnect) would send, in order.
std::vector<uint64_t> Replay(const ReportBuffer& buffer) {
  std::vector<uint64_t> sent;
  for (const auto* r = buffer.NextAfter(0); r != nullptr; r = buffer.NextAfter(r->sequence())) {
    sent.push_back(r->sequence());
  }
  return sent;
}

TEST(ReportBufferTest, ReplaysEveryUnackedReportInSequenceOrder) {
  ReportBuffer buffer(10, kInstance);
  for (uint64_t s = 1; s <= 5; ++s) ASSERT_TRUE(buffer.Push(Report(s)));
  EXPECT_EQ(Replay(buffer), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(buffer.OldestSequence(), 1u);
  EXPECT_EQ(buffer.NewestSequence(), 5u);
}

TEST(ReportBufferTest, NextAfterContinuesFromTheLastSentReport) {
  ReportBuffer buffer(10, kInstance);
  for (uint64_t s = 1; s <= 3; ++s) ASSERT_TRUE(buffer.Push(Report(s)));
  ASSERT_NE(buffer.NextAfter(2), nullptr);
  EXPECT_EQ(buffer.NextAfter(2)->sequence(), 3u);
  EXPECT_EQ(buffer.NextAfter(3), nullptr);
}

TEST(ReportBufferTest, RefusesReportsThatBreakTheOrder) {
  ReportBuffer buffer(10, kInstance);
  ASSERT_TRUE(buffer.Push(Report(4)));
  EXPECT_FALSE(buffer.Push(Report(4)));
  EXPECT_FALSE(buffer.Push(Report(2)));
  EXPECT_EQ(Replay(buffer), (std::vector<uint64_t>{4}));
}

TEST(ReportBufferTest, AckTrimsEverythingUpToTheAcknowledgedSequence) {
  ReportBuffer buffer(10, kInstance);
  for (uint64_t s = 1; s <= 6; ++s) ASSERT_TRUE(buffer.Push(Report(s)));
  EXPECT_EQ(buffer.Ack(kInstance, 4), 4u);
  EXPECT_EQ(Replay(buffer), (std::vector<uint64_t>{5, 6}));
  EXPECT_EQ(buffer.OldestSequence(), 5u);
  EXPECT_EQ(buffer.AckedSequence(), 4u);
  // An older Ack arriving late changes nothing.
  EXPECT_EQ(buffer.Ack(kInstance, 2), 0u);
  EXPECT_EQ(buffer.AckedSequence(), 4u);
  EXPECT_EQ(buffer.Ack(kInstance, 6), 2u);
  EXPECT_EQ(buffer.size(), 0u);
  EXPECT_EQ(buffer.OldestSequence(), 0u);
}

TEST(ReportBufferTest, IgnoresAcksForAnotherInstance) {
  ReportBuffer buffer(10, kInstance);
  for (uint64_t s = 1; s <= 3; ++s) ASSERT_TRUE(buffer.Push(Report(s)));
  EXPECT_EQ(buffer.Ack(kInstance + 1, 3), 0u);
  EXPECT_EQ(buffer.size(), 3u);
}

TEST(ReportBufferTest, AckBeyondWhatWasPushedReleasesOnlyWhatWasPushed) {
  ReportBuffer buffer(10, kInstance);
  for (uint64_t s = 1; s <= 3; ++s) ASSERT_TRUE(buffer.Push(Report(s)));
  EXPECT_EQ(buffer.Ack(kInstance, 100), 3u);
  EXPECT_EQ(buffer.AckedSequence(), 3u);
  ASSERT_TRUE(buffer.Push(Report(4)));
  EXPECT_EQ(Replay(buffer), (std::vector<uint64_t>{4}));
}

TEST(ReportBufferTest, OverflowDropsTheOldestAndTheNextReportSaysHowMany) {
  ReportBuffer buffer(3, kInstance);
  for (uint64_t s = 1; s <= 3; ++s) ASSERT_TRUE(buffer.Push(Report(s)));
  EXPECT_EQ(buffer.DroppedTotal(), 0u);
  EXPECT_EQ(buffer.NextAfter(2)->status().reports_dropped(), 0u);

  ASSERT_TRUE(buffer.Push(Report(4)));
  ASSERT_TRUE(buffer.Push(Report(5)));
  EXPECT_EQ(buffer.DroppedTotal(), 2u);
  EXPECT_EQ(Replay(buffer), (std::vector<uint64_t>{3, 4, 5}));
  // Each stored report carries the cumulative count at the time it was pushed.
  EXPECT_EQ(buffer.NextAfter(2)->status().reports_dropped(), 0u);
  EXPECT_EQ(buffer.NextAfter(3)->status().reports_dropped(), 1u);
  EXPECT_EQ(buffer.NextAfter(4)->status().reports_dropped(), 2u);
}

TEST(ReportBufferTest, DropCountIsCumulativeAcrossAcks) {
  ReportBuffer buffer(2, kInstance);
  for (uint64_t s = 1; s <= 3; ++s) ASSERT_TRUE(buffer.Push(Report(s)));  // drops 1
  buffer.Ack(kInstance, 3);
  ASSERT_TRUE(buffer.Push(Report(4)));
  EXPECT_EQ(buffer.NextAfter(0)->status().reports_dropped(), 1u);
  EXPECT_EQ(buffer.DroppedTotal(), 1u);
}

TEST(ReportBufferTest, PushKeepsTheRestOfTheReport) {
  ReportBuffer buffer(2, kInstance);
  v1::HealthReport report = Report(1);
  report.add_paths()->set_peer_node("node-b");
  report.mutable_status()->add_errors("attach wg0: EPERM");
  ASSERT_TRUE(buffer.Push(report));
  const v1::HealthReport* stored = buffer.NextAfter(0);
  ASSERT_NE(stored, nullptr);
  EXPECT_EQ(stored->paths(0).peer_node(), "node-b");
  EXPECT_EQ(stored->status().errors(0), "attach wg0: EPERM");
}

TEST(ReportBufferTest, DropOldestGivesUpOnTheOldestAndCountsIt) {
  ReportBuffer buffer(10, kInstance);
  for (uint64_t s = 1; s <= 3; ++s) ASSERT_TRUE(buffer.Push(Report(s)));
  EXPECT_EQ(buffer.DropOldest(), 1u);
  EXPECT_EQ(buffer.DroppedTotal(), 1u);
  EXPECT_EQ(Replay(buffer), (std::vector<uint64_t>{2, 3}));
  ASSERT_TRUE(buffer.Push(Report(4)));
  EXPECT_EQ(buffer.NextAfter(3)->status().reports_dropped(), 1u);
  buffer.Ack(kInstance, 4);
  EXPECT_EQ(buffer.DropOldest(), 0u);
  EXPECT_EQ(buffer.DroppedTotal(), 1u);
}

TEST(ReportBufferTest, CapacityIsAtLeastOne) {
  ReportBuffer buffer(0, kInstance);
  EXPECT_EQ(buffer.capacity(), 1u);
  ASSERT_TRUE(buffer.Push(Report(1)));
  ASSERT_TRUE(buffer.Push(Report(2)));
  EXPECT_EQ(Replay(buffer), (std::vector<uint64_t>{2}));
}

}  // namespace
}  // namespace regionpulse
