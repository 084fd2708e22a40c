// regionpulse.v1 messages survive serialization, and wire histograms convert both ways.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace regionpulse
