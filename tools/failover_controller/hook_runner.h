// Runs one failover hook: `/bin/sh -c COMMAND` with the failover in its environment
// (REGIONPULSE_FROM_REGION, REGIONPULSE_TO_REGION, REGIONPULSE_GENERATION), killed (its whole
// process group) when it outlives the timeout. Output goes to the controller's own stdout.
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace regionpulse::controller {

struct HookResult {
  bool ok = false;
  std::string what;  // "exit 0", "exit 3", "killed after 60 s", "signal 9", "cannot fork"
  std::chrono::milliseconds took{0};
};

HookResult RunHook(const std::string& command, const std::map<std::string, std::string>& env,
                   std::chrono::milliseconds timeout);

}  // namespace regionpulse::controller
