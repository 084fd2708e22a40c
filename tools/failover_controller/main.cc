// regionpulse-failover-controller: a real regionpulse.v1.Verdicts/Watch client, as a user's
// own controller (a kubebuilder operator) would be. It reads the verdict from the first
// reachable aggregator outside the active region and, on FAILOVER, runs the target region's
// hooks once (see failover_decider.h for the rules). It logs what it saw and what it did.
//
//   regionpulse-failover-controller --config FILE      run until SIGTERM/SIGINT
//   regionpulse-failover-controller --config FILE --rearm   forget the recorded failover
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "common/component_logger.h"
#include "controller_config.h"
#include "failover_decider.h"
#include "hook_runner.h"
#include "regionpulse/v1/verdicts.grpc.pb.h"

namespace {

using namespace regionpulse;
using namespace regionpulse::controller;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

ObservedVerdict Convert(const v1::Verdict& verdict) {
  ObservedVerdict v;
  v.generation = verdict.generation();
  switch (verdict.action()) {
    case v1::ACTION_STAY:
      v.action = Action::kStay;
      break;
    case v1::ACTION_FAILOVER:
      v.action = Action::kFailover;
      break;
    case v1::ACTION_HOLD:
      v.action = Action::kHold;
      break;
    default:
      v.action = Action::kUnspecified;
  }
  v.active_region = verdict.active_region();
  v.target_region = verdict.target_region();
  v.aggregator_region = verdict.aggregator_region();
  v.reasons.assign(verdict.reasons().begin(), verdict.reasons().end());
  return v;
}

Result<ControllerState> LoadState(const std::string& path) {
  std::ifstream in(path);
  if (!in) return ControllerState{};  // no file yet: nothing was ever failed over
  std::stringstream text;
  text << in.rdbuf();
  auto state = ParseState(text.str());
  if (!state) return Error{path + ": " + state.error().message};
  return state;
}

// Written to a temporary file and renamed, so a crash leaves the old or the new state.
Status SaveState(const std::string& path, const ControllerState& state) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << SerializeState(state);
    out.flush();
    if (!out) return Error{"cannot write " + tmp, errno};
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return Error{"cannot rename " + tmp + " to " + path, errno};
  return OkStatus();
}

Result<std::string> ReadPem(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) return Error{"cannot read " + what + " " + path, errno};
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Plaintext without tls.ca_file; else TLS, with the client certificate when configured (an
// aggregator with tls.read_client_ca_file answers Watch only to one).
Result<std::shared_ptr<grpc::ChannelCredentials>> CredentialsFor(const ControllerTls& tls) {
  if (tls.ca_file.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  auto ca = ReadPem(tls.ca_file, "tls.ca_file");
  if (!ca) return ca.error();
  options.pem_root_certs = std::move(*ca);
  if (!tls.cert_file.empty()) {
    auto cert = ReadPem(tls.cert_file, "tls.cert_file");
    if (!cert) return cert.error();
    auto key = ReadPem(tls.key_file, "tls.key_file");
    if (!key) return key.error();
    options.pem_cert_chain = std::move(*cert);
    options.pem_private_key = std::move(*key);
  }
  return grpc::SslCredentials(options);
}

class Controller {
 public:
  Controller(ControllerConfig config, ControllerState state,
             std::shared_ptr<grpc::ChannelCredentials> credentials)
      : config_(std::move(config)),
        state_(std::move(state)),
        credentials_(std::move(credentials)),
        log_(ComponentLogger("controller")) {
    for (const auto& [region, commands] : config_.hooks) hooked_.insert(region);
  }

  // Tries the aggregators in order until stopped; each Watch lasts while it delivers verdicts.
  void Run() {
    while (!g_stop) {
      bool watched = false;
      for (const auto& address : config_.aggregators) {
        if (g_stop) break;
        watched = Watch(address) || watched;
      }
      if (!watched && !g_stop) {
        log_->warn("no usable aggregator outside the active region; trying again in 1 s");
        for (int i = 0; i < 10 && !g_stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }

 private:
  // True when the aggregator delivered at least one usable verdict.
  bool Watch(const std::string& address) {
    auto channel = grpc::CreateChannel(address, credentials_);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(3))) {
      log_->warn("aggregator {} unreachable", address);
      return false;
    }
    auto stub = v1::Verdicts::NewStub(channel);
    grpc::ClientContext context;
    v1::WatchVerdictsRequest request;
    request.mutable_heartbeat_interval()->set_seconds(config_.heartbeat.count() / 1000);
    request.mutable_heartbeat_interval()->set_nanos(static_cast<int32_t>(config_.heartbeat.count() % 1000) *
                                                    1'000'000);
    // A stream that goes silent (the aggregator's host is cut off) is dropped after three
    // heartbeats, and the next aggregator is tried.
    std::atomic<int64_t> last_message_ms{NowMs()};
    std::atomic<bool> busy{false};
    std::atomic<bool> done{false};
    std::thread watchdog([&] {
      const int64_t silence = 3 * config_.heartbeat.count() + 1000;
      while (!done) {
        if (g_stop || (!busy && NowMs() - last_message_ms > silence)) {
          context.TryCancel();
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
    auto reader = stub->Watch(&context, request);
    v1::WatchVerdictsResponse response;
    bool usable = false;
    log_->info("watching verdicts of {}", address);
    while (reader->Read(&response)) {
      last_message_ms = NowMs();
      const ObservedVerdict verdict = Convert(response.verdict());
      if (verdict.aggregator_region == verdict.active_region) {
        log_->warn("{} is the active region's ({}) own aggregator: trying the next one", address,
                   verdict.active_region);
        break;
      }
      usable = true;
      busy = true;
      Handle(address, response.verdict(), verdict);
      busy = false;
      last_message_ms = NowMs();
    }
    done = true;
    context.TryCancel();
    watchdog.join();
    const grpc::Status status = reader->Finish();
    if (!g_stop)
      log_->warn("Watch on {} ended: {}", address, status.ok() ? "closed" : status.error_message());
    return usable;
  }

  void Handle(const std::string& address, const v1::Verdict& raw, const ObservedVerdict& verdict) {
    const bool news = verdict.generation != last_generation_ || address != last_address_;
    last_generation_ = verdict.generation;
    last_address_ = address;
    const Decision decision = Decide(verdict, state_, hooked_);
    if (!news && decision.kind == DecisionKind::kNothing) return;  // a heartbeat, nothing new
    const double age_ms =
        (UnixNow() - (static_cast<double>(raw.computed_at().seconds()) + raw.computed_at().nanos() / 1e9)) *
        1000;
    log_->info("verdict generation {} from {} ({}): {}{} (active {}), computed {:.0f} ms ago",
               verdict.generation, verdict.aggregator_region, address, ActionName(verdict.action),
               verdict.target_region.empty() ? "" : " to " + verdict.target_region, verdict.active_region,
               age_ms);
    for (const auto& reason : verdict.reasons) log_->info("  reason: {}", reason);
    log_->info("decision: {}", decision.why);
    if (decision.kind == DecisionKind::kNothing) return;

    state_ = Apply(state_, decision, verdict.generation, UnixNow());
    if (auto saved = SaveState(config_.state_file, state_); !saved) {
      // Without the record a restart could fail over again: do not act.
      log_->error("cannot record the decision, not acting: {}", saved.error().ToString());
      return;
    }
    if (decision.kind == DecisionKind::kRearm) return;

    const auto started = Clock::now();
    std::string outcome = "succeeded";
    for (const auto& command : config_.hooks.at(decision.to_region)) {
      log_->info("running hook for {}: {}", decision.to_region, command);
      const HookResult result = RunHook(command,
                                        {{"REGIONPULSE_FROM_REGION", decision.from_region},
                                         {"REGIONPULSE_TO_REGION", decision.to_region},
                                         {"REGIONPULSE_GENERATION", std::to_string(verdict.generation)}},
                                        config_.hook_timeout);
      log_->info("hook {} after {} ms: {}", result.ok ? "succeeded" : "FAILED", result.took.count(),
                 result.what);
      if (!result.ok) {
        outcome = "failed: " + command + ": " + result.what;
        break;  // later hooks assume the earlier ones worked
      }
    }
    state_.failover->outcome = outcome;
    if (auto saved = SaveState(config_.state_file, state_); !saved)
      log_->error("{}", saved.error().ToString());
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    log_->info("failover from {} to {} {} in {} ms (verdict computed {:.0f} ms before the hooks started)",
               decision.from_region, decision.to_region, outcome, took, age_ms);
  }

  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
  }

  ControllerConfig config_;
  ControllerState state_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::set<std::string> hooked_;
  std::shared_ptr<spdlog::logger> log_;
  uint64_t last_generation_ = 0;
  std::string last_address_;
};

const char* Usage() {
  return "usage: regionpulse-failover-controller --config FILE [--rearm]\n"
         "  watches regionpulse.v1.Verdicts of the first reachable aggregator outside the active region\n"
         "  and runs the target region's hooks once per failover (see the config keys in "
         "controller_config.h)\n"
         "  --rearm   forget the recorded failover, so the next FAILOVER is acted on, and exit\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool rearm = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg == "--rearm") {
      rearm = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(Usage(), stdout);
      return 0;
    } else {
      std::fprintf(stderr, "regionpulse-failover-controller: unknown argument '%s'\n%s", arg.c_str(),
                   Usage());
      return 1;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "regionpulse-failover-controller: --config FILE is required\n%s", Usage());
    return 1;
  }
  auto log = ComponentLogger("controller");
  auto config = LoadControllerConfigFile(config_path);
  if (!config) {
    log->critical("{}", config.error().ToString());
    return 1;
  }
  auto state = LoadState(config->state_file);
  if (!state) {
    log->critical("{}", state.error().ToString());
    return 1;
  }
  if (rearm) {
    if (auto saved = SaveState(config->state_file, ControllerState{}); !saved) {
      log->critical("{}", saved.error().ToString());
      return 1;
    }
    log->info("re-armed: the recorded failover is forgotten ({})", config->state_file);
    return 0;
  }
  if (state->failover) {
    log->info("state: already failed over from {} to {} at generation {} ({})", state->failover->from_region,
              state->failover->to_region, state->failover->generation, state->failover->outcome);
  }
  signal(SIGTERM, [](int) { g_stop = true; });
  signal(SIGINT, [](int) { g_stop = true; });
  auto credentials = CredentialsFor(config->tls);
  if (!credentials) {
    log->critical("{}", credentials.error().ToString());
    return 1;
  }
  Controller controller(std::move(*config), std::move(*state), std::move(*credentials));
  controller.Run();
  log->info("stopped");
  return 0;
}
