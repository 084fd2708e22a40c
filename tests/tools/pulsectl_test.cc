// pulsectl against an in-process aggregator over TCP: what it prints and the exit codes a
// script relies on (0 STAY, 3 FAILOVER, 4 HOLD, 1 usage, 2 connection).
#include <sys/wait.h>

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "tests/support/in_process_aggregator.h"
#include "tests/support/tls_certificates.h"
#include "tools/pulsectl/pulsectl.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

using test::AgentSpec;
using test::ManualClock;
using test::PeerResult;
using test::ScratchDirectory;
using test::ThreeRegionConfig;
using test::TwelveAgentFleet;

using ::testing::HasSubstr;
using ::testing::Not;

struct Outcome {
  int exit_code;
  std::string out;
  std::string err;
};

class PulsectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AggregatorOptions options;
    options.clock = clock_.AsFunction();
    options.evaluation_loop = false;
    options.status_server = false;
    auto started = Aggregator::Start(ThreeRegionConfig(dir_.path()), options);
    ASSERT_TRUE(started.ok()) << started.error().ToString();
    aggregator_ = std::move(*started);
    fleet_ = std::make_unique<TwelveAgentFleet>(*aggregator_, clock_, aggregator_->InProcessChannel());
    ASSERT_TRUE(fleet_->ConnectAll());
  }

  std::string Server() const { return "127.0.0.1:" + std::to_string(aggregator_->grpc_port()); }

  Outcome Pulsectl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", Server()});
    std::ostringstream out, err;
    const int code = pulsectl::Run(args, out, err);
    return {code, out.str(), err.str()};
  }

  void StepUntil(v1::Action action, const TwelveAgentFleet::Network& network = TwelveAgentFleet::Healthy) {
    for (int step = 0; step < 90; ++step) {
      if (fleet_->Step(network).action() == action) return;
    }
    FAIL() << "verdict never became " << v1::Action_Name(action);
  }

  ScratchDirectory dir_{"aggregator"};
  ManualClock clock_;
  std::unique_ptr<Aggregator> aggregator_;
  std::unique_ptr<TwelveAgentFleet> fleet_;
};

TEST_F(PulsectlTest, StatusOfAFreshAggregatorIsHoldWithExitCode4) {
  fleet_->Step();
  const Outcome status = Pulsectl({"status"});
  EXPECT_EQ(status.exit_code, pulsectl::kExitHold) << status.err;
  EXPECT_THAT(status.out, HasSubstr("action      HOLD"));
  EXPECT_THAT(status.out, HasSubstr("reasons"));
  EXPECT_THAT(status.out, HasSubstr("HOLD until it has the hold time"));
}

TEST_F(PulsectlTest, StatusOfAHealthyPlatformIsStayWithATableOfRegions) {
  StepUntil(v1::ACTION_STAY);
  const Outcome status = Pulsectl({"status"});
  EXPECT_EQ(status.exit_code, pulsectl::kExitOk) << status.err;
  EXPECT_THAT(status.out, HasSubstr("action      STAY"));
  EXPECT_THAT(status.out, HasSubstr("active      us-east-1"));
  EXPECT_THAT(status.out, HasSubstr("aggregator  eu-west-1"));
  EXPECT_THAT(status.out,
              ::testing::ContainsRegex("REGION +ROLE +STATE +SINCE +QUORUM +LOSS +RTT P99 +AGENTS"));
  EXPECT_THAT(status.out, ::testing::ContainsRegex("us-east-1 +active +HEALTHY .* 2/2 +0% +[0-9.]+ ms"));
  EXPECT_TRUE(status.err.empty()) << status.err;
}

TEST_F(PulsectlTest, StatusDuringAnOutageIsFailoverWithExitCode3) {
  // us-east-1 replicates into eu-west-1, the standby the failover must go to.
  fleet_->Decorate([](const AgentSpec& agent, v1::HealthReport& report) {
    if (agent.region == "us-east-1") test::AddMovingFlow(report, "orders-db", "eu-west-1");
  });
  StepUntil(v1::ACTION_STAY);
  fleet_->Silence("us-east-1");
  StepUntil(v1::ACTION_FAILOVER, [](const AgentSpec&, const AgentSpec& peer) {
    PeerResult result;
    result.peer = &peer;
    if (peer.region == "us-east-1") result.received_forward = result.received_reverse = 0;
    return result;
  });
  const Outcome status = Pulsectl({"status"});
  EXPECT_EQ(status.exit_code, pulsectl::kExitFailover) << status.err;
  EXPECT_THAT(status.out, ::testing::ContainsRegex("action +FAILOVER to eu-west-1"));
  EXPECT_THAT(status.out, ::testing::ContainsRegex("us-east-1 +active +UNREACHABLE .* 100%"));

  const Outcome history = Pulsectl({"history"});
  EXPECT_EQ(history.exit_code, 0) << history.err;
  EXPECT_THAT(history.out, ::testing::ContainsRegex("generation [0-9]+  [A-Z]+ -> FAILOVER to"));
  EXPECT_THAT(history.out, HasSubstr("reason: "));
  EXPECT_THAT(history.out, HasSubstr("(start) -> HOLD"));
}

TEST_F(PulsectlTest, OutputJsonPrintsTheMessageOnOneLineWithTheSameExitCode) {
  StepUntil(v1::ACTION_STAY);
  const Outcome status = Pulsectl({"status", "--output", "json"});
  EXPECT_EQ(status.exit_code, pulsectl::kExitOk) << status.err;
  EXPECT_THAT(status.out, ::testing::StartsWith("{"));
  EXPECT_EQ(std::count(status.out.begin(), status.out.end(), '\n'), 1) << status.out;
  EXPECT_THAT(status.out, HasSubstr("\"action\":\"ACTION_STAY\""));
  EXPECT_THAT(status.out, HasSubstr("\"active_region\":\"us-east-1\""));
  // Zero values are printed, so a script never has to guess a missing loss.
  EXPECT_THAT(status.out, HasSubstr("\"loss\":0"));

  const Outcome matrix = Pulsectl({"matrix", "-o", "json"});
  EXPECT_EQ(matrix.exit_code, 0) << matrix.err;
  EXPECT_THAT(matrix.out, HasSubstr("\"source_region\":\"eu-west-1\""));
  EXPECT_THAT(matrix.out, HasSubstr("\"loss_forward\":0"));

  const Outcome bad = Pulsectl({"status", "--output", "yaml"});
  EXPECT_EQ(bad.exit_code, pulsectl::kExitUsage);
  EXPECT_THAT(bad.err, HasSubstr("--output: expected json or table"));
}

TEST_F(PulsectlTest, MatrixPathsAndAgentsPrintTablesWithUnits) {
  for (int i = 0; i < 3; ++i) fleet_->Step();
  const Outcome matrix = Pulsectl({"matrix"});
  EXPECT_EQ(matrix.exit_code, 0) << matrix.err;
  EXPECT_THAT(matrix.out, HasSubstr("window 60 s"));
  EXPECT_THAT(matrix.out, ::testing::ContainsRegex("SOURCE +TARGET +STATE +OBS +LOSS +RTT P50 +RTT P99\n"));
  EXPECT_THAT(matrix.out, ::testing::ContainsRegex("eu-west-1 +us-east-1 +HEALTHY +4 +0% +50.[0-9]+ ms"));
  const Outcome wide = Pulsectl({"matrix", "--wide"});
  EXPECT_THAT(wide.out, ::testing::ContainsRegex("SOURCE +TARGET +STATE +OBS +SENT +LOSS +LOSS FWD"));
  EXPECT_THAT(wide.out,
              ::testing::ContainsRegex(
                  "eu-west-1 +us-east-1 +HEALTHY +4 +480 +0% +0.00 % +0.00 % +0.00 % +- +50.[0-9]+ ms"));

  const Outcome paths = Pulsectl({"paths", "--node", "eu-west-1-node-1", "--limit", "5"});
  EXPECT_EQ(paths.exit_code, 0) << paths.err;
  EXPECT_THAT(paths.out, ::testing::ContainsRegex("SOURCE +TARGET +SENT +LOSS +RTT P50 +RTT P99\n"));
  EXPECT_THAT(paths.out, ::testing::ContainsRegex("eu-west-1-node-1 +[a-z0-9-]+-node-[0-9] +[0-9]+ +0% "));
  EXPECT_THAT(paths.out, HasSubstr("(more paths matched; raise --limit)"));
  const Outcome wide_paths = Pulsectl({"paths", "--wide", "--node", "eu-west-1-node-1", "--limit", "5"});
  EXPECT_THAT(wide_paths.out, ::testing::ContainsRegex("SOURCE +FROM +TARGET +TO +SENT +LOSS +LOSS FWD"));
  EXPECT_THAT(wide_paths.out, ::testing::ContainsRegex("eu-west-1-node-1 +eu-west-1 +"));

  const Outcome agents = Pulsectl({"agents", "--region", "ap-southeast-1"});
  EXPECT_EQ(agents.exit_code, 0) << agents.err;
  EXPECT_THAT(agents.out,
              ::testing::ContainsRegex("ap-southeast-1-node-1 +ap-southeast-1 +ap-southeast-1a +reporting"));
  EXPECT_THAT(agents.out, HasSubstr("4 of 4 agents reporting"));
  EXPECT_THAT(agents.out, Not(HasSubstr("us-east-1-node")));
}

TEST_F(PulsectlTest, AgentsShowClockSkewLateWindowsAndProbesRefusedForTheirKey) {
  // One agent's windows end 20 s before they arrive (a clock behind, or a backlog): late.
  fleet_->Decorate([](const test::AgentSpec& spec, v1::HealthReport& report) {
    if (spec.node != "ap-southeast-1-node-2") return;
    *report.mutable_window_start() =
        ToTimestamp(FromTimestamp(report.window_start()) - std::chrono::seconds(20));
    *report.mutable_window_end() = ToTimestamp(FromTimestamp(report.window_end()) - std::chrono::seconds(20));
    report.mutable_status()->set_probes_refused_wrong_key(42);
  });
  for (int i = 0; i < 3; ++i) fleet_->Step();
  const Outcome agents = Pulsectl({"agents", "--region", "ap-southeast-1"});
  EXPECT_EQ(agents.exit_code, 0) << agents.err;
  EXPECT_THAT(agents.out, ::testing::ContainsRegex("SEQUENCE +CLOCK SKEW +LATE +PLAN"));
  EXPECT_THAT(agents.out, ::testing::ContainsRegex("ap-southeast-1-node-2 .* 3 +20 s +3 +"));
  EXPECT_THAT(agents.out, ::testing::ContainsRegex("ap-southeast-1-node-1 .* 3 +0 s +0 +"));
  // A reflector that refused probes for their key says so, apart from loss.
  EXPECT_THAT(agents.out, HasSubstr("ap-southeast-1-node-2: refused: wrong key, 42 probes"));
  EXPECT_THAT(agents.out, Not(HasSubstr("ap-southeast-1-node-1: refused")));
}

TEST_F(PulsectlTest, PathsAndMatrixShowWhichWayProbesAreLost) {
  // eu-west-1-node-1's probes reach us-east-1-node-1 and its replies are lost on the way back;
  // ap-southeast-1-node-1 gets nothing back from it and cannot tell why (the fleet's agents do
  // not report what their reflectors received).
  const auto network = [](const AgentSpec& observer, const AgentSpec& peer) {
    PeerResult result;
    result.peer = &peer;
    if (peer.node == "us-east-1-node-1" && observer.node == "eu-west-1-node-1") result.received_reverse = 0;
    return result;
  };
  fleet_->Decorate([](const AgentSpec& agent, v1::HealthReport& report) {
    if (agent.node != "ap-southeast-1-node-1") return;
    for (auto& path : *report.mutable_paths()) {
      if (path.peer_node() != "us-east-1-node-1") continue;
      path.set_received_forward(0);
      path.set_received_reverse(0);
      path.set_lost_direction_unknown(path.probes_sent());
      path.clear_rtt_kernel();
      path.clear_rtt_user();
    }
  });
  for (int i = 0; i < 3; ++i) fleet_->Step(network);

  // The narrow view: all of the loss in one cell, with its direction.
  const Outcome paths = Pulsectl({"paths", "--region", "us-east-1", "--limit", "2"});
  EXPECT_EQ(paths.exit_code, 0) << paths.err;
  EXPECT_THAT(paths.out, ::testing::ContainsRegex("ap-southeast-1-node-1 +us-east-1-node-1 +30 +100% \\? "));
  EXPECT_THAT(paths.out, ::testing::ContainsRegex("eu-west-1-node-1 +us-east-1-node-1 +30 +100% rev "));
  EXPECT_THAT(paths.out, HasSubstr("?: the target did not report what it received"));
  const Outcome matrix = Pulsectl({"matrix"});
  EXPECT_EQ(matrix.exit_code, 0) << matrix.err;
  EXPECT_THAT(matrix.out, ::testing::ContainsRegex("eu-west-1 +us-east-1 +[A-Z]+ +4 +6.[23]% rev "));
  EXPECT_THAT(matrix.out, ::testing::ContainsRegex("ap-southeast-1 +us-east-1 +[A-Z]+ +4 +6.[23]% \\? "));
  EXPECT_THAT(matrix.out, ::testing::ContainsRegex("eu-west-1 +ap-southeast-1 +HEALTHY +4 +0% "));
  // Every line of the narrow views fits a terminal.
  for (const std::string& out : {paths.out, matrix.out}) {
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) EXPECT_LE(line.size(), 80u) << line;
  }

  // --wide: each direction in its own column.
  const Outcome wide_paths = Pulsectl({"paths", "--wide", "--region", "us-east-1", "--limit", "2"});
  EXPECT_THAT(wide_paths.out,
              ::testing::ContainsRegex("SENT +LOSS +LOSS FWD +LOSS REV +LOSS \\? +DIR +RTT P50"));
  EXPECT_THAT(wide_paths.out,
              ::testing::ContainsRegex("ap-southeast-1-node-1 +ap-southeast-1 +us-east-1-node-1 "
                                       "+us-east-1 +30 +100% \\? +0.00 % +0.00 % +100.00 % +\\? "));
  EXPECT_THAT(wide_paths.out,
              ::testing::ContainsRegex("eu-west-1-node-1 +eu-west-1 +us-east-1-node-1 +us-east-1 "
                                       "+30 +100% rev +0.00 % +100.00 % +0.00 % +rev "));
  const Outcome wide_matrix = Pulsectl({"matrix", "--wide"});
  EXPECT_THAT(wide_matrix.out,
              ::testing::ContainsRegex(
                  "eu-west-1 +us-east-1 +[A-Z]+ +4 +480 +6.[23]% rev +0.00 % +6.25 % +0.00 % +rev "));
  EXPECT_THAT(wide_matrix.out,
              ::testing::ContainsRegex(
                  "ap-southeast-1 +us-east-1 +[A-Z]+ +4 +480 +6.[23]% \\? +0.00 % +0.00 % +6.25 % +\\? "));
}

// ap-southeast-1-node-1 signs with a key us-east-1-node-1 does not hold: it hears nothing back,
// and us-east-1-node-1's reflector reports refusing its session's probes for their key. The
// path and the cell show them refused, and no loss.
TEST_F(PulsectlTest, PathsAndMatrixShowProbesRefusedForTheirKeyAsRefusedNotLost) {
  fleet_->Decorate([](const AgentSpec& agent, v1::HealthReport& report) {
    if (agent.node == "ap-southeast-1-node-1") {
      for (auto& path : *report.mutable_paths()) {
        if (path.peer_node() != "us-east-1-node-1") continue;
        path.mutable_source()->set_address("10.99.0.1");
        path.mutable_source()->set_port(40000);
        path.set_ssid(7);
        path.set_received_forward(0);
        path.set_received_reverse(0);
        path.set_lost_direction_unknown(path.probes_sent());
        path.clear_rtt_kernel();
        path.clear_rtt_user();
      }
    }
    if (agent.node == "us-east-1-node-1") {
      v1::ReflectedStats* refused = report.add_reflected();
      refused->mutable_sender()->set_address("10.99.0.1");
      refused->mutable_sender()->set_port(40000);
      refused->set_ssid(7);
      refused->set_refused_wrong_key(10);
    }
  });
  for (int i = 0; i < 3; ++i) fleet_->Step();

  const Outcome paths = Pulsectl({"paths", "--node", "ap-southeast-1-node-1", "--region", "us-east-1"});
  EXPECT_EQ(paths.exit_code, 0) << paths.err;
  EXPECT_THAT(paths.out, ::testing::ContainsRegex("ap-southeast-1-node-1 +us-east-1-node-1 +30 +0% "));
  EXPECT_THAT(paths.out,
              HasSubstr("ap-southeast-1-node-1 -> us-east-1-node-1 refused: wrong key 30 (not loss)"));
  const Outcome wide_paths =
      Pulsectl({"paths", "--wide", "--node", "ap-southeast-1-node-1", "--region", "us-east-1"});
  EXPECT_THAT(wide_paths.out, ::testing::ContainsRegex("LAST WINDOW +REFUSED\n"));
  EXPECT_THAT(wide_paths.out,
              ::testing::ContainsRegex("us-east-1-node-1 +us-east-1 +30 +0% .* wrong key 30\n"));

  const Outcome matrix = Pulsectl({"matrix"});
  EXPECT_THAT(matrix.out, ::testing::ContainsRegex("ap-southeast-1 +us-east-1 +[A-Z]+ +4 +0% "));
  EXPECT_THAT(matrix.out, HasSubstr("ap-southeast-1 -> us-east-1 refused: wrong key 30 (not loss)"));
  EXPECT_THAT(matrix.out, Not(HasSubstr("eu-west-1 -> us-east-1 refused")));
}

TEST_F(PulsectlTest, FlowsShowRateStalenessAndRisk) {
  fleet_->Decorate([](const AgentSpec& agent, v1::HealthReport& report) {
    if (agent.node != "us-east-1-node-1") return;
    auto* flow = report.add_flows();
    flow->set_name("postgres-replication");
    flow->set_remote_region("eu-west-1");
    flow->set_bytes_acked(2 * 1024 * 1024);
    flow->set_connections(1);
    flow->set_expected_min_rate_bps(1024 * 1024);
    *flow->mutable_srtt() = ToDuration(std::chrono::milliseconds(70));
    flow->set_bytes_outstanding(6 * 1024);
  });
  for (int i = 0; i < 3; ++i) fleet_->Step();
  const Outcome flows = Pulsectl({"flows"});
  EXPECT_EQ(flows.exit_code, 0) << flows.err;
  EXPECT_THAT(flows.out, ::testing::ContainsRegex("NODE +FLOW +TO +RATE +AGE +UNACKED +AT RISK"));
  EXPECT_THAT(flows.out,
              ::testing::ContainsRegex(
                  "us-east-1-node-1 +postgres-replication +eu-west-1 +[0-9.]+ [KM]iB/s +0 s +6.0 KiB +no"));
  const Outcome wide = Pulsectl({"flows", "--wide"});
  EXPECT_THAT(wide.out, ::testing::ContainsRegex("NODE +REGION +FLOW +TO +RATE +MIN RATE +SRTT"));
  EXPECT_THAT(wide.out, ::testing::ContainsRegex("us-east-1-node-1 +us-east-1 +postgres-replication "
                                                 "+eu-west-1 +[0-9.]+ [KM]iB/s +1.0 MiB/s +70.00 ms"));
  EXPECT_THAT(wide.out, ::testing::ContainsRegex("AGE +UNACKED +CONNS"));
  EXPECT_THAT(wide.out, ::testing::ContainsRegex("0 s +6.0 KiB +1 +no"));
  const Outcome none = Pulsectl({"flows", "--name", "no-such-flow"});
  EXPECT_THAT(none.out, HasSubstr("no replication flows reported"));
}

TEST_F(PulsectlTest, WatchPrintsTheCurrentVerdictAndStopsAfterCount) {
  StepUntil(v1::ACTION_STAY);
  const Outcome watch = Pulsectl({"watch", "--count", "1"});
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  EXPECT_THAT(watch.out, ::testing::ContainsRegex("generation [0-9]+  STAY"));
  EXPECT_EQ(std::count(watch.out.begin(), watch.out.end(), '\n'), 1);

  const Outcome heartbeats = Pulsectl({"watch", "--count", "2", "--heartbeats", "--heartbeat", "100ms"});
  EXPECT_EQ(heartbeats.exit_code, 0) << heartbeats.err;
  EXPECT_THAT(heartbeats.out, HasSubstr("(heartbeat)"));
}

TEST_F(PulsectlTest, UnreachableAggregatorExitsWith2AndSaysWhy) {
  std::ostringstream out, err;
  // Port 1 on loopback: nothing listens there.
  const int code = pulsectl::Run({"--server", "127.0.0.1:1", "--timeout", "2s", "status"}, out, err);
  EXPECT_EQ(code, pulsectl::kExitConnection);
  EXPECT_THAT(err.str(), HasSubstr("127.0.0.1:1"));
  EXPECT_THAT(err.str(), ::testing::AnyOf(HasSubstr("unreachable"), HasSubstr("no answer")));
}

TEST_F(PulsectlTest, UsageErrorsExitWith1AndHelpDocumentsTheExitCodes) {
  std::ostringstream out, err;
  EXPECT_EQ(pulsectl::Run({}, out, err), pulsectl::kExitUsage);
  EXPECT_EQ(pulsectl::Run({"frobnicate"}, out, err), pulsectl::kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("unknown command 'frobnicate'"));
  EXPECT_EQ(pulsectl::Run({"matrix", "--window", "60"}, out, err), pulsectl::kExitUsage);
  EXPECT_EQ(pulsectl::Run({"status", "--bogus"}, out, err), pulsectl::kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("--bogus: unknown flag"));
  EXPECT_EQ(pulsectl::Run({"status", "--heartbeats=yes", "--limit"}, out, err), pulsectl::kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("--heartbeats: takes no value\n--limit: needs a value"));
  EXPECT_EQ(pulsectl::Run({"status", "matrix"}, out, err), pulsectl::kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("matrix: unexpected argument"));
  std::ostringstream help;
  EXPECT_EQ(pulsectl::Run({"--help"}, help, err), pulsectl::kExitOk);
  for (const char* line :
       {"0  success; for status: the verdict is STAY", "1  usage error", "2  the aggregator could not",
        "3  status: the verdict is FAILOVER", "4  status: the verdict is HOLD"}) {
    EXPECT_THAT(help.str(), HasSubstr(line));
  }
}

TEST_F(PulsectlTest, TheBinaryExitsWithTheVerdictCode) {
  fleet_->Step();
  const std::string command = std::string(PULSECTL_BINARY) + " --server " + Server() + " status > /dev/null";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), pulsectl::kExitHold);
}

// An in-process aggregator serving TLS with the test CA's server certificate; readers must
// present a certificate from `read_client_ca_file` when it is set.
std::unique_ptr<Aggregator> StartTlsAggregator(const ScratchDirectory& dir,
                                               const test::TestCertificates& certificates,
                                               const std::string& read_client_ca_file = "") {
  AggregatorConfig config = ThreeRegionConfig(dir.path());
  config.plaintext = false;
  config.tls.cert_file = certificates.server_cert;
  config.tls.key_file = certificates.server_key;
  config.tls.read_client_ca_file = read_client_ca_file;
  AggregatorOptions options;
  options.evaluation_loop = false;
  options.status_server = false;
  auto aggregator = Aggregator::Start(config, options);
  if (!aggregator.ok()) {
    ADD_FAILURE() << aggregator.error().ToString();
    return nullptr;
  }
  return std::move(*aggregator);
}

TEST(PulsectlTls, TalksToATlsAggregatorWithTheCaAndFailsWithout) {
  ScratchDirectory dir("aggregator");
  const test::TestCertificates certificates = test::MakeTestCertificates(dir.path());
  auto aggregator = StartTlsAggregator(dir, certificates);
  ASSERT_NE(aggregator, nullptr);
  const std::string server = "127.0.0.1:" + std::to_string(aggregator->grpc_port());

  std::ostringstream out, err;
  EXPECT_EQ(pulsectl::Run({"--server", server, "--ca", certificates.ca_cert, "status"}, out, err),
            pulsectl::kExitHold)
      << err.str();
  EXPECT_THAT(out.str(), HasSubstr("action      HOLD"));
  std::ostringstream plain_out, plain_err;
  EXPECT_EQ(pulsectl::Run({"--server", server, "--timeout", "2s", "status"}, plain_out, plain_err),
            pulsectl::kExitConnection);
}

TEST(PulsectlTls, MissingCertificateFileStopsTheAggregatorFromStarting) {
  ScratchDirectory dir("aggregator");
  AggregatorConfig config = ThreeRegionConfig(dir.path());
  config.plaintext = false;
  config.tls.cert_file = dir.path() + "/absent.pem";
  config.tls.key_file = dir.path() + "/absent.key";
  auto aggregator = Aggregator::Start(config, AggregatorOptions{});
  ASSERT_FALSE(aggregator.ok());
  EXPECT_THAT(aggregator.error().ToString(), HasSubstr("absent.pem"));
}

TEST(PulsectlTls, PresentsAClientCertificateToAnAggregatorThatAuthorisesReaders) {
  ScratchDirectory dir("aggregator");
  const test::TestCertificates certificates = test::MakeTestCertificates(dir.path());
  // Readers' certificates come from the other CA.
  auto aggregator = StartTlsAggregator(dir, certificates, certificates.other_ca_cert);
  ASSERT_NE(aggregator, nullptr);
  const std::string server = "127.0.0.1:" + std::to_string(aggregator->grpc_port());

  std::ostringstream out, err;
  EXPECT_EQ(pulsectl::Run({"--server", server, "--ca", certificates.ca_cert, "--cert",
                           certificates.other_client_cert, "--key", certificates.other_client_key, "status"},
                          out, err),
            pulsectl::kExitHold)
      << err.str();
  EXPECT_THAT(out.str(), HasSubstr("action      HOLD"));

  std::ostringstream anonymous_out, anonymous_err;
  EXPECT_EQ(pulsectl::Run({"--server", server, "--ca", certificates.ca_cert, "status"}, anonymous_out,
                          anonymous_err),
            pulsectl::kExitConnection);
  EXPECT_THAT(anonymous_err.str(), HasSubstr("tls.read_client_ca_file"));
}

TEST(PulsectlTls, CertWithoutKeyOrCaIsAUsageError) {
  std::ostringstream out, err;
  EXPECT_EQ(pulsectl::Run({"--ca", "/ca", "--cert", "/c", "status"}, out, err), pulsectl::kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("needs --cert and --key together"));
  std::ostringstream out2, err2;
  EXPECT_EQ(pulsectl::Run({"--cert", "/c", "--key", "/k", "status"}, out2, err2), pulsectl::kExitUsage);
  EXPECT_THAT(err2.str(), HasSubstr("needs --ca"));
}

}  // namespace
}  // namespace regionpulse
