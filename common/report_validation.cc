// Stateless HealthReport checks.
#include "common/report_validation.h"

#include <cmath>

#include <google/protobuf/util/time_util.h>

#include "common/proto_convert.h"

namespace regionpulse {
namespace {

using google::protobuf::util::TimeUtil;

bool IsValidTimestamp(const google::protobuf::Timestamp& t) {
  return t.seconds() >= TimeUtil::kTimestampMinSeconds && t.seconds() <= TimeUtil::kTimestampMaxSeconds &&
         t.nanos() >= 0 && t.nanos() <= 999'999'999;
}

bool IsRatio(double x) {
  return std::isfinite(x) && x >= 0.0 && x <= 1.0;
}

class ProblemList {
 public:
  explicit ProblemList(std::vector<std::string>* out) : out_(out) {}
  void Add(std::string problem) { out_->push_back(std::move(problem)); }
  void CheckName(const std::string& where, const std::string& value, size_t max, bool required) {
    if (required && value.empty()) Add(where + " is empty");
    if (value.size() > max) {
      Add(where + " is " + std::to_string(value.size()) + " bytes long (limit " + std::to_string(max) + ")");
    }
  }
  void CheckCount(const std::string& what, size_t n, size_t max) {
    if (n > max) Add(what + ": " + std::to_string(n) + " entries (limit " + std::to_string(max) + ")");
  }
  void CheckHistogram(const std::string& where, const v1::LatencyHistogram& h) {
    if (auto problem = HistogramProblem(h); !problem.empty()) Add(where + ": " + problem);
  }

 private:
  std::vector<std::string>* out_;
};

}  // namespace

std::vector<std::string> ReportProblems(const v1::HealthReport& report, const ReportLimits& limits) {
  std::vector<std::string> problems;
  ProblemList p(&problems);

  const size_t bytes = report.ByteSizeLong();
  if (bytes > limits.max_bytes) {
    p.Add("report is " + std::to_string(bytes) + " bytes (limit " + std::to_string(limits.max_bytes) + ")");
  }
  if (report.sequence() == 0) p.Add("sequence is 0 (sequences start at 1)");

  if (!report.has_window_start() || !report.has_window_end()) {
    p.Add("window_start and window_end must both be set");
  } else if (!IsValidTimestamp(report.window_start()) || !IsValidTimestamp(report.window_end())) {
    p.Add("window timestamps out of range");
  } else {
    const auto start = FromTimestamp(report.window_start());
    const auto end = FromTimestamp(report.window_end());
    if (end <= start) {
      p.Add("window_end " + TimeUtil::ToString(report.window_end()) + " is not after window_start " +
            TimeUtil::ToString(report.window_start()));
    } else if (end - start > limits.max_window) {
      p.Add("window is " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(end - start).count()) +
            " s long (limit " + std::to_string(limits.max_window.count()) + " s)");
    }
  }

  p.CheckCount("paths", report.paths_size(), limits.max_paths);
  for (int i = 0; i < report.paths_size(); ++i) {
    const auto& path = report.paths(i);
    const std::string where = "paths[" + std::to_string(i) + "] (peer " + path.peer_node() + ")";
    p.CheckName(where + " peer_node", path.peer_node(), limits.max_name_length, true);
    p.CheckName(where + " peer_region", path.peer_region(), limits.max_name_length, true);
    p.CheckName(where + " peer_zone", path.peer_zone(), limits.max_name_length, false);
    if (path.received_forward() > path.probes_sent()) {
      p.Add(where + ": received_forward " + std::to_string(path.received_forward()) + " > probes_sent " +
            std::to_string(path.probes_sent()));
    }
    if (path.received_reverse() > path.received_forward()) {
      p.Add(where + ": received_reverse " + std::to_string(path.received_reverse()) + " > received_forward " +
            std::to_string(path.received_forward()));
    }
    if (!IsRatio(path.loss_forward()))
      p.Add(where + ": loss_forward " + std::to_string(path.loss_forward()) + " not in [0, 1]");
    if (!IsRatio(path.loss_reverse()))
      p.Add(where + ": loss_reverse " + std::to_string(path.loss_reverse()) + " not in [0, 1]");
    p.CheckHistogram(where + " rtt_kernel", path.rtt_kernel());
    p.CheckHistogram(where + " rtt_user", path.rtt_user());
    if (path.jitter().seconds() < 0 || path.jitter().nanos() < 0) p.Add(where + ": jitter is negative");
  }

  p.CheckCount("traffic", report.traffic_size(), limits.max_traffic);
  for (int i = 0; i < report.traffic_size(); ++i) {
    p.CheckName("traffic[" + std::to_string(i) + "] remote_region", report.traffic(i).remote_region(),
                limits.max_name_length, true);
  }

  p.CheckCount("flows", report.flows_size(), limits.max_flows);
  for (int i = 0; i < report.flows_size(); ++i) {
    const auto& flow = report.flows(i);
    const std::string where = "flows[" + std::to_string(i) + "]";
    p.CheckName(where + " name", flow.name(), limits.max_name_length, true);
    p.CheckName(where + " remote_region", flow.remote_region(), limits.max_name_length, true);
    if (flow.last_progress_age().seconds() < 0 || flow.last_progress_age().nanos() < 0) {
      p.Add(where + " (" + flow.name() + "): last_progress_age is negative");
    }
  }

  p.CheckCount("status.errors", report.status().errors_size(), limits.max_errors);
  return problems;
}

}  // namespace regionpulse
