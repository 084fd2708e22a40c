// Ingest.Stream: the per-agent reactor. Reads are handled one at a time in order; replies (a
// probe plan, an Ack) are coalesced so a slow agent never makes the server queue unboundedly:
// only the newest plan and the highest Ack are kept while a write is in flight.
#include "aggregator/ingest_service.h"

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

class IngestStream final
    : public WriteQueueReactor<grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>,
                               v1::StreamResponse> {
 public:
  IngestStream(IngestService& service, grpc::CallbackServerContext* context)
      : service_(service), arena_(ReadArenaOptions()) {
    caller_.peer = context->peer();
    if (!service_.Register(this)) {
      FinishWith(grpc::Status(grpc::StatusCode::UNAVAILABLE, "aggregator is shutting down"));
      return;
    }
    if (grpc::Status allowed = service_.backend_.AuthorizeStream(*context, &caller_.certified);
        !allowed.ok()) {
      FinishWith(allowed);
      return;
    }
    StartNextRead();
  }

  void OnReadDone(bool ok) override {
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

  void OnDone() override {
    uint64_t session = 0;
    {
      std::lock_guard lock(mutex_);
      session = session_;
    }
    if (session != 0) service_.backend_.EndSession(session);
    // Last: once unregistered, the service may be waiting to let the backend go
    // (WaitUntilAllDone). PushPlans meanwhile skips this stream: it has finished.
    service_.Unregister(this);
    delete this;
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
    StartRead(request_);
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
  IngestCaller caller_;  // set before the first read
  // Only the reactor's read path touches these.
  google::protobuf::Arena arena_;
  v1::StreamRequest* request_ = nullptr;  // on arena_

  // Guarded by mutex_ (WriteQueueReactor's), together with the write state.
  uint64_t session_ = 0;
  std::string node_;
  uint64_t sent_plan_version_ = 0;
  std::optional<v1::ProbePlan> pending_plan_;
  std::optional<v1::Ack> pending_ack_;
};

grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* IngestService::Stream(
    grpc::CallbackServerContext* context) {
  return new IngestStream(*this, context);
}

bool IngestService::Register(IngestStream* stream) {
  std::lock_guard lock(mutex_);
  if (closed_) return false;
  streams_.insert(stream);
  return true;
}

void IngestService::Unregister(IngestStream* stream) {
  std::lock_guard lock(mutex_);
  streams_.erase(stream);
  if (streams_.empty()) all_done_.notify_all();
}

void IngestService::WaitUntilAllDone() {
  std::unique_lock lock(mutex_);
  all_done_.wait(lock, [this] { return streams_.empty(); });
}

void IngestService::PushPlans() {
  // The service lock keeps every stream alive (OnDone unregisters under it before deleting).
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

}  // namespace regionpulse
