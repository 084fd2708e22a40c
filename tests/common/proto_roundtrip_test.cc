// regionpulse.v1 messages survive serialization, and wire histograms convert both ways.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <limits>

#include "common/proto_convert.h"
#include "regionpulse/v1/ingest.pb.h"
#include "regionpulse/v1/query.pb.h"
#include "regionpulse/v1/verdicts.pb.h"
#include "tests/support/sample_report.h"

namespace regionpulse {
namespace {

using test::SampleReport;

using google::protobuf::util::MessageDifferencer;

template <typename Message>
void ExpectRoundTrip(const Message& original) {
  std::string bytes;
  ASSERT_TRUE(original.SerializeToString(&bytes));
  Message parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_TRUE(MessageDifferencer::Equals(original, parsed)) << original.DebugString();
}

TEST(ProtoRoundTrip, IngestMessages) {
  v1::StreamRequest hello;
  hello.mutable_hello()->set_node("n1");
  hello.mutable_hello()->set_instance_id(0xdeadbeefcafeULL);
  hello.mutable_hello()->mutable_capabilities()->set_tcx(true);
  ExpectRoundTrip(hello);
  v1::StreamRequest report;
  *report.mutable_report() = SampleReport();
  ExpectRoundTrip(report);
  v1::StreamResponse plan;
  plan.mutable_probe_plan()->set_plan_version(3);
  plan.mutable_probe_plan()->add_targets()->mutable_endpoint()->set_port(862);
  ExpectRoundTrip(plan);
  v1::StreamResponse ack;
  ack.mutable_ack()->set_highest_sequence(99);
  ExpectRoundTrip(ack);
}

TEST(ProtoRoundTrip, VerdictAndQueryMessages) {
  v1::Verdict verdict;
  verdict.set_generation(5);
  verdict.set_action(v1::ACTION_FAILOVER);
  verdict.set_target_region("eu-west-1");
  auto* region = verdict.add_regions();
  region->set_state(v1::REGION_STATE_UNREACHABLE);
  region->set_observers_agreeing(7);
  verdict.add_reasons("7/8 observers lost every probe to us-east-1 for 124 s");
  ExpectRoundTrip(verdict);
  v1::GetRegionMatrixResponse matrix;
  matrix.add_regions("us-east-1");
  matrix.add_cells()->set_loss_forward(0.5);
  ExpectRoundTrip(matrix);
  v1::GetVerdictHistoryResponse history;
  *history.add_transitions()->mutable_verdict() = verdict;
  ExpectRoundTrip(history);
}

TEST(ProtoRoundTrip, HistogramThroughTheWireIsUnchanged) {
  LatencyHistogram h;
  for (uint64_t ns = 1'000; ns < 2'000'000'000; ns = ns * 3 / 2) h.Record(ns, ns % 5 + 1);
  v1::LatencyHistogram wire;
  ToProto(h, &wire);
  auto back = FromProto(wire);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(*back, h);
}

TEST(ProtoRoundTrip, TimestampsAndDurationsKeepNanoseconds) {
  const auto t = WallClock::time_point(std::chrono::nanoseconds(1'700'000'000'123'456'789LL));
  EXPECT_EQ(FromTimestamp(ToTimestamp(t)), t);
  EXPECT_EQ(FromDuration(ToDuration(std::chrono::nanoseconds(1'234'567'891))),
            std::chrono::nanoseconds(1'234'567'891));
}

// Values from the wire are checked before arithmetic: int64 nanoseconds end in 2262, and
// seconds * 1e9 past it would overflow (undefined behaviour, in practice a wrapped "now").
TEST(ProtoRoundTrip, CheckedTimestampRefusesWhatNanosecondsCannotHold) {
  google::protobuf::Timestamp t;
  t.set_seconds(9'223'372'036);  // 2262-04-11T23:47:16Z, the last whole second that fits
  t.set_nanos(854'775'807);
  ASSERT_TRUE(CheckedTimestamp(t).has_value());
  EXPECT_EQ(CheckedTimestamp(t)->time_since_epoch().count(), std::numeric_limits<int64_t>::max());
  t.set_nanos(854'775'808);
  EXPECT_FALSE(CheckedTimestamp(t).has_value());
  t.set_seconds(253'402'300'799);  // 9999-12-31: a valid protobuf Timestamp, not a time point
  t.set_nanos(0);
  EXPECT_FALSE(CheckedTimestamp(t).has_value());
  // Saturating, never wrapping: far future stays far future, far past stays far past.
  EXPECT_EQ(FromTimestamp(t), WallClock::time_point::max());
  t.set_seconds(-253'402'300'799);
  EXPECT_EQ(FromTimestamp(t), WallClock::time_point::min());
  t.set_seconds(1'700'000'000);
  t.set_nanos(-1);
  EXPECT_FALSE(CheckedTimestamp(t).has_value());
}

TEST(ProtoRoundTrip, CheckedDurationRefusesOverflowAndDisagreeingSigns) {
  google::protobuf::Duration d;
  d.set_seconds(-2);
  d.set_nanos(-500'000'000);
  EXPECT_EQ(CheckedDuration(d), std::chrono::nanoseconds(-2'500'000'000));
  d.set_nanos(500'000'000);
  EXPECT_FALSE(CheckedDuration(d).has_value());
  d.set_seconds(315'576'000'000);  // the largest protobuf Duration: ten thousand years
  d.set_nanos(0);
  EXPECT_FALSE(CheckedDuration(d).has_value());
  EXPECT_EQ(FromDuration(d), std::chrono::nanoseconds::max());
  d.set_seconds(std::numeric_limits<int64_t>::min());
  EXPECT_EQ(FromDuration(d), std::chrono::nanoseconds::min());
  d.set_seconds(0);
  d.set_nanos(1'000'000'000);
  EXPECT_FALSE(CheckedDuration(d).has_value());
}

}  // namespace
}  // namespace regionpulse
