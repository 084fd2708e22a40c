// Stateless HealthReport checks.
#include "common/report_validation.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string_view>
#include <tuple>

#include <google/protobuf/util/time_util.h>

#include "common/proto_convert.h"

namespace regionpulse {
namespace {

using google::protobuf::util::TimeUtil;

// An IPv6 literal with a zone ("fe80::1%eth0") fits in INET6_ADDRSTRLEN plus an interface name.
constexpr size_t kMaxAddressLength = 64;

// An IPv4 or IPv6 literal, an IPv6 one possibly with a zone ("fe80::1%eth0"): the form both
// ends of a path give the addresses the aggregator joins them on.
bool IsIpLiteral(const std::string& text) {
  in6_addr buffer{};
  const std::string address = text.substr(0, text.find('%'));
  if (inet_pton(AF_INET, address.c_str(), &buffer) == 1) return address.size() == text.size();
  return inet_pton(AF_INET6, address.c_str(), &buffer) == 1;
}

// Probes a window may count in one entry: the allowed rate times the window's length, the
// window taken as max_window when its bounds are unusable (that problem is reported apart).
uint64_t MaxProbesIn(const v1::HealthReport& report, const ReportLimits& limits) {
  auto window = std::chrono::duration_cast<std::chrono::nanoseconds>(limits.max_window);
  const auto start = CheckedTimestamp(report.window_start());
  const auto end = CheckedTimestamp(report.window_end());
  if (report.has_window_start() && report.has_window_end() && start && end && *end > *start) {
    // Both within int64 nanoseconds of 1970 but possibly on opposite sides: compare before
    // subtracting, so the difference cannot overflow.
    if (*start >= *end - window) window = *end - *start;
  }
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(window).count();
  return limits.max_probes_per_second * static_cast<uint64_t>(std::max<int64_t>(seconds, 1));
}

bool IsRatio(double x) {
  return std::isfinite(x) && x >= 0.0 && x <= 1.0;
}

// Where a problem is: a callable returning the field's name, built only when there is a
// problem (a consistent report, the common case, then costs no string building at all).
class ProblemList {
 public:
  explicit ProblemList(std::vector<std::string>* out) : out_(out) {}
  void Add(std::string problem) { out_->push_back(std::move(problem)); }
  template <typename Where>
  void CheckName(const Where& where, const std::string& value, size_t max, bool required) {
    if (required && value.empty()) Add(where() + " is empty");
    if (value.size() > max) {
      Add(where() + " is " + std::to_string(value.size()) + " bytes long (limit " + std::to_string(max) +
          ")");
    }
  }
  void CheckCount(const std::string& what, size_t n, size_t max) {
    if (n > max) Add(what + ": " + std::to_string(n) + " entries (limit " + std::to_string(max) + ")");
  }
  // An optional (or required) endpoint that names one end of a probe session.
  template <typename Where>
  void CheckEndpoint(const Where& where, const v1::Endpoint& endpoint, bool required) {
    if (endpoint.address().empty()) {
      if (required) Add(where() + ".address is empty");
      if (endpoint.port() != 0)
        Add(where() + ".port " + std::to_string(endpoint.port()) + " without an address");
      return;
    }
    if (endpoint.address().size() > kMaxAddressLength) {
      Add(where() + ".address is " + std::to_string(endpoint.address().size()) + " bytes long (limit " +
          std::to_string(kMaxAddressLength) + ")");
    } else if (!IsIpLiteral(endpoint.address())) {
      Add(where() + ".address \"" + endpoint.address() + "\" is not an IP literal");
    }
    if (endpoint.port() == 0 || endpoint.port() > 0xffff) {
      Add(where() + ".port " + std::to_string(endpoint.port()) + " not in [1, 65535]");
    }
  }
  // A duration from the wire: well formed, not negative, at most max (checked before any
  // arithmetic, so a value past int64 nanoseconds never wraps).
  template <typename Where>
  void CheckDuration(const Where& where, const google::protobuf::Duration& d, std::chrono::nanoseconds max) {
    const auto value = CheckedDuration(d);
    if (!value) {
      Add(where() + " is not a valid duration (" + std::to_string(d.seconds()) + " s, " +
          std::to_string(d.nanos()) + " ns)");
    } else if (*value < std::chrono::nanoseconds::zero()) {
      Add(where() + " is negative");
    } else if (*value > max) {
      Add(where() + " is " + std::to_string(d.seconds()) + " s (limit " +
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(max).count()) + " s)");
    }
  }
  template <typename Where>
  void CheckHistogram(const Where& where, const v1::LatencyHistogram& h) {
    if (auto problem = HistogramProblem(h); !problem.empty()) Add(where() + ": " + problem);
  }

 private:
  std::vector<std::string>* out_;
};

// Which of the first `n` reflected entries repeat an earlier entry's sender session (address,
// port, SSID): one sort of their positions, no copy of any address.
std::vector<bool> RepeatedSessions(const v1::HealthReport& report, int n) {
  auto key = [&](int i) {
    const auto& reflected = report.reflected(i);
    return std::tuple(std::string_view(reflected.sender().address()), reflected.sender().port(),
                      reflected.ssid(), i);
  };
  std::vector<int> order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return key(a) < key(b); });
  std::vector<bool> repeated(static_cast<size_t>(n), false);
  for (size_t k = 1; k < order.size(); ++k) {
    const auto previous = key(order[k - 1]);
    const auto current = key(order[k]);
    // The same session at a later position (positions break ties, so the first one is kept).
    if (std::get<0>(previous) == std::get<0>(current) && std::get<1>(previous) == std::get<1>(current) &&
        std::get<2>(previous) == std::get<2>(current)) {
      repeated[static_cast<size_t>(order[k])] = true;
    }
  }
  return repeated;
}

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
  } else if (!CheckedTimestamp(report.window_start()) || !CheckedTimestamp(report.window_end())) {
    // Past 2262 (or before 1677) a time point in nanoseconds wraps: refused, never converted.
    p.Add("window timestamps out of range (" + std::to_string(report.window_start().seconds()) + " s, " +
          std::to_string(report.window_end().seconds()) + " s since 1970; allowed 1677-09-21 to 2262-04-11)");
  } else {
    const auto start = *CheckedTimestamp(report.window_start());
    const auto end = *CheckedTimestamp(report.window_end());
    if (end <= start) {
      p.Add("window_end " + TimeUtil::ToString(report.window_end()) + " is not after window_start " +
            TimeUtil::ToString(report.window_start()));
    } else if (end - start > limits.max_window) {
      p.Add("window is " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(end - start).count()) +
            " s long (limit " + std::to_string(limits.max_window.count()) + " s)");
    }
  }

  const uint64_t max_probes = MaxProbesIn(report, limits);
  p.CheckCount("paths", report.paths_size(), limits.max_paths);
  for (int i = 0; i < report.paths_size(); ++i) {
    const auto& path = report.paths(i);
    const auto where = [&] { return "paths[" + std::to_string(i) + "] (peer " + path.peer_node() + ")"; };
    p.CheckName([&] { return where() + " peer_node"; }, path.peer_node(), limits.max_name_length, true);
    p.CheckName([&] { return where() + " peer_region"; }, path.peer_region(), limits.max_name_length, true);
    p.CheckName([&] { return where() + " peer_zone"; }, path.peer_zone(), limits.max_name_length, false);
    // Each probe sent is known to have arrived, lost in an unknown direction, or neither
    // (answered, or known lost on the way out): never two of them.
    // (Compared by subtraction: a hostile count must not wrap the sum.)
    if (path.received_forward() > path.probes_sent()) {
      p.Add(where() + ": received_forward " + std::to_string(path.received_forward()) + " > probes_sent " +
            std::to_string(path.probes_sent()));
    } else if (path.lost_direction_unknown() > path.probes_sent() - path.received_forward()) {
      p.Add(where() + ": received_forward " + std::to_string(path.received_forward()) +
            " + lost_direction_unknown " + std::to_string(path.lost_direction_unknown()) + " > probes_sent " +
            std::to_string(path.probes_sent()));
    }
    if (path.received_reverse() > path.received_forward()) {
      p.Add(where() + ": received_reverse " + std::to_string(path.received_reverse()) +
            " > received_forward " + std::to_string(path.received_forward()));
    }
    if (!IsRatio(path.loss_forward()))
      p.Add(where() + ": loss_forward " + std::to_string(path.loss_forward()) + " not in [0, 1]");
    if (!IsRatio(path.loss_reverse()))
      p.Add(where() + ": loss_reverse " + std::to_string(path.loss_reverse()) + " not in [0, 1]");
    // STAMP's Session-Sender Identifier is 16 bits wide.
    if (path.ssid() > 0xffff) p.Add(where() + ": ssid " + std::to_string(path.ssid()) + " > 65535");
    p.CheckEndpoint([&] { return where() + " source"; }, path.source(), false);
    if (path.probes_sent() > max_probes) {
      p.Add(where() + ": probes_sent " + std::to_string(path.probes_sent()) + " > " +
            std::to_string(max_probes) + " (" + std::to_string(limits.max_probes_per_second) + " a second)");
    }
    p.CheckHistogram([&] { return where() + " rtt_kernel"; }, path.rtt_kernel());
    p.CheckHistogram([&] { return where() + " rtt_user"; }, path.rtt_user());
    p.CheckDuration([&] { return where() + " jitter"; }, path.jitter(), limits.max_rtt);
  }

  p.CheckCount("traffic", report.traffic_size(), limits.max_traffic);
  for (int i = 0; i < report.traffic_size(); ++i) {
    const auto where = [&] { return "traffic[" + std::to_string(i) + "]"; };
    p.CheckName([&] { return where() + " remote_region"; }, report.traffic(i).remote_region(),
                limits.max_name_length, true);
    p.CheckDuration([&] { return where() + " tcp_srtt"; }, report.traffic(i).tcp_srtt(), limits.max_rtt);
  }

  p.CheckCount("flows", report.flows_size(), limits.max_flows);
  for (int i = 0; i < report.flows_size(); ++i) {
    const auto& flow = report.flows(i);
    const auto where = [&] { return "flows[" + std::to_string(i) + "]"; };
    p.CheckName([&] { return where() + " name"; }, flow.name(), limits.max_name_length, true);
    p.CheckName([&] { return where() + " remote_region"; }, flow.remote_region(), limits.max_name_length,
                true);
    p.CheckDuration([&] { return where() + " srtt"; }, flow.srtt(), limits.max_rtt);
    p.CheckDuration([&] { return where() + " last_progress_age"; }, flow.last_progress_age(),
                    limits.max_progress_age);
  }

  p.CheckCount("reflected", report.reflected_size(), limits.max_reflected);
  // Only the first entries of an oversized list are looked at: the report is refused anyway.
  const int reflected_checked =
      static_cast<int>(std::min<size_t>(report.reflected_size(), limits.max_reflected));
  // One entry per sender session: a second one would count its probes twice.
  const std::vector<bool> repeated = RepeatedSessions(report, reflected_checked);
  for (int i = 0; i < reflected_checked; ++i) {
    const auto& reflected = report.reflected(i);
    const auto where = [&] { return "reflected[" + std::to_string(i) + "]"; };
    p.CheckEndpoint([&] { return where() + " sender"; }, reflected.sender(), true);
    if (reflected.ssid() > 0xffff) p.Add(where() + ": ssid " + std::to_string(reflected.ssid()) + " > 65535");
    if (reflected.received() > max_probes) {
      p.Add(where() + ": received " + std::to_string(reflected.received()) + " > " +
            std::to_string(max_probes) + " (" + std::to_string(limits.max_probes_per_second) + " a second)");
    }
    for (const auto& [reason, refused] :
         {std::pair{"refused_wrong_key", reflected.refused_wrong_key()},
          std::pair{"refused_stale_timestamp", reflected.refused_stale_timestamp()},
          std::pair{"refused_rate_limited", reflected.refused_rate_limited()},
          std::pair{"refused_replayed", reflected.refused_replayed()}}) {
      if (refused > max_probes) {
        p.Add(where() + ": " + reason + " " + std::to_string(refused) + " > " + std::to_string(max_probes) +
              " (" + std::to_string(limits.max_probes_per_second) + " a second)");
      }
    }
    if (reflected.replied() > reflected.received()) {
      p.Add(where() + ": replied " + std::to_string(reflected.replied()) + " > received " +
            std::to_string(reflected.received()));
    }
    if (repeated[static_cast<size_t>(i)]) {
      p.Add(where() + ": sender session " + reflected.sender().address().substr(0, kMaxAddressLength) +
            " port " + std::to_string(reflected.sender().port()) + " ssid " +
            std::to_string(reflected.ssid()) + " appears twice");
    }
  }

  p.CheckCount("status.errors", report.status().errors_size(), limits.max_errors);
  return problems;
}

}  // namespace regionpulse
