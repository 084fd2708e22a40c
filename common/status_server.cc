// HTTP status endpoint on Boost.Beast: one thread, one io_context, one request per
// connection (Prometheus and kubelet probes open a connection per scrape anyway).
#include "common/status_server.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

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
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::shared_ptr<prometheus::Registry> registry;
  ReadinessProbe readiness;
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) Serve(std::make_shared<tcp::socket>(std::move(socket)));
      Accept();
    });
  }

  void Serve(std::shared_ptr<tcp::socket> socket) {
    auto buffer = std::make_shared<beast::flat_buffer>();
    auto request = std::make_shared<http::request<http::string_body>>();
    http::async_read(
        *socket, *buffer, *request, [this, socket, buffer, request](boost::system::error_code ec, size_t) {
          if (ec) return;
          auto response = std::make_shared<http::response<http::string_body>>(Respond(*request));
          http::async_write(*socket, *response, [socket, response](boost::system::error_code, size_t) {
            boost::system::error_code ignored;
            socket->shutdown(tcp::socket::shutdown_both, ignored);
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
                                                          ReadinessProbe readiness) {
  auto endpoint = ParseListen(listen);
  if (!endpoint.ok()) return endpoint.error();
  auto impl = std::make_unique<Impl>();
  impl->registry = std::move(registry);
  impl->readiness = std::move(readiness);
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

}  // namespace regionpulse
