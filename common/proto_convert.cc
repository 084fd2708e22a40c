// Wire <-> program type translations.
#include "common/proto_convert.h"

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

WallClock::time_point FromTimestamp(const google::protobuf::Timestamp& t) {
  return WallClock::time_point(std::chrono::duration_cast<WallClock::duration>(
      std::chrono::nanoseconds(TimeUtil::TimestampToNanoseconds(t))));
}

google::protobuf::Duration ToDuration(std::chrono::nanoseconds d) {
  return TimeUtil::NanosecondsToDuration(d.count());
}

std::chrono::nanoseconds FromDuration(const google::protobuf::Duration& d) {
  return std::chrono::nanoseconds(TimeUtil::DurationToNanoseconds(d));
}

}  // namespace regionpulse
