// Prober: the STAMP Session-Sender. One io_context, no thread per peer: one timer for all
// targets, each with its own jittered deadline (ProbeSchedule), the probes due at a wake-up
// sent in one batch on one UDP socket per address family shared by all targets, replies
// matched to sessions by (peer address, port, SSID). It measures nothing itself: it hands every
// send, reply and rejected reply to a ProbeEventSink (WindowFolder).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "agent/probe_codec.h"
#include "agent/probe_events.h"
#include "regionpulse/v1/ingest.pb.h"

namespace regionpulse {

struct ProbeTarget {
  std::string node;
  std::string region;
  std::string zone;
  std::string address;  // IPv4 or IPv6 literal
  uint16_t port = 862;
  bool operator==(const ProbeTarget&) const = default;
};

std::vector<ProbeTarget> TargetsFromPlan(const v1::ProbePlan& plan);

struct ProberConfig {
  std::chrono::nanoseconds interval{100'000'000};
  double jitter = 0.1;        // each schedule is interval * (1 + U(-jitter, +jitter))
  uint32_t payload_size = 0;  // UDP payload; raised to MinimumProbeLength(mode)
  StampMode mode = StampMode::kAuthenticated;
  MacKey key;
  uint64_t seed = 0;  // jitter and SSID randomness; 0 = from std::random_device
  // Replies to probes of a removed target are still matched this long after its removal, so
  // a plan that rotates peers does not turn the last probes in flight into loss.
  std::chrono::nanoseconds reply_grace{800'000'000};
};

struct ProberCounters {
  uint64_t sent = 0;
  uint64_t send_errors = 0;
  uint64_t replies = 0;
  uint64_t bad_mac = 0;
  uint64_t malformed = 0;
  uint64_t unmatched = 0;  // replies from an address/SSID with no current session
};

class Prober {
 public:
  Prober(boost::asio::io_context& io, ProberConfig config, ProbeEventSink& sink);
  ~Prober();
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // Replaces the targets (thread-safe: runs on the io_context). A target that stays (same
  // node, address, port) keeps its session and sequence numbers; a new one starts a new
  // session (fresh SSID, sequence 0) with a random first delay within one interval; removed
  // ones stop at once.
  void SetTargets(std::vector<ProbeTarget> targets);
  // A plan's interval and payload size (0 = keep the current one). Thread-safe.
  void SetSchedule(std::chrono::nanoseconds interval, uint32_t payload_size);
  // Stops timers and closes the sockets (thread-safe; idempotent).
  void Stop();

  ProberCounters counters() const;
  size_t TargetCount() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace regionpulse
