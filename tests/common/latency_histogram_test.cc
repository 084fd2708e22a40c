// The shared latency layout: accuracy bound, merge, percentiles, edges.
#include "common/latency_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace regionpulse {
namespace {

uint64_t ExactPercentile(std::vector<uint64_t> values, double q) {
  std::sort(values.begin(), values.end());
  const auto rank = std::max<size_t>(1, static_cast<size_t>(std::ceil(q * values.size())));
  return values[rank - 1];
}

TEST(LatencyHistogramLayout, BucketCountCoversTheRange) {
  EXPECT_EQ(HistogramLayout::BucketOf(HistogramLayout::kMaxNs), HistogramLayout::kBucketCount - 2);
  EXPECT_EQ(HistogramLayout::BucketOf(HistogramLayout::kMaxNs + 1), HistogramLayout::kBucketCount - 1);
  EXPECT_EQ(HistogramLayout::BucketOf(HistogramLayout::kMinNs), 0u);
  EXPECT_EQ(HistogramLayout::BucketOf(HistogramLayout::kMinNs + 1), 1u);
  EXPECT_EQ(HistogramLayout::BucketOf(0), 0u);
}

TEST(LatencyHistogramLayout, EveryValueInRangeIsWithinTheRelativeErrorOfItsBucket) {
  // Walk the range geometrically, with points on and next to every bucket boundary.
  for (double v = HistogramLayout::kMinNs + 1; v <= HistogramLayout::kMaxNs; v *= 1.0037) {
    for (uint64_t ns : {static_cast<uint64_t>(v), static_cast<uint64_t>(v) + 1}) {
      const double rep = HistogramLayout::RepresentativeOf(HistogramLayout::BucketOf(ns));
      // 1 ns of rounding in the representative is allowed on top of alpha.
      EXPECT_LE(std::abs(rep - ns), HistogramLayout::kRelativeError * ns + 1.0) << ns;
    }
  }
}

TEST(LatencyHistogram, PercentilesOfRandomLatenciesAreWithinTheStatedBound) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> rtt(std::log(70e6), 0.6);  // ~70 ms WAN RTTs
  std::vector<uint64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 20000; ++i) {
    const auto ns = static_cast<uint64_t>(rtt(rng));
    values.push_back(ns);
    h.Record(ns);
  }
  for (double q : {0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0}) {
    const double exact = ExactPercentile(values, q);
    const double estimate = *h.Percentile(q);
    EXPECT_LE(std::abs(estimate - exact) / exact, HistogramLayout::kRelativeError) << "q=" << q;
  }
  EXPECT_EQ(*h.Percentile(0.0), *std::min_element(values.begin(), values.end()));
  EXPECT_EQ(*h.Percentile(1.0), *std::max_element(values.begin(), values.end()));
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingIntoOne) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<uint64_t> dist(500, 5'000'000'000ULL);
  LatencyHistogram a, b, c, all;
  for (int i = 0; i < 3000; ++i) {
    const uint64_t ns = dist(rng);
    (i % 3 == 0 ? a : i % 3 == 1 ? b : c).Record(ns);
    all.Record(ns);
  }
  LatencyHistogram merged;
  merged.Merge(a);
  merged.Merge(b);
  merged.Merge(c);
  EXPECT_EQ(merged, all);
  LatencyHistogram other_order = c;
  other_order.Merge(a);
  other_order.Merge(b);
  EXPECT_EQ(other_order, all);
}

TEST(LatencyHistogram, EmptyHasNoPercentile) {
  LatencyHistogram h;
  EXPECT_FALSE(h.Percentile(0.5).has_value());
  EXPECT_EQ(h.MinNs(), 0u);
  h.Merge(LatencyHistogram{});
  EXPECT_TRUE(h.Empty());
}

TEST(LatencyHistogram, OutOfRangeValuesLandInUnderAndOverflowBuckets) {
  LatencyHistogram h;
  h.Record(10);
  h.Record(500'000'000'000ULL);
  ASSERT_EQ(h.buckets().size(), 2u);
  EXPECT_EQ(h.buckets().front().first, 0u);
  EXPECT_EQ(h.buckets().back().first, HistogramLayout::kBucketCount - 1);
  EXPECT_EQ(*h.Percentile(0.0), 10u);
  EXPECT_EQ(*h.Percentile(1.0), 500'000'000'000ULL);
}

TEST(LatencyHistogram, CountsAndSumTrackRecords) {
  LatencyHistogram h;
  h.Record(2'000, 3);
  h.Record(4'000);
  EXPECT_EQ(h.Count(), 4u);
  EXPECT_EQ(h.SumNs(), 10'000u);
  EXPECT_EQ(h.MinNs(), 2'000u);
  EXPECT_EQ(h.MaxNs(), 4'000u);
}

}  // namespace
}  // namespace regionpulse
