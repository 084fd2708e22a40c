// regionpulse.v1.Verdicts: Get and Watch for the failover controller, on gRPC's callback API.
// VerdictBroadcaster holds the current verdict and pushes every change to every Watch stream
// at once; a heartbeat thread repeats the unchanged verdict at each stream's interval.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "aggregator/call_authorizer.h"
#include "regionpulse/v1/verdicts.grpc.pb.h"

namespace regionpulse {

class VerdictWatchStream;

// The heartbeat interval a Watch request asks for, range-checked before any arithmetic: 0
// (the default) when unset, negative or malformed; at most VerdictBroadcaster::kMaxHeartbeat
// however large the value on the wire.
std::chrono::milliseconds RequestedHeartbeat(const v1::WatchVerdictsRequest& request);

class VerdictBroadcaster {
 public:
  // Heartbeat intervals clients may ask for are clamped to [kMinHeartbeat, kMaxHeartbeat]; 0
  // means default_heartbeat.
  static constexpr std::chrono::milliseconds kMinHeartbeat{100};
  static constexpr std::chrono::milliseconds kMaxHeartbeat{std::chrono::minutes(10)};

  VerdictBroadcaster(v1::Verdict initial, std::chrono::milliseconds default_heartbeat);
  // Ends every Watch stream (UNAVAILABLE) and stops the heartbeat thread.
  ~VerdictBroadcaster();
  VerdictBroadcaster(const VerdictBroadcaster&) = delete;
  VerdictBroadcaster& operator=(const VerdictBroadcaster&) = delete;

  // Replaces the current verdict and pushes it to every watcher now.
  void Publish(const v1::Verdict& verdict);
  // Replaces the current verdict without pushing it: an unchanged verdict with a newer
  // computed_at, which Get and the next heartbeat carry.
  void Update(const v1::Verdict& verdict);
  v1::Verdict Current() const;
  size_t watchers() const;
  // Watch streams open at once; one more is refused with RESOURCE_EXHAUSTED (counted).
  void SetMaxWatchers(size_t max_watchers);
  uint64_t watchers_refused() const;
  // Ends every Watch stream with UNAVAILABLE so the server can shut down; later Watch calls
  // are refused the same way.
  void Close();

  std::chrono::milliseconds ClampHeartbeat(std::chrono::milliseconds requested) const;

 private:
  friend class VerdictWatchStream;
  // Registers a new stream and queues the current verdict on it; otherwise why not.
  enum class SubscribeResult { kSubscribed, kClosed, kFull };
  SubscribeResult Subscribe(VerdictWatchStream* stream);
  void Unsubscribe(VerdictWatchStream* stream);
  void HeartbeatLoop();

  const std::chrono::milliseconds default_heartbeat_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  v1::Verdict current_;
  std::set<VerdictWatchStream*> streams_;
  bool closed_ = false;
  size_t max_watchers_ = std::numeric_limits<size_t>::max();
  uint64_t watchers_refused_ = 0;
  std::thread heartbeat_thread_;
};

class VerdictService final : public v1::Verdicts::CallbackService {
 public:
  // Every call must pass authorizer.AuthorizeRead.
  VerdictService(VerdictBroadcaster& broadcaster, const CallAuthorizer& authorizer)
      : broadcaster_(broadcaster), authorizer_(authorizer) {}

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context, const v1::GetVerdictRequest* request,
                                v1::GetVerdictResponse* response) override;
  grpc::ServerWriteReactor<v1::WatchVerdictsResponse>* Watch(
      grpc::CallbackServerContext* context, const v1::WatchVerdictsRequest* request) override;

 private:
  VerdictBroadcaster& broadcaster_;
  const CallAuthorizer& authorizer_;
};

}  // namespace regionpulse
