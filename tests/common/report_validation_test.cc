// Each kind of inconsistent report is rejected with a reason that names the problem.
#include "common/report_validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>

#include "tests/support/sample_report.h"

namespace regionpulse {
namespace {

using test::SampleReport;

using ::testing::HasSubstr;

TEST(ReportValidation, ConsistentReportHasNoProblems) {
  EXPECT_THAT(ReportProblems(SampleReport()), ::testing::IsEmpty());
}

struct BadReportCase {
  const char* name;
  std::function<void(v1::HealthReport&)> breakIt;
  const char* expected_reason;
};

void PrintTo(const BadReportCase& c, std::ostream* os) {
  *os << c.name;
}

class BadReport : public ::testing::TestWithParam<BadReportCase> {};

TEST_P(BadReport, IsRejectedWithItsReason) {
  auto report = SampleReport();
  GetParam().breakIt(report);
  const auto problems = ReportProblems(report);
  ASSERT_EQ(problems.size(), 1u) << ::testing::PrintToString(problems);
  EXPECT_THAT(problems[0], HasSubstr(GetParam().expected_reason));
}

const auto kWindowEnd = [](v1::HealthReport& r) -> google::protobuf::Timestamp* {
  return r.mutable_window_end();
};

INSTANTIATE_TEST_SUITE_P(
    EachKind, BadReport,
    ::testing::Values(
        BadReportCase{"ReceivedMoreThanSent", [](auto& r) { r.mutable_paths(0)->set_received_forward(11); },
                      "received_forward 11 > probes_sent 10"},
        BadReportCase{"RepliesMoreThanReached", [](auto& r) { r.mutable_paths(0)->set_received_reverse(10); },
                      "received_reverse 10 > received_forward 9"},
        BadReportCase{"WindowEndBeforeStart", [](auto& r) { kWindowEnd(r)->set_seconds(1'699'999'999); },
                      "is not after window_start"},
        BadReportCase{"WindowEndMissing", [](auto& r) { r.clear_window_end(); }, "must both be set"},
        BadReportCase{"WindowTooLong", [](auto& r) { kWindowEnd(r)->set_seconds(1'700'001'000); },
                      "s long (limit 300 s)"},
        BadReportCase{"SequenceZero", [](auto& r) { r.set_sequence(0); }, "sequence is 0"},
        BadReportCase{"BucketOutsideLayout",
                      [](auto& r) { r.mutable_paths(0)->mutable_rtt_kernel()->set_bucket_index(1, 5000); },
                      "bucket index 5000 outside layout"},
        BadReportCase{"BucketsNotIncreasing",
                      [](auto& r) {
                        auto* h = r.mutable_paths(0)->mutable_rtt_kernel();
                        h->set_bucket_index(1, h->bucket_index(0));
                      },
                      "not strictly increasing"},
        BadReportCase{"BucketArraysMismatched",
                      [](auto& r) { r.mutable_paths(0)->mutable_rtt_kernel()->add_bucket_count(1); },
                      "bucket indices but"},
        BadReportCase{"UnknownHistogramLayout",
                      [](auto& r) { r.mutable_paths(0)->mutable_rtt_user()->set_layout(9); },
                      "unknown histogram layout 9"},
        BadReportCase{"LossNotARatio", [](auto& r) { r.mutable_paths(0)->set_loss_forward(1.5); },
                      "loss_forward 1.5"},
        BadReportCase{"PeerWithoutName", [](auto& r) { r.mutable_paths(0)->clear_peer_node(); },
                      "peer_node is empty"},
        BadReportCase{"TrafficWithoutRegion", [](auto& r) { r.mutable_traffic(0)->clear_remote_region(); },
                      "traffic[0] remote_region is empty"},
        BadReportCase{"NegativeProgressAge",
                      [](auto& r) { r.mutable_flows(0)->mutable_last_progress_age()->set_seconds(-3); },
                      "last_progress_age is negative"},
        BadReportCase{"TooManyPaths",
                      [](auto& r) {
                        for (int i = 0; i < 4096; ++i) *r.add_paths() = r.paths(0);
                      },
                      "paths: 4097 entries (limit 4096)"},
        BadReportCase{"NameTooLong",
                      [](auto& r) { r.mutable_paths(0)->set_peer_zone(std::string(300, 'z')); },
                      "peer_zone is 300 bytes long"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ReportValidation, OversizedReportIsRejected) {
  auto report = SampleReport();
  ReportLimits limits;
  limits.max_bytes = 64;
  const auto problems = ReportProblems(report, limits);
  ASSERT_FALSE(problems.empty());
  EXPECT_THAT(problems[0], HasSubstr("bytes (limit 64)"));
}

}  // namespace
}  // namespace regionpulse
