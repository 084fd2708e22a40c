// PollUntil: the one way tests wait for a condition another thread, process or the kernel
// makes true, when no event can be awaited directly (a counter in a BPF map, a child's exit,
// a file an agent appends to). Checks at once, then every `interval` until `timeout`.
#pragma once

#include <chrono>
#include <thread>

#include "tests/support/sanitizer_slowdown.h"

namespace regionpulse::test {

// Returns whether `condition` became true within `timeout`, scaled for sanitizer builds
// (checked once more at the end).
template <typename Condition>
bool PollUntil(Condition&& condition, std::chrono::milliseconds timeout = std::chrono::seconds(10),
               std::chrono::milliseconds interval = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + SanitizerScaled(timeout);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(interval);
  }
  return condition();
}

}  // namespace regionpulse::test
