// The program's two clocks, named once: monotonic time for windows, timers and probe RTTs,
// wall-clock time for what goes on the wire (STAMP timestamps, report and verdict times).
#pragma once

#include <chrono>

namespace regionpulse {

using MonoTime = std::chrono::steady_clock::time_point;  // CLOCK_MONOTONIC on Linux
using WallClock = std::chrono::system_clock;
using WallTime = WallClock::time_point;

}  // namespace regionpulse
