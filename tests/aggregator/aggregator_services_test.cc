// The aggregator over real gRPC, in-process: 3 regions x 4 agents stream reports; the matrix
// and the verdict are read back through Query, Verdicts.Get and Verdicts.Watch; bad and
// replayed reports change nothing; health and reflection answer; history survives restarts.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <fstream>
#include <future>
#include <limits>
#include <map>
#include <set>

#include "common/report_validation.h"
#include "tests/support/http_get.h"
#include "tests/support/in_process_aggregator.h"
#include "tests/support/sanitizer_slowdown.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

using test::AgentSpec;
using test::HttpGet;
using test::MakeReport;
using test::ManualClock;
using test::PeerResult;
using test::SanitizerScaled;
using test::ScratchDirectory;
using test::TestAgent;
using test::ThreeRegionConfig;
using test::TwelveAgentFleet;
using test::TwelveAgents;
using test::VerdictWatcher;

using ::testing::HasSubstr;

PeerResult Healthy(const AgentSpec& peer) {
  PeerResult result;
  result.peer = &peer;
  return result;
}

PeerResult AllLost(const AgentSpec& peer) {
  PeerResult result;
  result.peer = &peer;
  result.received_forward = 0;
  result.received_reverse = 0;
  return result;
}

class AggregatorServiceTest : public ::testing::Test {
 protected:
  void StartAggregator(AggregatorConfig config) {
    AggregatorOptions options;
    options.clock = clock_.AsFunction();
    options.evaluation_loop = false;
    auto started = Aggregator::Start(config, options);
    ASSERT_TRUE(started.ok()) << started.error().ToString();
    aggregator_ = std::move(*started);
    channel_ = aggregator_->InProcessChannel();
  }
  void StartAggregator() { StartAggregator(ThreeRegionConfig(dir_.path())); }

  v1::Verdict GetVerdict() {
    auto stub = v1::Verdicts::NewStub(channel_);
    grpc::ClientContext context;
    v1::GetVerdictResponse response;
    EXPECT_TRUE(stub->Get(&context, v1::GetVerdictRequest(), &response).ok());
    return response.verdict();
  }

  v1::GetRegionMatrixResponse GetMatrix() {
    auto stub = v1::Query::NewStub(channel_);
    grpc::ClientContext context;
    v1::GetRegionMatrixResponse response;
    EXPECT_TRUE(stub->GetRegionMatrix(&context, v1::GetRegionMatrixRequest(), &response).ok());
    return response;
  }

  v1::ListAgentsResponse ListAgents() {
    auto stub = v1::Query::NewStub(channel_);
    grpc::ClientContext context;
    v1::ListAgentsResponse response;
    EXPECT_TRUE(stub->ListAgents(&context, v1::ListAgentsRequest(), &response).ok());
    return response;
  }

  v1::GetVerdictHistoryResponse History() {
    auto stub = v1::Query::NewStub(channel_);
    grpc::ClientContext context;
    v1::GetVerdictHistoryResponse response;
    EXPECT_TRUE(stub->GetVerdictHistory(&context, v1::GetVerdictHistoryRequest(), &response).ok());
    return response;
  }

  // Steps the healthy fleet until the verdict is STAY; the number of steps it took.
  int StepUntilStay(TwelveAgentFleet& fleet, int max_steps = 40) {
    for (int step = 1; step <= max_steps; ++step) {
      if (fleet.Step().action() == v1::ACTION_STAY) return step;
    }
    return -1;
  }

  // The matrix cells without the read time, for "nothing changed" comparisons.
  static std::string CellsOf(const v1::GetRegionMatrixResponse& matrix) {
    std::string bytes;
    for (const auto& cell : matrix.cells()) bytes += cell.SerializeAsString();
    return bytes;
  }

  ScratchDirectory dir_{"aggregator"};
  ManualClock clock_;
  std::unique_ptr<Aggregator> aggregator_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(AggregatorServiceTest, ThreeRegionsOfFourAgentsGiveAFullMatrixAndStayThroughGetAndWatch) {
  StartAggregator();
  VerdictWatcher watcher(channel_);
  // Watch answers at once with the current verdict: before any data, HOLD.
  auto first = watcher.WaitFor([](const auto&) { return true; });
  ASSERT_TRUE(first);
  EXPECT_EQ(first->verdict().action(), v1::ACTION_HOLD);
  EXPECT_FALSE(first->heartbeat());

  TwelveAgentFleet fleet(*aggregator_, clock_, channel_);
  ASSERT_TRUE(fleet.ConnectAll());
  // Every agent got a plan with targets in every region right after Hello.
  for (size_t i = 0; i < fleet.specs().size(); ++i) {
    ASSERT_TRUE(fleet.agent(i).plan()) << fleet.specs()[i].node;
  }

  // A fresh aggregator holds until it has seen a full hold time (10 s) of data.
  for (int step = 1; step <= 5; ++step) {
    EXPECT_EQ(fleet.Step().action(), v1::ACTION_HOLD) << "step " << step;
  }
  const int stay_after = StepUntilStay(fleet);
  ASSERT_GT(stay_after, 0) << "no STAY verdict with every region healthy";

  const v1::Verdict verdict = GetVerdict();
  EXPECT_EQ(verdict.action(), v1::ACTION_STAY);
  EXPECT_EQ(verdict.active_region(), "us-east-1");
  EXPECT_EQ(verdict.aggregator_region(), "eu-west-1");
  ASSERT_EQ(verdict.regions_size(), 3);
  for (const auto& region : verdict.regions()) {
    EXPECT_EQ(region.state(), v1::REGION_STATE_HEALTHY) << region.region();
    EXPECT_EQ(region.agents_reporting(), 4u) << region.region();
    EXPECT_EQ(region.observers_reporting(), 8u) << region.region();
    EXPECT_DOUBLE_EQ(region.loss(), 0.0);
    EXPECT_NEAR(FromDuration(region.rtt_p50()).count() / 1e6, 50.0, 0.5) << region.region();
  }

  // The same verdict was pushed on Watch as it happened.
  auto pushed = watcher.WaitFor([&](const v1::WatchVerdictsResponse& r) {
    return !r.heartbeat() && r.verdict().action() == v1::ACTION_STAY;
  });
  ASSERT_TRUE(pushed);
  EXPECT_EQ(pushed->verdict().generation(), verdict.generation());

  // Region matrix: 3 x 3 cells, every source seen by its 4 observers, no loss, RTT 50 ms.
  const auto matrix = GetMatrix();
  EXPECT_THAT(std::set<std::string>(matrix.regions().begin(), matrix.regions().end()),
              ::testing::UnorderedElementsAre("us-east-1", "eu-west-1", "ap-southeast-1"));
  ASSERT_EQ(matrix.cells_size(), 9);
  const uint64_t steps = fleet.sequence(0);
  for (const auto& cell : matrix.cells()) {
    SCOPED_TRACE(cell.source_region() + " -> " + cell.target_region());
    EXPECT_EQ(cell.observers(), 4u);
    // Each of 4 observers probes 4 peers in another region (3 in its own) 10 times a window.
    const uint64_t peers = cell.source_region() == cell.target_region() ? 3 : 4;
    EXPECT_EQ(cell.probes_sent(), steps * 4 * peers * 10);
    EXPECT_EQ(cell.received_reverse(), cell.probes_sent());
    EXPECT_DOUBLE_EQ(cell.loss_forward(), 0.0);
    EXPECT_NEAR(FromDuration(cell.rtt_p50()).count() / 1e6, 50.0, 0.5);
    EXPECT_NEAR(FromDuration(cell.rtt_p99()).count() / 1e6, 50.0, 0.5);
    EXPECT_EQ(cell.state(), v1::REGION_STATE_HEALTHY);
  }

  // Plans were pushed as peers joined: k = 3 targets in each of the 3 regions.
  for (size_t i = 0; i < fleet.specs().size(); ++i) {
    ASSERT_TRUE(fleet.agent(i).plan());
    std::map<std::string, int> per_region;
    for (const auto& target : fleet.agent(i).plan()->targets()) {
      EXPECT_NE(target.node(), fleet.specs()[i].node);
      per_region[target.region()] += 1;
    }
    EXPECT_THAT(per_region, ::testing::UnorderedElementsAre(::testing::Pair("us-east-1", 3),
                                                            ::testing::Pair("eu-west-1", 3),
                                                            ::testing::Pair("ap-southeast-1", 3)))
        << fleet.specs()[i].node;
  }

  const auto agents = ListAgents();
  ASSERT_EQ(agents.agents_size(), 12);
  for (const auto& agent : agents.agents()) {
    EXPECT_EQ(agent.state(), v1::AGENT_STATE_REPORTING) << agent.node();
    EXPECT_EQ(agent.last_sequence(), steps) << agent.node();
    EXPECT_GT(agent.plan_version(), 0u) << agent.node();
  }
}

TEST_F(AggregatorServiceTest, ActiveRegionGoingDarkFailsOverOnlyAfterTheHoldTime) {
  StartAggregator();
  TwelveAgentFleet fleet(*aggregator_, clock_, channel_);
  // us-east-1 replicates into ap-southeast-1 only: the one standby a failover may go to without
  // a manual decision, although eu-west-1 comes first in the order of preference.
  fleet.Decorate([](const AgentSpec& agent, v1::HealthReport& report) {
    if (agent.region == "us-east-1") test::AddMovingFlow(report, "orders-db", "ap-southeast-1");
  });
  ASSERT_TRUE(fleet.ConnectAll());
  ASSERT_GT(StepUntilStay(fleet), 0);
  VerdictWatcher watcher(channel_);
  ASSERT_TRUE(watcher.WaitFor([](const auto& r) { return r.verdict().action() == v1::ACTION_STAY; }));

  // us-east-1 vanishes: its agents fall silent and every probe to it is lost.
  fleet.Silence("us-east-1");
  auto dark = [](const AgentSpec&, const AgentSpec& peer) {
    return peer.region == "us-east-1" ? AllLost(peer) : Healthy(peer);
  };
  const auto outage_start = clock_.Now();
  std::optional<WallClock::time_point> failover_at;
  v1::Verdict failover;
  for (int step = 0; step < 90 && !failover_at; ++step) {
    v1::Verdict verdict = fleet.Step(dark);
    if (verdict.action() == v1::ACTION_FAILOVER) {
      failover_at = clock_.Now();
      failover = verdict;
    }
  }
  ASSERT_TRUE(failover_at) << "no FAILOVER with the active region dark for 90 s: "
                           << GetVerdict().DebugString();
  EXPECT_GE(*failover_at - outage_start, 10s) << "FAILOVER before the hold time";
  EXPECT_EQ(failover.target_region(), "ap-southeast-1") << failover.DebugString();
  EXPECT_FALSE(failover.reasons().empty());
  // What it loses was known from the flow's last report before the dark.
  EXPECT_FALSE(failover.manual_decision());
  ASSERT_EQ(failover.data_at_risk_size(), 1) << failover.DebugString();
  EXPECT_EQ(failover.data_at_risk(0).flow(), "orders-db");
  EXPECT_TRUE(failover.data_at_risk(0).source_silent());
  EXPECT_LE(FromDuration(failover.data_at_risk(0).at_most()), FromDuration(failover.max_data_loss()));

  auto pushed = watcher.WaitFor([](const v1::WatchVerdictsResponse& r) {
    return !r.heartbeat() && r.verdict().action() == v1::ACTION_FAILOVER;
  });
  ASSERT_TRUE(pushed);
  EXPECT_EQ(pushed->verdict().generation(), failover.generation());
  EXPECT_EQ(pushed->verdict().target_region(), failover.target_region());

  // The transition is in the durable history, newest first, with why.
  const auto history = History();
  ASSERT_GT(history.transitions_size(), 0);
  const auto& newest = history.transitions(0);
  EXPECT_EQ(newest.verdict().action(), v1::ACTION_FAILOVER);
  EXPECT_EQ(newest.verdict().generation(), failover.generation());
  EXPECT_FALSE(newest.changes().empty());
}

struct BadReport {
  const char* name;
  std::function<void(v1::HealthReport&, WallClock::time_point now)> spoil;
  grpc::StatusCode code;
  const char* message;  // substring of the status message
};

class MalformedReportTest : public AggregatorServiceTest, public ::testing::WithParamInterface<BadReport> {};

TEST_P(MalformedReportTest, EndsTheStreamWithTheReasonAndChangesNothing) {
  StartAggregator();
  TwelveAgentFleet fleet(*aggregator_, clock_, channel_);
  ASSERT_TRUE(fleet.ConnectAll());
  for (int i = 0; i < 3; ++i) fleet.Step();
  const std::string cells_before = CellsOf(GetMatrix());
  const auto agents_before = ListAgents();

  clock_.Advance(1s);
  const auto& specs = fleet.specs();
  v1::HealthReport report =
      MakeReport(fleet.sequence(0) + 1, clock_.Now(), {Healthy(specs[5]), Healthy(specs[9])});
  GetParam().spoil(report, clock_.Now());
  EXPECT_FALSE(fleet.agent(0).Send(report));
  const grpc::Status status = fleet.agent(0).Finish();
  EXPECT_EQ(status.error_code(), GetParam().code) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr(GetParam().message));

  EXPECT_EQ(CellsOf(GetMatrix()), cells_before);
  const auto agents_after = ListAgents();
  ASSERT_EQ(agents_after.agents_size(), agents_before.agents_size());
  for (int i = 0; i < agents_after.agents_size(); ++i) {
    EXPECT_EQ(agents_after.agents(i).last_sequence(), agents_before.agents(i).last_sequence())
        << agents_after.agents(i).node();
  }
}

INSTANTIATE_TEST_SUITE_P(Table, MalformedReportTest,
                         ::testing::Values(BadReport{"MoreRepliesThanProbes",
                                                     [](v1::HealthReport& r, WallClock::time_point) {
                                                       r.mutable_paths(0)->set_received_forward(11);
                                                     },
                                                     grpc::StatusCode::INVALID_ARGUMENT, "received_forward"},
                                           BadReport{"LossOutOfRange",
                                                     [](v1::HealthReport& r, WallClock::time_point) {
                                                       r.mutable_paths(1)->set_loss_forward(1.5);
                                                     },
                                                     grpc::StatusCode::INVALID_ARGUMENT, "loss_forward"},
                                           BadReport{"WindowEndsBeforeItStarts",
                                                     [](v1::HealthReport& r, WallClock::time_point now) {
                                                       *r.mutable_window_start() = ToTimestamp(now + 1s);
                                                     },
                                                     grpc::StatusCode::INVALID_ARGUMENT, "window_end"},
                                           BadReport{"WindowInTheFuture",
                                                     [](v1::HealthReport& r, WallClock::time_point now) {
                                                       *r.mutable_window_start() = ToTimestamp(now + 10min);
                                                       *r.mutable_window_end() =
                                                           ToTimestamp(now + 10min + 1s);
                                                     },
                                                     grpc::StatusCode::INVALID_ARGUMENT, "future"},
                                           BadReport{"SequenceGoingBackwards",
                                                     [](v1::HealthReport& r, WallClock::time_point) {
                                                       r.set_sequence(1);
                                                     },
                                                     grpc::StatusCode::INVALID_ARGUMENT, "sequence"},
                                           BadReport{"OverTheSizeLimit",
                                                     [](v1::HealthReport& r, WallClock::time_point) {
                                                       for (size_t i = 0; i < ReportLimits{}.max_paths; ++i)
                                                         *r.add_paths() = r.paths(0);
                                                     },
                                                     grpc::StatusCode::INVALID_ARGUMENT, "paths"}),
                         [](const auto& info) { return info.param.name; });

TEST_F(AggregatorServiceTest, ReportBeforeHelloIsRefusedWithFailedPrecondition) {
  StartAggregator();
  auto stub = v1::Ingest::NewStub(channel_);
  grpc::ClientContext context;
  auto stream = stub->Stream(&context);
  const auto specs = TwelveAgents();
  v1::StreamRequest request;
  *request.mutable_report() = MakeReport(1, clock_.Now(), {Healthy(specs[5])});
  stream->Write(request);
  stream->WritesDone();
  v1::StreamResponse response;
  while (stream->Read(&response)) {
  }
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("Hello"));
  EXPECT_EQ(ListAgents().agents_size(), 0);
}

TEST_F(AggregatorServiceTest, MalformedHelloIsRefusedWithFailedPreconditionAndTheReason) {
  StartAggregator();
  AgentSpec nameless = TwelveAgents()[0];
  nameless.node.clear();
  TestAgent agent(channel_, nameless, 1);
  EXPECT_FALSE(agent.Connect());
  const grpc::Status status = agent.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("Hello refused"));
  EXPECT_THAT(status.error_message(), HasSubstr("node"));
  EXPECT_EQ(ListAgents().agents_size(), 0);
}

TEST_F(AggregatorServiceTest, QueryRefusesANegativeWindow) {
  StartAggregator();
  auto stub = v1::Query::NewStub(channel_);
  grpc::ClientContext context;
  v1::GetRegionMatrixRequest request;
  request.mutable_range()->mutable_window()->set_seconds(-5);
  v1::GetRegionMatrixResponse response;
  const grpc::Status status = stub->GetRegionMatrix(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("range.window"));
}

TEST_F(AggregatorServiceTest, ReplayedReportIsAcknowledgedAndChangesNothing) {
  StartAggregator();
  TwelveAgentFleet fleet(*aggregator_, clock_, channel_);
  ASSERT_TRUE(fleet.ConnectAll());
  for (int i = 0; i < 3; ++i) fleet.Step();
  const std::string cells_before = CellsOf(GetMatrix());

  // The agent lost its stream before it saw the Ack for report 3 and replays it on a new one.
  const auto& specs = fleet.specs();
  std::vector<PeerResult> peers;
  for (const auto& peer : specs) {
    if (peer.node != specs[0].node) peers.push_back(Healthy(peer));
  }
  TestAgent again(channel_, specs[0], 1000);
  ASSERT_TRUE(again.Connect());
  // Hello already acknowledges what is stored.
  EXPECT_EQ(again.highest_ack(), 3u);
  // The agent replays, in order, everything it still holds unacknowledged.
  ASSERT_TRUE(again.Send(MakeReport(2, clock_.Now() - 1s, peers)));
  ASSERT_TRUE(again.Send(MakeReport(3, clock_.Now(), peers)));
  EXPECT_EQ(again.highest_ack(), 3u);

  EXPECT_EQ(CellsOf(GetMatrix()), cells_before);
  const auto agents = ListAgents();
  for (const auto& agent : agents.agents()) EXPECT_EQ(agent.last_sequence(), 3u) << agent.node();
  const grpc::Status end = again.Finish();
  EXPECT_TRUE(end.ok()) << end.error_code() << " " << end.error_message();
}

TEST_F(AggregatorServiceTest, WithoutConfigurationNoRegionIsKnownAndTheAnswerIsHold) {
  AggregatorConfig config;
  config.history.path = dir_.path() + "/history.log";
  config.grpc_listen = "127.0.0.1:0";
  config.metrics_listen = "127.0.0.1:0";
  config.plaintext = true;
  StartAggregator(config);
  const v1::Verdict verdict = aggregator_->EvaluateNow();
  EXPECT_EQ(verdict.action(), v1::ACTION_HOLD);
  EXPECT_EQ(GetVerdict().action(), v1::ACTION_HOLD);
  EXPECT_TRUE(GetMatrix().cells().empty());
}

// A reflection client from the reflection protos compiled into libgrpc++_reflection: the
// descriptors are in the generated pool, so requests are built as dynamic messages and sent
// on a generic bidi call.
class ReflectionCall : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ReflectionCall(std::shared_ptr<grpc::Channel> channel, const grpc::ByteBuffer& request)
      : stub_(channel), request_(request) {
    stub_.PrepareBidiStreamingCall(&context_,
                                   "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                   grpc::StubOptions(), this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&response_);
    StartCall();
  }
  void OnReadDone(bool ok) override { got_response_ = ok; }
  void OnDone(const grpc::Status& status) override { done_.set_value(status); }
  grpc::Status Wait() { return done_.get_future().get(); }
  bool got_response() const { return got_response_; }
  grpc::ByteBuffer& response() { return response_; }

 private:
  grpc::GenericStub stub_;
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  bool got_response_ = false;
  std::promise<grpc::Status> done_;
};

TEST_F(AggregatorServiceTest, ServerReflectionListsTheRegionpulseServices) {
  StartAggregator();
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  const auto* request_type = pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionRequest");
  const auto* response_type = pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionResponse");
  ASSERT_NE(request_type, nullptr) << "reflection protos not linked";
  ASSERT_NE(response_type, nullptr);
  google::protobuf::DynamicMessageFactory factory(pool);
  std::unique_ptr<google::protobuf::Message> request(factory.GetPrototype(request_type)->New());
  request->GetReflection()->SetString(request.get(), request_type->FindFieldByName("list_services"), "*");
  grpc::ByteBuffer request_bytes;
  bool own_buffer = false;
  ASSERT_TRUE(
      grpc::SerializationTraits<google::protobuf::Message>::Serialize(*request, &request_bytes, &own_buffer)
          .ok());

  // Over TCP, as grpcurl would connect.
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(aggregator_->grpc_port()),
                                     grpc::InsecureChannelCredentials());
  ReflectionCall call(channel, request_bytes);
  const grpc::Status status = call.Wait();
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  ASSERT_TRUE(call.got_response());
  std::unique_ptr<google::protobuf::Message> response(factory.GetPrototype(response_type)->New());
  ASSERT_TRUE(
      grpc::SerializationTraits<google::protobuf::Message>::Deserialize(&call.response(), response.get())
          .ok());

  const auto* list_field = response_type->FindFieldByName("list_services_response");
  const auto& list = response->GetReflection()->GetMessage(*response, list_field);
  const auto* service_field = list.GetDescriptor()->FindFieldByName("service");
  std::set<std::string> services;
  for (int i = 0; i < list.GetReflection()->FieldSize(list, service_field); ++i) {
    const auto& service = list.GetReflection()->GetRepeatedMessage(list, service_field, i);
    services.insert(
        service.GetReflection()->GetString(service, service.GetDescriptor()->FindFieldByName("name")));
  }
  EXPECT_THAT(services, ::testing::IsSupersetOf({"regionpulse.v1.Ingest", "regionpulse.v1.Verdicts",
                                                 "regionpulse.v1.Query", "grpc.health.v1.Health"}));
}

// grpc.health.v1.Health/Check with a hand-encoded request (field 1: service name); the
// response's field 1 is the serving status, SERVING = 1.
std::optional<uint64_t> HealthStatus(std::shared_ptr<grpc::Channel> channel, const std::string& service) {
  std::string request;
  if (!service.empty()) {
    request.push_back(0x0a);  // field 1, length-delimited
    request.push_back(static_cast<char>(service.size()));
    request += service;
  }
  grpc::Slice slice(request);
  grpc::ByteBuffer request_bytes(&slice, 1);
  grpc::ByteBuffer response_bytes;
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + SanitizerScaled(10s));
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request_bytes,
                 &response_bytes, [&](grpc::Status status) { done.set_value(status); });
  if (!done.get_future().get().ok()) return std::nullopt;
  std::vector<grpc::Slice> slices;
  if (!response_bytes.Dump(&slices).ok()) return std::nullopt;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  google::protobuf::UnknownFieldSet fields;
  if (!fields.ParseFromString(bytes) || fields.field_count() != 1 || fields.field(0).number() != 1)
    return std::nullopt;
  return fields.field(0).varint();
}

TEST_F(AggregatorServiceTest, HealthServiceAnswersServingForTheServerAndEachService) {
  StartAggregator();
  constexpr uint64_t kServing = 1;
  EXPECT_EQ(HealthStatus(channel_, ""), kServing);
  for (const char* service : {"regionpulse.v1.Ingest", "regionpulse.v1.Verdicts", "regionpulse.v1.Query"}) {
    EXPECT_EQ(HealthStatus(channel_, service), kServing) << service;
  }
}

TEST_F(AggregatorServiceTest, HistorySurvivesARestartAndGenerationsKeepIncreasing) {
  StartAggregator();
  uint64_t last_generation = 0;
  int transitions_before = 0;
  {
    TwelveAgentFleet fleet(*aggregator_, clock_, channel_);
    ASSERT_TRUE(fleet.ConnectAll());
    ASSERT_GT(StepUntilStay(fleet), 0);
    last_generation = GetVerdict().generation();
    transitions_before = History().transitions_size();
    ASSERT_GE(transitions_before, 2);  // the first verdict, then STAY
  }
  aggregator_->Shutdown();
  aggregator_.reset();

  StartAggregator();
  // Before its first evaluation the restarted aggregator serves HOLD, numbered after the old ones.
  EXPECT_EQ(GetVerdict().action(), v1::ACTION_HOLD);
  EXPECT_GE(GetVerdict().generation(), last_generation);
  const auto history = History();
  ASSERT_EQ(history.transitions_size(), transitions_before);
  EXPECT_EQ(history.transitions(0).verdict().action(), v1::ACTION_STAY);
  EXPECT_EQ(history.transitions(0).verdict().generation(), last_generation);
  // A restarted aggregator knows nothing yet: HOLD, and a generation after the old ones.
  const v1::Verdict verdict = aggregator_->EvaluateNow();
  EXPECT_EQ(verdict.action(), v1::ACTION_HOLD);
  EXPECT_GT(verdict.generation(), last_generation);
  EXPECT_EQ(History().transitions_size(), transitions_before + 1);
}

TEST_F(AggregatorServiceTest, TornHistoryRecordFromACrashIsToleratedOnStart) {
  StartAggregator();
  aggregator_->EvaluateNow();
  aggregator_->Shutdown();
  aggregator_.reset();
  {
    // A crash in the middle of an append: a header promising 200 bytes, 7 of them written.
    std::ofstream out(dir_.path() + "/verdict-history.log", std::ios::app | std::ios::binary);
    out << std::string("\xc8\x00\x00\x00\x01\x02\x03\x04", 8) << "partial";
  }
  StartAggregator();
  const auto history = History();
  ASSERT_EQ(history.transitions_size(), 1);
  EXPECT_EQ(history.transitions(0).verdict().action(), v1::ACTION_HOLD);
  // New transitions follow the intact records.
  aggregator_->EvaluateNow();
  EXPECT_EQ(History().transitions_size(), 2);
}

TEST_F(AggregatorServiceTest, EvaluationLoopPushesChangesAndHeartbeatsWithoutBeingAsked) {
  AggregatorConfig config = ThreeRegionConfig(dir_.path());
  config.evaluation_interval = std::chrono::milliseconds(50);
  AggregatorOptions options;  // real clock, real loop
  auto started = Aggregator::Start(config, options);
  ASSERT_TRUE(started.ok()) << started.error().ToString();
  aggregator_ = std::move(*started);
  VerdictWatcher watcher(aggregator_->InProcessChannel(), std::chrono::milliseconds(100));
  // The loop's first evaluation is a change (generation 1) pushed at once ...
  EXPECT_TRUE(watcher.WaitFor([](const auto& r) { return !r.heartbeat() && r.verdict().generation() >= 1; }));
  // ... and the unchanged verdict is repeated as heartbeats.
  EXPECT_TRUE(watcher.WaitFor([](const auto& r) { return r.heartbeat(); }));
}

// The heartbeat interval a Watch asks for is range-checked before arithmetic: seconds * 1000
// overflowed int64 for a hostile value (undefined behaviour; under UBSan, an abort).
TEST(RequestedHeartbeat, IsRangeCheckedBeforeArithmetic) {
  v1::WatchVerdictsRequest request;
  EXPECT_EQ(RequestedHeartbeat(request), 0ms);
  request.mutable_heartbeat_interval()->set_seconds(1);
  request.mutable_heartbeat_interval()->set_nanos(500'000'000);
  EXPECT_EQ(RequestedHeartbeat(request), 1500ms);
  request.mutable_heartbeat_interval()->set_seconds(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(RequestedHeartbeat(request), VerdictBroadcaster::kMaxHeartbeat);
  request.mutable_heartbeat_interval()->set_seconds(std::numeric_limits<int64_t>::min());
  EXPECT_EQ(RequestedHeartbeat(request), 0ms);
  request.mutable_heartbeat_interval()->set_seconds(0);
  request.mutable_heartbeat_interval()->set_nanos(std::numeric_limits<int32_t>::max());
  EXPECT_EQ(RequestedHeartbeat(request), 999ms);
}

TEST_F(AggregatorServiceTest, WatchWithAHugeHeartbeatIntervalGetsVerdicts) {
  StartAggregator();
  v1::WatchVerdictsRequest request;
  request.mutable_heartbeat_interval()->set_seconds(std::numeric_limits<int64_t>::max());
  request.mutable_heartbeat_interval()->set_nanos(999'999'999);
  auto stub = v1::Verdicts::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + SanitizerScaled(10s));
  auto reader = stub->Watch(&context, request);
  v1::WatchVerdictsResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_FALSE(response.heartbeat());
  context.TryCancel();
  reader->Finish();
}

TEST_F(AggregatorServiceTest, ShutdownEndsOpenStreamsPromptly) {
  StartAggregator();
  VerdictWatcher watcher(channel_);
  ASSERT_TRUE(watcher.WaitFor([](const auto&) { return true; }));
  TestAgent agent(channel_, TwelveAgents()[0], 7);
  ASSERT_TRUE(agent.Connect());
  const auto started = std::chrono::steady_clock::now();
  aggregator_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  auto status = watcher.WaitForEnd();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(agent.Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

// Each report is counted under its own result (the series are made at start and picked by
// status per report): 12 agents x 3 windows accepted, nothing under the other results.
TEST_F(AggregatorServiceTest, ReportsAreCountedUnderTheirResult) {
  StartAggregator();
  TwelveAgentFleet fleet(*aggregator_, clock_, channel_);
  ASSERT_TRUE(fleet.ConnectAll());
  for (int window = 0; window < 3; ++window) fleet.Step();
  const std::string metrics = HttpGet(aggregator_->metrics_port(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr("regionpulse_aggregator_reports_total{result=\"accepted\"} 36\n"));
  EXPECT_THAT(metrics, HasSubstr("regionpulse_aggregator_reports_total{result=\"duplicate\"} 0\n"));
  EXPECT_THAT(metrics, HasSubstr("regionpulse_aggregator_reports_total{result=\"sequence_backwards\"} 0\n"));
}

TEST_F(AggregatorServiceTest, MetricsShowAgentsReportsVerdictAndRegionStates) {
  StartAggregator();
  TwelveAgentFleet fleet(*aggregator_, clock_, channel_);
  ASSERT_TRUE(fleet.ConnectAll());
  ASSERT_GT(StepUntilStay(fleet), 0);
  const std::string metrics = HttpGet(aggregator_->metrics_port(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr("regionpulse_aggregator_agents{state=\"reporting\"} 12"));
  EXPECT_THAT(metrics, HasSubstr("regionpulse_aggregator_reports_total{result=\"accepted\"}"));
  EXPECT_THAT(metrics, HasSubstr("regionpulse_aggregator_verdict_action{action=\"STAY\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("regionpulse_aggregator_region_state{region=\"us-east-1\",state=\"HEALTHY\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("regionpulse_aggregator_streams{kind=\"ingest\"} 12"));
  EXPECT_THAT(HttpGet(aggregator_->metrics_port(), "/readyz"), HasSubstr("200 OK"));
  EXPECT_THAT(HttpGet(aggregator_->metrics_port(), "/healthz"), HasSubstr("200 OK"));
}

// Every tick lands in the histogram, not only the last one in the gauge: a load test reads tick
// percentiles between two scrapes from it.
TEST_F(AggregatorServiceTest, EvaluationDurationHistogramCountsEveryTick) {
  StartAggregator();
  for (int tick = 0; tick < 3; ++tick) {
    clock_.Advance(1s);
    aggregator_->EvaluateNow();
  }
  const std::string metrics = HttpGet(aggregator_->metrics_port(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr("# TYPE regionpulse_aggregator_evaluation_duration_seconds histogram"));
  EXPECT_THAT(metrics, HasSubstr("regionpulse_aggregator_evaluation_duration_seconds_count 3\n"));
  EXPECT_THAT(metrics,
              HasSubstr("regionpulse_aggregator_evaluation_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
  EXPECT_THAT(metrics, HasSubstr("regionpulse_aggregator_evaluation_duration_seconds_bucket{le=\"0.001\"}"));
}

// A failed fdatasync of the history is an error /readyz shows; the transition is kept and
// written at a later tick, and readiness comes back by itself.
TEST_F(AggregatorServiceTest, HistorySyncFailureMakesReadyzFailUntilAWriteSucceeds) {
  auto fail_sync = std::make_shared<std::atomic<bool>>(true);
  AggregatorOptions options;
  options.clock = clock_.AsFunction();
  options.evaluation_loop = false;
  options.history_file_ops.fdatasync = [fail_sync](int fd) {
    if (!*fail_sync) return ::fdatasync(fd);
    errno = EIO;
    return -1;
  };
  auto started = Aggregator::Start(ThreeRegionConfig(dir_.path()), options);
  ASSERT_TRUE(started.ok()) << started.error().ToString();
  aggregator_ = std::move(*started);
  channel_ = aggregator_->InProcessChannel();
  aggregator_->EvaluateNow();  // the first verdict is a transition; its write fails
  const std::string readyz = HttpGet(aggregator_->metrics_port(), "/readyz");
  EXPECT_THAT(readyz, HasSubstr("503"));
  EXPECT_THAT(readyz, HasSubstr("verdict history not durable"));
  EXPECT_THAT(readyz, HasSubstr("fdatasync"));
  EXPECT_EQ(History().transitions_size(), 0);
  *fail_sync = false;
  clock_.Advance(1s);
  aggregator_->EvaluateNow();  // no change, but the waiting transition is written now
  EXPECT_THAT(HttpGet(aggregator_->metrics_port(), "/readyz"), HasSubstr("200 OK"));
  EXPECT_EQ(History().transitions_size(), 1);
}

}  // namespace
}  // namespace regionpulse
