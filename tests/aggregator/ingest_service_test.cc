// IngestService on gRPC's async API, against a stand-in backend: streams spread over every
// completion queue, shutdown with streams open and a write in flight leaves no stream behind
// (the ASan build finds a leaked one), PushPlans racing with streams that end, and every
// session ended exactly once.
#include "aggregator/ingest_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "common/grpc_callback_queue.h"
#include "tests/support/poll_until.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;
using ::testing::Each;
using ::testing::Gt;

// Accepts every Hello and report; records every session and how often it was ended.
class RecordingBackend final : public IngestBackend {
 public:
  grpc::Status AuthorizeStream(const grpc::ServerContextBase&, std::optional<CertifiedNode>*) override {
    return grpc::Status::OK;
  }
  HelloResult Hello(const v1::Hello& hello, const IngestCaller&) override {
    std::lock_guard lock(mutex_);
    HelloResult result;
    result.ok = true;
    result.session = ++last_session_;
    result.agent.node = hello.node();
    ended_[result.session] = 0;
    return result;
  }
  AcceptResult Accept(uint64_t, const v1::HealthReport& report) override {
    AcceptResult result;
    result.status = AcceptStatus::kAccepted;
    result.instance_id = 1;
    result.highest_sequence = report.sequence();
    return result;
  }
  void EndSession(uint64_t session) override {
    std::lock_guard lock(mutex_);
    ++ended_[session];
  }
  std::optional<v1::ProbePlan> PlanFor(const std::string&) override {
    v1::ProbePlan plan;
    plan.set_plan_version(plan_version.load());
    // Far more than a stream's flow-control window: a client that does not read keeps this
    // write in flight.
    for (int i = 0; i < plan_targets.load(); ++i) {
      plan.add_targets()->set_node(std::string(100, 'n') + std::to_string(i));
    }
    return plan;
  }

  size_t sessions() {
    std::lock_guard lock(mutex_);
    return ended_.size();
  }
  // Session -> how many times EndSession was called for it.
  std::map<uint64_t, int> ended() {
    std::lock_guard lock(mutex_);
    return ended_;
  }

  std::atomic<uint64_t> plan_version{1};
  std::atomic<int> plan_targets{1};

 private:
  std::mutex mutex_;
  uint64_t last_session_ = 0;
  std::map<uint64_t, int> ended_;
};

class IngestServiceTest : public ::testing::Test {
 protected:
  void StartServer(size_t completion_queues) {
    HoldGrpcCallbackQueue();
    service_ = std::make_unique<IngestService>(backend_, completion_queues);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    service_->AddTo(builder);
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_ != nullptr);
    ASSERT_NE(port_, 0);
    service_->Start();
  }

  // The aggregator's shutdown order (Aggregator::Shutdown).
  void StopServer() {
    service_->CloseAll();
    server_->Shutdown(std::chrono::system_clock::now() + 1s);
    server_->Wait();
    service_->ShutDownQueues();
    service_->WaitUntilAllDone();
    server_.reset();
  }

  // Its own TCP connection, as each agent has. Without BDP probing the client's stream window
  // stays at 64 KiB, so a bigger message to a client that does not read stays in flight.
  std::unique_ptr<v1::Ingest::Stub> NewStub(bool bdp_probe = true) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", next_channel_id_++);
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, bdp_probe ? 1 : 0);
    return v1::Ingest::NewStub(grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_),
                                                         grpc::InsecureChannelCredentials(), args));
  }

  static v1::StreamRequest HelloFrom(const std::string& node) {
    v1::StreamRequest request;
    request.mutable_hello()->set_node(node);
    request.mutable_hello()->set_instance_id(1);
    return request;
  }

  void ExpectEverySessionEndedOnce(size_t sessions) {
    const auto ended = backend_.ended();
    EXPECT_EQ(ended.size(), sessions);
    for (const auto& [session, times] : ended) EXPECT_EQ(times, 1) << "session " << session;
  }

  RecordingBackend backend_;
  std::unique_ptr<IngestService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  int next_channel_id_ = 1;
};

// An agent's stream: Hello sent, the plan read.
struct OpenStream {
  std::unique_ptr<v1::Ingest::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::StreamRequest, v1::StreamResponse>> stream;
};

TEST_F(IngestServiceTest, StreamsFromManyConnectionsAreSpreadOverEveryCompletionQueue) {
  constexpr size_t kQueues = 3;
  constexpr size_t kAgents = 24;
  StartServer(kQueues);
  ASSERT_EQ(service_->completion_queues(), kQueues);
  std::vector<std::unique_ptr<OpenStream>> agents;
  for (size_t i = 0; i < kAgents; ++i) {
    auto agent = std::make_unique<OpenStream>();
    agent->stub = NewStub();
    agent->stream = agent->stub->Stream(&agent->context);
    ASSERT_TRUE(agent->stream->Write(HelloFrom("node-" + std::to_string(i))));
    v1::StreamResponse plan;
    ASSERT_TRUE(agent->stream->Read(&plan));
    EXPECT_TRUE(plan.has_probe_plan());
    agents.push_back(std::move(agent));
  }
  EXPECT_EQ(service_->streams(), kAgents);
  const std::vector<size_t> per_queue = service_->streams_per_queue();
  ASSERT_EQ(per_queue.size(), kQueues);
  EXPECT_THAT(per_queue, Each(Gt(0u)));
  EXPECT_EQ(std::accumulate(per_queue.begin(), per_queue.end(), size_t{0}), kAgents);

  for (auto& agent : agents) {
    agent->stream->WritesDone();
    v1::StreamResponse ignored;
    while (agent->stream->Read(&ignored)) {
    }
    EXPECT_TRUE(agent->stream->Finish().ok());
  }
  ASSERT_TRUE(test::PollUntil([&] { return service_->streams() == 0; }, 10s));
  EXPECT_THAT(service_->streams_per_queue(), Each(0u));
  StopServer();
  ExpectEverySessionEndedOnce(kAgents);
}

TEST_F(IngestServiceTest, ShutdownWithStreamsOpenAndAWriteInFlightEndsEveryStreamOnce) {
  StartServer(2);
  // Each plan ~1 MiB; the agents but the last never read, so their plan stays in flight.
  backend_.plan_targets = 10'000;
  constexpr size_t kAgents = 6;
  std::vector<std::unique_ptr<OpenStream>> agents;
  for (size_t i = 0; i < kAgents; ++i) {
    auto agent = std::make_unique<OpenStream>();
    agent->stub = NewStub(/*bdp_probe=*/false);
    agent->stream = agent->stub->Stream(&agent->context);
    ASSERT_TRUE(agent->stream->Write(HelloFrom("node-" + std::to_string(i))));
    agents.push_back(std::move(agent));
  }
  ASSERT_TRUE(test::PollUntil([&] { return backend_.sessions() == kAgents; }, 10s));
  ASSERT_TRUE(test::PollUntil([&] { return service_->streams() == kAgents; }, 10s));
  // The last agent reads (its write completes), the others are stuck mid-plan.
  v1::StreamResponse plan;
  ASSERT_TRUE(agents.back()->stream->Read(&plan));
  EXPECT_EQ(plan.probe_plan().targets_size(), 10'000);

  StopServer();
  EXPECT_EQ(service_->streams(), 0u);
  ExpectEverySessionEndedOnce(kAgents);
  // The agents see their streams end, none hangs; the plan never reached the ones that did
  // not read: it was still being written when the streams were closed.
  for (size_t i = 0; i < kAgents; ++i) {
    v1::StreamResponse response;
    size_t plans = 0;
    while (agents[i]->stream->Read(&response)) plans += response.has_probe_plan() ? 1 : 0;
    EXPECT_EQ(plans, 0u) << "agent " << i;
    EXPECT_FALSE(agents[i]->stream->Finish().ok()) << "agent " << i;
  }
  service_.reset();  // the queues and their threads go; a stream left over leaks (ASan)
}

TEST_F(IngestServiceTest, StreamsOpenedAfterCloseAllAreRefusedUnavailable) {
  StartServer(2);
  service_->CloseAll();
  auto stub = NewStub();
  grpc::ClientContext context;
  auto stream = stub->Stream(&context);
  stream->Write(HelloFrom("late"));
  v1::StreamResponse ignored;
  EXPECT_FALSE(stream->Read(&ignored));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "aggregator is shutting down");
  StopServer();
  ExpectEverySessionEndedOnce(0);
}

TEST_F(IngestServiceTest, PushPlansRacingWithStreamsThatEndLeavesEverySessionEndedOnce) {
  StartServer(2);
  std::atomic<bool> pushing{true};
  std::thread pusher([&] {
    while (pushing) {
      backend_.plan_version.fetch_add(1);
      service_->PushPlans();
    }
  });
  constexpr int kRounds = 5;
  constexpr int kAgentsPerRound = 8;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::unique_ptr<OpenStream>> agents;
    for (int i = 0; i < kAgentsPerRound; ++i) {
      auto agent = std::make_unique<OpenStream>();
      agent->stub = NewStub();
      agent->stream = agent->stub->Stream(&agent->context);
      ASSERT_TRUE(agent->stream->Write(HelloFrom("node-" + std::to_string(round) + "-" + std::to_string(i))));
      v1::StreamResponse plan;
      ASSERT_TRUE(agent->stream->Read(&plan));
      agents.push_back(std::move(agent));
    }
    // Half close their side, half vanish (cancelled), while plans are being pushed.
    for (int i = 0; i < kAgentsPerRound; ++i) {
      if (i % 2 == 0) {
        agents[i]->stream->WritesDone();
      } else {
        agents[i]->context.TryCancel();
      }
    }
    for (auto& agent : agents) {
      v1::StreamResponse ignored;
      while (agent->stream->Read(&ignored)) {
      }
      (void)agent->stream->Finish();
    }
  }
  ASSERT_TRUE(test::PollUntil([&] { return service_->streams() == 0; }, 10s));
  pushing = false;
  pusher.join();
  StopServer();
  ExpectEverySessionEndedOnce(kRounds * kAgentsPerRound);
}

}  // namespace
}  // namespace regionpulse
