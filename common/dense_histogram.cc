// Merging into and out of the dense bucket array.
#include "common/dense_histogram.h"

#include <algorithm>

namespace regionpulse {

void DenseHistogram::MergeWire(const v1::LatencyHistogram& h) {
  const int n = std::min(h.bucket_index_size(), h.bucket_count_size());
  uint64_t count = 0;
  for (int i = 0; i < n; ++i) {
    if (h.bucket_index(i) >= HistogramLayout::kBucketCount || h.bucket_count(i) == 0) continue;
    if (counts_.empty()) counts_.assign(HistogramLayout::kBucketCount, 0);
    counts_[h.bucket_index(i)] += h.bucket_count(i);
    count += h.bucket_count(i);
  }
  if (count == 0) return;
  min_ns_ = count_ == 0 ? h.min_ns() : std::min(min_ns_, h.min_ns());
  max_ns_ = std::max(max_ns_, h.max_ns());
  count_ += count;
  sum_ns_ += h.sum_ns();
}

void DenseHistogram::MergeInto(DenseHistogram* out) const {
  if (count_ == 0) return;
  if (out->counts_.empty()) out->counts_.assign(HistogramLayout::kBucketCount, 0);
  for (size_t i = 0; i < counts_.size(); ++i) out->counts_[i] += counts_[i];
  out->min_ns_ = out->count_ == 0 ? min_ns_ : std::min(out->min_ns_, min_ns_);
  out->max_ns_ = std::max(out->max_ns_, max_ns_);
  out->count_ += count_;
  out->sum_ns_ += sum_ns_;
}

LatencyHistogram DenseHistogram::ToSparse() const {
  LatencyHistogram::Buckets buckets;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] != 0) buckets.emplace_back(static_cast<uint32_t>(i), counts_[i]);
  }
  return LatencyHistogram::FromParts(std::move(buckets), sum_ns_, min_ns_, max_ns_);
}

}  // namespace regionpulse
