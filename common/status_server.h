// StatusServer: the small HTTP endpoint every regionpulse program has: GET /metrics
// (Prometheus text format from a prometheus-cpp registry), /healthz (alive) and /readyz
// (ready, with the reason when not). Boost.Beast on its own thread and io_context, so a slow
// scrape never touches probing or gRPC.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "common/result.h"

namespace prometheus {
class Registry;
}

namespace regionpulse {

struct Readiness {
  bool ready = false;
  std::string reason;  // why not ready, or a short summary when ready
};

// What one client may hold of the server: a scraper that connects and never sends (or sends a
// byte a minute) must not keep a connection, and many of them must not take every descriptor.
struct StatusServerLimits {
  // The whole request must arrive within this long of the connection being accepted.
  std::chrono::milliseconds read_timeout{5'000};
  // The whole response must be taken within this long (a big /metrics to a stalled reader).
  std::chrono::milliseconds write_timeout{10'000};
  // Connections open at once; one more is closed at once (and counted).
  size_t max_connections = 64;
  // Request header and body bytes; a GET has no body, so this only bounds garbage.
  size_t max_request_bytes = 16 * 1024;
};

class StatusServer {
 public:
  using ReadinessProbe = std::function<Readiness()>;
  // Called (on the server's thread) when a limit closed a connection: "connections",
  // "read_timeout", "write_timeout" or "request_size". For a metric and a rate-limited log.
  using LimitHit = std::function<void(const char* limit)>;

  // listen is "HOST:PORT" (port 0 picks a free one; IPv6 as "[::1]:9100").
  static Result<std::unique_ptr<StatusServer>> Start(const std::string& listen,
                                                     std::shared_ptr<prometheus::Registry> registry,
                                                     ReadinessProbe readiness, StatusServerLimits limits = {},
                                                     LimitHit on_limit = nullptr);
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  uint16_t port() const;
  // Connections open now (for tests and the connection cap).
  size_t open_connections() const;

 private:
  struct Impl;
  explicit StatusServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace regionpulse
