// Reflector: the STAMP Session-Reflector in stateful mode (RFC 8762 4.3): per session
// (sender address, port, SSID) it numbers its own replies, so the sender can tell forward
// from reverse loss. It fills the receive timestamp (kernel receive time, SO_TIMESTAMPNS),
// the sender's TTL, its transmit timestamp, copies the kernel-stamp TLV and every other TLV
// (unknown ones flagged U, RFC 8972; a malformed one and the rest of the packet returned as is,
// flagged M), verifies the sender's HMAC (bad ones are counted and dropped) and answers
// unauthenticated senders only when configured.
//
// Abuse limits, each counted per reason and never answered: a token bucket per source address
// (before any HMAC is computed, so a flood costs little); in authenticated mode a probe naming
// a key the reflector does not hold (wrong_key), a timestamp too far from the reflector's clock
// (stale_timestamp) and a probe already answered (replayed: per sender address and SSID, a
// sliding window over sequence numbers per session).
//
// Every reply leaves from the exact address and port the probe was sent to, whichever of the
// node's addresses that was: a sender matches replies by the address it probed, and on a node
// with several addresses (secondary ENI addresses, a tunnel address beside the node address)
// the kernel's own choice for a wildcard-bound socket would be the interface's primary one.
// Each reflection, and each refusal whose session the packet names (wrong_key, stale_timestamp,
// rate_limited, replayed), is handed to a ReflectionSink (the window folder), for the
// per-sender counts the node reports as the far end's half of loss direction.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <boost/asio/io_context.hpp>

#include "agent/probe_codec.h"
#include "agent/reflection_events.h"
#include "agent/sender_key.h"
#include "common/clocks.h"
#include "common/result.h"
#include "common/token_bucket.h"

namespace regionpulse {

struct ReflectorConfig {
  std::string listen_address = "::";  // "::" is dual-stack; falls back to 0.0.0.0 without IPv6
  uint16_t port = 862;                // 0 = any free port (tests)
  bool accept_authenticated = true;
  bool accept_unauthenticated = false;
  MacKey key;  // replies are signed with the key the probe was verified with
  // Accepted beside `key` (key rotation), found by the key id the probe names.
  std::vector<MacKey> accepted_keys;
  std::chrono::nanoseconds session_idle{60'000'000'000};
  size_t max_sessions = 100'000;  // beyond this the least recently used session is forgotten
  // Per source address: a node probes us once per interval per session (10/s at the default
  // 100 ms), so 200/s with a burst of 400 leaves room for restarts and short intervals.
  double rate_per_source = 200;
  double burst_per_source = 400;
  size_t max_sources = 10'000;  // rate and replay state; least recently seen forgotten beyond
  // Authenticated probes whose timestamp is further than this from our clock are refused: a
  // replay older than this is refused even after its replay state was forgotten.
  std::chrono::nanoseconds max_clock_offset{30'000'000'000};
};

struct ReflectorCounters {
  uint64_t received = 0;
  uint64_t replied = 0;
  uint64_t bad_mac = 0;
  uint64_t unauthenticated_refused = 0;
  uint64_t malformed = 0;
  uint64_t send_errors = 0;
  uint64_t sessions = 0;  // active now
  uint64_t rate_limited = 0;
  uint64_t replayed = 0;
  uint64_t stale_timestamp = 0;
  uint64_t wrong_key = 0;      // authenticated probes naming a key id we do not hold
  uint64_t malformed_tlv = 0;  // answered, with a malformed TLV returned flagged M
};

// A map of at most `capacity` entries that forgets the least recently used ones to make room.
// Touching an entry is one hash lookup and a counter write: no list to splice per packet (the
// reflector touches two tables per probe; a linked LRU list's node moves were 4 % of its CPU).
// When full, the least recently used sixteenth (at least one entry) is forgotten in one pass,
// so the pass costs O(1) per new entry on average.
template <typename Key, typename Value, typename Hash>
class LruTable {
 public:
  explicit LruTable(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}
  // The entry for `key`, made with `fresh` when absent; marks it most recently used. The
  // reference is valid until the next Touch.
  Value& Touch(const Key& key, const Value& fresh) {
    ++clock_;
    if (auto it = entries_.find(key); it != entries_.end()) {
      it->second.last_used = clock_;
      return it->second.value;
    }
    if (entries_.size() >= capacity_) ForgetLeastRecentlyUsed();
    return entries_.try_emplace(key, Entry{fresh, clock_}).first->second.value;
  }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Value value;
    uint64_t last_used;  // clock_ at the last Touch: unique per entry
  };
  void ForgetLeastRecentlyUsed() {
    const size_t count = std::max<size_t>(capacity_ / 16, 1);
    ages_.clear();
    for (const auto& [key, entry] : entries_) ages_.push_back(entry.last_used);
    std::nth_element(ages_.begin(), ages_.begin() + static_cast<std::ptrdiff_t>(count - 1), ages_.end());
    const uint64_t newest_forgotten = ages_[count - 1];
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->second.last_used <= newest_forgotten) {
        entries_.erase(it++);  // absl's idiom: erase does not return the next iterator
      } else {
        ++it;
      }
    }
  }
  size_t capacity_;
  uint64_t clock_ = 0;
  absl::flat_hash_map<Key, Entry, Hash> entries_;
  std::vector<uint64_t> ages_;  // scratch for ForgetLeastRecentlyUsed, kept to spare allocations
};

// Token bucket per source address, bounded table. Pure (time is passed in).
class SourceRateLimiter {
 public:
  SourceRateLimiter(double rate_per_second, double burst, size_t max_sources)
      : rate_(rate_per_second), burst_(burst), buckets_(max_sources) {}
  // True when `source` may be answered now; takes one token.
  bool Allow(const SenderAddress& source, MonoTime now);
  size_t size() const { return buckets_.size(); }

 private:
  double rate_;
  double burst_;
  LruTable<SenderAddress, TokenBucket<MonoTime>, SenderAddressHash> buckets_;
};

// Refuses authenticated probes seen before: per STAMP session (sender address and port, SSID)
// the highest sequence and a 64-probe window below it. The port is part of the session: senders
// behind one NAT address may draw the same SSID. A replay from another port is a new session;
// the timestamp bound (max_clock_offset) and the per-source rate limit bound what it gets.
// Pure.
class ReplayGuard {
 public:
  explicit ReplayGuard(size_t max_senders) : windows_(max_senders) {}
  // True (and recorded) when this probe was not admitted before. `timestamp` is the probe's
  // authenticated send time: a sequence far below the window with a newer timestamp than any
  // seen is a restarted sender that drew the same SSID, not a replay.
  bool Admit(const SenderKey& session, uint32_t sequence, WallTime timestamp);

 private:
  struct Window {
    bool any = false;
    uint32_t highest = 0;
    uint64_t seen = 0;  // bit i: highest - i was admitted
    WallTime newest{};
  };
  LruTable<SenderKey, Window, SenderKeyHash> windows_;
};

// The pure part: session state and reply construction.
class ReflectorSessions {
 public:
  explicit ReflectorSessions(std::chrono::nanoseconds idle, size_t max_sessions)
      : idle_(idle), max_sessions_(max_sessions) {}

  // Builds the reply to a decoded Session-Sender packet of `session` (its SSID is the
  // request's) received at `received_wall` (kernel receive time) with IP TTL/hop limit `ttl`;
  // `transmit_wall` is stamped as the reflector's transmit time. Advances the session's reply
  // counter. The request's TLVs move into the reply (pass an rvalue to spare their copies).
  ReflectorPacket Reflect(const SenderKey& session, SenderPacket request, MonoTime now,
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
  // Hashed, open addressing: looked up once per probe.
  absl::flat_hash_map<SenderKey, Session, SenderKeyHash> sessions_;
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
