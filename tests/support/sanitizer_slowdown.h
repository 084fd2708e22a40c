// How much slower this build runs the code under test. Sanitizer builds scale the time tests
// give the code to answer (gRPC deadlines, waits for an event) by it, so a test fails for
// what the code does, not for how fast the instrumented build does it. Never scale what a
// test measures or the intervals the code itself keeps.
#pragma once

#include <chrono>

namespace regionpulse::test {

#if defined(__SANITIZE_THREAD__)
#define REGIONPULSE_TEST_TSAN 1
#elif defined(__SANITIZE_ADDRESS__)
#define REGIONPULSE_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define REGIONPULSE_TEST_TSAN 1
#elif __has_feature(address_sanitizer)
#define REGIONPULSE_TEST_ASAN 1
#endif
#endif

// ThreadSanitizer runs code 5-15 times slower (more on a loaded 2-core machine); ASan+UBSan
// about 2-3 times.
#if defined(REGIONPULSE_TEST_TSAN)
inline constexpr int kSanitizerSlowdown = 10;
#elif defined(REGIONPULSE_TEST_ASAN)
inline constexpr int kSanitizerSlowdown = 3;
#else
inline constexpr int kSanitizerSlowdown = 1;
#endif

// `timeout` as long as this build needs it to be.
template <typename Rep, typename Period>
constexpr std::chrono::duration<Rep, Period> SanitizerScaled(std::chrono::duration<Rep, Period> timeout) {
  return timeout * kSanitizerSlowdown;
}

}  // namespace regionpulse::test
