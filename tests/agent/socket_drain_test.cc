// SocketDrain, the receive loop the prober and the reflector share: everything waiting is read
// although each turn is bounded (the reactor is edge-triggered), a failed readiness wait is
// retried after a growing delay rather than at once, and only a socket that is gone ends it.
#include "agent/socket_drain.h"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

namespace regionpulse {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(SocketDrain, EverythingWaitingIsReadAlthoughEachTurnIsBounded) {
  asio::io_context io;
  asio::ip::udp::socket receiver(io, asio::ip::udp::endpoint(asio::ip::address_v4::loopback(), 0));
  receiver.non_blocking(true);
  asio::ip::udp::socket sender(io, asio::ip::udp::endpoint(asio::ip::address_v4::loopback(), 0));
  // All of them queued before the loop starts: one readiness edge for 100 datagrams.
  constexpr int kDatagrams = 100;
  const uint8_t payload[8] = {};
  for (int i = 0; i < kDatagrams; ++i) sender.send_to(asio::buffer(payload), receiver.local_endpoint());

  int received = 0;
  int turns = 0;
  SocketDrain<asio::ip::udp::socket> drain(receiver, spdlog::default_logger());
  auto owner = std::make_shared<int>(0);
  drain.Start(
      "test socket", owner,
      [&] {
        ++turns;
        for (int i = 0; i < 10; ++i) {
          uint8_t buffer[64];
          if (::recv(receiver.native_handle(), buffer, sizeof(buffer), MSG_DONTWAIT) < 0)
            return DrainResult::kEmpty;
          ++received;
        }
        return DrainResult::kMore;
      },
      [] { return false; });
  // Handlers until all are read, or none is left to run within a second (the bug: the rest
  // would wait for a next datagram that never comes).
  while (received < kDatagrams && io.run_one_for(1s) > 0) {
  }
  EXPECT_EQ(received, kDatagrams);
  EXPECT_GE(turns, kDatagrams / 10);
  // Empty now: the loop waits for readiness, it does not spin.
  io.poll();
  const int turns_when_empty = turns;
  EXPECT_EQ(io.poll(), 0u);
  EXPECT_EQ(turns, turns_when_empty);
}

// A socket whose readiness waits report the given results in turn; a wait beyond them never
// completes.
struct ScriptedSocket {
  enum wait_type { wait_read };
  asio::io_context& io;
  std::vector<boost::system::error_code> results;
  size_t waits = 0;

  asio::io_context::executor_type get_executor() { return io.get_executor(); }
  template <typename Handler>
  void async_wait(wait_type, Handler handler) {
    const size_t index = waits++;
    if (index >= results.size()) return;
    asio::post(io, [handler = std::move(handler), ec = results[index]]() mutable { handler(ec); });
  }
};

// Starts `drain` on a scripted socket with a drain that finds the socket empty and counts its
// calls in `drains`.
void StartCounting(SocketDrain<ScriptedSocket>& drain, int& drains) {
  drain.Start(
      "scripted", std::make_shared<int>(0),
      [&drains] {
        ++drains;
        return DrainResult::kEmpty;
      },
      [] { return false; });
}

TEST(SocketDrain, AFailedWaitIsRetriedAfterAGrowingDelayAndTheRecoveryResetsIt) {
  asio::io_context io;
  const auto refused = make_error_code(boost::system::errc::connection_refused);
  ScriptedSocket socket{io, {refused, refused, {}}};
  SocketDrain<ScriptedSocket> drain(socket, spdlog::default_logger());
  int drains = 0;
  StartCounting(drain, drains);
  // The first failure: nothing runs again until the retry delay has passed (no hot loop).
  io.poll();
  EXPECT_EQ(socket.waits, 1u);
  EXPECT_EQ(drain.failures_in_a_row(), 1u);
  EXPECT_EQ(io.poll(), 0u);
  EXPECT_EQ(socket.waits, 1u);
  // The retry drains (the failed wait may have hidden an edge) and waits again: a second failure.
  io.run_one();
  EXPECT_EQ(drains, 1);
  io.poll();
  EXPECT_EQ(socket.waits, 2u);
  EXPECT_EQ(drain.failures_in_a_row(), 2u);
  // Then the socket is readable: drained, and the streak is over.
  io.run();
  EXPECT_EQ(socket.waits, 4u);  // the last one never completes
  EXPECT_EQ(drains, 3);
  EXPECT_EQ(drain.failures_in_a_row(), 0u);
}

TEST(SocketDrain, ASocketThatIsGoneOrCancelledEndsTheLoop) {
  for (const auto& ec :
       {make_error_code(asio::error::bad_descriptor), make_error_code(asio::error::operation_aborted)}) {
    asio::io_context io;
    ScriptedSocket socket{io, {ec, {}}};
    SocketDrain<ScriptedSocket> drain(socket, spdlog::default_logger());
    int drains = 0;
    StartCounting(drain, drains);
    io.run();  // returns: no retry timer, no further wait
    EXPECT_EQ(socket.waits, 1u) << ec.message();
    EXPECT_EQ(drains, 0) << ec.message();
  }
}

TEST(SocketDrain, TheRetryDelayDoublesUpToASecond) {
  EXPECT_EQ(WaitRetryDelay(1), kFirstWaitRetry);
  EXPECT_EQ(WaitRetryDelay(2), 2 * kFirstWaitRetry);
  EXPECT_EQ(WaitRetryDelay(3), 4 * kFirstWaitRetry);
  EXPECT_EQ(WaitRetryDelay(100), kLastWaitRetry);
  EXPECT_EQ(WaitRetryDelay(1'000'000), kLastWaitRetry);
}

}  // namespace
}  // namespace regionpulse
