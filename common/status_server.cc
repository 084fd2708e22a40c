// HTTP status endpoint on Boost.Beast: one thread, one io_context, one request per
// connection (Prometheus and kubelet probes open a connection per scrape anyway). Bounded:
// a deadline per request and per response, a cap on open connections and on request size.
#include "common/status_server.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

#include "common/config_text.h"

namespace regionpulse {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

Result<tcp::endpoint> ParseListen(const std::string& listen) {
  auto parsed = ParseHostPort(listen, true);
  if (!parsed) return Error{"status listen address: " + parsed.error().message};
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(parsed->host, ec);
  if (ec) return Error{"status listen address '" + listen + "': '" + parsed->host + "' is not an IP address"};
  return tcp::endpoint(address, parsed->port);
}

}  // namespace

struct StatusServer::Impl {
  // Declared before io: connections still queued in io when it is destroyed count down here.
  std::atomic<size_t> open{0};
  StatusServerLimits limits;
  LimitHit on_limit;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::shared_ptr<prometheus::Registry> registry;
  ReadinessProbe readiness;
  std::thread thread;

  void Hit(const char* limit) {
    if (on_limit) on_limit(limit);
  }

  void Accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        if (open.load() >= limits.max_connections) {
          // Closed before reading a byte: a flood of idle connections costs a descriptor for
          // an instant, not one each until their timeout.
          Hit("connections");
          boost::system::error_code ignored;
          socket.close(ignored);
        } else {
          Serve(std::make_shared<Connection>(this, std::move(socket)));
        }
      }
      Accept();
    });
  }

  // One connection: counted while it lives; the stream's deadline closes it when a read or
  // write takes too long in total (a slowloris trickling a byte at a time included).
  struct Connection {
    Connection(Impl* server, tcp::socket socket) : server(server), stream(std::move(socket)) {
      ++server->open;
      parser.header_limit(static_cast<std::uint32_t>(server->limits.max_request_bytes));
      parser.body_limit(server->limits.max_request_bytes);
    }
    ~Connection() { --server->open; }
    Impl* server;
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    http::request_parser<http::string_body> parser;
    http::response<http::string_body> response;
  };

  void Serve(std::shared_ptr<Connection> connection) {
    connection->buffer.max_size(limits.max_request_bytes);
    connection->stream.expires_after(limits.read_timeout);
    http::async_read(connection->stream, connection->buffer, connection->parser,
                     [this, connection](boost::system::error_code ec, size_t) {
                       if (ec == beast::error::timeout) return Hit("read_timeout");
                       if (ec == http::error::header_limit || ec == http::error::body_limit ||
                           ec == http::error::buffer_overflow)
                         return Hit("request_size");
                       if (ec) return;
                       connection->response = Respond(connection->parser.get());
                       connection->stream.expires_after(limits.write_timeout);
                       http::async_write(connection->stream, connection->response,
                                         [this, connection](boost::system::error_code ec, size_t) {
                                           if (ec == beast::error::timeout) return Hit("write_timeout");
                                           boost::system::error_code ignored;
                                           connection->stream.socket().shutdown(tcp::socket::shutdown_both,
                                                                                ignored);
                                         });
                     });
  }

  http::response<http::string_body> Respond(const http::request<http::string_body>& request) const {
    http::response<http::string_body> response{http::status::ok, request.version()};
    response.set(http::field::content_type, "text/plain; charset=utf-8");
    response.keep_alive(false);
    const std::string target(request.target().substr(0, request.target().find('?')));
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      response.result(http::status::method_not_allowed);
      response.body() = "only GET\n";
    } else if (target == "/metrics") {
      response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response.body() = prometheus::TextSerializer().Serialize(registry->Collect());
    } else if (target == "/healthz") {
      response.body() = "ok\n";
    } else if (target == "/readyz") {
      const Readiness r = readiness ? readiness() : Readiness{true, "ready"};
      if (!r.ready) response.result(http::status::service_unavailable);
      response.body() = (r.ready ? "ready" : "not ready") + (r.reason.empty() ? "" : ": " + r.reason) + "\n";
    } else {
      response.result(http::status::not_found);
      response.body() = "not found; try /metrics, /healthz, /readyz\n";
    }
    response.prepare_payload();
    return response;
  }
};

Result<std::unique_ptr<StatusServer>> StatusServer::Start(const std::string& listen,
                                                          std::shared_ptr<prometheus::Registry> registry,
                                                          ReadinessProbe readiness, StatusServerLimits limits,
                                                          LimitHit on_limit) {
  auto endpoint = ParseListen(listen);
  if (!endpoint.ok()) return endpoint.error();
  auto impl = std::make_unique<Impl>();
  impl->registry = std::move(registry);
  impl->readiness = std::move(readiness);
  impl->limits = limits;
  impl->on_limit = std::move(on_limit);
  boost::system::error_code ec;
  impl->acceptor.open(endpoint->protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(*endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{"status server: cannot listen on " + listen + ": " + ec.message(), ec.value()};
  impl->Accept();
  impl->thread = std::thread([raw = impl.get()] { raw->io.run(); });
  return std::unique_ptr<StatusServer>(new StatusServer(std::move(impl)));
}

StatusServer::StatusServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusServer::~StatusServer() {
  asio::post(impl_->io, [this] {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
  });
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint16_t StatusServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

size_t StatusServer::open_connections() const {
  return impl_->open.load();
}

}  // namespace regionpulse
