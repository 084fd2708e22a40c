// The dense histogram: the same counts, extremes and percentiles as the sparse one it stands in
// for, whichever way histograms are merged into it.
#include "common/dense_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/proto_convert.h"

namespace regionpulse {
namespace {

LatencyHistogram Random(uint64_t seed, int samples) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> rtt(std::log(70e6), 0.6);  // ~70 ms WAN RTTs
  LatencyHistogram h;
  for (int i = 0; i < samples; ++i) h.Record(static_cast<uint64_t>(rtt(rng)));
  return h;
}

v1::LatencyHistogram Wire(const LatencyHistogram& h) {
  v1::LatencyHistogram wire;
  ToProto(h, &wire);
  return wire;
}

TEST(DenseHistogramTest, MergingWireFormsEqualsMergingSparseHistograms) {
  LatencyHistogram sparse;
  DenseHistogram dense;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const LatencyHistogram h = Random(seed, 50);
    sparse.Merge(h);
    dense.MergeWire(Wire(h));
  }
  EXPECT_EQ(dense.ToSparse(), sparse);
  EXPECT_EQ(dense.Count(), 1000u);
  EXPECT_EQ(dense.ToSparse().Percentile(0.99), sparse.Percentile(0.99));
}

TEST(DenseHistogramTest, MergeIntoAddsCountsAndKeepsTheExtremes) {
  const LatencyHistogram a = Random(1, 100);
  const LatencyHistogram b = Random(2, 100);
  DenseHistogram dense_a, dense_b, total;
  dense_a.MergeWire(Wire(a));
  dense_b.MergeWire(Wire(b));
  dense_a.MergeInto(&total);
  dense_b.MergeInto(&total);
  LatencyHistogram expected = a;
  expected.Merge(b);
  EXPECT_EQ(total.ToSparse(), expected);
  EXPECT_EQ(total.ToSparse().MinNs(), std::min(a.MinNs(), b.MinNs()));
  EXPECT_EQ(total.ToSparse().MaxNs(), std::max(a.MaxNs(), b.MaxNs()));
}

TEST(DenseHistogramTest, EmptyHistogramsChangeNothing) {
  LatencyHistogram h;
  h.Record(5'000'000);
  DenseHistogram dense;
  dense.MergeWire(Wire(h));
  // An empty wire histogram carries min 0: it must not become the minimum.
  dense.MergeWire(v1::LatencyHistogram{});
  DenseHistogram{}.MergeInto(&dense);
  EXPECT_EQ(dense.ToSparse(), h);

  DenseHistogram empty;
  EXPECT_TRUE(empty.Empty());
  EXPECT_TRUE(empty.ToSparse().Empty());
  empty.MergeInto(&empty);
  EXPECT_TRUE(empty.ToSparse().Empty());
}

TEST(DenseHistogramTest, BucketIndicesOutsideTheLayoutAreSkipped) {
  v1::LatencyHistogram wire;
  wire.set_layout(HistogramLayout::kId);
  wire.add_bucket_index(10);
  wire.add_bucket_count(3);
  wire.add_bucket_index(HistogramLayout::kBucketCount);  // one past the last bucket
  wire.add_bucket_count(7);
  wire.set_min_ns(1'100);
  wire.set_max_ns(1'200);
  wire.set_sum_ns(3'450);
  DenseHistogram dense;
  dense.MergeWire(wire);
  EXPECT_EQ(dense.Count(), 3u);
  ASSERT_EQ(dense.ToSparse().buckets().size(), 1u);
  EXPECT_EQ(dense.ToSparse().buckets()[0], (std::pair<uint32_t, uint64_t>{10, 3}));
}

}  // namespace
}  // namespace regionpulse
