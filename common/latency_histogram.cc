// Bucket arithmetic of the shared latency layout.
#include "common/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace regionpulse {
namespace {
const double kLogGamma = std::log(HistogramLayout::kGamma);
}  // namespace

static_assert(HistogramLayout::kGamma > 1.0);

uint32_t HistogramLayout::BucketOf(uint64_t ns) {
  if (ns <= kMinNs) return 0;
  if (ns > kMaxNs) return kBucketCount - 1;
  const double exact = std::log(static_cast<double>(ns) / kMinNs) / kLogGamma;
  auto bucket = static_cast<uint32_t>(std::ceil(exact));
  return std::clamp<uint32_t>(bucket, 1, kBucketCount - 2);
}

uint64_t HistogramLayout::RepresentativeOf(uint32_t bucket) {
  if (bucket == 0) return kMinNs;
  if (bucket >= kBucketCount - 1) return kMaxNs;
  // Bucket b spans (min*g^(b-1), min*g^b]; 2*min*g^b/(g+1) is within alpha of both ends.
  return static_cast<uint64_t>(std::llround(2.0 * kMinNs * std::pow(kGamma, bucket) / (kGamma + 1.0)));
}

uint64_t HistogramLayout::UpperBoundOf(uint32_t bucket) {
  if (bucket == 0) return kMinNs;
  if (bucket >= kBucketCount - 1) return UINT64_MAX;
  return static_cast<uint64_t>(std::floor(kMinNs * std::pow(kGamma, bucket)));
}

void LatencyHistogram::Record(uint64_t ns, uint64_t count) {
  if (count == 0) return;
  const uint32_t bucket = HistogramLayout::BucketOf(ns);
  auto it = std::lower_bound(buckets_.begin(), buckets_.end(), bucket,
                             [](const auto& entry, uint32_t b) { return entry.first < b; });
  if (it != buckets_.end() && it->first == bucket) {
    it->second += count;
  } else {
    // The agent's folder starts every path's histograms empty each window; a path's RTTs span a
    // few to a few dozen buckets, and growing 1, 2, 4, 8 took a malloc per probe at 1,000 targets.
    if (buckets_.capacity() == 0) {
      buckets_.reserve(kFirstReserve);
      it = buckets_.begin();
    }
    buckets_.insert(it, {bucket, count});
  }
  min_ns_ = count_ == 0 ? ns : std::min(min_ns_, ns);
  max_ns_ = std::max(max_ns_, ns);
  count_ += count;
  sum_ns_ += ns * count;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  Buckets merged;
  merged.reserve(buckets_.size() + other.buckets_.size());
  auto a = buckets_.begin();
  auto b = other.buckets_.begin();
  while (a != buckets_.end() || b != other.buckets_.end()) {
    if (b == other.buckets_.end() || (a != buckets_.end() && a->first < b->first)) {
      merged.push_back(*a++);
    } else if (a == buckets_.end() || b->first < a->first) {
      merged.push_back(*b++);
    } else {
      merged.emplace_back(a->first, a->second + b->second);
      ++a;
      ++b;
    }
  }
  buckets_ = std::move(merged);
  min_ns_ = count_ == 0 ? other.min_ns_ : std::min(min_ns_, other.min_ns_);
  max_ns_ = std::max(max_ns_, other.max_ns_);
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
}

void LatencyHistogram::Clear() {
  *this = LatencyHistogram{};
}

std::optional<uint64_t> LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return std::nullopt;
  q = std::clamp(q, 0.0, 1.0);
  // Nearest rank: the smallest value with at least ceil(q*n) samples at or below it.
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  // The extremes are known exactly, and they are the best figure for the under- and
  // overflow buckets too.
  if (rank == 1) return min_ns_;
  if (rank == count_) return max_ns_;
  uint64_t seen = 0;
  for (const auto& [bucket, n] : buckets_) {
    seen += n;
    if (seen >= rank) {
      if (bucket == 0) return min_ns_;
      if (bucket == HistogramLayout::kBucketCount - 1) return max_ns_;
      return std::clamp(HistogramLayout::RepresentativeOf(bucket), min_ns_, max_ns_);
    }
  }
  return max_ns_;
}

LatencyHistogram LatencyHistogram::FromParts(Buckets buckets, uint64_t sum_ns, uint64_t min_ns,
                                             uint64_t max_ns) {
  LatencyHistogram h;
  h.buckets_ = std::move(buckets);
  for (const auto& entry : h.buckets_) h.count_ += entry.second;
  h.sum_ns_ = sum_ns;
  h.min_ns_ = min_ns;
  h.max_ns_ = max_ns;
  return h;
}

}  // namespace regionpulse
