// Wire <-> program type translations.
#include "common/proto_convert.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include <google/protobuf/util/time_util.h>

namespace regionpulse {

using google::protobuf::util::TimeUtil;

void ToProto(const LatencyHistogram& histogram, v1::LatencyHistogram* out) {
  out->Clear();
  out->set_layout(HistogramLayout::kId);
  for (const auto& [bucket, count] : histogram.buckets()) {
    out->add_bucket_index(bucket);
    out->add_bucket_count(count);
  }
  out->set_sum_ns(histogram.SumNs());
  out->set_min_ns(histogram.MinNs());
  out->set_max_ns(histogram.MaxNs());
}

std::string HistogramProblem(const v1::LatencyHistogram& h) {
  const bool empty = h.bucket_index_size() == 0 && h.bucket_count_size() == 0;
  if (empty && h.layout() == 0) return {};  // an unset histogram is an empty one
  if (h.layout() != HistogramLayout::kId) {
    return "unknown histogram layout " + std::to_string(h.layout()) +
           " (known: " + std::to_string(HistogramLayout::kId) + ")";
  }
  if (h.bucket_index_size() != h.bucket_count_size()) {
    return "histogram has " + std::to_string(h.bucket_index_size()) + " bucket indices but " +
           std::to_string(h.bucket_count_size()) + " counts";
  }
  for (int i = 0; i < h.bucket_index_size(); ++i) {
    if (h.bucket_index(i) >= HistogramLayout::kBucketCount) {
      return "histogram bucket index " + std::to_string(h.bucket_index(i)) + " outside layout (" +
             std::to_string(HistogramLayout::kBucketCount) + " buckets)";
    }
    if (i > 0 && h.bucket_index(i) <= h.bucket_index(i - 1)) {
      return "histogram bucket indices not strictly increasing at position " + std::to_string(i);
    }
  }
  if (!empty && h.min_ns() > h.max_ns()) {
    return "histogram min " + std::to_string(h.min_ns()) + " ns exceeds max " + std::to_string(h.max_ns()) +
           " ns";
  }
  return {};
}

Result<LatencyHistogram> FromProto(const v1::LatencyHistogram& h) {
  if (auto problem = HistogramProblem(h); !problem.empty()) return Error{problem};
  LatencyHistogram::Buckets buckets;
  buckets.reserve(h.bucket_index_size());
  for (int i = 0; i < h.bucket_index_size(); ++i) {
    if (h.bucket_count(i) != 0) buckets.emplace_back(h.bucket_index(i), h.bucket_count(i));
  }
  return LatencyHistogram::FromParts(std::move(buckets), h.sum_ns(), h.min_ns(), h.max_ns());
}

const char* ActionName(v1::Action action) {
  switch (action) {
    case v1::ACTION_STAY:
      return "STAY";
    case v1::ACTION_FAILOVER:
      return "FAILOVER";
    case v1::ACTION_HOLD:
      return "HOLD";
    default:
      return "UNSPECIFIED";
  }
}

const char* RegionStateName(v1::RegionState state) {
  switch (state) {
    case v1::REGION_STATE_HEALTHY:
      return "HEALTHY";
    case v1::REGION_STATE_DEGRADED:
      return "DEGRADED";
    case v1::REGION_STATE_UNREACHABLE:
      return "UNREACHABLE";
    case v1::REGION_STATE_UNKNOWN:
      return "UNKNOWN";
    default:
      return "UNSPECIFIED";
  }
}

google::protobuf::Timestamp ToTimestamp(WallClock::time_point t) {
  return TimeUtil::NanosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

// seconds * 1e9 + nanos, or nothing when it does not fit in int64.
std::optional<int64_t> ToNanoseconds(int64_t seconds, int64_t nanos) {
  int64_t scaled = 0;
  int64_t total = 0;
  if (__builtin_mul_overflow(seconds, kNanosPerSecond, &scaled)) return std::nullopt;
  if (__builtin_add_overflow(scaled, nanos, &total)) return std::nullopt;
  return total;
}

int64_t SaturatedNanoseconds(int64_t seconds, int64_t nanos) {
  nanos = std::clamp<int64_t>(nanos, -(kNanosPerSecond - 1), kNanosPerSecond - 1);
  if (auto total = ToNanoseconds(seconds, nanos)) return *total;
  return seconds < 0 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
}

}  // namespace

std::optional<WallClock::time_point> CheckedTimestamp(const google::protobuf::Timestamp& t) {
  if (t.nanos() < 0 || t.nanos() >= kNanosPerSecond) return std::nullopt;
  auto total = ToNanoseconds(t.seconds(), t.nanos());
  if (!total) return std::nullopt;
  return WallClock::time_point(
      std::chrono::duration_cast<WallClock::duration>(std::chrono::nanoseconds(*total)));
}

std::optional<std::chrono::nanoseconds> CheckedDuration(const google::protobuf::Duration& d) {
  if (d.nanos() <= -kNanosPerSecond || d.nanos() >= kNanosPerSecond) return std::nullopt;
  if ((d.seconds() > 0 && d.nanos() < 0) || (d.seconds() < 0 && d.nanos() > 0)) return std::nullopt;
  auto total = ToNanoseconds(d.seconds(), d.nanos());
  if (!total) return std::nullopt;
  return std::chrono::nanoseconds(*total);
}

WallClock::time_point FromTimestamp(const google::protobuf::Timestamp& t) {
  return WallClock::time_point(std::chrono::duration_cast<WallClock::duration>(
      std::chrono::nanoseconds(SaturatedNanoseconds(t.seconds(), t.nanos()))));
}

google::protobuf::Duration ToDuration(std::chrono::nanoseconds d) {
  return TimeUtil::NanosecondsToDuration(d.count());
}

std::chrono::nanoseconds FromDuration(const google::protobuf::Duration& d) {
  return std::chrono::nanoseconds(SaturatedNanoseconds(d.seconds(), d.nanos()));
}

}  // namespace regionpulse
