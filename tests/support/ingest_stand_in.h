// IngestStandIn: an in-process stand-in for the aggregator's Ingest service, for agent tests.
// It answers Hello with a ProbePlan, acknowledges every report at once, and stores reports
// the way the aggregator's contract says it must: keyed by (node, instance, sequence), a
// replayed report it already stored is counted and not stored again. The store survives
// Stop()/Start(), so a test can take the server away and bring it back on the same port.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "regionpulse/v1/ingest.grpc.pb.h"

namespace regionpulse::test {

class IngestStandIn {
 public:
  struct Stored {
    std::string node;
    uint64_t instance_id = 0;
    v1::HealthReport report;
  };

  IngestStandIn();
  ~IngestStandIn();
  IngestStandIn(const IngestStandIn&) = delete;
  IngestStandIn& operator=(const IngestStandIn&) = delete;

  // Listens on address:port (port 0: a free one the first time, the same one after).
  // Returns the port; throws std::runtime_error when it cannot listen.
  uint16_t Start(const std::string& address = "127.0.0.1", uint16_t port = 0);
  // Ends every stream at once and stops listening (like a crashed aggregator).
  void Stop();
  // The plan sent after each Hello.
  void SetProbePlan(v1::ProbePlan plan);
  // Sends a plan on every open stream now (as the aggregator does when a plan changes).
  void BroadcastProbePlan(const v1::ProbePlan& plan);
  // Ends the stream with INVALID_ARGUMENT when this sequence arrives (as the aggregator does
  // with a report that fails validation); 0 = accept everything.
  void RefuseSequence(uint64_t sequence);

  // Polls `condition` over the stand-in's state until it holds or the timeout passes.
  bool WaitUntil(const std::function<bool(const IngestStandIn&)>& condition,
                 std::chrono::milliseconds timeout) const;

  // Snapshots (thread-safe).
  std::vector<Stored> StoredReports() const;
  std::vector<v1::Hello> Hellos() const;
  uint64_t ReplaysDiscarded() const;  // reports received again after being stored
  uint64_t ReportsReceived() const;   // every report message, replays included
  size_t OpenStreams() const;
  uint16_t port() const { return port_; }
  std::string target() const { return address_ + ":" + std::to_string(port_); }

 private:
  class Service;
  class Reactor;
  friend class Reactor;

  // Called by reactors with no lock held; returns the highest stored sequence of the
  // (node, instance) for the Ack, or nullopt when the report is refused.
  std::optional<uint64_t> Store(const std::string& node, uint64_t instance, const v1::HealthReport& report);

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  uint16_t port_ = 0;
  v1::ProbePlan plan_;
  uint64_t refused_sequence_ = 0;
  std::vector<Stored> stored_;
  std::map<std::pair<std::string, uint64_t>, uint64_t> highest_;
  std::vector<v1::Hello> hellos_;
  uint64_t replays_ = 0;
  uint64_t received_ = 0;
  size_t open_streams_ = 0;
  std::set<Reactor*> reactors_;  // open streams, for BroadcastProbePlan
};

}  // namespace regionpulse::test
