// Reflector: the STAMP Session-Reflector in stateful mode (RFC 8762 4.3): per session
// (sender address, port, SSID) it numbers its own replies, so the sender can tell forward
// from reverse loss. It fills the receive timestamp (kernel receive time, SO_TIMESTAMPNS),
// the sender's TTL, its transmit timestamp, copies the kernel-stamp TLV and every other TLV
// (unknown ones flagged U, RFC 8972), verifies the sender's HMAC (bad ones are counted and
// dropped) and answers unauthenticated senders only when configured.
//
// Every reply leaves from the exact address and port the probe was sent to, whichever of the
// node's addresses that was: a sender matches replies by the address it probed, and on a node
// with several addresses (secondary ENI addresses, a tunnel address beside the node address)
// the kernel's own choice for a wildcard-bound socket would be the interface's primary one.
// Each reflection is handed to a ReflectionSink (the window folder), for the per-sender counts
// the node reports as the far end's half of loss direction.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include <boost/asio/io_context.hpp>

#include "agent/probe_codec.h"
#include "agent/reflection_events.h"
#include "common/clocks.h"
#include "common/result.h"

namespace regionpulse {

struct ReflectorConfig {
  std::string listen_address = "::";  // "::" is dual-stack; falls back to 0.0.0.0 without IPv6
  uint16_t port = 862;                // 0 = any free port (tests)
  bool accept_authenticated = true;
  bool accept_unauthenticated = false;
  MacKey key;
  std::chrono::nanoseconds session_idle{60'000'000'000};
  size_t max_sessions = 100'000;  // beyond this the least recently used session is forgotten
};

struct ReflectorCounters {
  uint64_t received = 0;
  uint64_t replied = 0;
  uint64_t bad_mac = 0;
  uint64_t unauthenticated_refused = 0;
  uint64_t malformed = 0;
  uint64_t send_errors = 0;
  uint64_t sessions = 0;  // active now
};

// The pure part: session state and reply construction. `sender` identifies the session's
// sender ("address|port").
class ReflectorSessions {
 public:
  explicit ReflectorSessions(std::chrono::nanoseconds idle, size_t max_sessions)
      : idle_(idle), max_sessions_(max_sessions) {}

  // Builds the reply to a decoded Session-Sender packet received at `received_wall`
  // (kernel receive time) with IP TTL/hop limit `ttl`; `transmit_wall` is stamped as the
  // reflector's transmit time. Advances the session's reply counter.
  ReflectorPacket Reflect(const std::string& sender, const SenderPacket& request, MonoTime now,
                          WallTime received_wall, WallTime transmit_wall, uint8_t ttl);
  // Forgets sessions idle longer than the idle time; returns how many.
  size_t Expire(MonoTime now);
  size_t size() const { return sessions_.size(); }

 private:
  struct Session {
    uint32_t next_sequence = 0;
    MonoTime last_seen;
  };
  std::chrono::nanoseconds idle_;
  size_t max_sessions_;
  std::map<std::pair<std::string, uint16_t>, Session> sessions_;
};

class Reflector {
 public:
  // Binds and starts answering on `io`. Errors name the address and port. `sink`, when set,
  // hears of every reflection on the io thread and must outlive the reflector's handlers (the
  // io_context's run).
  static Result<std::unique_ptr<Reflector>> Start(boost::asio::io_context& io, ReflectorConfig config,
                                                  ReflectionSink* sink = nullptr);
  ~Reflector();
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  uint16_t port() const;
  ReflectorCounters counters() const;
  // Closes the socket (thread-safe; idempotent).
  void Stop();

  struct Impl;

 private:
  explicit Reflector(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace regionpulse
