// regionpulse.v1.Ingest: one bidirectional stream per agent on gRPC's callback API (a reactor
// object per stream, no thread per stream). Hello registers the agent, each report is checked
// and stored or refused with a status that says why, Acks and probe plans go back.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>

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

class IngestService final : public v1::Ingest::CallbackService {
 public:
  explicit IngestService(IngestBackend& backend) : backend_(backend) {}

  grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* Stream(
      grpc::CallbackServerContext* context) override;

  // Sends each stream its plan when it changed since the last one sent (call after the
  // membership or the rotation epoch may have changed, e.g. once per evaluation tick).
  void PushPlans();
  // Ends every stream with UNAVAILABLE (shutdown); later streams are refused the same way.
  void CloseAll();
  // Returns once every stream has run its OnDone to the end (after CloseAll and the server's
  // Wait: at once). gRPC's Wait already promises that, but inside its own synchronisation,
  // which ThreadSanitizer does not see; this wait on our lock orders everything the streams
  // did (the backend's registry and metrics) before the backend is destroyed, for TSan and for
  // the reader alike.
  void WaitUntilAllDone();
  size_t streams() const;

 private:
  friend class IngestStream;
  bool Register(IngestStream* stream);
  void Unregister(IngestStream* stream);

  IngestBackend& backend_;
  mutable std::mutex mutex_;
  std::set<IngestStream*> streams_;
  std::condition_variable all_done_;  // streams_ became empty
  bool closed_ = false;
};

}  // namespace regionpulse
