// Per-component spdlog loggers.
#include "common/component_logger.h"

namespace regionpulse {

std::shared_ptr<spdlog::logger> ComponentLogger(const std::string& name) {
  if (auto logger = spdlog::get(name)) return logger;
  auto logger = spdlog::default_logger()->clone(name);
  try {
    spdlog::register_logger(logger);
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get(name);  // registered by another thread meanwhile
  }
  return logger;
}

}  // namespace regionpulse
