// regionpulse-agent: probes peers, answers their probes, folds kernel and user-space
// measurements into windows and streams them to every configured aggregator.
//   regionpulse-agent [--config FILE] [flags]   (flags: see agent/agent_config.h or --help)
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "agent/agent_config.h"
#include "common/logging.h"

namespace {

constexpr const char* kUsage = R"(usage: regionpulse-agent [--config FILE] [flags]

Configuration comes from a YAML file, then the environment (NODE_NAME, REGION, ZONE,
REGIONPULSE_CONFIG), then flags; later sources win.

flags:
  --config FILE                 YAML configuration file
  --node N, --region R, --zone Z
  --aggregator HOST:PORT        report to this aggregator (repeatable)
  --peer NODE,REGION,ZONE,ADDRESS[,PORT]
                                probe this peer without an aggregator (repeatable)
  --probe-port P                STAMP reflector UDP port (default 862)
  --status-listen HOST:PORT     /metrics, /healthz, /readyz (default 0.0.0.0:9102)
  --log-format text|json        --log-level trace|debug|info|warn|error
  --unauthenticated             send and accept unauthenticated STAMP probes
  --no-bpf                      no kernel datapath: user-space RTTs only
  --report-log FILE             append every report as one JSON line
  --set KEY=VALUE               any scalar key of the file, e.g. --set probe.interval=50ms
  --version, --help
)";

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (std::strcmp(argv[i], "--version") == 0) {
      std::printf("regionpulse-agent %s\n", REGIONPULSE_VERSION);
      return 0;
    }
  }

  // Block the stop signals before any thread exists, so every thread inherits the mask and
  // only the sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto config = regionpulse::LoadAgentConfig(argc, argv, regionpulse::ProcessEnvironment());
  if (!config) {
    std::fprintf(stderr, "regionpulse-agent: %s\n", config.error().ToString().c_str());
    return 2;
  }
  if (auto logging = regionpulse::ConfigureLogging(config->log_level, config->log_format); !logging) {
    std::fprintf(stderr, "regionpulse-agent: invalid configuration:\n%s\n",
                 logging.error().ToString().c_str());
    return 2;
  }

  auto agent = regionpulse::Agent::Start(*config);
  if (!agent) {
    spdlog::critical("regionpulse-agent cannot start: {}", agent.error().ToString());
    std::fprintf(stderr, "regionpulse-agent: cannot start: %s\n", agent.error().ToString().c_str());
    return 1;
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("{} received: closing the last window, flushing reports, detaching BPF",
               signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  (*agent)->Shutdown(std::chrono::duration_cast<std::chrono::milliseconds>(config->shutdown_flush_timeout));
  return 0;
}
