// Ingest.Stream: the per-agent stream on the async API. Reads are handled one at a time in
// order; replies (a probe plan, an Ack) are coalesced so a slow agent never makes the server
// queue unboundedly: only the newest plan and the highest Ack are kept while a write is in flight.
#include "aggregator/ingest_service.h"

#include <pthread.h>

#include <algorithm>
#include <string_view>

#include "aggregator/write_queue_reactor.h"
#include "common/component_logger.h"

#include <google/protobuf/arena.h>
#include <spdlog/spdlog.h>

namespace regionpulse {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  return ComponentLogger("aggregator");
}

grpc::StatusCode GrpcCodeOf(AcceptStatus status) {
  switch (RejectCodeOf(status)) {
    case RejectCode::kOk:
      return grpc::StatusCode::OK;
    case RejectCode::kInvalidArgument:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case RejectCode::kFailedPrecondition:
      return grpc::StatusCode::FAILED_PRECONDITION;
  }
  return grpc::StatusCode::INTERNAL;
}

grpc::StatusCode GrpcCodeOf(HelloRefusal refusal) {
  switch (refusal) {
    case HelloRefusal::kNone:
      return grpc::StatusCode::OK;
    case HelloRefusal::kInvalid:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case HelloRefusal::kDuplicateNode:
      return grpc::StatusCode::ALREADY_EXISTS;
    case HelloRefusal::kUnknownRegion:
    case HelloRefusal::kEndpointOutsideRegion:
    case HelloRefusal::kIdentityMismatch:
      return grpc::StatusCode::PERMISSION_DENIED;
    case HelloRefusal::kTooManyAgents:
      // There may be room later (agents are forgotten); a bad Hello never has any.
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
  }
  return grpc::StatusCode::FAILED_PRECONDITION;
}

}  // namespace

// One Ingest call on the async API, shaped like a callback reactor's write side (StartWrite and
// Finish issued; OnWriteDone and OnCancel called back) so WriteQueueReactor's state machine
// drives its writes as it drives the Watch streams'. Every operation's tag returns on the one
// completion queue the call was accepted on, so its thread is the only one handling them.
class AsyncIngestCall {
 public:
  enum class Event { kAccepted, kRead, kWritten, kFinished, kDone };
  // What each operation hands the completion queue: the call and which operation returned.
  struct Tag {
    AsyncIngestCall* call;
    Event event;
  };

  virtual ~AsyncIngestCall() = default;
  // The completion queue's thread, for each returned tag of this call.
  virtual void OnEvent(Event event, bool ok) = 0;
  virtual void OnWriteDone(bool ok) = 0;
  virtual void OnCancel() = 0;

 protected:
  void StartWrite(const v1::StreamResponse* message) { stream_.Write(*message, &written_tag_); }
  void Finish(const grpc::Status& status) { stream_.Finish(status, &finished_tag_); }

  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<v1::StreamResponse, v1::StreamRequest> stream_{&context_};
  Tag accepted_tag_{this, Event::kAccepted};
  Tag read_tag_{this, Event::kRead};
  Tag written_tag_{this, Event::kWritten};
  Tag finished_tag_{this, Event::kFinished};
  Tag done_tag_{this, Event::kDone};
};

class IngestStream final : public WriteQueueReactor<AsyncIngestCall, v1::StreamResponse> {
 public:
  // Requests the next Stream call on `queue` (under the service's lock, see AcceptOn); the
  // object lives until the last of its operations returns.
  IngestStream(IngestService& service, v1::Ingest::AsyncService& async_service,
               grpc::ServerCompletionQueue& queue, size_t queue_index)
      : service_(service), queue_index_(queue_index), arena_(ReadArenaOptions()) {
    // Returned once the call is over (cancelled or not), only for a call that was accepted.
    context_.AsyncNotifyWhenDone(&done_tag_);
    async_service.RequestStream(&context_, &stream_, &queue, &queue, &accepted_tag_);
  }
  ~IngestStream() override { service_.Forget(); }

  size_t queue_index() const { return queue_index_; }

  void OnEvent(Event event, bool ok) override {
    switch (event) {
      case Event::kAccepted:
        if (!ok) {
          // The server is shutting down: no call, so no other operation will return.
          delete this;
          return;
        }
        service_.AcceptOn(queue_index_);
        OnAccepted();
        break;
      case Event::kRead:
        read_in_flight_ = false;
        OnReadDone(ok);
        break;
      case Event::kWritten:
        OnWriteDone(ok);
        break;
      case Event::kFinished:
        finish_returned_ = true;
        break;
      case Event::kDone:
        done_returned_ = true;
        // The agent vanished, its deadline passed or the server cancelled every call.
        if (context_.IsCancelled()) OnCancel();
        break;
    }
    // Finish is sent only when no write is in flight and none starts after it, so once it and
    // the call's end have returned, only a read can still be outstanding.
    if (finish_returned_ && done_returned_ && !read_in_flight_) End();
  }

  // Queues the node's plan when it is newer than the one sent last.
  void SendPlanIfNewer() {
    std::string node;
    {
      std::lock_guard lock(mutex_);
      if (session_ == 0 || finish_requested_locked()) return;
      node = node_;
    }
    std::optional<v1::ProbePlan> plan = service_.backend_.PlanFor(node);
    if (!plan) return;
    std::unique_lock lock(mutex_);
    if (plan->plan_version() <= sent_plan_version_) return;
    sent_plan_version_ = plan->plan_version();
    pending_plan_ = std::move(*plan);
    StartNextWriteLocked(lock);
  }

 private:
  // What the callback reactor's constructor did: authorise before anything is read.
  void OnAccepted() {
    caller_.peer = context_.peer();
    if (!service_.Register(this)) {
      FinishWith(grpc::Status(grpc::StatusCode::UNAVAILABLE, "aggregator is shutting down"));
      return;
    }
    if (grpc::Status allowed = service_.backend_.AuthorizeStream(context_, &caller_.certified);
        !allowed.ok()) {
      FinishWith(allowed);
      return;
    }
    StartNextRead();
  }

  void OnReadDone(bool ok) {
    if (!ok) {
      // The agent closed its side (or the call was cancelled): nothing more will arrive.
      FinishWith(grpc::Status::OK);
      return;
    }
    switch (request_->message_case()) {
      case v1::StreamRequest::kHello:
        if (!HandleHello(request_->hello())) return;
        break;
      case v1::StreamRequest::kReport:
        if (!HandleReport(request_->report())) return;
        break;
      case v1::StreamRequest::MESSAGE_NOT_SET:
        FinishWith(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "empty StreamRequest: neither hello nor report"));
        return;
    }
    StartNextRead();
  }

  // Every operation has returned: nothing refers to this call any more.
  void End() {
    uint64_t session = 0;
    {
      std::lock_guard lock(mutex_);
      session = session_;
    }
    if (session != 0) service_.backend_.EndSession(session);
    // Last: once unregistered, the service may be waiting to let the backend go
    // (WaitUntilAllDone). PushPlans and CloseAll hold the service's lock while they use a
    // stream, so this waits for them.
    service_.Unregister(this);
    delete this;
  }

  // Every message is parsed into a fresh arena. A reused StreamRequest does not save the work:
  // its oneof frees the previous HealthReport and the parse allocates every path, string and
  // histogram again, hundreds of mallocs and frees per report (with 2,000 agents over gRPC the
  // destruction alone was 11 % of the aggregator's CPU). On the arena that is a few blocks,
  // freed at once when the next read starts; nothing keeps a reference to a handled message.
  static google::protobuf::ArenaOptions ReadArenaOptions() {
    google::protobuf::ArenaOptions options;
    options.start_block_size = 1024;  // what an idle stream holds; a report takes a few blocks
    return options;
  }
  void StartNextRead() {
    arena_.Reset();
    request_ = google::protobuf::Arena::CreateMessage<v1::StreamRequest>(&arena_);
    read_in_flight_ = true;
    stream_.Read(request_, &read_tag_);
  }

  bool HandleHello(const v1::Hello& hello) {
    if (HasSession()) {
      FinishWith(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "Hello sent twice on one stream"));
      return false;
    }
    HelloResult result = service_.backend_.Hello(hello, caller_);
    if (!result.ok) {
      FinishWith(grpc::Status(GrpcCodeOf(result.refusal), "Hello refused: " + result.reason));
      return false;
    }
    {
      std::unique_lock lock(mutex_);
      session_ = result.session;
      node_ = result.agent.node;
      if (result.highest_sequence > 0) QueueAckLocked(lock, hello.instance_id(), result.highest_sequence);
    }
    SendPlanIfNewer();
    return true;
  }

  bool HandleReport(const v1::HealthReport& report) {
    uint64_t session = 0;
    {
      std::lock_guard lock(mutex_);
      session = session_;
    }
    if (session == 0) {
      FinishWith(
          grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the first message of a stream must be Hello"));
      return false;
    }
    AcceptResult result = service_.backend_.Accept(session, report);
    if (!result.acknowledged()) {
      FinishWith(grpc::Status(GrpcCodeOf(result.status), "report " + std::to_string(report.sequence()) +
                                                             " refused (" + AcceptStatusName(result.status) +
                                                             "): " + result.reason));
      return false;
    }
    std::unique_lock lock(mutex_);
    QueueAckLocked(lock, result.instance_id, result.highest_sequence);
    return true;
  }

  bool HasSession() {
    std::lock_guard lock(mutex_);
    return session_ != 0;
  }

  void QueueAckLocked(std::unique_lock<std::mutex>& lock, uint64_t instance_id, uint64_t highest_sequence) {
    if (finish_requested_locked()) return;
    if (pending_ack_ && pending_ack_->instance_id() == instance_id &&
        pending_ack_->highest_sequence() >= highest_sequence) {
      return;
    }
    v1::Ack ack;
    ack.set_instance_id(instance_id);
    ack.set_highest_sequence(highest_sequence);
    pending_ack_ = ack;
    StartNextWriteLocked(lock);
  }

  // Plans go before Acks: an agent should start probing the right peers as early as possible.
  bool TakeNextWriteLocked(v1::StreamResponse& message) override {
    if (pending_plan_) {
      *message.mutable_probe_plan() = std::move(*pending_plan_);
      pending_plan_.reset();
    } else if (pending_ack_) {
      *message.mutable_ack() = *pending_ack_;
      pending_ack_.reset();
    } else {
      return false;
    }
    return true;
  }

  void OnFinishRequestedLocked(const grpc::Status& status) override {
    pending_plan_.reset();
    pending_ack_.reset();
    // Refusals are worth a line each; cancellations and shutdown are not.
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
        status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
        status.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
        status.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
      Log()->info("ingest stream from {} (node '{}') ended: {} {}", caller_.peer, node_,
                  static_cast<int>(status.error_code()), status.error_message());
    }
  }

  IngestService& service_;
  const size_t queue_index_;
  IngestCaller caller_;  // set before the first read
  // Only the completion queue's thread touches these.
  google::protobuf::Arena arena_;
  v1::StreamRequest* request_ = nullptr;  // on arena_
  bool read_in_flight_ = false;
  bool finish_returned_ = false;
  bool done_returned_ = false;

  // Guarded by mutex_ (WriteQueueReactor's), together with the write state.
  uint64_t session_ = 0;
  std::string node_;
  uint64_t sent_plan_version_ = 0;
  std::optional<v1::ProbePlan> pending_plan_;
  std::optional<v1::Ack> pending_ack_;
};

namespace {
// Stream calls kept requested on each queue, so a burst of new agents is accepted on every queue
// while each accepted call requests the next.
constexpr int kAcceptsPerQueue = 4;
}  // namespace

size_t IngestService::DefaultCompletionQueues() {
  // Four per core, measured: at 10,000 agents on the 2-core VM two queues filed 50,000-55,000
  // reports in 15 s where the callback API filed 86,000-125,000, eight 51,000-161,000. Each
  // thread both polls gRPC's sockets and files reports under the core lock, which the
  // evaluation tick holds for tens of milliseconds; with two, both wait there
  // (docs/benchmarks.md, "Ingest on the async API").
  return std::clamp<size_t>(4 * std::thread::hardware_concurrency(), 2, 64);
}

IngestService::IngestService(IngestBackend& backend, size_t completion_queues)
    : backend_(backend),
      completion_queue_count_(std::max<size_t>(1, completion_queues)),
      streams_per_queue_(completion_queue_count_, 0) {}

IngestService::~IngestService() {
  ShutDownQueues();
}

void IngestService::AddTo(grpc::ServerBuilder& builder) {
  builder.RegisterService(&async_service_);
  for (size_t i = 0; i < completion_queue_count_; ++i) queues_.push_back(builder.AddCompletionQueue());
}

void IngestService::Start() {
  {
    std::lock_guard lock(mutex_);
    accepting_ = true;
  }
  for (size_t i = 0; i < queues_.size(); ++i) {
    for (int k = 0; k < kAcceptsPerQueue; ++k) AcceptOn(i);
  }
  for (size_t i = 0; i < queues_.size(); ++i) {
    threads_.emplace_back([queue = queues_[i].get()] {
      void* tag = nullptr;
      bool ok = false;
      while (queue->Next(&tag, &ok)) {
        auto* returned = static_cast<AsyncIngestCall::Tag*>(tag);
        returned->call->OnEvent(returned->event, ok);
      }
    });
    // Named for top -H and perf: "rp-ingest-0", ... (here, so the name is there when Start returns).
    pthread_setname_np(threads_.back().native_handle(),
                       ("rp-ingest-" + std::to_string(i)).substr(0, 15).c_str());
  }
}

void IngestService::AcceptOn(size_t index) {
  // Requested under the lock, so no request can follow ShutDownQueues' queue->Shutdown().
  std::lock_guard lock(mutex_);
  if (!accepting_) return;
  ++stream_objects_;
  new IngestStream(*this, async_service_, *queues_[index], index);
}

void IngestService::Forget() {
  std::lock_guard lock(mutex_);
  if (--stream_objects_ == 0) no_stream_objects_.notify_all();
}

void IngestService::ShutDownQueues() {
  {
    std::unique_lock lock(mutex_);
    if (queues_shut_down_) return;
    queues_shut_down_ = true;
    accepting_ = false;
    // The server has ended every call and failed every request: each stream's last tags are
    // on its queue or about to be, and the queue's thread deletes it.
    no_stream_objects_.wait(lock, [this] { return stream_objects_ == 0; });
  }
  for (auto& queue : queues_) queue->Shutdown();
  if (threads_.empty()) {
    // The server did not start: no thread, nothing requested, but a queue is drained before it
    // is destroyed all the same.
    void* tag = nullptr;
    bool ok = false;
    for (auto& queue : queues_) {
      while (queue->Next(&tag, &ok)) {
      }
    }
  }
  for (auto& thread : threads_) thread.join();
  threads_.clear();
}

bool IngestService::Register(IngestStream* stream) {
  std::lock_guard lock(mutex_);
  if (closed_) return false;
  streams_.insert(stream);
  ++streams_per_queue_[stream->queue_index()];
  return true;
}

void IngestService::Unregister(IngestStream* stream) {
  std::lock_guard lock(mutex_);
  if (streams_.erase(stream) > 0) --streams_per_queue_[stream->queue_index()];
  if (streams_.empty()) all_done_.notify_all();
}

void IngestService::WaitUntilAllDone() {
  std::unique_lock lock(mutex_);
  all_done_.wait(lock, [this] { return streams_.empty(); });
}

void IngestService::PushPlans() {
  // The service lock keeps every stream alive (End unregisters under it before deleting).
  std::lock_guard lock(mutex_);
  for (IngestStream* stream : streams_) stream->SendPlanIfNewer();
}

void IngestService::CloseAll() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  for (IngestStream* stream : streams_) {
    stream->FinishWith(grpc::Status(grpc::StatusCode::UNAVAILABLE, "aggregator is shutting down"));
  }
}

size_t IngestService::streams() const {
  std::lock_guard lock(mutex_);
  return streams_.size();
}

std::vector<size_t> IngestService::streams_per_queue() const {
  std::lock_guard lock(mutex_);
  return streams_per_queue_;
}

}  // namespace regionpulse
