// regionpulse-wan: the lab's WAN emulator, a UDP relay on the WireGuard underlay that adds
// per-direction delay, jitter, loss, reordering and blackholes between regions, and its
// control client. Usage in WanUsage() below.
#include <sched.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "common/config_text.h"
#include "tools/wan_emulator/control_client.h"
#include "tools/wan_emulator/relay.h"
#include "tools/wan_emulator/wan_config.h"

namespace {

using namespace regionpulse;
using namespace regionpulse::wan;

const char* WanUsage() {
  return "usage:\n"
         "  regionpulse-wan --config FILE             run the emulator (SIGTERM/SIGINT stop it)\n"
         "  regionpulse-wan ports --config FILE       print FROM TO PORT for every link direction:\n"
         "                                            FROM's WireGuard endpoint for TO is "
         "listen_address:PORT\n"
         "  regionpulse-wan ctl --socket PATH [--timeout DURATION] COMMAND...\n"
         "      set FROM TO KEY=VALUE... [--both]      one region direction (or both); FROM/TO may be *\n"
         "      set-both A B KEY=VALUE...\n"
         "      node NAME blackhole=on|off\n"
         "      show | stats [--json] | ports | reset | help\n"
         "    keys: delay=35ms jitter=2ms loss=30% reorder=1% reorder_hold=10ms blackhole=on|off "
         "rate=100mbit|off\n"
         "    exit status: 0 done, 1 refused or usage, 2 no reply\n";
}

int UsageError(const std::string& message) {
  std::fprintf(stderr, "regionpulse-wan: %s\n%s", message.c_str(), WanUsage());
  return 1;
}

int RunCtl(const std::vector<std::string>& args) {
  std::string socket_path;
  std::chrono::milliseconds timeout = std::chrono::seconds(5);
  std::vector<std::string> words;
  bool both = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--socket" && i + 1 < args.size()) {
      socket_path = args[++i];
    } else if (args[i] == "--timeout" && i + 1 < args.size()) {
      auto parsed = ParseDuration(args[++i]);
      if (!parsed || parsed->count() <= 0) return UsageError("--timeout: expected a duration such as 5s");
      timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*parsed);
    } else if (args[i] == "--both") {
      both = true;
    } else if (args[i] == "--json") {
      // stats always answers in JSON; the flag is accepted for readability.
    } else if (args[i] == "--help" || args[i] == "-h") {
      std::fputs(WanUsage(), stdout);
      return 0;
    } else {
      words.push_back(args[i]);
    }
  }
  if (socket_path.empty()) return UsageError("ctl needs --socket PATH");
  if (words.empty()) return UsageError("ctl needs a command");
  if (both) {
    if (words[0] != "set") return UsageError("--both goes with set");
    words[0] = "set-both";
  }
  std::string line;
  for (const auto& word : words) line += (line.empty() ? "" : " ") + word;
  auto reply = SendControlCommand(socket_path, line, timeout);
  if (!reply) {
    std::fprintf(stderr, "regionpulse-wan ctl: %s\n", reply.error().ToString().c_str());
    return 2;
  }
  std::fputs(reply->body.c_str(), stdout);
  if (!reply->ok) {
    std::fprintf(stderr, "regionpulse-wan ctl: %s\n", reply->error.c_str());
    return 1;
  }
  return 0;
}

int RunPorts(const std::vector<std::string>& args) {
  if (args.size() != 2 || args[0] != "--config") return UsageError("ports needs --config FILE");
  auto config = LoadWanConfigFile(args[1]);
  if (!config) {
    std::fprintf(stderr, "regionpulse-wan: %s\n", config.error().ToString().c_str());
    return 1;
  }
  // The same text as `ctl ports`, before anything runs: the lab configures WireGuard from it.
  const WanModel model(*config, 0);
  std::fputs(model.PortsText().c_str(), stdout);
  return 0;
}

int RunEmulator(const std::vector<std::string>& args) {
  if (args.size() != 2 || args[0] != "--config") return UsageError("expected --config FILE");
  auto config = LoadWanConfigFile(args[1]);
  if (!config) {
    std::fprintf(stderr, "regionpulse-wan: %s\n", config.error().ToString().c_str());
    return 1;
  }
  const uint64_t seed = config->seed ? *config->seed : std::random_device{}();
  // The default timer slack (50 us) lets the kernel fire our timer up to that late to batch
  // wake-ups; the delays we emulate are what RTT figures are judged against, so ask for none.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  if (config->realtime_priority > 0) {
    // Under CPU load a normal thread wakes milliseconds late; SCHED_FIFO wakes on time.
    sched_param param{};
    param.sched_priority = config->realtime_priority;
    if (::sched_setscheduler(0, SCHED_FIFO, &param) != 0) {
      spdlog::error("realtime_priority {}: sched_setscheduler: {}", config->realtime_priority,
                    std::strerror(errno));
      return 1;
    }
  }

  boost::asio::io_context io(1);
  auto relay = Relay::Start(io, *config, seed);
  if (!relay) {
    spdlog::error("cannot start: {}", relay.error().ToString());
    return 1;
  }
  const WanModel& model = (*relay)->model();
  spdlog::info(
      "relaying {} links between {} nodes on {}; control on {}; seed {}{}", config->links.size(),
      config->nodes.size(), config->listen_address, config->control_socket, seed,
      config->realtime_priority > 0 ? "; SCHED_FIFO " + std::to_string(config->realtime_priority) : "");
  for (size_t d = 0; d < model.DirectionCount(); ++d) {
    const auto& direction = model.Direction(d);
    spdlog::info("{} -> {}: {} sends to port {}", config->nodes[direction.from].name,
                 config->nodes[direction.to].name, config->nodes[direction.from].name, direction.in_port);
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    spdlog::info("signal {} received: shutting down", signal_number);
    (*relay)->Shutdown();
    io.stop();
  });
  io.run();
  relay->reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::default_logger()->clone("wan"));
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return UsageError("nothing to do");
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(WanUsage(), stdout);
    return 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "ctl") return RunCtl(rest);
  if (args[0] == "ports") return RunPorts(rest);
  return RunEmulator(args);
}
