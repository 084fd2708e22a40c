// AgentProcess (see agent_process.h).
#include "tests/support/agent_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/poll_until.h"

namespace regionpulse::test {

AgentProcess::AgentProcess(const std::string& binary, const std::string& netns,
                           const std::string& config_path, const std::string& work_dir,
                           const std::string& name, const std::vector<std::string>& args)
    : name_(name),
      report_log_(work_dir + "/" + name + "-reports.jsonl"),
      output_log_(work_dir + "/" + name + ".log"),
      report_log_format_(std::find(args.begin(), args.end(), "report_log_format=binary") != args.end()
                             ? ReportLogFormat::kBinary
                             : ReportLogFormat::kJson) {
  std::vector<std::string> argv;
  if (!netns.empty()) argv = {"/usr/bin/ip", "netns", "exec", netns};
  argv.insert(argv.end(), {binary, "--config", config_path, "--report-log", report_log_});
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c_argv;
  for (auto& arg : argv) c_argv.push_back(arg.data());
  c_argv.push_back(nullptr);

  int output = open(output_log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (output < 0) throw std::runtime_error("open " + output_log_ + ": " + std::strerror(errno));
  pid_ = fork();
  if (pid_ < 0) {
    close(output);
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid_ == 0) {
    dup2(output, STDOUT_FILENO);
    dup2(output, STDERR_FILENO);
    // The test may block signals in its threads; the agent must see SIGTERM normally.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(c_argv[0], c_argv.data());
    _exit(127);
  }
  close(output);
}

AgentProcess::~AgentProcess() {
  if (Running()) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

bool AgentProcess::Running() const {
  if (exit_status_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = status;
    return false;
  }
  return r == 0;
}

void AgentProcess::Terminate() {
  if (Running()) kill(pid_, SIGTERM);
}

std::optional<int> AgentProcess::Wait(std::chrono::milliseconds timeout) {
  if (!PollUntil([&] { return !Running(); }, timeout)) return std::nullopt;
  if (!exit_status_ || !WIFEXITED(*exit_status_)) return std::nullopt;
  return WEXITSTATUS(*exit_status_);
}

std::vector<v1::HealthReport> AgentProcess::Reports() const {
  std::ifstream in(report_log_, std::ios::binary);
  return ReadReportLog(in, report_log_format_);
}

bool AgentProcess::WaitForReports(size_t count, std::chrono::milliseconds timeout) const {
  // Stops early when the agent has exited: no more reports will come.
  PollUntil([&] { return Reports().size() >= count || !Running(); }, timeout, std::chrono::milliseconds(50));
  return Reports().size() >= count;
}

std::string AgentProcess::Output() const {
  std::ifstream in(output_log_);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

}  // namespace regionpulse::test
