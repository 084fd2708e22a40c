// StatusServer: the small HTTP endpoint every regionpulse program has: GET /metrics
// (Prometheus text format from a prometheus-cpp registry), /healthz (alive) and /readyz
// (ready, with the reason when not). Boost.Beast on its own thread and io_context, so a slow
// scrape never touches probing or gRPC.
#pragma once

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

class StatusServer {
 public:
  using ReadinessProbe = std::function<Readiness()>;

  // listen is "HOST:PORT" (port 0 picks a free one; IPv6 as "[::1]:9100").
  static Result<std::unique_ptr<StatusServer>> Start(const std::string& listen,
                                                     std::shared_ptr<prometheus::Registry> registry,
                                                     ReadinessProbe readiness);
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  uint16_t port() const;

 private:
  struct Impl;
  explicit StatusServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace regionpulse
