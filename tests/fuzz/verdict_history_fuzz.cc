// libFuzzer: any bytes as the current verdict history file found at start, and as the engine
// state beside it. Opening must keep the good records, set a damaged file aside, never crash;
// and the history opened must take a new record and read back all of them after a restart.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "aggregator/verdict_history.h"
#include "common/component_logger.h"

#include <spdlog/spdlog.h>

namespace {

// One scratch directory per process, removed at exit (never destroyed before that: the exit
// handler still needs its name).
const std::string& Directory() {
  static const std::string* dir = [] {
    char pattern[] = "/tmp/rp-history-fuzz-XXXXXX";
    if (mkdtemp(pattern) == nullptr) std::abort();
    return new std::string(pattern);
  }();
  static const bool cleanup = [] { return std::atexit([] { std::filesystem::remove_all(*dir); }) == 0; }();
  (void)cleanup;
  return *dir;
}

void WriteFile(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace regionpulse;
  const std::string dir = Directory();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  HistoryConfig config;
  config.path = dir + "/history.log";
  config.max_file_bytes = 1 << 20;
  // The first byte picks which file the rest goes to: the log, or the engine state.
  const bool engine_state = size > 0 && data[0] == 'E';
  WriteFile(engine_state ? VerdictHistory::EngineStatePath(config.path) : config.path, data, size);

  size_t found = 0;
  {
    auto history = VerdictHistory::Open(config);
    if (!history.ok()) std::abort();  // a damaged file is never a reason not to start
    found = (*history)->size();
    (void)(*history)->Newest(100);
    (void)(*history)->Latest();
    v1::VerdictTransition transition;
    transition.mutable_verdict()->set_generation(found + 1);
    if (!(*history)->Append(transition).ok()) std::abort();
  }
  auto reopened = VerdictHistory::Open(config);
  if (!reopened.ok() || (*reopened)->size() != found + 1) std::abort();
  return 0;
}

// Quiet: every damaged input logs a warning.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  regionpulse::ComponentLogger("aggregator")->set_level(spdlog::level::err);
  return 0;
}
