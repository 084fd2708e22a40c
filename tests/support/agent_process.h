// AgentProcess: a real regionpulse-agent process inside a network namespace, for
// integration tests. It writes its reports to a report log (--report-log; JSON lines, or binary
// when ARGS hold `--set report_log_format=binary`), which Reports() reads back; its stdout and stderr go to a
// log file kept for the test's failure messages. The destructor kills a process that is still running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/report_log.h"
#include "regionpulse/v1/ingest.pb.h"
#include "tests/support/scratch_directory.h"

namespace regionpulse::test {

class AgentProcess {
 public:
  // Runs `ip netns exec NETNS BINARY --config CONFIG --report-log LOG ARGS...` (netns empty:
  // the test's own namespace). Throws std::runtime_error when it cannot start.
  AgentProcess(const std::string& binary, const std::string& netns, const std::string& config_path,
               const std::string& work_dir, const std::string& name,
               const std::vector<std::string>& args = {});
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  // Every report logged so far, in file order.
  std::vector<v1::HealthReport> Reports() const;
  // Polls the report log until it holds at least `count` reports or the process exited.
  bool WaitForReports(size_t count, std::chrono::milliseconds timeout) const;
  // Sends SIGTERM (idempotent).
  void Terminate();
  // Waits for exit; the exit code, or nullopt on timeout or death by a signal.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Running() const;
  // The process's stdout and stderr so far.
  std::string Output() const;
  const std::string& report_log() const { return report_log_; }

 private:
  std::string name_;
  std::string report_log_;
  std::string output_log_;
  ReportLogFormat report_log_format_;
  pid_t pid_ = -1;
  mutable std::optional<int> exit_status_;  // raw waitpid status once reaped
};

}  // namespace regionpulse::test
