// The receive loop of a socket on Asio's edge-triggered epoll reactor, shared by the prober
// (replies) and the reflector (probes): wait for readiness, drain what is waiting in bounded
// turns, and wait again only once the socket is empty. Datagrams left behind by a bounded drain
// would otherwise wait for the next arrival; a drain that stopped at its bound goes on in a
// posted handler, so the other handlers of the io_context (the schedule, the other socket) run
// in between.
//
// A failed readiness wait that is not a cancellation is logged with the socket's name and the
// error, and the loop keeps serving: it waits again after a delay that doubles from
// kFirstWaitRetry to kLastWaitRetry while the error persists, so a persistent error neither
// spins a core nor floods the log (the first error of a streak is a warning, the rest debug,
// and the recovery is logged with how many there were). Only an error that says the socket is
// gone (closed, not a socket) stops the loop, logged as an error: nothing more can arrive.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

namespace regionpulse {

// What one bounded drain found.
enum class DrainResult {
  kEmpty,  // the socket had nothing more: wait for readiness
  kMore,   // stopped at its bound, datagrams possibly left: drain again soon
};

enum class WaitErrorAction { kStop, kRetryLater };

// What a failed readiness wait (not a cancellation) means for the loop.
inline WaitErrorAction ActOnWaitError(const boost::system::error_code& ec) {
  namespace error = boost::asio::error;
  if (ec == error::bad_descriptor || ec == error::not_socket || ec == error::shut_down) {
    return WaitErrorAction::kStop;
  }
  return WaitErrorAction::kRetryLater;
}

inline constexpr std::chrono::milliseconds kFirstWaitRetry{10};
inline constexpr std::chrono::milliseconds kLastWaitRetry{1000};

// The delay before the next wait after `failures_in_a_row` failed ones (at least 1).
inline std::chrono::milliseconds WaitRetryDelay(uint32_t failures_in_a_row) {
  const uint32_t doublings = std::min<uint32_t>(failures_in_a_row > 0 ? failures_in_a_row - 1 : 0, 16);
  return std::min(kFirstWaitRetry * (int64_t{1} << doublings), kLastWaitRetry);
}

// `Socket` is an Asio socket (or anything with async_wait(Socket::wait_read, handler) and
// get_executor()). The owner keeps the SocketDrain beside the socket and calls Start once;
// `keep_alive` (the owner) is held by every pending handler, so the socket, `drain` and
// `stopped` outlive them. Not thread-safe: everything runs on the socket's executor.
template <typename Socket>
class SocketDrain {
 public:
  using Drain = std::function<DrainResult()>;
  using Stopped = std::function<bool()>;

  SocketDrain(Socket& socket, std::shared_ptr<spdlog::logger> log)
      : socket_(socket), retry_(socket.get_executor()), log_(std::move(log)) {}
  SocketDrain(const SocketDrain&) = delete;
  SocketDrain& operator=(const SocketDrain&) = delete;

  // `name` says which socket in log lines ("reflector port 862", "prober IPv4 socket port
  // 40000"); `drain` reads what is waiting, bounded; `stopped` is true once the owner closes.
  void Start(std::string name, std::shared_ptr<void> keep_alive, Drain drain, Stopped stopped) {
    name_ = std::move(name);
    drain_ = std::move(drain);
    stopped_ = std::move(stopped);
    Wait(std::move(keep_alive));
  }
  // Cancels a pending retry (the owner closing); the socket's own wait ends with its close.
  void Cancel() { retry_.cancel(); }

  // Failed waits in a row now (0 while healthy).
  uint32_t failures_in_a_row() const { return failures_; }

 private:
  void Wait(std::shared_ptr<void> keep_alive) {
    socket_.async_wait(Socket::wait_read, [this, keep_alive = std::move(keep_alive)](
                                              const boost::system::error_code& ec) mutable {
      if (stopped_() || ec == boost::asio::error::operation_aborted) return;
      if (ec) {
        OnWaitError(ec, std::move(keep_alive));
        return;
      }
      if (failures_ > 0) {
        log_->info("{}: readable again after {} failed waits", name_, failures_);
        failures_ = 0;
      }
      DrainThenWait(std::move(keep_alive));
    });
  }

  void DrainThenWait(std::shared_ptr<void> keep_alive) {
    if (stopped_()) return;
    if (drain_() == DrainResult::kMore) {
      boost::asio::post(socket_.get_executor(), [this, keep_alive = std::move(keep_alive)]() mutable {
        DrainThenWait(std::move(keep_alive));
      });
    } else {
      Wait(std::move(keep_alive));
    }
  }

  void OnWaitError(const boost::system::error_code& ec, std::shared_ptr<void> keep_alive) {
    if (ActOnWaitError(ec) == WaitErrorAction::kStop) {
      log_->error("{}: stopped receiving, the socket is gone: {} (error {})", name_, ec.message(),
                  ec.value());
      return;
    }
    ++failures_;
    const auto delay = WaitRetryDelay(failures_);
    if (failures_ == 1) {
      log_->warn("{}: waiting for datagrams failed: {} (error {}); waiting again in {} ms", name_,
                 ec.message(), ec.value(), delay.count());
    } else {
      log_->debug("{}: waiting for datagrams failed again ({} in a row): {} (error {}); next try in {} ms",
                  name_, failures_, ec.message(), ec.value(), delay.count());
    }
    retry_.expires_after(delay);
    retry_.async_wait(
        [this, keep_alive = std::move(keep_alive)](const boost::system::error_code& timer) mutable {
          if (timer || stopped_()) return;
          // Drain first: the wait that failed may have hidden a readiness edge.
          DrainThenWait(std::move(keep_alive));
        });
  }

  Socket& socket_;
  boost::asio::steady_timer retry_;
  std::string name_;
  std::shared_ptr<spdlog::logger> log_;
  Drain drain_;
  Stopped stopped_;
  uint32_t failures_ = 0;
};

}  // namespace regionpulse
