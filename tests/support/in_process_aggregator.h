// Test helpers for the aggregator's gRPC surface: a clock the test moves, an in-process
// aggregator with a private history directory, and test agents that stream reports on the
// real Ingest protocol and wait for their Acks.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "aggregator/aggregator.h"
#include "common/latency_histogram.h"
#include "common/proto_convert.h"
#include "regionpulse/v1/ingest.grpc.pb.h"
#include "regionpulse/v1/query.grpc.pb.h"
#include "regionpulse/v1/verdicts.grpc.pb.h"
#include "tests/support/sanitizer_slowdown.h"
#include "tests/support/scratch_directory.h"

namespace regionpulse::test {

using namespace std::chrono_literals;

// Wall-clock time that moves only when the test says so. Starts at the real now so report
// windows pass the registry's "not in the future" check.
class ManualClock {
 public:
  ManualClock()
      : now_(std::chrono::duration_cast<std::chrono::seconds>(WallClock::now().time_since_epoch())) {}
  WallClock::time_point Now() const { return WallClock::time_point(now_.load()); }
  void Advance(std::chrono::seconds by) { now_ = now_.load() + by; }
  std::function<WallClock::time_point()> AsFunction() {
    return [this] { return Now(); };
  }

 private:
  std::atomic<std::chrono::seconds> now_;
};

// Three regions, us-east-1 active, this aggregator in eu-west-1, short hold and dwell so a
// test sees STAY and FAILOVER in a minute of simulated time.
inline AggregatorConfig ThreeRegionConfig(const std::string& history_dir) {
  AggregatorConfig config;
  config.regions = {
      {"us-east-1", {"10.1.0.0/16"}}, {"eu-west-1", {"10.2.0.0/16"}}, {"ap-southeast-1", {"10.3.0.0/16"}}};
  config.active_region = "us-east-1";
  config.own_region = "eu-west-1";
  // Both others may be failover targets, eu-west-1 preferred (as the configuration would
  // default them, in region order); which one holds a replica is up to each test's flows.
  config.standby_regions = {"eu-west-1", "ap-southeast-1"};
  config.hold = 10s;
  config.dwell = 20s;
  config.matrix_window = 60s;
  config.not_reporting_timeout = 5s;
  config.heartbeat_interval = 60s;
  config.history.path = history_dir + "/verdict-history.log";
  config.grpc_listen = "127.0.0.1:0";
  config.metrics_listen = "127.0.0.1:0";
  config.plaintext = true;
  return config;
}

struct AgentSpec {
  std::string node;
  std::string region;
  std::string zone;
  std::string address;
};

// 3 regions x 4 agents, addresses inside each region's CIDR.
inline std::vector<AgentSpec> TwelveAgents() {
  std::vector<AgentSpec> agents;
  const std::vector<std::pair<std::string, std::string>> regions = {
      {"us-east-1", "10.1.0."}, {"eu-west-1", "10.2.0."}, {"ap-southeast-1", "10.3.0."}};
  for (const auto& [region, prefix] : regions) {
    for (int i = 1; i <= 4; ++i) {
      agents.push_back({region + "-node-" + std::to_string(i), region, region + (i % 2 ? "a" : "b"),
                        prefix + std::to_string(i)});
    }
  }
  return agents;
}

// What one agent measured towards one peer in one window.
struct PeerResult {
  const AgentSpec* peer;
  uint64_t sent = 10;
  uint64_t received_forward = 10;
  uint64_t received_reverse = 10;
  std::chrono::microseconds rtt{50'000};
};

inline v1::HealthReport MakeReport(uint64_t sequence, WallClock::time_point window_end,
                                   const std::vector<PeerResult>& peers) {
  v1::HealthReport report;
  report.set_sequence(sequence);
  *report.mutable_window_start() = ToTimestamp(window_end - 1s);
  *report.mutable_window_end() = ToTimestamp(window_end);
  for (const auto& result : peers) {
    auto* path = report.add_paths();
    path->set_peer_node(result.peer->node);
    path->set_peer_region(result.peer->region);
    path->set_peer_zone(result.peer->zone);
    path->mutable_peer_endpoint()->set_address(result.peer->address);
    path->mutable_peer_endpoint()->set_port(862);
    path->set_probes_sent(result.sent);
    path->set_received_forward(result.received_forward);
    path->set_received_reverse(result.received_reverse);
    path->set_loss_forward(result.sent ? 1.0 - static_cast<double>(result.received_forward) / result.sent
                                       : 0.0);
    path->set_loss_reverse(result.received_forward
                               ? 1.0 - static_cast<double>(result.received_reverse) / result.received_forward
                               : 0.0);
    if (result.received_reverse > 0) {
      LatencyHistogram rtt;
      rtt.Record(std::chrono::nanoseconds(result.rtt).count(), result.received_reverse);
      ToProto(rtt, path->mutable_rtt_kernel());
      ToProto(rtt, path->mutable_rtt_user());
    }
  }
  return report;
}

// A replication flow `name` from the reporting node into `remote_region`, moving (current).
inline void AddMovingFlow(v1::HealthReport& report, const std::string& name,
                          const std::string& remote_region) {
  auto* flow = report.add_flows();
  flow->set_name(name);
  flow->set_remote_region(remote_region);
  flow->set_bytes_acked(1024 * 1024);
  flow->set_connections(1);
  flow->set_bytes_outstanding(4096);
}

// One agent's Ingest stream, driven synchronously: write, then read until the Ack arrives.
class TestAgent {
 public:
  TestAgent(std::shared_ptr<grpc::Channel> channel, AgentSpec spec, uint64_t instance_id)
      : stub_(v1::Ingest::NewStub(channel)), spec_(std::move(spec)), instance_id_(instance_id) {}
  ~TestAgent() {
    if (stream_) {
      context_->TryCancel();
      stream_->Finish();
    }
  }

  const AgentSpec& spec() const { return spec_; }

  // Opens a stream and says Hello; true when the aggregator answered with a plan or an Ack.
  bool Connect() {
    if (stream_) {
      context_->TryCancel();
      stream_->Finish();
    }
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_deadline(std::chrono::system_clock::now() + SanitizerScaled(60s));
    stream_ = stub_->Stream(context_.get());
    v1::StreamRequest request;
    auto* hello = request.mutable_hello();
    hello->set_node(spec_.node);
    hello->set_region(spec_.region);
    hello->set_zone(spec_.zone);
    hello->set_agent_version("test");
    hello->set_instance_id(instance_id_);
    hello->mutable_probe_endpoint()->set_address(spec_.address);
    hello->mutable_probe_endpoint()->set_port(862);
    hello->mutable_capabilities()->set_kernel_stamps(true);
    *hello->mutable_window() = ToDuration(1s);
    if (!stream_->Write(request)) return false;
    // The plan comes right after Hello.
    v1::StreamResponse response;
    if (!stream_->Read(&response)) return false;
    Absorb(response);
    return true;
  }

  // Sends a report and reads until an Ack covers it. False when the stream ended instead;
  // Finish() then says why.
  bool Send(const v1::HealthReport& report) {
    v1::StreamRequest request;
    *request.mutable_report() = report;
    if (!stream_->Write(request)) return false;
    // Every report is answered with an Ack (a replay's too), so wait for a new one.
    const uint64_t acks_before = acks_received_;
    v1::StreamResponse response;
    while (acks_received_ == acks_before || highest_ack_ < report.sequence()) {
      if (!stream_->Read(&response)) return false;
      Absorb(response);
    }
    return true;
  }

  // Ends the stream from the agent's side (or collects the server's status) and returns it.
  grpc::Status Finish() {
    stream_->WritesDone();
    v1::StreamResponse drain;
    while (stream_->Read(&drain)) Absorb(drain);
    grpc::Status status = stream_->Finish();
    stream_.reset();
    return status;
  }

  uint64_t highest_ack() const { return highest_ack_; }
  const std::optional<v1::ProbePlan>& plan() const { return plan_; }

 private:
  void Absorb(const v1::StreamResponse& response) {
    if (response.has_ack()) {
      EXPECT_EQ(response.ack().instance_id(), instance_id_);
      highest_ack_ = std::max(highest_ack_, response.ack().highest_sequence());
      ++acks_received_;
    }
    if (response.has_probe_plan()) plan_ = response.probe_plan();
  }

  std::unique_ptr<v1::Ingest::Stub> stub_;
  AgentSpec spec_;
  uint64_t instance_id_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::StreamRequest, v1::StreamResponse>> stream_;
  uint64_t highest_ack_ = 0;
  uint64_t acks_received_ = 0;
  std::optional<v1::ProbePlan> plan_;
};

// Collects a Watch stream on its own thread; the test waits for a verdict matching a
// predicate, with a deadline.
class VerdictWatcher {
 public:
  explicit VerdictWatcher(std::shared_ptr<grpc::Channel> channel,
                          std::chrono::milliseconds heartbeat = std::chrono::milliseconds(0))
      : stub_(v1::Verdicts::NewStub(channel)) {
    v1::WatchVerdictsRequest request;
    if (heartbeat.count() > 0) *request.mutable_heartbeat_interval() = ToDuration(heartbeat);
    reader_ = stub_->Watch(&context_, request);
    thread_ = std::thread([this] {
      v1::WatchVerdictsResponse response;
      while (reader_->Read(&response)) {
        std::lock_guard lock(mutex_);
        received_.push_back(response);
        changed_.notify_all();
      }
      std::lock_guard lock(mutex_);
      status_ = reader_->Finish();
      ended_ = true;
      changed_.notify_all();
    });
  }
  ~VerdictWatcher() {
    context_.TryCancel();
    thread_.join();
  }

  // The first received message (from index `from` on) that matches, within the deadline.
  std::optional<v1::WatchVerdictsResponse> WaitFor(
      std::function<bool(const v1::WatchVerdictsResponse&)> match, std::chrono::milliseconds deadline = 10s,
      size_t from = 0) {
    std::unique_lock lock(mutex_);
    std::optional<v1::WatchVerdictsResponse> found;
    changed_.wait_for(lock, SanitizerScaled(deadline), [&] {
      for (size_t i = from; i < received_.size(); ++i) {
        if (match(received_[i])) {
          found = received_[i];
          return true;
        }
      }
      return ended_;
    });
    return found;
  }

  // Waits until the stream has ended (server closed it) and returns its status.
  std::optional<grpc::Status> WaitForEnd(std::chrono::milliseconds deadline = 10s) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, SanitizerScaled(deadline), [&] { return ended_; })) return std::nullopt;
    return status_;
  }

  std::vector<v1::WatchVerdictsResponse> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  std::unique_ptr<v1::Verdicts::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::WatchVerdictsResponse>> reader_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<v1::WatchVerdictsResponse> received_;
  bool ended_ = false;
  grpc::Status status_;
  std::thread thread_;
};

// Twelve agents connected to one aggregator, reporting in lock step with the manual clock:
// every Step() moves time by one second, sends every live agent's report for that window
// (waiting for each Ack, so it is stored) and runs one evaluation.
class TwelveAgentFleet {
 public:
  // (observer, peer) -> what the observer measured towards the peer this window.
  using Network = std::function<PeerResult(const AgentSpec& observer, const AgentSpec& peer)>;

  TwelveAgentFleet(Aggregator& aggregator, ManualClock& clock, std::shared_ptr<grpc::Channel> channel)
      : aggregator_(aggregator), clock_(clock), specs_(TwelveAgents()) {
    for (size_t i = 0; i < specs_.size(); ++i) {
      agents_.push_back(std::make_unique<TestAgent>(channel, specs_[i], 1000 + i));
      sequence_.push_back(0);
      silent_.push_back(false);
    }
  }

  bool ConnectAll() {
    for (auto& agent : agents_) {
      if (!agent->Connect()) return false;
    }
    return true;
  }

  static PeerResult Healthy(const AgentSpec&, const AgentSpec& peer) {
    PeerResult result;
    result.peer = &peer;
    return result;
  }

  // Every agent probes every other agent (12 nodes: the full mesh is small enough).
  v1::Verdict Step(const Network& network = Healthy) {
    clock_.Advance(1s);
    for (size_t i = 0; i < agents_.size(); ++i) {
      if (silent_[i]) continue;
      std::vector<PeerResult> peers;
      for (const auto& peer : specs_) {
        if (peer.node != specs_[i].node) peers.push_back(network(specs_[i], peer));
      }
      v1::HealthReport report = MakeReport(++sequence_[i], clock_.Now(), peers);
      if (decorate_) decorate_(specs_[i], report);
      EXPECT_TRUE(agents_[i]->Send(report)) << specs_[i].node;
    }
    return aggregator_.EvaluateNow();
  }

  // The region's agents stop reporting (the region went dark).
  void Silence(const std::string& region) {
    for (size_t i = 0; i < specs_.size(); ++i) silent_[i] = silent_[i] || specs_[i].region == region;
  }

  // Adds to every report before it is sent (traffic, flows).
  void Decorate(std::function<void(const AgentSpec&, v1::HealthReport&)> decorate) {
    decorate_ = std::move(decorate);
  }

  TestAgent& agent(size_t i) { return *agents_[i]; }
  const std::vector<AgentSpec>& specs() const { return specs_; }
  uint64_t sequence(size_t i) const { return sequence_[i]; }

 private:
  Aggregator& aggregator_;
  ManualClock& clock_;
  std::vector<AgentSpec> specs_;
  std::vector<std::unique_ptr<TestAgent>> agents_;
  std::vector<uint64_t> sequence_;
  std::vector<bool> silent_;
  std::function<void(const AgentSpec&, v1::HealthReport&)> decorate_;
};

}  // namespace regionpulse::test
