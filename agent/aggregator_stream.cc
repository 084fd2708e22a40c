// AggregatorStream: Ingest.Stream client on the gRPC callback API (see aggregator_stream.h).
//
// Locking: mu_ guards all state, including the per-call flags below. gRPC operations
// (StartWrite, RemoveHold, TryCancel, Alarm::Cancel) are always issued with mu_ released,
// because gRPC may run a reaction inline on the thread that starts an operation, and every
// reaction takes mu_. A call stays alive while it holds its hold: the hold is released only
// when its read side has ended, no write is outstanding and nobody is cancelling it, so a
// pointer to it taken under mu_ stays valid while one of those conditions is pending.
#include "agent/aggregator_stream.h"

#include "common/component_logger.h"
#include "common/grpc_callback_queue.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

namespace regionpulse {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  return ComponentLogger("aggregator_stream");
}

Result<std::string> ReadWholeFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"read " + what + " " + path, errno};
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

bool ContainsAnyOf(const std::string& text, std::initializer_list<std::string_view> needles) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::any_of(needles.begin(), needles.end(),
                     [&](std::string_view needle) { return lower.find(needle) != std::string::npos; });
}

// The host part of "host:port", "[v6]:port" or a gRPC target with a scheme.
std::string HostOf(const std::string& endpoint) {
  std::string target = endpoint;
  if (auto scheme = target.find("://"); scheme != std::string::npos) target = target.substr(scheme + 3);
  if (auto colon = target.find(':'); colon != std::string::npos && !target.starts_with("[")) {
    return target.substr(0, colon);
  }
  if (target.starts_with("[")) return target.substr(1, target.find(']') - 1);
  return target;
}

}  // namespace

std::string ConnectFailureExplanation(const grpc::Status& status, const std::string& endpoint,
                                      const TlsSettings& tls) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return "";
  const std::string& message = status.error_message();
  // What the peer did when the connection broke off before HTTP/2 began.
  const bool closed =
      ContainsAnyOf(message, {"socket closed", "connection reset", "broken pipe", "end of tcp stream"});
  if (!tls.enabled()) {
    if (!closed) return "";
    return "aggregator " + endpoint +
           " closed the connection before HTTP/2 began: it most likely serves TLS only, and this agent has "
           "no "
           "tls settings (plaintext); set tls.ca_file to the CA of its certificate";
  }
  if (ContainsAnyOf(message, {"wrong version number", "packet length too long", "http request"})) {
    return "TLS: aggregator " + endpoint +
           " does not answer in TLS (it serves plaintext?): configure tls on the aggregator, or remove tls "
           "from "
           "this agent";
  }
  if (ContainsAnyOf(message, {"certificate verify failed", "unable to get local issuer certificate",
                              "self-signed certificate", "self signed certificate"})) {
    const std::string trusted = tls.ca_file.empty()
                                    ? "by a CA of the system's trust store (tls.ca_file is not set)"
                                    : "by the CA in tls.ca_file " + tls.ca_file;
    return "TLS: the certificate of aggregator " + endpoint + " is not trusted: it is not signed " + trusted +
           ", or it expired or is not valid yet";
  }
  if (ContainsAnyOf(message, {"certificate has expired", "certificate is not yet valid"})) {
    return "TLS: the certificate of aggregator " + endpoint + " is outside its validity period";
  }
  if (ContainsAnyOf(message, {"handshake read failed"})) {
    return "TLS: aggregator " + endpoint +
           " accepted the connection but did not answer the TLS handshake within the connect timeout (is "
           "something else listening on that port?)";
  }
  if (ContainsAnyOf(message, {"peer name", "hostname mismatch"})) {
    return "TLS: the certificate of aggregator " + endpoint + " does not name host '" + HostOf(endpoint) +
           "' in its subjectAltName";
  }
  if (closed || ContainsAnyOf(message, {"certificate required", "handshake failure", "bad certificate",
                                        "unknown ca", "certificate unknown"})) {
    if (tls.cert_file.empty()) {
      return "TLS: aggregator " + endpoint +
             " broke off the TLS handshake: it most likely requires a client certificate, and this agent has "
             "none (tls.cert_file and tls.key_file are not set)";
    }
    return "TLS: aggregator " + endpoint +
           " broke off the TLS handshake: it most likely does not accept the client certificate in "
           "tls.cert_file " +
           tls.cert_file + " (not signed by the CA in its tls.client_ca_file, or expired)";
  }
  return "";
}

Result<std::shared_ptr<grpc::ChannelCredentials>> AggregatorChannelCredentials(const TlsSettings& tls) {
  if (!tls.enabled()) return std::shared_ptr<grpc::ChannelCredentials>(grpc::InsecureChannelCredentials());
  grpc::SslCredentialsOptions options;
  if (!tls.ca_file.empty()) {
    auto ca = ReadWholeFile(tls.ca_file, "tls.ca_file");
    if (!ca) return ca.error();
    options.pem_root_certs = *ca;
  }
  if (!tls.cert_file.empty()) {
    auto cert = ReadWholeFile(tls.cert_file, "tls.cert_file");
    if (!cert) return cert.error();
    auto key = ReadWholeFile(tls.key_file, "tls.key_file");
    if (!key) return key.error();
    options.pem_cert_chain = *cert;
    options.pem_private_key = *key;
  }
  return grpc::SslCredentials(options);
}

std::chrono::milliseconds ReconnectBackoff::Delay(uint32_t attempt, double uniform01) const {
  double base = static_cast<double>(initial.count());
  for (uint32_t i = 1; i < attempt && base < static_cast<double>(max.count()); ++i) base *= multiplier;
  base = std::min(base, static_cast<double>(max.count()));
  double spread = std::clamp(jitter, 0.0, 1.0);
  double factor = 1.0 - spread + 2.0 * spread * std::clamp(uniform01, 0.0, 1.0);
  double jittered = std::min(base * factor, static_cast<double>(max.count()));
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(jittered)));
}

class AggregatorStream::Call final : public grpc::ClientBidiReactor<v1::StreamRequest, v1::StreamResponse> {
 public:
  explicit Call(AggregatorStream* owner) : owner_(owner) {}

  void Begin(v1::Ingest::Stub* stub, v1::Hello hello) {
    stub->async()->Stream(&context_, this);
    *request.mutable_hello() = std::move(hello);
    AddHold();  // writes are started from Push() too, outside the reactions
    StartRead(&response_);
    StartWrite(&request);
    StartCall();
  }
  void Cancel() { context_.TryCancel(); }

  void OnWriteDone(bool ok) override { owner_->OnWriteDone(this, ok); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      owner_->OnReadFailed(this);
      return;
    }
    owner_->OnResponse(this, response_);
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override {
    owner_->OnCallDone(this, status);
    delete this;
  }

  // Guarded by the owner's mu_.
  v1::StreamRequest request;  // the one message in flight
  bool writing = false;
  bool write_failed = false;
  bool read_ended = false;
  bool cancelling = false;
  bool hold_released = false;
  bool answered = false;      // the aggregator sent something: Hello accepted
  uint64_t last_written = 0;  // sequence of the last report handed to StartWrite

 private:
  AggregatorStream* owner_;
  grpc::ClientContext context_;
  v1::StreamResponse response_;
};

AggregatorStream::AggregatorStream(AggregatorStreamOptions options, v1::Hello hello, uint64_t instance_id,
                                   ProbePlanHandler on_plan)
    : AggregatorStream(
          std::move(options), [hello = std::move(hello)] { return hello; }, instance_id, std::move(on_plan)) {
}

AggregatorStream::AggregatorStream(AggregatorStreamOptions options, HelloProvider hello, uint64_t instance_id,
                                   ProbePlanHandler on_plan)
    : options_(std::move(options)),
      hello_provider_(std::move(hello)),
      on_plan_(std::move(on_plan)),
      buffer_(options_.buffer_capacity, instance_id),
      random_(std::random_device{}()) {
  grpc::ChannelArguments args;
  // The channel's own reconnect backoff must not be slower than ours, or a call attempted
  // after our backoff would still fail fast while the channel waits out its longer one.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(options_.backoff.initial.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(options_.backoff.max.count()));
  // Despite its name, gRPC reads this as the minimum time a connection attempt is given
  // (MIN_CONNECT_TIMEOUT in gRPC's doc/connection-backoff.md), not as a backoff. Set to the
  // initial backoff (500 ms by default) it cut TCP + TLS + HTTP/2 off after half a second:
  // too short for a TLS handshake with an aggregator a few hundred ms away.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(options_.connect_timeout.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(options_.keepalive_interval.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(options_.keepalive_timeout.count()));
  auto credentials = options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials();
  HoldGrpcCallbackQueue();  // before the channel: see grpc_callback_queue.h
  channel_ = grpc::CreateCustomChannel(options_.endpoint, credentials, args);
  stub_ = v1::Ingest::NewStub(channel_);
}

AggregatorStream::~AggregatorStream() {
  Stop();
}

void AggregatorStream::Start() {
  {
    std::lock_guard lock(mu_);
    if (started_ || stopping_) return;
    started_ = true;
  }
  Connect();
}

void AggregatorStream::Connect() {
  Call* call = nullptr;
  v1::Hello hello = hello_provider_();
  {
    std::lock_guard lock(mu_);
    if (stopping_ || call_ != nullptr) return;
    call = new Call(this);
    call->writing = true;  // Hello
    call_ = call;
    hello.set_instance_id(buffer_.instance_id());
    hello.set_oldest_unacked_sequence(buffer_.OldestSequence());
  }
  Log()->debug("connecting to aggregator {} (replay from sequence {})", options_.endpoint,
               hello.oldest_unacked_sequence());
  call->Begin(stub_.get(), std::move(hello));
}

void AggregatorStream::Push(v1::HealthReport report) {
  Call* call = nullptr;
  const v1::StreamRequest* next = nullptr;
  {
    std::lock_guard lock(mu_);
    uint64_t sequence = report.sequence();
    uint64_t dropped_before = buffer_.DroppedTotal();
    if (!buffer_.Push(std::move(report))) {
      Log()->error("aggregator {}: report {} refused, not above sequence {}", options_.endpoint, sequence,
                   buffer_.NewestSequence());
      return;
    }
    // One line at the first drop and then every 100th: a long outage drops one per window.
    uint64_t dropped = buffer_.DroppedTotal();
    if (dropped != dropped_before && (dropped_before == 0 || dropped / 100 != dropped_before / 100)) {
      Log()->warn(
          "aggregator {}: buffer full ({} reports), dropping the oldest unacknowledged reports ({} "
          "so far)",
          options_.endpoint, buffer_.capacity(), dropped);
    }
    call = call_;
    if (call != nullptr) next = NextWriteLocked(call);
  }
  if (next != nullptr) call->StartWrite(next);
}

const v1::StreamRequest* AggregatorStream::NextWriteLocked(Call* call) {
  if (call->writing || call->write_failed || call->read_ended || stopping_) return nullptr;
  if (isolate_refused_ && call->last_written > buffer_.AckedSequence()) return nullptr;
  const v1::HealthReport* report = buffer_.NextAfter(call->last_written);
  if (report == nullptr) return nullptr;
  *call->request.mutable_report() = *report;
  call->last_written = report->sequence();
  call->writing = true;
  return &call->request;
}

bool AggregatorStream::ReleaseHoldLocked(Call* call) {
  if (!call->read_ended || call->writing || call->cancelling || call->hold_released) return false;
  call->hold_released = true;
  return true;
}

void AggregatorStream::OnWriteDone(Call* call, bool ok) {
  const v1::StreamRequest* next = nullptr;
  bool release = false;
  {
    std::lock_guard lock(mu_);
    call->writing = false;
    if (!ok) {
      call->write_failed = true;
    } else if (call->request.has_report()) {
      ++stats_.sent_reports;
    }
    next = NextWriteLocked(call);
    if (next == nullptr) release = ReleaseHoldLocked(call);
  }
  if (next != nullptr) {
    call->StartWrite(next);
  } else if (release) {
    call->RemoveHold();
  }
}

void AggregatorStream::OnResponse(Call* call, const v1::StreamResponse& response) {
  bool plan = false;
  const v1::StreamRequest* next = nullptr;
  {
    std::lock_guard lock(mu_);
    if (!call->answered) {
      call->answered = true;
      stats_.up = true;
      ++stats_.connects;
      failed_attempts_ = 0;
      stats_.last_error.clear();
      Log()->info("aggregator {}: stream up, replaying {} unacknowledged reports", options_.endpoint,
                  buffer_.size());
    }
    if (response.has_ack()) {
      buffer_.Ack(response.ack().instance_id(), response.ack().highest_sequence());
      changed_.notify_all();
      // Everything acknowledged without a second refusal: nothing left to isolate.
      if (isolate_refused_ && buffer_.size() == 0) isolate_refused_ = false;
      next = NextWriteLocked(call);  // one report at a time while isolating a refused one
    }
    plan = response.has_probe_plan();
  }
  if (next != nullptr) call->StartWrite(next);
  if (plan && on_plan_) on_plan_(options_.endpoint, response.probe_plan());
}

void AggregatorStream::OnReadFailed(Call* call) {
  bool release = false;
  {
    std::lock_guard lock(mu_);
    call->read_ended = true;
    release = ReleaseHoldLocked(call);
  }
  if (release) call->RemoveHold();
}

void AggregatorStream::OnCallDone(Call* call, const grpc::Status& status) {
  std::lock_guard lock(mu_);
  if (call_ == call) call_ = nullptr;
  if (call->answered) stats_.up = false;
  ++stats_.disconnects;
  if (!status.ok()) {
    stats_.last_error = "code " + std::to_string(status.error_code()) + ": " + status.error_message();
    // gRPC's words for a failed handshake ("Socket closed", "wrong version number") do not
    // say what to fix; the explanation does, naming the file, and comes first.
    if (!call->answered) {
      if (auto why = ConnectFailureExplanation(status, options_.endpoint, options_.tls); !why.empty()) {
        stats_.last_error = why + "; gRPC said " + stats_.last_error;
      }
    }
  }
  if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
    // The aggregator refused a report. Replaying it would be refused again, forever, and
    // every later window would wait behind it; but with several reports in flight, and the
    // Acks of the good ones lost with the stream, which one it was is unknown. So the next
    // call sends one report at a time, each only after the previous one's Ack: the report
    // in flight when that call is refused is the one, and only it is dropped.
    if (!isolate_refused_) {
      isolate_refused_ = true;
      Log()->warn("aggregator {} refused a report ({}); resending one at a time to find it",
                  options_.endpoint, status.error_message());
    } else if (call->last_written != 0 && call->last_written == buffer_.OldestSequence()) {
      buffer_.DropOldest();
      isolate_refused_ = false;
      Log()->error("aggregator {} refused report {} ({}); dropped it so later windows can flow",
                   options_.endpoint, call->last_written, status.error_message());
    }
  }
  if (!stopping_) {
    // Only the first failure after an up period, or a failure unlike the one logged last, is
    // worth a warning; a long outage would otherwise log on every attempt.
    std::string error = stats_.last_error.empty() ? "closed by server" : stats_.last_error;
    if (call->answered || failed_attempts_ == 0 || error != last_logged_error_) {
      Log()->warn("aggregator {}: stream ended ({}), reconnecting with backoff", options_.endpoint, error);
      last_logged_error_ = error;
    }
    ScheduleReconnectLocked();
  }
  changed_.notify_all();
}

void AggregatorStream::ScheduleReconnectLocked() {
  ++failed_attempts_;
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  auto delay = options_.backoff.Delay(failed_attempts_, uniform(random_));
  reconnect_alarm_ = std::make_unique<grpc::Alarm>();
  alarm_pending_ = true;
  reconnect_alarm_->Set(std::chrono::system_clock::now() + delay, [this](bool fired) {
    {
      std::lock_guard lock(mu_);
      alarm_pending_ = false;
      changed_.notify_all();
      if (!fired || stopping_) return;
    }
    Connect();
  });
}

bool AggregatorStream::WaitAcked(uint64_t sequence, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, timeout, [&] { return buffer_.AckedSequence() >= sequence || stopping_; }) &&
         buffer_.AckedSequence() >= sequence;
}

void AggregatorStream::Stop() {
  Call* call = nullptr;
  bool cancel_alarm = false;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    call = call_;
    if (call != nullptr) call->cancelling = true;
    cancel_alarm = alarm_pending_;
  }
  if (call != nullptr) {
    call->Cancel();
    bool release = false;
    {
      std::lock_guard lock(mu_);
      call->cancelling = false;
      release = ReleaseHoldLocked(call);
    }
    if (release) call->RemoveHold();
  }
  if (cancel_alarm) reconnect_alarm_->Cancel();
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return call_ == nullptr && !alarm_pending_; });
  stats_.up = false;
}

AggregatorStreamStats AggregatorStream::Stats() const {
  std::lock_guard lock(mu_);
  AggregatorStreamStats stats = stats_;
  stats.buffered = buffer_.size();
  stats.acked_sequence = buffer_.AckedSequence();
  stats.reports_dropped = buffer_.DroppedTotal();
  return stats;
}

}  // namespace regionpulse
