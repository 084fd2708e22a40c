// The report log written as the agent writes it and read back as the tests and rp_report_stats
// read it, in both formats, with a report still being written at the end.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "common/report_log.h"

namespace regionpulse {
namespace {

v1::HealthReport Report(uint64_t sequence) {
  v1::HealthReport report;
  report.set_sequence(sequence);
  auto* path = report.add_paths();
  path->set_peer_node("node-b");
  path->set_probes_sent(100 + sequence);
  return report;
}

class ReportLogTest : public ::testing::TestWithParam<ReportLogFormat> {};

TEST_P(ReportLogTest, ReportsComeBackInOrderAndOneCutShortIsLeftOut) {
  std::stringstream log;
  for (uint64_t sequence = 1; sequence <= 3; ++sequence) AppendToReportLog(log, Report(sequence), GetParam());
  const std::string whole = log.str();
  std::stringstream read_whole(whole);
  const auto reports = ReadReportLog(read_whole, GetParam());
  ASSERT_EQ(reports.size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(reports[i].SerializeAsString(), Report(i + 1).SerializeAsString()) << i;
  }
  // The third report half written: two come back.
  const size_t third = whole.size() - [&] {
    std::stringstream one;
    AppendToReportLog(one, Report(3), GetParam());
    return one.str().size();
  }();
  std::stringstream cut(whole.substr(0, third + (whole.size() - third) / 2));
  EXPECT_EQ(ReadReportLog(cut, GetParam()).size(), 2u);
  // Written but for its last octet (JSON: the newline): still being written.
  std::stringstream all_but_last(whole.substr(0, whole.size() - 1));
  EXPECT_EQ(ReadReportLog(all_but_last, GetParam()).size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Formats, ReportLogTest,
                         ::testing::Values(ReportLogFormat::kJson, ReportLogFormat::kBinary),
                         [](const auto& info) {
                           return info.param == ReportLogFormat::kJson ? "Json" : "Binary";
                         });

TEST(ReportLog, TheJsonFormatIsOneLinePerReportWithProtoFieldNames) {
  std::stringstream log;
  AppendToReportLog(log, Report(7), ReportLogFormat::kJson);
  const std::string text = log.str();
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1);
  EXPECT_NE(text.find("\"peer_node\":\"node-b\""), std::string::npos) << text;
}

TEST(ReportLog, TheBinaryFormatIsAVarintLengthThenTheReport) {
  std::stringstream log;
  AppendToReportLog(log, Report(7), ReportLogFormat::kBinary);
  const std::string bytes = log.str();
  const std::string body = Report(7).SerializeAsString();
  ASSERT_LT(body.size(), 128u);  // a one-octet varint
  ASSERT_EQ(bytes.size(), body.size() + 1);
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), body.size());
  EXPECT_EQ(bytes.substr(1), body);
}

}  // namespace
}  // namespace regionpulse
