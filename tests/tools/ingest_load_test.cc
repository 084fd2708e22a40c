// The ingest load generator (tools/bench/ingest_load.h): its pure parts, and a small run of 20
// agents against an in-process aggregator on loopback, so the benchmark does not rot: every
// agent is registered and reporting, the lag figures are produced, the cut is pushed by Watch.
#include "tools/bench/ingest_load.h"

#include <unistd.h>

#include <cmath>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/proto_convert.h"
#include "tests/support/in_process_aggregator.h"

namespace regionpulse::bench {
namespace {

using namespace std::chrono_literals;
using ::testing::SizeIs;

TEST(IngestLoadFleet, SplitsAgentsFortyFortyTwentyWithAddressesInsideEachRegion) {
  IngestLoadOptions options;
  options.agents = 1001;
  const auto fleet = MakeFleet(options);
  ASSERT_THAT(fleet, SizeIs(1001));
  std::map<std::string, int> per_region;
  std::set<std::string> names, addresses;
  for (const auto& member : fleet) {
    ++per_region[member.region];
    names.insert(member.node);
    addresses.insert(member.address);
    const std::string prefix = member.region == "us-east-1"   ? "10.1."
                               : member.region == "eu-west-1" ? "10.2."
                                                              : "10.3.";
    EXPECT_TRUE(member.address.starts_with(prefix)) << member.node << " " << member.address;
    EXPECT_TRUE(member.zone.starts_with(member.region)) << member.zone;
  }
  EXPECT_EQ(per_region["us-east-1"], 400);
  EXPECT_EQ(per_region["eu-west-1"], 400);
  EXPECT_EQ(per_region["ap-southeast-1"], 201);  // the last region takes the rounding
  EXPECT_EQ(names.size(), 1001u);
  EXPECT_EQ(addresses.size(), 1001u);
}

// The generator sends each agent's report serialised once, with each window's sequence and
// times appended: the aggregator must parse exactly the report the typed stub would have sent.
TEST(IngestLoadEncoding, AnEncodedReportParsesAsTheReportWithThisWindowsSequenceAndTimes) {
  v1::HealthReport report;
  auto* path = report.add_paths();
  path->set_peer_node("eu-west-1-node-00007");
  path->set_peer_region("eu-west-1");
  path->set_probes_sent(10);
  report.add_reflected()->set_received(9);
  const WallTime start = WallTime(std::chrono::seconds(1'800'000'000));  // whole seconds: nanos 0
  const WallTime end = start + 1s;

  v1::StreamRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(EncodedReport(report.SerializeAsString(), 42, start, end)));
  ASSERT_TRUE(parsed.has_report());
  v1::StreamRequest expected;
  *expected.mutable_report() = report;
  expected.mutable_report()->set_sequence(42);
  *expected.mutable_report()->mutable_window_start() = ToTimestamp(start);
  *expected.mutable_report()->mutable_window_end() = ToTimestamp(end);
  EXPECT_EQ(parsed.SerializeAsString(), expected.SerializeAsString());
  EXPECT_EQ(parsed.report().window_end().nanos(), 0);
}

// Each window's report goes out as the agent's serialised report shared by reference between the
// window's header and stamp: the same bytes as EncodedReport, without copying ~1.8 KiB per send.
TEST(IngestLoadEncoding, TheReportBufferIsTheEncodedReportWithTheBaseSharedNotCopied) {
  v1::HealthReport report;
  report.add_paths()->set_peer_node(std::string(300, 'n'));  // longer than any inlined slice
  const std::string base_bytes = report.SerializeAsString();
  const grpc::Slice base(base_bytes);
  const WallTime start = WallTime(std::chrono::seconds(1'800'000'000)) + 123456789ns;
  const WallTime end = start + 1s;

  const grpc::ByteBuffer buffer = EncodedReportBuffer(base, 300'000, start, end);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(buffer.Dump(&slices).ok());
  std::string sent;
  bool base_shared = false;
  for (const grpc::Slice& slice : slices) {
    sent.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    base_shared = base_shared || slice.begin() == base.begin();
  }
  EXPECT_EQ(sent, EncodedReport(base_bytes, 300'000, start, end));
  EXPECT_TRUE(base_shared) << "the report's bytes were copied into the buffer";
}

TEST(IngestLoadMetrics, HistogramQuantilesComeFromTheBucketsBetweenTwoScrapes) {
  const std::string before =
      "tick_bucket{le=\"0.01\"} 5\ntick_bucket{le=\"0.1\"} 10\ntick_bucket{le=\"+Inf\"} 10\n"
      "tick_sum 0.5\ntick_count 10\n";
  const std::string after =
      "tick_bucket{le=\"0.01\"} 95\ntick_bucket{le=\"0.1\"} 109\ntick_bucket{le=\"+Inf\"} 110\n"
      "tick_sum 2.5\ntick_count 110\nother{kind=\"ingest\"} 42\n";
  const HistogramDelta delta = HistogramBetween(before, after, "tick");
  EXPECT_EQ(delta.count, 100u);
  EXPECT_DOUBLE_EQ(delta.sum, 2.0);
  EXPECT_DOUBLE_EQ(delta.QuantileBound(0.5), 0.01);  // 90 of 100 at or below 10 ms
  EXPECT_DOUBLE_EQ(delta.QuantileBound(0.95), 0.1);
  EXPECT_TRUE(std::isinf(delta.QuantileBound(1.0)));  // one above the last finite bound
  EXPECT_EQ(SampleValue(after, "other{kind=\"ingest\"}"), 42);
  EXPECT_EQ(SampleValue(after, "missing"), std::nullopt);
}

// 20 agents for a few windows against an aggregator evaluating every 200 ms.
TEST(IngestLoadRun, TwentyAgentsAllReportAndTheLagAndTheCutAreMeasured) {
  test::ScratchDirectory dir("ingest-load");
  AggregatorConfig config = test::ThreeRegionConfig(dir.path());
  config.evaluation_interval = 200ms;
  auto aggregator = Aggregator::Start(config);
  ASSERT_TRUE(aggregator.ok()) << aggregator.error().ToString();

  IngestLoadOptions options;
  options.target = "127.0.0.1:" + std::to_string((*aggregator)->grpc_port());
  options.metrics = "127.0.0.1:" + std::to_string((*aggregator)->metrics_port());
  options.aggregator_pid = static_cast<int>(getpid());  // in-process: the figures cover both
  options.agents = 20;
  options.agents_per_channel = 8;
  options.connect_timeout = 30s;
  options.plan_quiet = 500ms;
  options.warmup = 1s;
  options.healthy_timeout = 20s;
  options.measure = 3s;
  options.list_interval = 500ms;
  options.verdict_timeout = 20s;
  std::ostringstream progress;
  auto result = RunIngestLoad(options, progress);
  ASSERT_TRUE(result.ok()) << result.error().ToString() << "\n" << progress.str();
  const IngestLoadResult& r = *result;
  SCOPED_TRACE(progress.str() + MarkdownRow(options, r));

  EXPECT_EQ(r.agents_planned, 20u);
  EXPECT_EQ(r.streams_ended, 0u) << r.first_stream_error;
  EXPECT_EQ(r.hellos_refused, 0u);
  EXPECT_GT(r.report_bytes, 500u) << "reports carry paths, reflected senders and traffic";
  // Three seconds of 20 agents at one report a second each.
  EXPECT_GE(r.reports_sent, 40u);
  EXPECT_GE(r.reports_acked + 20, r.reports_sent);
  EXPECT_GT(r.visible_lag.count, 0u);
  EXPECT_GT(r.visible_lag.p99_ms, 0.0);
  EXPECT_GE(r.visible_lag.p99_ms, r.visible_lag.p50_ms);
  EXPECT_GT(r.ack_lag.count, 0u);
  EXPECT_GT(r.ticks, 0u);
  EXPECT_GT(r.aggregator_rss_kib, 0u);
  EXPECT_EQ(r.state_before_cut, "HEALTHY");
  ASSERT_TRUE(r.verdict_after_cut_s.has_value()) << r.verdict_change;
  EXPECT_THAT(r.verdict_change, ::testing::StartsWith("us-east-1 HEALTHY → "));

  // Every generator agent is known to the aggregator and has reported several windows.
  auto query = v1::Query::NewStub((*aggregator)->InProcessChannel());
  grpc::ClientContext context;
  v1::ListAgentsResponse agents;
  ASSERT_TRUE(query->ListAgents(&context, v1::ListAgentsRequest(), &agents).ok());
  std::set<std::string> listed;
  for (const auto& agent : agents.agents()) {
    listed.insert(agent.node());
    EXPECT_GE(agent.last_sequence(), 3u) << agent.node();
    EXPECT_GT(agent.plan_version(), 0u) << agent.node();
  }
  for (const auto& member : MakeFleet(options)) EXPECT_TRUE(listed.contains(member.node)) << member.node;
}

}  // namespace
}  // namespace regionpulse::bench
