// Process-wide log set-up shared by the regionpulse programs: spdlog's level, and plain text or
// JSON lines for log collectors.
#pragma once

#include <string>

#include "common/result.h"

namespace regionpulse {

enum class LogFormat { kText, kJson };

// Sets spdlog's level and format for the process. kJson writes one object per line with
// time, level, logger and message. An unknown level is an error naming it; nothing changes.
Status ConfigureLogging(const std::string& level, LogFormat format);

}  // namespace regionpulse
