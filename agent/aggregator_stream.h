// AggregatorStream: the agent's one bidirectional Ingest.Stream to one aggregator. It sends
// Hello, then every report of its ReportBuffer in sequence order; replays from the oldest
// unacknowledged report after each reconnect; trims the buffer on Ack; hands ProbePlans to
// the agent; reconnects with exponential backoff and jitter. Everything runs on gRPC's own
// callback threads (ClientBidiReactor and grpc::Alarm): Push() never blocks on the network,
// so a slow or dead aggregator delays neither probing nor another aggregator's stream.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include "agent/agent_config.h"
#include "agent/report_buffer.h"
#include "common/result.h"
#include "regionpulse/v1/ingest.grpc.pb.h"

namespace regionpulse {

struct ReconnectBackoff {
  std::chrono::milliseconds initial{250};
  std::chrono::milliseconds max{30'000};
  double multiplier = 2.0;
  // Each delay is spread uniformly over [delay * (1 - jitter), delay * (1 + jitter)], so
  // thousands of agents that lost the same aggregator do not reconnect in lock step.
  double jitter = 0.2;

  // The delay before reconnect attempt number `attempt` (1 = first retry after a failure).
  // uniform01 is a random number in [0, 1). Pure, for tests.
  std::chrono::milliseconds Delay(uint32_t attempt, double uniform01) const;
};

struct AggregatorStreamOptions {
  std::string endpoint;          // "host:port" (gRPC target syntax)
  size_t buffer_capacity = 600;  // reports: 10 minutes of 1 s windows
  ReconnectBackoff backoff;
  // HTTP/2 keepalive pings, so an aggregator that vanished without closing its connection
  // (a dead node, a partition) is noticed and the stream reconnects.
  std::chrono::milliseconds keepalive_interval{10'000};
  std::chrono::milliseconds keepalive_timeout{5'000};
  // How long one connection attempt may take: TCP connect, TLS handshake, HTTP/2 settings. A
  // cross-region aggregator needs a few round trips; a peer that accepts and then says nothing
  // (a wrong port, a stuck proxy) is given up after this and retried with backoff.
  std::chrono::milliseconds connect_timeout{5'000};
  // nullptr means plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // The settings `credentials` were made from (empty for plaintext): a connection that fails
  // in the TLS handshake is explained with them, naming the file to look at.
  TlsSettings tls;
};

// The channel credentials of the aggregator streams: plaintext when no TLS file is set, else
// TLS trusting tls.ca_file (the system roots without it) and presenting tls.cert_file and
// tls.key_file when set. Fails naming the key and file that cannot be read.
Result<std::shared_ptr<grpc::ChannelCredentials>> AggregatorChannelCredentials(const TlsSettings& tls);

// Plain words for a call to `endpoint` that failed before the aggregator answered: what gRPC's
// TLS or transport error most likely means for an agent with these TLS settings (wrong CA, a
// client certificate the aggregator wants or refuses, TLS on one side only). Empty when the
// status says it plainly already (connection refused) or is not a connection failure. Pure.
std::string ConnectFailureExplanation(const grpc::Status& status, const std::string& endpoint,
                                      const TlsSettings& tls);

struct AggregatorStreamStats {
  bool up = false;               // a call is open and the aggregator answered on it
  uint64_t connects = 0;         // calls that came up since start
  uint64_t disconnects = 0;      // calls that ended after coming up, or failed to come up
  uint64_t buffered = 0;         // reports held, unacknowledged
  uint64_t acked_sequence = 0;   // highest acknowledged sequence
  uint64_t sent_reports = 0;     // report writes completed (replays included)
  uint64_t reports_dropped = 0;  // dropped on buffer overflow since start
  std::string last_error;        // status of the last failed call, empty when none
};

class AggregatorStream {
 public:
  using ProbePlanHandler = std::function<void(const std::string& endpoint, const v1::ProbePlan&)>;

  // Builds everything of Hello except instance_id and oldest_unacked_sequence, which the
  // stream fills in; called on every (re)connect, so attachments that changed are current.
  using HelloProvider = std::function<v1::Hello()>;

  // on_plan runs on a gRPC thread and must not block; hello must not block either.
  AggregatorStream(AggregatorStreamOptions options, HelloProvider hello, uint64_t instance_id,
                   ProbePlanHandler on_plan);
  // A Hello that never changes.
  AggregatorStream(AggregatorStreamOptions options, v1::Hello hello, uint64_t instance_id,
                   ProbePlanHandler on_plan);
  // Stops (see Stop).
  ~AggregatorStream();
  AggregatorStream(const AggregatorStream&) = delete;
  AggregatorStream& operator=(const AggregatorStream&) = delete;

  // Opens the first call. Reports pushed before Start are kept and sent once it is up.
  void Start();
  // Buffers a report (sequence strictly increasing) and sends it when the stream is up.
  void Push(v1::HealthReport report);
  // Waits until the aggregator acknowledged every report up to `sequence`, or the timeout.
  bool WaitAcked(uint64_t sequence, std::chrono::milliseconds timeout);
  // Cancels the call and any pending reconnect and waits until gRPC has released both.
  void Stop();

  AggregatorStreamStats Stats() const;
  const std::string& endpoint() const { return options_.endpoint; }

 private:
  class Call;

  void Connect();                  // locks
  void ScheduleReconnectLocked();  // with mu_ held
  // Reactions of the current call, forwarded by Call.
  void OnHelloWritten(Call* call, bool ok);
  void OnWriteDone(Call* call, bool ok);
  void OnResponse(Call* call, const v1::StreamResponse& response);
  void OnReadFailed(Call* call);
  void OnCallDone(Call* call, const grpc::Status& status);
  // Picks the next report for `call` if it may write now; returns the message to write
  // (owned by the call) or nullptr. With mu_ held.
  const v1::StreamRequest* NextWriteLocked(Call* call);
  // After the call's read side ended: whether its hold may be released now. With mu_ held.
  bool ReleaseHoldLocked(Call* call);

  const AggregatorStreamOptions options_;
  const HelloProvider hello_provider_;
  const ProbePlanHandler on_plan_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Ingest::Stub> stub_;

  mutable std::mutex mu_;
  std::condition_variable changed_;  // call ended, alarm fired, ack arrived
  ReportBuffer buffer_;
  Call* call_ = nullptr;  // the live call, owned by gRPC until OnDone
  std::unique_ptr<grpc::Alarm> reconnect_alarm_;
  bool alarm_pending_ = false;
  bool started_ = false;
  bool stopping_ = false;
  uint32_t failed_attempts_ = 0;   // since the last call that came up
  std::string last_logged_error_;  // a failure is logged again only when it changes
  bool isolate_refused_ = false;   // after a refusal: one report in flight at a time
  std::mt19937_64 random_;
  AggregatorStreamStats stats_;
};

}  // namespace regionpulse
