#include "common/report_log.h"

#include <istream>
#include <ostream>
#include <string>

#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/util/delimited_message_util.h>
#include <google/protobuf/util/json_util.h>

namespace regionpulse {

void AppendToReportLog(std::ostream& log, const v1::HealthReport& report, ReportLogFormat format) {
  if (format == ReportLogFormat::kBinary) {
    google::protobuf::util::SerializeDelimitedToOstream(report, &log);
  } else {
    std::string line;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    if (google::protobuf::util::MessageToJsonString(report, &line, options).ok()) log << line << '\n';
  }
  log.flush();
}

std::vector<v1::HealthReport> ReadReportLog(std::istream& log, ReportLogFormat format) {
  std::vector<v1::HealthReport> reports;
  if (format == ReportLogFormat::kBinary) {
    google::protobuf::io::IstreamInputStream stream(&log);
    for (;;) {
      v1::HealthReport report;
      bool clean_eof = false;
      if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&report, &stream, &clean_eof)) break;
      reports.push_back(std::move(report));
    }
    return reports;
  }
  for (std::string line; std::getline(log, line);) {
    v1::HealthReport report;
    // getline reaching the end of the file means the line had no newline yet.
    if (log.eof() || !google::protobuf::util::JsonStringToMessage(line, &report).ok()) break;
    reports.push_back(std::move(report));
  }
  return reports;
}

}  // namespace regionpulse
