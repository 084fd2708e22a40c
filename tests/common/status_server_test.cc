// The HTTP status endpoint serves metrics, liveness and readiness over real sockets.
#include "common/status_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/support/sanitizer_slowdown.h"

namespace regionpulse {
namespace {

namespace http = boost::beast::http;
using ::testing::HasSubstr;

struct Reply {
  unsigned status;
  std::string body;
};

Reply Get(uint16_t port, const std::string& target) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, "127.0.0.1");
  http::write(socket, request);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(socket, buffer, response);
  return {response.result_int(), response.body()};
}

TEST(StatusServer, ServesMetricsHealthAndReadiness) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& family =
      prometheus::BuildCounter().Name("regionpulse_test_events_total").Help("events").Register(*registry);
  family.Add({{"kind", "probe"}}).Increment(3);
  std::atomic<bool> ready{false};
  auto server = StatusServer::Start("127.0.0.1:0", registry, [&] {
    return ready ? Readiness{true, "bpf attached"} : Readiness{false, "no aggregator stream up"};
  });
  ASSERT_TRUE(server.ok()) << server.error().ToString();
  const uint16_t port = (*server)->port();
  ASSERT_NE(port, 0);

  const Reply metrics = Get(port, "/metrics");
  EXPECT_EQ(metrics.status, 200u);
  EXPECT_THAT(metrics.body, HasSubstr("regionpulse_test_events_total{kind=\"probe\"} 3"));

  EXPECT_EQ(Get(port, "/healthz").status, 200u);

  const Reply not_ready = Get(port, "/readyz");
  EXPECT_EQ(not_ready.status, 503u);
  EXPECT_THAT(not_ready.body, HasSubstr("no aggregator stream up"));
  ready = true;
  const Reply is_ready = Get(port, "/readyz");
  EXPECT_EQ(is_ready.status, 200u);
  EXPECT_THAT(is_ready.body, HasSubstr("bpf attached"));

  EXPECT_EQ(Get(port, "/nope").status, 404u);
}

TEST(StatusServer, RejectsBadListenAddressesWithTheReason) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto no_port = StatusServer::Start("127.0.0.1", registry, nullptr);
  ASSERT_FALSE(no_port.ok());
  EXPECT_THAT(no_port.error().message,
              HasSubstr("status listen address: expected HOST:PORT, got '127.0.0.1'"));
  auto bad_port = StatusServer::Start("127.0.0.1:99999", registry, nullptr);
  ASSERT_FALSE(bad_port.ok());
  EXPECT_THAT(bad_port.error().message, HasSubstr("port '99999' is not in 0..65535 in '127.0.0.1:99999'"));
  auto bad_host = StatusServer::Start("example.invalid:80", registry, nullptr);
  ASSERT_FALSE(bad_host.ok());
  EXPECT_THAT(bad_host.error().message, HasSubstr("is not an IP address"));
}

TEST(StatusServer, ReportsAPortAlreadyInUse) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto first = StatusServer::Start("127.0.0.1:0", registry, nullptr);
  ASSERT_TRUE(first.ok());
  auto second = StatusServer::Start("127.0.0.1:" + std::to_string((*first)->port()), registry, nullptr);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.error().ToString(), HasSubstr("cannot listen on"));
}

// Reads until the peer closes (or resets) the connection; how long that took. Fails the test
// instead of hanging when the server never closes it (SO_RCVTIMEO as the safety net).
std::chrono::milliseconds TimeUntilClosedByPeer(boost::asio::ip::tcp::socket& socket,
                                                std::chrono::seconds give_up = std::chrono::seconds(20)) {
  const auto started = std::chrono::steady_clock::now();
  timeval tv{static_cast<time_t>(give_up.count()), 0};
  setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char byte[256];
  while (true) {
    boost::system::error_code ec;
    socket.read_some(boost::asio::buffer(byte), ec);
    if (ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset) break;
    if (ec) {
      ADD_FAILURE() << "the server did not close the connection: " << ec.message();
      break;
    }
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
}

// The limits the server reports hit, in the server's thread. A hit is reported after the
// connection is closed (Beast closes the socket when its deadline fires, then completes the
// read with the timeout), so the client seeing the close does not mean the hit is counted yet:
// CountOnceHit waits for the report.
struct LimitLog {
  std::mutex mutex;
  std::condition_variable reported;
  std::vector<std::string> hits;
  StatusServer::LimitHit Callback() {
    return [this](const char* limit) {
      {
        std::lock_guard lock(mutex);
        hits.emplace_back(limit);
      }
      reported.notify_all();
    };
  }
  // How often `limit` was hit, once it has been at least once (or the deadline passed).
  size_t CountOnceHit(const std::string& limit) {
    std::unique_lock lock(mutex);
    const auto count = [&] { return static_cast<size_t>(std::count(hits.begin(), hits.end(), limit)); };
    reported.wait_for(lock, test::SanitizerScaled(std::chrono::seconds(5)), [&] { return count() > 0; });
    return count();
  }
};

TEST(StatusServer, ClosesASlowlorisConnectionAtTheReadTimeout) {
  auto registry = std::make_shared<prometheus::Registry>();
  StatusServerLimits limits;
  limits.read_timeout = std::chrono::milliseconds(300);
  LimitLog log;
  auto server = StatusServer::Start("127.0.0.1:0", registry, nullptr, limits, log.Callback());
  ASSERT_TRUE(server.ok()) << server.error().ToString();

  boost::asio::io_context io;
  boost::asio::ip::tcp::socket slow(io);
  slow.connect({boost::asio::ip::make_address("127.0.0.1"), (*server)->port()});
  // Half a request, never finished: without a deadline the server would wait for ever.
  boost::asio::write(slow, boost::asio::buffer(std::string("GET /metrics HTTP/1.1\r\nHost: x\r\n")));
  const auto waited = TimeUntilClosedByPeer(slow);
  EXPECT_GE(waited, std::chrono::milliseconds(250));
  EXPECT_LT(waited, std::chrono::seconds(5));
  EXPECT_EQ(log.CountOnceHit("read_timeout"), 1u);
  // Still serving.
  EXPECT_EQ(Get((*server)->port(), "/healthz").status, 200u);
}

TEST(StatusServer, RefusesConnectionsBeyondTheCapAndServesAgainOnceTheyClose) {
  auto registry = std::make_shared<prometheus::Registry>();
  StatusServerLimits limits;
  limits.max_connections = 4;
  limits.read_timeout = std::chrono::seconds(30);
  LimitLog log;
  auto server = StatusServer::Start("127.0.0.1:0", registry, nullptr, limits, log.Callback());
  ASSERT_TRUE(server.ok()) << server.error().ToString();
  const boost::asio::ip::tcp::endpoint endpoint{boost::asio::ip::make_address("127.0.0.1"),
                                                (*server)->port()};

  boost::asio::io_context io;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::socket>> idle;
  for (size_t i = 0; i < limits.max_connections; ++i) {
    idle.push_back(std::make_unique<boost::asio::ip::tcp::socket>(io));
    idle.back()->connect(endpoint);
    // Each is accepted in turn: the server counts it before the next one is tried.
    boost::asio::write(*idle.back(), boost::asio::buffer(std::string("G")));
  }
  // The server accepts asynchronously: the cap is reached once all four are counted.
  for (int i = 0; i < 2000 && (*server)->open_connections() < limits.max_connections; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ((*server)->open_connections(), limits.max_connections);

  boost::asio::ip::tcp::socket one_more(io);
  one_more.connect(endpoint);
  // Closed at once, not after the 30 s read timeout.
  EXPECT_LT(TimeUntilClosedByPeer(one_more), std::chrono::seconds(5));
  EXPECT_EQ(log.CountOnceHit("connections"), 1u);

  idle.clear();
  for (int i = 0; i < 2000 && (*server)->open_connections() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(Get(endpoint.port(), "/healthz").status, 200u);
}

TEST(StatusServer, ClosesAnOversizedRequest) {
  auto registry = std::make_shared<prometheus::Registry>();
  StatusServerLimits limits;
  limits.max_request_bytes = 1024;
  LimitLog log;
  auto server = StatusServer::Start("127.0.0.1:0", registry, nullptr, limits, log.Callback());
  ASSERT_TRUE(server.ok()) << server.error().ToString();
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), (*server)->port()});
  const std::string huge = "GET /metrics HTTP/1.1\r\nX-Junk: " + std::string(64 * 1024, 'a') + "\r\n\r\n";
  boost::system::error_code ignored;
  boost::asio::write(socket, boost::asio::buffer(huge), ignored);
  EXPECT_LT(TimeUntilClosedByPeer(socket), std::chrono::seconds(5));
  EXPECT_EQ(log.CountOnceHit("request_size"), 1u);
  EXPECT_EQ(Get((*server)->port(), "/healthz").status, 200u);
}

}  // namespace
}  // namespace regionpulse
