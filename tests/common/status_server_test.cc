// The HTTP status endpoint serves metrics, liveness and readiness over real sockets.
#include "common/status_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

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

}  // namespace
}  // namespace regionpulse
