// The report log: every report an agent closes, appended to a file for tests, debugging and the
// benchmarks (agent `report_log_file`). Written by the agent, read back by the test support and
// rp_report_stats.
#pragma once

#include <iosfwd>
#include <vector>

#include "regionpulse/v1/ingest.pb.h"

namespace regionpulse {

// kJson: one HealthReport as JSON per line (proto field names), for people and scripts.
// kBinary: length-delimited binary HealthReports (protobuf's SerializeDelimitedToOstream),
// which costs the agent a fraction of the JSON printer (that was 9 % of a 1,000-target agent's
// CPU in tools/bench/agent_cost).
enum class ReportLogFormat { kJson, kBinary };

// Appends `report` and flushes, so a reader sees whole reports as soon as they are written.
void AppendToReportLog(std::ostream& log, const v1::HealthReport& report, ReportLogFormat format);

// Every complete report in `log`, in order. A report still being written (a JSON line without
// its newline, a binary record cut short) ends the reading as the end of the file does.
std::vector<v1::HealthReport> ReadReportLog(std::istream& log, ReportLogFormat format);

}  // namespace regionpulse
