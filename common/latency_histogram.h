// LatencyHistogram: the one log-bucketed latency layout shared by agent and aggregator.
// Relative-error buckets (DDSketch-style): every percentile of values in [1 us, 100 s] is
// within kRelativeError of the exact one; merging is adding counts per bucket.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace regionpulse {

struct HistogramLayout {
  // Identifier sent on the wire (LatencyHistogram.layout).
  static constexpr uint32_t kId = 1;
  // alpha: bound on |estimate - exact| / exact for any percentile inside the range.
  static constexpr double kRelativeError = 0.01;
  // Bucket growth factor (1 + alpha) / (1 - alpha).
  static constexpr double kGamma = (1.0 + kRelativeError) / (1.0 - kRelativeError);
  // Bucket 0 holds values <= kMinNs; the last bucket holds values > kMaxNs.
  static constexpr uint64_t kMinNs = 1'000;               // 1 us
  static constexpr uint64_t kMaxNs = 100'000'000'000ULL;  // 100 s
  // ceil(ln(kMaxNs / kMinNs) / ln(kGamma)) = 922 regular buckets, plus under- and overflow.
  static constexpr uint32_t kBucketCount = 924;

  // Bucket that holds a value in nanoseconds.
  static uint32_t BucketOf(uint64_t ns);
  // Value reported for a bucket: the point minimising relative error over the bucket.
  static uint64_t RepresentativeOf(uint32_t bucket);
  // Upper bound (inclusive) of a bucket in nanoseconds.
  static uint64_t UpperBoundOf(uint32_t bucket);
};

class LatencyHistogram {
 public:
  // Sparse storage, sorted by bucket index: a path's RTTs occupy a handful of buckets.
  using Buckets = std::vector<std::pair<uint32_t, uint64_t>>;

  void Record(uint64_t ns, uint64_t count = 1);
  void Merge(const LatencyHistogram& other);
  void Clear();

  uint64_t Count() const { return count_; }
  uint64_t SumNs() const { return sum_ns_; }
  uint64_t MinNs() const { return count_ ? min_ns_ : 0; }
  uint64_t MaxNs() const { return max_ns_; }
  bool Empty() const { return count_ == 0; }
  const Buckets& buckets() const { return buckets_; }

  // Nearest-rank percentile, q in [0, 1]; nullopt when empty. Clamped to the exact min/max,
  // so p0 and p100 are exact.
  std::optional<uint64_t> Percentile(double q) const;

  // Rebuilds a histogram from parts the caller has validated: indices inside the layout and
  // strictly increasing (wire parts are checked by HistogramProblem, common/proto_convert.h).
  static LatencyHistogram FromParts(Buckets buckets, uint64_t sum_ns, uint64_t min_ns, uint64_t max_ns);

  bool operator==(const LatencyHistogram&) const = default;

 private:
  static constexpr size_t kFirstReserve = 16;  // buckets reserved at the first Record
  Buckets buckets_;
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
  uint64_t min_ns_ = 0;
  uint64_t max_ns_ = 0;
};

}  // namespace regionpulse
