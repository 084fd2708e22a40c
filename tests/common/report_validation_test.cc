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
        // Wire values range-checked before arithmetic: past 2262 a nanosecond time point wraps,
        // and before this check a report from the year 2300 passed as a one-second window.
        BadReportCase{"WindowPastTheYear2262",
                      [](auto& r) {
                        r.mutable_window_start()->set_seconds(10'413'792'000);  // 2300-01-01
                        kWindowEnd(r)->set_seconds(10'413'792'001);
                      },
                      "window timestamps out of range"},
        BadReportCase{"WindowEndPastTheYear2262", [](auto& r) { kWindowEnd(r)->set_seconds(9'300'000'000); },
                      "window timestamps out of range"},
        BadReportCase{"WindowNanosOutOfRange", [](auto& r) { kWindowEnd(r)->set_nanos(1'000'000'000); },
                      "window timestamps out of range"},
        BadReportCase{"JitterBeyondInt64Nanoseconds",
                      [](auto& r) { r.mutable_paths(0)->mutable_jitter()->set_seconds(315'576'000'000); },
                      "paths[0] (peer node-eu-1) jitter is not a valid duration"},
        BadReportCase{"JitterOfThreeHours",
                      [](auto& r) { r.mutable_paths(0)->mutable_jitter()->set_seconds(3 * 3600); },
                      "jitter is 10800 s (limit 7200 s)"},
        BadReportCase{"NegativeJitter", [](auto& r) { r.mutable_paths(0)->mutable_jitter()->set_nanos(-5); },
                      "paths[0] (peer node-eu-1) jitter is negative"},
        BadReportCase{"TcpSrttHuge",
                      [](auto& r) { r.mutable_traffic(0)->mutable_tcp_srtt()->set_seconds(int64_t{1} << 62); },
                      "traffic[0] tcp_srtt is not a valid duration"},
        BadReportCase{"FlowSrttSignsDisagree",
                      [](auto& r) {
                        r.mutable_flows(0)->mutable_srtt()->set_seconds(1);
                        r.mutable_flows(0)->mutable_srtt()->set_nanos(-1);
                      },
                      "flows[0] srtt is not a valid duration"},
        BadReportCase{"ProgressAgeBeyondInt64Nanoseconds",
                      [](auto& r) { r.mutable_flows(0)->mutable_last_progress_age()->set_seconds(9'300'000'000); },
                      "flows[0] last_progress_age is not a valid duration"},
        BadReportCase{"TooManyPaths",
                      [](auto& r) {
                        for (size_t i = 0; i < ReportLimits{}.max_paths; ++i) *r.add_paths() = r.paths(0);
                      },
                      "paths: 8193 entries (limit 8192)"},
        BadReportCase{"UnknownDirectionMoreThanNotReached",
                      [](auto& r) { r.mutable_paths(0)->set_lost_direction_unknown(2); },
                      "received_forward 9 + lost_direction_unknown 2 > probes_sent 10"},
        BadReportCase{"UnknownDirectionOverflowingTheSum",
                      [](auto& r) { r.mutable_paths(0)->set_lost_direction_unknown(~uint64_t{0}); },
                      "lost_direction_unknown 18446744073709551615 > probes_sent 10"},
        BadReportCase{"MoreProbesThanAWindowHolds",
                      [](auto& r) {
                        auto* path = r.mutable_paths(0);
                        path->set_probes_sent(100'001);
                        path->set_lost_direction_unknown(100'001 - 9);
                      },
                      "probes_sent 100001 > 100000 (100000 a second)"},
        BadReportCase{"SsidWiderThan16Bits", [](auto& r) { r.mutable_paths(0)->set_ssid(70000); },
                      "ssid 70000 > 65535"},
        BadReportCase{"SourceNotAnAddress",
                      [](auto& r) { r.mutable_paths(0)->mutable_source()->set_address("node-a.example"); },
                      "source.address \"node-a.example\" is not an IP literal"},
        BadReportCase{
            "SourceAddressTooLong",
            [](auto& r) { r.mutable_paths(0)->mutable_source()->set_address(std::string(100, '1')); },
            "source.address is 100 bytes long (limit 64)"},
        BadReportCase{"SourcePortOutOfRange",
                      [](auto& r) { r.mutable_paths(0)->mutable_source()->set_port(70000); },
                      "source.port 70000 not in [1, 65535]"},
        BadReportCase{"SourcePortWithoutAddress",
                      [](auto& r) { r.mutable_paths(0)->mutable_source()->clear_address(); },
                      "source.port 40123 without an address"},
        BadReportCase{"TooManyReflected",
                      [](auto& r) {
                        for (uint32_t i = 1; i <= 4096; ++i) {
                          auto* extra = r.add_reflected();
                          *extra = r.reflected(0);
                          extra->set_ssid(i + 7);
                        }
                      },
                      "reflected: 4097 entries (limit 4096)"},
        BadReportCase{"ReflectedWithoutSender",
                      [](auto& r) {
                        r.mutable_reflected(0)->mutable_sender()->clear_address();
                        r.mutable_reflected(0)->mutable_sender()->clear_port();
                      },
                      "reflected[0] sender.address is empty"},
        BadReportCase{"ReflectedSenderNotAnAddress",
                      [](auto& r) { r.mutable_reflected(0)->mutable_sender()->set_address("10.1.0.7%eth0"); },
                      "reflected[0] sender.address \"10.1.0.7%eth0\" is not an IP literal"},
        BadReportCase{"ReflectedSenderPortZero",
                      [](auto& r) { r.mutable_reflected(0)->mutable_sender()->set_port(0); },
                      "reflected[0] sender.port 0 not in [1, 65535]"},
        BadReportCase{"ReflectedSsidWiderThan16Bits",
                      [](auto& r) { r.mutable_reflected(0)->set_ssid(65536); },
                      "reflected[0]: ssid 65536 > 65535"},
        BadReportCase{"RepliedMoreThanReceived", [](auto& r) { r.mutable_reflected(0)->set_replied(11); },
                      "reflected[0]: replied 11 > received 10"},
        BadReportCase{"ReflectedMoreThanAWindowHolds",
                      [](auto& r) {
                        r.mutable_reflected(0)->set_received(~uint64_t{0});
                        r.mutable_reflected(0)->set_replied(0);
                      },
                      "reflected[0]: received 18446744073709551615 > 100000"},
        BadReportCase{"ReflectedSessionTwice", [](auto& r) { *r.add_reflected() = r.reflected(0); },
                      "reflected[1]: sender session fd00:2::5 port 40200 ssid 7 appears twice"},
        BadReportCase{"NameTooLong",
                      [](auto& r) { r.mutable_paths(0)->set_peer_zone(std::string(300, 'z')); },
                      "peer_zone is 300 bytes long"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ReportValidation, AddressesWithAZoneAndUnsetSourcesAreAccepted) {
  auto report = SampleReport();
  report.mutable_paths(0)->mutable_source()->set_address("fe80::1%eth0");
  report.mutable_reflected(0)->mutable_sender()->set_address("10.1.0.7");
  auto* unnamed = report.add_paths();
  *unnamed = report.paths(0);
  unnamed->clear_source();  // no route to the peer when the probe left
  unnamed->set_ssid(0);
  EXPECT_THAT(ReportProblems(report), ::testing::IsEmpty());
}

// The probe bound follows the window's length: a 10 s window may count ten times as many.
TEST(ReportValidation, ProbeCountsAreBoundedPerSecondOfWindow) {
  auto report = SampleReport();
  report.mutable_window_end()->set_seconds(report.window_start().seconds() + 10);
  report.mutable_reflected(0)->set_received(1'000'000);
  EXPECT_THAT(ReportProblems(report), ::testing::IsEmpty());
  report.mutable_reflected(0)->set_received(1'000'001);
  EXPECT_THAT(ReportProblems(report), ::testing::ElementsAre(HasSubstr("received 1000001 > 1000000")));
}

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
