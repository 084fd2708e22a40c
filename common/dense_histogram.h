// DenseHistogram: the shared latency layout (latency_histogram.h) as one counter per bucket,
// for histograms that many others are merged into (the aggregator's region pairs).
#pragma once

#include <cstdint>
#include <vector>

#include "common/latency_histogram.h"
#include "regionpulse/v1/common.pb.h"

namespace regionpulse {

// A region pair's histogram merges every path of every observer: with a dense array each merge
// costs O(buckets of the small histogram), where LatencyHistogram::Merge costs O(buckets of
// the big one) and a reallocation. The array (7 KiB) is allocated on the first count.
class DenseHistogram {
 public:
  // Adds the wire form, validated upstream (ReportProblems); indices outside the layout are
  // skipped rather than trusted.
  void MergeWire(const v1::LatencyHistogram& histogram);
  void MergeInto(DenseHistogram* out) const;
  // The same counts in the sparse form that computes percentiles.
  LatencyHistogram ToSparse() const;

  uint64_t Count() const { return count_; }
  bool Empty() const { return count_ == 0; }

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
  uint64_t min_ns_ = 0;
  uint64_t max_ns_ = 0;
};

}  // namespace regionpulse
