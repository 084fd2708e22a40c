// Result<T>: a value or an error that says what failed (with errno where one exists).
// A small stand-in for C++23 std::expected, which the C++20 toolchain here lacks.
#pragma once

#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace regionpulse {

struct Error {
  std::string message;
  int errnum = 0;  // errno, or 0 when not a system error

  // "message: strerror(errnum) (errno N)" or just "message".
  std::string ToString() const {
    if (errnum == 0) return message;
    return message + ": " + std::strerror(errnum) + " (errno " + std::to_string(errnum) + ")";
  }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<Error>(state_); }

 private:
  std::variant<T, Error> state_;
};

// For operations that produce no value.
struct Ok {};
using Status = Result<Ok>;
inline Status OkStatus() {
  return Ok{};
}

}  // namespace regionpulse
