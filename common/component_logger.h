// The spdlog logger of one component ("agent", "prober", "datapath", "aggregator", ...).
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace regionpulse {

// Registered on first use as a clone of the default logger, so it shares the process's sinks
// and a later spdlog::set_formatter (the JSON log format) reaches it too. Thread-safe.
std::shared_ptr<spdlog::logger> ComponentLogger(const std::string& name);

}  // namespace regionpulse
