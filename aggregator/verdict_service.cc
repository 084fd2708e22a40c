// Verdicts.Get and Verdicts.Watch; one reactor object per Watch stream, no thread per stream.
#include "aggregator/verdict_service.h"

#include <algorithm>
#include <deque>
#include <optional>

#include "aggregator/write_queue_reactor.h"

namespace regionpulse {

using SteadyClock = std::chrono::steady_clock;

// One Watch stream; changes queue behind the write in flight.
class VerdictWatchStream final : public WriteQueueReactor<grpc::ServerWriteReactor<v1::WatchVerdictsResponse>,
                                                          v1::WatchVerdictsResponse> {
 public:
  // A slow reader never holds more than this many queued verdicts: the oldest go first, the
  // newest (the current verdict) always stays.
  static constexpr size_t kMaxQueued = 32;

  VerdictWatchStream(VerdictBroadcaster& broadcaster, std::chrono::milliseconds interval)
      : broadcaster_(broadcaster), interval_(interval) {
    switch (broadcaster_.Subscribe(this)) {
      case VerdictBroadcaster::SubscribeResult::kSubscribed:
        break;
      case VerdictBroadcaster::SubscribeResult::kClosed:
        FinishWith(grpc::Status(grpc::StatusCode::UNAVAILABLE, "aggregator is shutting down"));
        break;
      case VerdictBroadcaster::SubscribeResult::kFull:
        FinishWith(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                "too many Watch streams open (limits.max_watch_streams); retry later"));
        break;
    }
  }

  // Called with the broadcaster's lock held.
  void Enqueue(const v1::Verdict& verdict, bool heartbeat) {
    std::unique_lock lock(mutex_);
    if (finish_requested_locked()) return;
    // A heartbeat behind a queued verdict says nothing new.
    if (heartbeat && (writing_locked() || !queue_.empty())) return;
    v1::WatchVerdictsResponse response;
    *response.mutable_verdict() = verdict;
    response.set_heartbeat(heartbeat);
    queue_.push_back(std::move(response));
    while (queue_.size() > kMaxQueued) queue_.pop_front();
    next_heartbeat_ = SteadyClock::now() + interval_;
    StartNextWriteLocked(lock);
  }

  // Sends a heartbeat when this stream's interval has passed; returns when the next one is due.
  SteadyClock::time_point HeartbeatIfDue(const v1::Verdict& verdict, SteadyClock::time_point now) {
    {
      std::lock_guard lock(mutex_);
      if (now < next_heartbeat_) return next_heartbeat_;
    }
    Enqueue(verdict, /*heartbeat=*/true);
    std::lock_guard lock(mutex_);
    // When the heartbeat was skipped (a write is pending), look again after one interval.
    if (next_heartbeat_ <= now) next_heartbeat_ = now + interval_;
    return next_heartbeat_;
  }

  void OnDone() override {
    broadcaster_.Unsubscribe(this);
    delete this;
  }

 private:
  bool TakeNextWriteLocked(v1::WatchVerdictsResponse& message) override {
    if (queue_.empty()) return false;
    message = std::move(queue_.front());
    queue_.pop_front();
    return true;
  }

  VerdictBroadcaster& broadcaster_;
  const std::chrono::milliseconds interval_;
  // Guarded by mutex_ (WriteQueueReactor's), together with the write state.
  std::deque<v1::WatchVerdictsResponse> queue_;
  SteadyClock::time_point next_heartbeat_ = SteadyClock::now();
};

VerdictBroadcaster::VerdictBroadcaster(v1::Verdict initial, std::chrono::milliseconds default_heartbeat)
    : default_heartbeat_(std::clamp(default_heartbeat, kMinHeartbeat, kMaxHeartbeat)),
      current_(std::move(initial)) {
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
}

VerdictBroadcaster::~VerdictBroadcaster() {
  Close();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
}

std::chrono::milliseconds RequestedHeartbeat(const v1::WatchVerdictsRequest& request) {
  if (!request.has_heartbeat_interval()) return std::chrono::milliseconds(0);
  const google::protobuf::Duration& interval = request.heartbeat_interval();
  // Range-checked before any arithmetic: seconds * 1000 overflows int64 for a hostile value.
  if (interval.seconds() < 0 || interval.nanos() < 0) return std::chrono::milliseconds(0);
  if (interval.seconds() >=
      std::chrono::duration_cast<std::chrono::seconds>(VerdictBroadcaster::kMaxHeartbeat).count())
    return VerdictBroadcaster::kMaxHeartbeat;
  return std::chrono::seconds(interval.seconds()) +
         std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::nanoseconds(std::min<int32_t>(interval.nanos(), 999'999'999)));
}

std::chrono::milliseconds VerdictBroadcaster::ClampHeartbeat(std::chrono::milliseconds requested) const {
  if (requested.count() <= 0) return default_heartbeat_;
  return std::clamp(requested, kMinHeartbeat, kMaxHeartbeat);
}

void VerdictBroadcaster::Publish(const v1::Verdict& verdict) {
  std::lock_guard lock(mutex_);
  current_ = verdict;
  for (VerdictWatchStream* stream : streams_) stream->Enqueue(current_, /*heartbeat=*/false);
  wake_.notify_all();
}

void VerdictBroadcaster::Update(const v1::Verdict& verdict) {
  std::lock_guard lock(mutex_);
  current_ = verdict;
}

v1::Verdict VerdictBroadcaster::Current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

size_t VerdictBroadcaster::watchers() const {
  std::lock_guard lock(mutex_);
  return streams_.size();
}

void VerdictBroadcaster::Close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  for (VerdictWatchStream* stream : streams_) {
    stream->FinishWith(grpc::Status(grpc::StatusCode::UNAVAILABLE, "aggregator is shutting down"));
  }
  wake_.notify_all();
}

VerdictBroadcaster::SubscribeResult VerdictBroadcaster::Subscribe(VerdictWatchStream* stream) {
  std::lock_guard lock(mutex_);
  if (closed_) return SubscribeResult::kClosed;
  if (streams_.size() >= max_watchers_) {
    ++watchers_refused_;
    return SubscribeResult::kFull;
  }
  streams_.insert(stream);
  stream->Enqueue(current_, /*heartbeat=*/false);
  wake_.notify_all();
  return SubscribeResult::kSubscribed;
}

void VerdictBroadcaster::SetMaxWatchers(size_t max_watchers) {
  std::lock_guard lock(mutex_);
  max_watchers_ = max_watchers;
}

uint64_t VerdictBroadcaster::watchers_refused() const {
  std::lock_guard lock(mutex_);
  return watchers_refused_;
}

void VerdictBroadcaster::Unsubscribe(VerdictWatchStream* stream) {
  std::lock_guard lock(mutex_);
  streams_.erase(stream);
}

void VerdictBroadcaster::HeartbeatLoop() {
  std::unique_lock lock(mutex_);
  while (!closed_) {
    const auto now = SteadyClock::now();
    auto next = now + default_heartbeat_;
    for (VerdictWatchStream* stream : streams_) next = std::min(next, stream->HeartbeatIfDue(current_, now));
    wake_.wait_until(lock, next);
  }
}

namespace {

// A Watch refused before it started: finishes with the refusal at once.
class RefusedWatch final : public grpc::ServerWriteReactor<v1::WatchVerdictsResponse> {
 public:
  explicit RefusedWatch(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerUnaryReactor* VerdictService::Get(grpc::CallbackServerContext* context,
                                              const v1::GetVerdictRequest*,
                                              v1::GetVerdictResponse* response) {
  auto* reactor = context->DefaultReactor();
  grpc::Status allowed = authorizer_.AuthorizeRead(*context);
  if (allowed.ok()) *response->mutable_verdict() = broadcaster_.Current();
  reactor->Finish(allowed);
  return reactor;
}

grpc::ServerWriteReactor<v1::WatchVerdictsResponse>* VerdictService::Watch(
    grpc::CallbackServerContext* context, const v1::WatchVerdictsRequest* request) {
  if (grpc::Status allowed = authorizer_.AuthorizeRead(*context); !allowed.ok())
    return new RefusedWatch(allowed);
  return new VerdictWatchStream(broadcaster_, broadcaster_.ClampHeartbeat(RequestedHeartbeat(*request)));
}

}  // namespace regionpulse
