// Slot rings: epochs of time, slots recycled in a circle, older epochs refused.
#include "aggregator/slot_ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace regionpulse {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

std::vector<int> Since(const SlotRing<int>& ring, int64_t from) {
  std::vector<int> values;
  ring.ForEachSince(from, [&](int value) { values.push_back(value); });
  std::sort(values.begin(), values.end());
  return values;
}

TEST(SlotRingTest, EpochsFloorAlsoBeforeTheClockEpoch) {
  EXPECT_EQ(EpochOf(Clock::time_point(10s), 5s), 2);
  EXPECT_EQ(EpochOf(Clock::time_point(14s), 5s), 2);
  EXPECT_EQ(EpochOf(Clock::time_point(-1s), 5s), -1);
  EXPECT_EQ(EpochOf(Clock::time_point(-5s), 5s), -1);
  EXPECT_EQ(EpochOf(Clock::time_point(-6s), 5s), -2);
}

TEST(SlotRingTest, SizeCoversTheWindowWithASlotSpareAtEachEnd) {
  EXPECT_EQ(RingSize(60s, 5s), 14u);
  EXPECT_EQ(RingSize(61s, 5s), 15u);
  EXPECT_EQ(RingSize(10s, 1s), 12u);
}

TEST(SlotRingTest, ANewerEpochRecyclesItsSlot) {
  SlotRing<int> ring(3);
  *ring.At(10) = 1;
  *ring.At(11) = 2;
  *ring.At(12) = 3;
  EXPECT_EQ(Since(ring, 10), (std::vector<int>{1, 2, 3}));
  // Epoch 13 takes epoch 10's slot, starting from an empty value.
  EXPECT_EQ(*ring.At(13), 0);
  EXPECT_EQ(Since(ring, 0), (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(ring.newest(), 13);
}

TEST(SlotRingTest, EpochsOlderThanTheRingHoldsAreRefused) {
  SlotRing<int> ring(3);
  *ring.At(10) = 1;
  EXPECT_EQ(ring.At(7), nullptr);
  ASSERT_NE(ring.At(8), nullptr);
  *ring.At(8) += 5;
  EXPECT_EQ(*ring.At(8), 5);
  // Epoch 11 recycles epoch 8's slot; going back to 8 is now refused.
  *ring.At(11) = 2;
  EXPECT_EQ(ring.At(8), nullptr);
}

TEST(SlotRingTest, HasDataSinceLooksAtTheNewestEpoch) {
  SlotRing<int> ring(3);
  EXPECT_FALSE(ring.HasDataSince(0));
  *ring.At(10) = 1;
  EXPECT_TRUE(ring.HasDataSince(10));
  EXPECT_FALSE(ring.HasDataSince(11));
}

TEST(PackedSlotRingsTest, CompactKeepsTheChosenRingsInOrder) {
  PackedSlotRings<int> rings(2);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(rings.Append(), static_cast<size_t>(r));
    *rings.At(static_cast<size_t>(r), 100) = r + 1;
  }
  rings.Compact([](size_t ring) { return ring % 2 == 1; });
  ASSERT_EQ(rings.size(), 2u);
  std::vector<int> values;
  for (size_t r = 0; r < rings.size(); ++r) rings.ForEachSince(r, 100, [&](int v) { values.push_back(v); });
  EXPECT_EQ(values, (std::vector<int>{2, 4}));
  EXPECT_TRUE(rings.HasDataSince(1, 100));
  EXPECT_FALSE(rings.HasDataSince(1, 101));
}

}  // namespace
}  // namespace regionpulse
