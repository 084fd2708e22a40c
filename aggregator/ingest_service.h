// regionpulse.v1.Ingest: one bidirectional stream per agent on gRPC's async API, spread over a
// few server completion queues with a thread each (an object per stream, no thread per stream).
// Hello registers the agent, each report is checked and stored or refused with a status that
// says why, Acks and probe plans go back.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/server_builder.h>

#include "aggregator/agent_registry.h"
#include "aggregator/peer_identity.h"
#include "regionpulse/v1/ingest.grpc.pb.h"

namespace regionpulse {

// What the stream protocol needs from the aggregator: registry, matrix and planner behind the
// aggregator's lock. The clock is the backend's too.
// Who is on the other end of an Ingest stream.
struct IngestCaller {
  // gRPC's peer address ("ipv4:10.1.0.7:41234").
  std::string peer;
  // The node and region the client certificate names, when node identity is required.
  std::optional<CertifiedNode> certified;
};

class IngestBackend {
 public:
  virtual ~IngestBackend() = default;
  // Whether this peer may stream reports at all (its certificate), before anything is read;
  // fills in the node its certificate names.
  virtual grpc::Status AuthorizeStream(const grpc::ServerContextBase& context,
                                       std::optional<CertifiedNode>* certified) = 0;
  virtual HelloResult Hello(const v1::Hello& hello, const IngestCaller& caller) = 0;
  // Checks the report (stateless and stateful) and, when it is new, stores it.
  virtual AcceptResult Accept(uint64_t session, const v1::HealthReport& report) = 0;
  virtual void EndSession(uint64_t session) = 0;
  // The node's current probe plan; nullopt when the planner does not know it.
  virtual std::optional<v1::ProbePlan> PlanFor(const std::string& node) = 0;
};

class IngestStream;

// Not the callback API: it puts every stream's pending read and close on one process-wide
// completion queue, and Debian's libgrpc (built without NDEBUG) checks each completion against
// that queue's list of outstanding operations by a linear scan (`cq_check_tag`, 16-17 % of the
// aggregator's CPU at 10,000 streams; docs/benchmarks.md). Each queue here holds its share of
// the streams.
class IngestService final {
 public:
  // Four queues (and threads) per core, at least two, at most 64.
  static size_t DefaultCompletionQueues();

  explicit IngestService(IngestBackend& backend, size_t completion_queues = DefaultCompletionQueues());
  // Shuts the queues down and drains them if ShutDownQueues has not.
  ~IngestService();
  IngestService(const IngestService&) = delete;
  IngestService& operator=(const IngestService&) = delete;

  // Before BuildAndStart: registers the service and adds its completion queues to the builder.
  void AddTo(grpc::ServerBuilder& builder);
  // After a successful BuildAndStart: a thread per queue, each queue accepting new streams.
  void Start();
  // After the server's Shutdown (which ends every call): waits until every stream has been
  // deleted, its last operation returned, then shuts every queue down, drains it and joins the
  // threads. Not before: a stream's last completions start its last operations (a Finish after
  // a write, a read after a read), and an operation started on a queue that is shut down is a
  // crash in gRPC. Idempotent.
  void ShutDownQueues();

  // Sends each stream its plan when it changed since the last one sent (call after the
  // membership or the rotation epoch may have changed, e.g. once per evaluation tick).
  void PushPlans();
  // Ends every stream with UNAVAILABLE (shutdown); later streams are refused the same way.
  void CloseAll();
  // Returns once every stream has ended and been forgotten (after CloseAll, the server's
  // Shutdown and ShutDownQueues: at once). It orders everything the streams did (the backend's
  // registry and metrics) before the backend is destroyed, for ThreadSanitizer and for the
  // reader alike.
  void WaitUntilAllDone();
  size_t streams() const;
  // Open streams by completion queue (their count is completion_queues()).
  std::vector<size_t> streams_per_queue() const;
  size_t completion_queues() const { return completion_queue_count_; }

 private:
  friend class IngestStream;
  bool Register(IngestStream* stream);
  void Unregister(IngestStream* stream);
  // Keeps one more Stream call requested on queue `index`, unless the queues are shutting down.
  void AcceptOn(size_t index);
  // A stream object (accepted or still waiting for a call) was deleted.
  void Forget();

  IngestBackend& backend_;
  const size_t completion_queue_count_;
  v1::Ingest::AsyncService async_service_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> threads_;

  mutable std::mutex mutex_;
  std::set<IngestStream*> streams_;
  std::vector<size_t> streams_per_queue_;
  std::condition_variable all_done_;  // streams_ became empty
  bool closed_ = false;
  // Requests may be added to the queues (cleared before they shut down: a request on a queue
  // that is shut down is a crash).
  bool accepting_ = false;
  bool queues_shut_down_ = false;
  // Stream objects alive, requested or accepted; ShutDownQueues waits for none.
  size_t stream_objects_ = 0;
  std::condition_variable no_stream_objects_;
};

}  // namespace regionpulse
