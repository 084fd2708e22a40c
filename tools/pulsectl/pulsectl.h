// pulsectl: the engineer's command line for a regionpulse aggregator (status, matrix, flows,
// paths, agents, history, watch). Run() is the whole program minus main(), so tests can drive
// it against an in-process aggregator and read its output and exit code.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace regionpulse::pulsectl {

// Exit codes a script can use. status (and watch --count) map the verdict's action onto
// kStay / kFailover / kHold.
enum ExitCode : int {
  kExitOk = 0,  // also: the verdict is STAY
  kExitUsage = 1,
  kExitConnection = 2,  // aggregator unreachable, or the call failed
  kExitFailover = 3,
  kExitHold = 4,
};

// Runs one command; args exclude the program name. Output to out, diagnostics to err.
int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
std::string Usage();

}  // namespace regionpulse::pulsectl
