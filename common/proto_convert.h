// Translations between regionpulse.v1 wire types and the types the programs keep in their own
// form: latency histograms, clock time points and durations; and the names of the v1 enums for
// text. Reports, plans and verdicts stay v1 messages throughout (docs/design.md, section 2).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include "common/clocks.h"
#include "common/latency_histogram.h"
#include "common/result.h"
#include "regionpulse/v1/common.pb.h"
#include "regionpulse/v1/verdicts.pb.h"

namespace regionpulse {

void ToProto(const LatencyHistogram& histogram, v1::LatencyHistogram* out);
// Fails, saying why, on an unknown layout, mismatched arrays, indices out of range or not
// strictly increasing, or min > max.
Result<LatencyHistogram> FromProto(const v1::LatencyHistogram& histogram);
// The same checks without building the histogram; empty string when valid.
std::string HistogramProblem(const v1::LatencyHistogram& histogram);

// "STAY", "FAILOVER", "HOLD"; "HEALTHY", "DEGRADED", "UNREACHABLE", "UNKNOWN"; anything else
// (the zero value, or a value from a newer contract) is "UNSPECIFIED". For reasons and tables.
const char* ActionName(v1::Action action);
const char* RegionStateName(v1::RegionState state);

google::protobuf::Timestamp ToTimestamp(WallClock::time_point t);
google::protobuf::Duration ToDuration(std::chrono::nanoseconds d);

// Values from the wire, checked before any arithmetic: nothing when the value is not a
// well-formed protobuf Timestamp/Duration (nanos out of range, signs that disagree) or lies
// beyond what int64 nanoseconds hold (timestamps from 1677-09-21 to 2262-04-11, durations
// within about ±292 years). What receivers use to refuse a value in words.
std::optional<WallClock::time_point> CheckedTimestamp(const google::protobuf::Timestamp& t);
std::optional<std::chrono::nanoseconds> CheckedDuration(const google::protobuf::Duration& d);

// The same conversions, saturating: a value beyond the representable range becomes its
// nearest end (never a wrapped-around "now"); malformed nanos are clamped. For values already
// validated, or where the ends are harmless (a query's time range).
WallClock::time_point FromTimestamp(const google::protobuf::Timestamp& t);
std::chrono::nanoseconds FromDuration(const google::protobuf::Duration& d);

}  // namespace regionpulse
