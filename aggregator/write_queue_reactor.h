// The write side of a server stream, shared by the Watch streams (callback API) and the Ingest
// streams (async API, through a base with the same shape): gRPC allows one write in flight per
// stream and one Finish, which must not overtake a write that is still in flight. The derived reactor keeps
// its outgoing messages however it likes (a bounded queue, coalesced replies) and hands out the next one.
#pragma once

#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/status.h>

#include <mutex>

namespace regionpulse {

// GrpcReactor is grpc::ServerBidiReactor<Request, Response>, grpc::ServerWriteReactor<Response>
// or a class like them: StartWrite(const Response*) and Finish(status) start the operations,
// virtual OnWriteDone(bool) and OnCancel() are called when a write returns and when the call
// is cancelled (AsyncIngestCall in aggregator/ingest_service.cc).
template <typename GrpcReactor, typename Response>
class WriteQueueReactor : public GrpcReactor {
 public:
  // Ends the stream with `status`: now when no write is in flight, else when that write is done.
  // The first status asked for wins. Any thread (the service's shutdown calls it too).
  void FinishWith(const grpc::Status& status) {
    std::unique_lock lock(mutex_);
    if (finish_requested_) return;
    finish_requested_ = true;
    finish_status_ = status;
    OnFinishRequestedLocked(status);
    if (!writing_) {
      lock.unlock();
      this->Finish(status);
    }
  }

  void OnWriteDone(bool ok) final {
    std::unique_lock lock(mutex_);
    writing_ = false;
    if (!ok && !finish_requested_) {
      // The client is gone; the stream still has to be finished exactly once.
      finish_requested_ = true;
      finish_status_ = grpc::Status::OK;
    }
    if (finish_requested_) {
      const grpc::Status status = finish_status_;
      lock.unlock();
      this->Finish(status);
      return;
    }
    StartNextWriteLocked(lock);
  }

  void OnCancel() final { FinishWith(grpc::Status::CANCELLED); }

 protected:
  // One mutex for the write state here and the derived reactor's outgoing messages (and any
  // other state it keeps with them), so "is there something to send" and "start sending it"
  // are one step for whichever thread queues a message or completes a write.
  std::mutex mutex_;

  bool writing_locked() const { return writing_; }
  bool finish_requested_locked() const { return finish_requested_; }

  // Starts writing the next message unless a write is in flight or the stream is finishing.
  // Returns with `lock` held again.
  void StartNextWriteLocked(std::unique_lock<std::mutex>& lock) {
    if (writing_ || finish_requested_) return;
    if (!TakeNextWriteLocked(in_flight_)) return;
    writing_ = true;
    // in_flight_ is untouched until OnWriteDone, so the write can start without the lock; a
    // message queued meanwhile waits for OnWriteDone.
    lock.unlock();
    this->StartWrite(&in_flight_);
    lock.lock();
  }

 private:
  // Moves the next message to send into `message`; false when there is nothing to send.
  virtual bool TakeNextWriteLocked(Response& message) = 0;
  // Called once, when FinishWith first asks the stream to end: what is still queued will not
  // be sent, so a reactor may drop it here (or log why the stream ends).
  virtual void OnFinishRequestedLocked(const grpc::Status&) {}

  Response in_flight_;
  bool writing_ = false;
  bool finish_requested_ = false;
  grpc::Status finish_status_;
};

}  // namespace regionpulse
