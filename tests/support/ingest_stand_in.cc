// IngestStandIn: in-process Ingest server for agent tests (see ingest_stand_in.h).
#include "tests/support/ingest_stand_in.h"

#include <deque>

#include <stdexcept>
#include "common/grpc_callback_queue.h"
#include "tests/support/sanitizer_slowdown.h"

namespace regionpulse::test {

class IngestStandIn::Reactor final : public grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse> {
 public:
  explicit Reactor(IngestStandIn* owner) : owner_(owner) {
    {
      std::lock_guard lock(owner_->mu_);
      ++owner_->open_streams_;
      owner_->reactors_.insert(this);
    }
    StartRead(&request_);
  }

  // Queues a message from outside the reactions; the owner's lock keeps `this` alive.
  void Send(v1::StreamResponse response) {
    std::unique_lock lock(mu_);
    if (finish_pending_) return;
    if (writing_) {
      outgoing_.push_back(std::move(response));
      return;
    }
    in_flight_ = std::move(response);
    writing_ = true;
    lock.unlock();
    StartWrite(&in_flight_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      FinishWhenIdle(grpc::Status::OK);
      return;
    }
    if (!hello_seen_) {
      if (!request_.has_hello()) {
        FinishWhenIdle(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "first message must be Hello"));
        return;
      }
      hello_seen_ = true;
      node_ = request_.hello().node();
      instance_ = request_.hello().instance_id();
      v1::StreamResponse plan;
      {
        std::lock_guard lock(owner_->mu_);
        owner_->hellos_.push_back(request_.hello());
        *plan.mutable_probe_plan() = owner_->plan_;
        owner_->changed_.notify_all();
      }
      Send(std::move(plan));
    } else if (request_.has_report()) {
      auto highest = owner_->Store(node_, instance_, request_.report());
      if (!highest) {
        FinishWhenIdle(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    "report " + std::to_string(request_.report().sequence()) + " refused"));
        return;
      }
      v1::StreamResponse ack;
      ack.mutable_ack()->set_instance_id(instance_);
      ack.mutable_ack()->set_highest_sequence(*highest);
      Send(std::move(ack));
    }
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mu_);
    writing_ = false;
    if (!ok) outgoing_.clear();
    if (!outgoing_.empty()) {
      in_flight_ = std::move(outgoing_.front());
      outgoing_.pop_front();
      writing_ = true;
      lock.unlock();
      StartWrite(&in_flight_);
      return;
    }
    if (finish_pending_ && !finished_) {
      finished_ = true;
      lock.unlock();
      Finish(finish_status_);
    }
  }

  void OnDone() override {
    {
      std::lock_guard lock(owner_->mu_);
      --owner_->open_streams_;
      owner_->reactors_.erase(this);
      owner_->changed_.notify_all();
    }
    delete this;
  }

 private:
  // Finish may not overlap a write, so it waits for the write in flight.
  void FinishWhenIdle(grpc::Status status) {
    std::unique_lock lock(mu_);
    if (finish_pending_) return;
    finish_pending_ = true;
    finish_status_ = std::move(status);
    outgoing_.clear();
    if (writing_ || finished_) return;
    finished_ = true;
    lock.unlock();
    Finish(finish_status_);
  }

  IngestStandIn* owner_;
  v1::StreamRequest request_;
  bool hello_seen_ = false;  // touched by read reactions only, which never overlap
  std::string node_;
  uint64_t instance_ = 0;

  std::mutex mu_;  // the write side
  std::deque<v1::StreamResponse> outgoing_;
  v1::StreamResponse in_flight_;
  bool writing_ = false;
  bool finish_pending_ = false;
  bool finished_ = false;
  grpc::Status finish_status_;
};

class IngestStandIn::Service final : public v1::Ingest::CallbackService {
 public:
  explicit Service(IngestStandIn* owner) : owner_(owner) {}
  grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* Stream(
      grpc::CallbackServerContext* /*context*/) override {
    return new Reactor(owner_);
  }

 private:
  IngestStandIn* owner_;
};

IngestStandIn::IngestStandIn() = default;

IngestStandIn::~IngestStandIn() {
  Stop();
}

uint16_t IngestStandIn::Start(const std::string& address, uint16_t port) {
  if (server_) throw std::runtime_error("IngestStandIn already started");
  if (port == 0) port = port_;
  address_ = address;
  service_ = std::make_unique<Service>(this);
  int selected = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address + ":" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &selected);
  builder.RegisterService(service_.get());
  // Agents send keepalive pings; a server that forbids them would end the streams itself.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  HoldGrpcCallbackQueue();  // see common/grpc_callback_queue.h
  server_ = builder.BuildAndStart();
  if (!server_ || selected == 0) {
    server_.reset();
    throw std::runtime_error("IngestStandIn: cannot listen on " + address + ":" + std::to_string(port));
  }
  port_ = static_cast<uint16_t>(selected);
  return port_;
}

void IngestStandIn::Stop() {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
  {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return open_streams_ == 0; });
  }
  server_.reset();
  service_.reset();
}

void IngestStandIn::SetProbePlan(v1::ProbePlan plan) {
  std::lock_guard lock(mu_);
  plan_ = std::move(plan);
}

void IngestStandIn::BroadcastProbePlan(const v1::ProbePlan& plan) {
  std::lock_guard lock(mu_);
  for (Reactor* reactor : reactors_) {
    v1::StreamResponse response;
    *response.mutable_probe_plan() = plan;
    reactor->Send(std::move(response));
  }
}

void IngestStandIn::RefuseSequence(uint64_t sequence) {
  std::lock_guard lock(mu_);
  refused_sequence_ = sequence;
}

std::optional<uint64_t> IngestStandIn::Store(const std::string& node, uint64_t instance,
                                             const v1::HealthReport& report) {
  std::lock_guard lock(mu_);
  ++received_;
  if (refused_sequence_ != 0 && report.sequence() == refused_sequence_) return std::nullopt;
  uint64_t& highest = highest_[{node, instance}];
  if (report.sequence() <= highest) {
    ++replays_;
  } else {
    highest = report.sequence();
    stored_.push_back(Stored{node, instance, report});
  }
  changed_.notify_all();
  return highest;
}

bool IngestStandIn::WaitUntil(const std::function<bool(const IngestStandIn&)>& condition,
                              std::chrono::milliseconds timeout) const {
  // The condition reads through the locking accessors, so it is evaluated unlocked; the short
  // wait bounds the cost of a notification that lands between the check and the wait.
  auto deadline = std::chrono::steady_clock::now() + SanitizerScaled(timeout);
  while (!condition(*this)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::unique_lock lock(mu_);
    changed_.wait_for(lock, std::chrono::milliseconds(20));
  }
  return true;
}

std::vector<IngestStandIn::Stored> IngestStandIn::StoredReports() const {
  std::lock_guard lock(mu_);
  return stored_;
}

std::vector<v1::Hello> IngestStandIn::Hellos() const {
  std::lock_guard lock(mu_);
  return hellos_;
}

uint64_t IngestStandIn::ReplaysDiscarded() const {
  std::lock_guard lock(mu_);
  return replays_;
}

uint64_t IngestStandIn::ReportsReceived() const {
  std::lock_guard lock(mu_);
  return received_;
}

size_t IngestStandIn::OpenStreams() const {
  std::lock_guard lock(mu_);
  return open_streams_;
}

}  // namespace regionpulse::test
