// regionpulse-aggregator: ingests agent reports, computes the failover verdict, serves it.
// regionpulse-aggregator [--config FILE] [--grpc-listen HOST:PORT] [--metrics-listen HOST:PORT] [--plaintext]
#include <signal.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <absl/synchronization/mutex.h>
#include <spdlog/spdlog.h>

#include "aggregator/aggregator.h"
#include "aggregator/aggregator_config.h"

int main(int argc, char** argv) {
  using namespace regionpulse;
  // gRPC's locks are absl's, and Debian builds absl with its debug checks: every lock taken also
  // walked absl's lock graph (~1-2 % of the aggregator's CPU at 3,000 agents over gRPC). A
  // release build of absl does not check; neither does the aggregator.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  spdlog::set_default_logger(spdlog::default_logger()->clone("aggregator"));

  auto command_line = ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc));
  if (!command_line) {
    std::fprintf(stderr, "regionpulse-aggregator: %s\n%s", command_line.error().message.c_str(),
                 AggregatorUsage().c_str());
    return 1;
  }
  if (command_line->help) {
    std::fputs(AggregatorUsage().c_str(), stdout);
    return 0;
  }
  auto config = ResolveAggregatorConfig(*command_line);
  if (!config) {
    std::fprintf(stderr, "regionpulse-aggregator: %s\n", config.error().ToString().c_str());
    return 1;
  }
  // Checked before anything starts so the refusal is the one thing said, on stderr.
  if (auto problem = TransportProblem(*config)) {
    std::fprintf(stderr, "regionpulse-aggregator: %s\n", problem->c_str());
    return 2;
  }
  if (config->regions.empty()) {
    spdlog::warn("no regions configured: every verdict is HOLD until a configuration names them");
  }

  // Block the shutdown signals before any thread starts so every thread inherits the mask and
  // the main thread alone receives them, synchronously, through sigwait.
  sigset_t shutdown_signals;
  sigemptyset(&shutdown_signals);
  sigaddset(&shutdown_signals, SIGTERM);
  sigaddset(&shutdown_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &shutdown_signals, nullptr);

  auto aggregator = Aggregator::Start(*config);
  if (!aggregator) {
    spdlog::error("cannot start: {}", aggregator.error().ToString());
    return 1;
  }
  spdlog::info("gRPC on {} (port {}), metrics on {} (port {})", config->grpc_listen,
               (*aggregator)->grpc_port(), config->metrics_listen, (*aggregator)->metrics_port());

  int signal_number = 0;
  sigwait(&shutdown_signals, &signal_number);
  spdlog::info("signal {} received: shutting down", signal_number);
  (*aggregator)->Shutdown();
  return 0;
}
