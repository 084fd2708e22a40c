// fork/exec of a failover hook with a deadline.
#include "hook_runner.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

namespace regionpulse::controller {

HookResult RunHook(const std::string& command, const std::map<std::string, std::string>& env,
                   std::chrono::milliseconds timeout) {
  const auto start = std::chrono::steady_clock::now();
  HookResult result;
  const pid_t pid = fork();
  if (pid < 0) {
    result.what = "cannot fork";
    return result;
  }
  if (pid == 0) {
    setpgid(0, 0);  // its own group, so a timeout kills what it started too
    for (const auto& [key, value] : env) setenv(key.c_str(), value.c_str(), 1);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid, pid);
  int status = 0;
  while (true) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() - start > timeout) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.took =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
      result.what = "killed after " + std::to_string(timeout.count() / 1000) + " s";
      return result;
    }
    // A hook takes seconds; polling at 20 ms costs nothing and keeps this free of SIGCHLD.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  result.took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  if (WIFEXITED(status)) {
    result.ok = WEXITSTATUS(status) == 0;
    result.what = "exit " + std::to_string(WEXITSTATUS(status));
  } else {
    result.what = "signal " + std::to_string(WTERMSIG(status));
  }
  return result;
}

}  // namespace regionpulse::controller
