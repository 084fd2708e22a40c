// A session's probe records in a ring by sequence: found by sequence, gaps skipped, oldest
// first, grown for a faster rate without losing any, bounded.
#include <gtest/gtest.h>

#include "agent/probe_ring.h"

namespace regionpulse {
namespace {

std::vector<uint32_t> Sequences(ProbeRing<int>& ring) {
  std::vector<uint32_t> out;
  ring.ForEach([&](uint32_t sequence, int&) {
    out.push_back(sequence);
    return true;
  });
  return out;
}

TEST(ProbeRing, FindsRecordsBySequenceAndSkipsGaps) {
  ProbeRing<int> ring;
  ring.Insert(5, 50);
  ring.Insert(6, 60);
  ring.Insert(9, 90);  // 7 and 8 never left
  ASSERT_NE(ring.Find(6), nullptr);
  EXPECT_EQ(*ring.Find(6), 60);
  EXPECT_EQ(ring.Find(7), nullptr);
  EXPECT_EQ(ring.Find(4), nullptr);
  EXPECT_EQ(ring.Find(10), nullptr);
  EXPECT_EQ(Sequences(ring), (std::vector<uint32_t>{5, 6, 9}));
  uint32_t found = 0;
  const int* next = ring.NextAfter(
      5, [](int value) { return value > 60; }, &found);
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(found, 9u);
  EXPECT_EQ(ring.NextAfter(
                9, [](int) { return true; }, &found),
            nullptr);
}

TEST(ProbeRing, ErasingTheOldestMovesOnAndASequenceBelowItIsRefused) {
  ProbeRing<int> ring;
  for (uint32_t s = 0; s < 10; ++s) ring.Insert(s, static_cast<int>(s));
  for (uint32_t s = 0; s < 4; ++s) ring.Erase(s);
  EXPECT_EQ(ring.size(), 6u);
  EXPECT_FALSE(ring.Insert(2, 2));
  EXPECT_EQ(Sequences(ring).front(), 4u);
  for (uint32_t s = 4; s < 10; ++s) ring.Erase(s);
  EXPECT_TRUE(ring.empty());
  // Empty, it starts again wherever the next probe is numbered.
  EXPECT_TRUE(ring.Insert(1'000'000, 1));
  EXPECT_EQ(*ring.Find(1'000'000), 1);
}

TEST(ProbeRing, WrapsAroundWithoutGrowingAtASteadyRate) {
  ProbeRing<int> ring;
  // 28 probes pending at any time (2.8 s at 10/s), for a long while.
  for (uint32_t s = 0; s < 10'000; ++s) {
    ring.Insert(s, static_cast<int>(s));
    if (s >= 28) ring.Erase(s - 28);
  }
  EXPECT_EQ(ring.capacity(), ProbeRing<int>::kInitialCapacity);
  EXPECT_EQ(ring.size(), 28u);
  EXPECT_EQ(*ring.Find(9'999), 9'999);
  EXPECT_EQ(ring.Find(9'971), nullptr);
}

TEST(ProbeRing, GrowsForAFasterRateKeepingEveryRecord) {
  ProbeRing<int> ring;
  for (uint32_t s = 0; s < 300; ++s) ring.Insert(s, static_cast<int>(s) * 2);
  EXPECT_GE(ring.capacity(), 300u);
  EXPECT_EQ(ring.size(), 300u);
  for (uint32_t s = 0; s < 300; ++s) ASSERT_EQ(*ring.Find(s), static_cast<int>(s) * 2) << s;
}

TEST(ProbeRing, ForgetsTheOldestBeyondItsBound) {
  ProbeRing<int> ring;
  ring.Insert(0, 0);
  ring.Insert(1, 1);
  ring.Insert(ProbeRing<int>::kMaxCapacity, 2);
  EXPECT_EQ(ring.capacity(), ProbeRing<int>::kMaxCapacity);
  EXPECT_EQ(ring.Find(0), nullptr);
  EXPECT_NE(ring.Find(1), nullptr);
  EXPECT_EQ(ring.size(), 2u);
}

}  // namespace
}  // namespace regionpulse
