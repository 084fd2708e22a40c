// The agent's aggregator stream over TLS against the real aggregator (in-process, listening
// on loopback), with certificates made at test time: server TLS, mutual TLS with and without
// a client certificate, a wrong CA, and TLS on one side only. Credentials come from the
// agent's own AggregatorChannelCredentials, so what is tested is what the daemon runs; and
// the regionpulse-agent binary itself with a `tls:` section in its YAML, with and without a
// client certificate.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent/aggregator_stream.h"
#include "common/component_logger.h"
#include "tests/support/agent_process.h"
#include "tests/support/in_process_aggregator.h"
#include "tests/support/poll_until.h"
#include "tests/support/silent_listener.h"
#include "tests/support/tls_certificates.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using test::PollUntil;
using test::ScratchDirectory;
using test::SilentListener;
using ::testing::HasSubstr;

constexpr uint64_t kInstance = 0x7157;

v1::Hello AgentHello() {
  v1::Hello hello;
  hello.set_node("tls-node-1");
  hello.set_region("eu-west-1");
  hello.set_zone("eu-west-1a");
  hello.set_agent_version("test");
  hello.mutable_probe_endpoint()->set_address("10.2.0.1");
  hello.mutable_probe_endpoint()->set_port(862);
  *hello.mutable_window() = ToDuration(1s);
  return hello;
}

v1::HealthReport Report(uint64_t sequence) {
  return test::MakeReport(sequence, WallClock::now(), {});
}

class AgentTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certificates_ = test::MakeTestCertificates(dir_.path());
    // What the agent logs about its stream, to check the operator is told in plain words.
    log_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(200);
    ComponentLogger("aggregator_stream")->sinks().push_back(log_);
  }
  void TearDown() override {
    auto& sinks = ComponentLogger("aggregator_stream")->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), log_), sinks.end());
  }

  TlsConfig ServerTls(bool require_client_certificate) const {
    TlsConfig tls;
    tls.cert_file = certificates_.server_cert;
    tls.key_file = certificates_.server_key;
    if (require_client_certificate) tls.client_ca_file = certificates_.ca_cert;
    // These tests are about the transport; the shared client certificate names no node
    // (identity binding: tests/aggregator/identity_test.cc).
    tls.require_node_identity = false;
    return tls;
  }

  // An aggregator on 127.0.0.1:port (0: a free port); tls disabled means plaintext.
  std::unique_ptr<Aggregator> StartAggregator(const TlsConfig& tls, uint16_t port = 0) {
    AggregatorConfig config = test::ThreeRegionConfig(dir_.path());
    config.grpc_listen = "127.0.0.1:" + std::to_string(port);
    config.tls = tls;
    config.plaintext = !tls.Enabled();
    // The agent binary's reflector listens on loopback: its endpoint must lie in its region.
    config.regions[1].cidrs.push_back("127.0.0.0/8");
    AggregatorOptions options;
    options.evaluation_loop = false;
    options.status_server = false;
    auto started = Aggregator::Start(config, options);
    if (!started.ok()) ADD_FAILURE() << "aggregator on port " << port << ": " << started.error().ToString();
    return started.ok() ? std::move(*started) : nullptr;
  }

  std::unique_ptr<AggregatorStream> StreamTo(const std::string& endpoint, const TlsSettings& tls,
                                             milliseconds connect_timeout = milliseconds(5000)) {
    auto credentials = AggregatorChannelCredentials(tls);
    if (!credentials.ok()) {
      ADD_FAILURE() << credentials.error().ToString();
      return nullptr;
    }
    AggregatorStreamOptions options;
    options.endpoint = endpoint;
    options.credentials = *credentials;
    options.tls = tls;
    // Short backoff: several attempts fit in a few seconds.
    options.backoff.initial = milliseconds(100);
    options.backoff.max = milliseconds(500);
    options.connect_timeout = connect_timeout;
    return std::make_unique<AggregatorStream>(options, AgentHello(), kInstance, nullptr);
  }

  static std::string Endpoint(const Aggregator& aggregator) {
    return "127.0.0.1:" + std::to_string(aggregator.grpc_port());
  }

  TlsSettings AgentTls(bool with_client_certificate, const std::string& ca_file) const {
    TlsSettings tls;
    tls.ca_file = ca_file;
    if (with_client_certificate) {
      tls.cert_file = certificates_.client_cert;
      tls.key_file = certificates_.client_key;
    }
    return tls;
  }

  // Nodes the aggregator has registered, from its Query service.
  static std::vector<std::string> RegisteredNodes(Aggregator& aggregator) {
    auto stub = v1::Query::NewStub(aggregator.InProcessChannel());
    grpc::ClientContext context;
    v1::ListAgentsResponse response;
    grpc::Status status = stub->ListAgents(&context, v1::ListAgentsRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<std::string> nodes;
    for (const auto& agent : response.agents()) nodes.push_back(agent.node());
    return nodes;
  }

  // Starts `stream`, pushes reports 1..count and checks that `aggregator` acknowledges all of
  // them and has registered this agent's node.
  static void ExpectReportsDelivered(AggregatorStream& stream, Aggregator& aggregator, uint64_t count) {
    stream.Start();
    for (uint64_t sequence = 1; sequence <= count; ++sequence) stream.Push(Report(sequence));
    ASSERT_TRUE(stream.WaitAcked(count, 10s)) << stream.Stats().last_error;
    EXPECT_THAT(RegisteredNodes(aggregator), ::testing::ElementsAre("tls-node-1"));
  }

  std::string LoggedLines() const {
    std::string all;
    for (const auto& line : log_->last_formatted()) all += line;
    return all;
  }

  // Waits until the stream has failed `attempts` times without ever coming up.
  static AggregatorStreamStats WaitForFailedAttempts(AggregatorStream& stream, uint64_t attempts,
                                                     milliseconds timeout) {
    PollUntil([&] { return stream.Stats().disconnects >= attempts; }, timeout);
    return stream.Stats();
  }

  // TLS on one side only: the first attempt fails within 5 s, says why, keeps the report, and
  // the aggregator registers nobody.
  void ExpectOneSidedTlsRefusedFast(const TlsConfig& server, const TlsSettings& agent,
                                    const std::string& error_words) {
    auto aggregator = StartAggregator(server);
    ASSERT_NE(aggregator, nullptr);
    auto stream = StreamTo(Endpoint(*aggregator), agent);
    ASSERT_NE(stream, nullptr);
    const auto started = std::chrono::steady_clock::now();
    stream->Start();
    stream->Push(Report(1));

    auto stats = WaitForFailedAttempts(*stream, 1, 5s);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    ASSERT_GE(stats.disconnects, 1u);
    EXPECT_EQ(stats.connects, 0u);
    EXPECT_THAT(stats.last_error, HasSubstr(error_words));
    EXPECT_EQ(stats.buffered, 1u);
    EXPECT_THAT(RegisteredNodes(*aggregator), ::testing::IsEmpty());
  }

  ScratchDirectory dir_{"aggregator"};
  test::TestCertificates certificates_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log_;
};

TEST_F(AgentTlsTest, ServerTlsWithTheRightCaDeliversReports) {
  auto aggregator = StartAggregator(ServerTls(false));
  ASSERT_NE(aggregator, nullptr);
  auto stream = StreamTo(Endpoint(*aggregator), AgentTls(false, certificates_.ca_cert));
  ASSERT_NE(stream, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectReportsDelivered(*stream, *aggregator, 3));
  auto stats = stream->Stats();
  EXPECT_TRUE(stats.up);
  EXPECT_EQ(stats.connects, 1u);
  EXPECT_EQ(stats.buffered, 0u);
}

// The certificate names localhost as well as 127.0.0.1: a DNS target verifies too.
TEST_F(AgentTlsTest, ServerTlsVerifiesTheHostNameOfTheTarget) {
  auto aggregator = StartAggregator(ServerTls(false));
  ASSERT_NE(aggregator, nullptr);
  auto stream = StreamTo("localhost:" + std::to_string(aggregator->grpc_port()),
                         AgentTls(false, certificates_.ca_cert));
  ASSERT_NE(stream, nullptr);
  ExpectReportsDelivered(*stream, *aggregator, 1);
}

TEST_F(AgentTlsTest, MutualTlsWithAClientCertificateDeliversReports) {
  auto aggregator = StartAggregator(ServerTls(true));
  ASSERT_NE(aggregator, nullptr);
  auto stream = StreamTo(Endpoint(*aggregator), AgentTls(true, certificates_.ca_cert));
  ASSERT_NE(stream, nullptr);
  ExpectReportsDelivered(*stream, *aggregator, 3);
}

// Refused without a client certificate: the agent says why, keeps retrying with backoff and
// keeps every report; once the aggregator stops asking for one, all of them arrive.
TEST_F(AgentTlsTest, MutualTlsWithoutAClientCertificateIsRefusedAndNothingIsLost) {
  auto aggregator = StartAggregator(ServerTls(true));
  ASSERT_NE(aggregator, nullptr);
  const uint16_t port = aggregator->grpc_port();
  auto stream = StreamTo(Endpoint(*aggregator), AgentTls(false, certificates_.ca_cert));
  ASSERT_NE(stream, nullptr);
  stream->Start();
  for (uint64_t sequence = 1; sequence <= 5; ++sequence) stream->Push(Report(sequence));

  auto stats = WaitForFailedAttempts(*stream, 3, 10s);
  EXPECT_GE(stats.disconnects, 3u) << "the agent stopped retrying";
  EXPECT_EQ(stats.connects, 0u);
  EXPECT_FALSE(stats.up);
  EXPECT_THAT(stats.last_error, HasSubstr("client certificate"));
  EXPECT_THAT(LoggedLines(), HasSubstr("client certificate"));
  EXPECT_THAT(LoggedLines(), HasSubstr(Endpoint(*aggregator)));
  EXPECT_EQ(stats.buffered, 5u);
  EXPECT_EQ(stats.reports_dropped, 0u);
  EXPECT_THAT(RegisteredNodes(*aggregator), ::testing::IsEmpty());

  // Same port, server TLS only: the retrying stream gets through with every report.
  aggregator.reset();
  aggregator = StartAggregator(ServerTls(false), port);
  ASSERT_NE(aggregator, nullptr);
  stream->Push(Report(6));
  ASSERT_TRUE(stream->WaitAcked(6, 10s)) << stream->Stats().last_error;
  EXPECT_EQ(stream->Stats().reports_dropped, 0u);
}

TEST_F(AgentTlsTest, MutualTlsWithAClientCertificateOfAnotherCaIsRefusedNamingTheFile) {
  auto aggregator = StartAggregator(ServerTls(true));
  ASSERT_NE(aggregator, nullptr);
  TlsSettings tls = AgentTls(false, certificates_.ca_cert);
  tls.cert_file = certificates_.other_client_cert;
  tls.key_file = certificates_.other_client_key;
  auto stream = StreamTo(Endpoint(*aggregator), tls);
  ASSERT_NE(stream, nullptr);
  stream->Start();
  stream->Push(Report(1));

  auto stats = WaitForFailedAttempts(*stream, 2, 10s);
  EXPECT_GE(stats.disconnects, 2u);
  EXPECT_EQ(stats.connects, 0u);
  EXPECT_THAT(stats.last_error, HasSubstr("does not accept the client certificate"));
  EXPECT_THAT(stats.last_error, HasSubstr(certificates_.other_client_cert));
  EXPECT_EQ(stats.buffered, 1u);
  EXPECT_THAT(RegisteredNodes(*aggregator), ::testing::IsEmpty());
}

TEST_F(AgentTlsTest, AgentTrustingAnotherCaIsRefusedNamingTheCertificateProblem) {
  auto aggregator = StartAggregator(ServerTls(false));
  ASSERT_NE(aggregator, nullptr);
  auto stream = StreamTo(Endpoint(*aggregator), AgentTls(true, certificates_.other_ca_cert));
  ASSERT_NE(stream, nullptr);
  stream->Start();
  stream->Push(Report(1));

  auto stats = WaitForFailedAttempts(*stream, 2, 10s);
  EXPECT_GE(stats.disconnects, 2u);
  EXPECT_EQ(stats.connects, 0u);
  EXPECT_THAT(stats.last_error, HasSubstr("certificate"));
  EXPECT_THAT(stats.last_error, HasSubstr("tls.ca_file"));
  EXPECT_THAT(LoggedLines(), HasSubstr("certificate"));
  EXPECT_EQ(stats.buffered, 1u);
  EXPECT_THAT(RegisteredNodes(*aggregator), ::testing::IsEmpty());
}

TEST_F(AgentTlsTest, TlsAgentAgainstAPlaintextAggregatorFailsClearlyAndFast) {
  ExpectOneSidedTlsRefusedFast(TlsConfig{}, AgentTls(false, certificates_.ca_cert), "plaintext");
}

TEST_F(AgentTlsTest, PlaintextAgentAgainstATlsAggregatorFailsClearlyAndFast) {
  ExpectOneSidedTlsRefusedFast(ServerTls(false), TlsSettings{}, "TLS");
}

// The attempt is given the whole connect timeout (not the much shorter initial backoff, which
// would cut off a slow cross-region handshake), then given up and retried.
TEST_F(AgentTlsTest, SilentPeerIsGivenUpAfterTheConnectTimeoutAndRetried) {
  SilentListener silent;
  auto stream = StreamTo(silent.target(), AgentTls(false, certificates_.ca_cert), milliseconds(1000));
  ASSERT_NE(stream, nullptr);
  const auto started = std::chrono::steady_clock::now();
  stream->Start();
  stream->Push(Report(1));

  ASSERT_TRUE(PollUntil([&] { return stream->Stats().disconnects >= 1; }, 10s));
  const auto first_failure = std::chrono::steady_clock::now() - started;
  EXPECT_GE(first_failure, milliseconds(900));  // the initial backoff is 100 ms
  EXPECT_LT(first_failure, 5s);
  auto stats = WaitForFailedAttempts(*stream, 2, 10s);
  EXPECT_GE(stats.disconnects, 2u);
  EXPECT_EQ(stats.connects, 0u);
  EXPECT_THAT(stats.last_error, HasSubstr("did not answer the TLS handshake"));
  EXPECT_THAT(stats.last_error, HasSubstr(silent.target()));
  EXPECT_EQ(stats.buffered, 1u);
}

// A UDP port nobody uses right now, for the agent's reflector.
uint16_t FreeUdpPort() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    if (fd >= 0) close(fd);
    throw std::runtime_error("no free UDP port on 127.0.0.1");
  }
  close(fd);
  return ntohs(address.sin_port);
}

// The agent binary (BPF off, reflector on loopback) reporting to `aggregator` with `tls`.
std::string AgentYaml(const std::string& node, uint16_t aggregator_port, const TlsSettings& tls,
                      const std::string& key_file) {
  std::ostringstream yaml;
  yaml << "node: " << node << "\nregion: eu-west-1\nzone: eu-west-1a\n"
       << "regions:\n  - {name: us-east-1, cidrs: [10.1.0.0/16]}\n  - {name: eu-west-1, cidrs: "
          "[10.2.0.0/16]}\n"
       << "  - {name: ap-southeast-1, cidrs: [10.3.0.0/16]}\n"
       << "probe:\n  port: " << FreeUdpPort() << "\n  listen_address: 127.0.0.1\n  key_file: " << key_file
       << "\n"
       << "window: 200ms\n"
       << "bpf:\n  enabled: false\n"
       << "status:\n  listen: 127.0.0.1:0\n"
       << "reconnect:\n  initial: 100ms\n  max: 1s\n"
       << "shutdown:\n  flush_timeout: 1s\n"
       << "aggregators: [127.0.0.1:" << aggregator_port << "]\n"
       << "tls:\n  ca_file: " << tls.ca_file << "\n";
  if (!tls.cert_file.empty())
    yaml << "  cert_file: " << tls.cert_file << "\n  key_file: " << tls.key_file << "\n";
  return yaml.str();
}

// What the aggregator knows of `node` (nullopt: never registered).
std::optional<v1::AgentInfo> AgentInfoOf(Aggregator& aggregator, const std::string& node) {
  auto stub = v1::Query::NewStub(aggregator.InProcessChannel());
  grpc::ClientContext context;
  v1::ListAgentsResponse response;
  if (!stub->ListAgents(&context, v1::ListAgentsRequest(), &response).ok()) return std::nullopt;
  for (const auto& agent : response.agents()) {
    if (agent.node() == node) return agent;
  }
  return std::nullopt;
}

TEST_F(AgentTlsTest, AgentBinaryWithAClientCertificateReportsOverMutualTls) {
  auto aggregator = StartAggregator(ServerTls(true));
  ASSERT_NE(aggregator, nullptr);
  test::ScratchDirectory scratch("tls-agent");
  std::string key_file = scratch.Write("probe.key", "00112233445566778899aabbccddeeff");
  std::string config = scratch.Write(
      "agent.yaml",
      AgentYaml("tls-binary-node", aggregator->grpc_port(), AgentTls(true, certificates_.ca_cert), key_file));
  test::AgentProcess agent(REGIONPULSE_AGENT_BINARY, "", config, scratch.path(), "tls-binary-node");

  // Several 200 ms windows stored: Hello accepted and reports acknowledged over mutual TLS.
  ASSERT_TRUE(PollUntil(
      [&] {
        auto info = AgentInfoOf(*aggregator, "tls-binary-node");
        return info && info->last_sequence() >= 3;
      },
      15s))
      << agent.Output();
  agent.Terminate();
  EXPECT_EQ(agent.Wait(15s), std::optional<int>(0)) << agent.Output();
}

TEST_F(AgentTlsTest, AgentBinaryWithoutAClientCertificateLogsWhyAndKeepsRunning) {
  auto aggregator = StartAggregator(ServerTls(true));
  ASSERT_NE(aggregator, nullptr);
  test::ScratchDirectory scratch("tls-agent");
  std::string key_file = scratch.Write("probe.key", "00112233445566778899aabbccddeeff");
  std::string config =
      scratch.Write("agent.yaml", AgentYaml("tls-binary-node", aggregator->grpc_port(),
                                            AgentTls(false, certificates_.ca_cert), key_file));
  test::AgentProcess agent(REGIONPULSE_AGENT_BINARY, "", config, scratch.path(), "tls-binary-node");

  ASSERT_TRUE(PollUntil(
      [&] { return agent.Output().find("requires a client certificate") != std::string::npos; }, 15s))
      << agent.Output();
  // Still running, still closing windows, and never registered.
  ASSERT_TRUE(agent.WaitForReports(3, 10s)) << agent.Output();
  EXPECT_TRUE(agent.Running());
  EXPECT_FALSE(AgentInfoOf(*aggregator, "tls-binary-node").has_value());
  agent.Terminate();
  // The flush on SIGTERM waits for Acks that cannot come: no longer than shutdown.flush_timeout.
  const auto terminated = std::chrono::steady_clock::now();
  EXPECT_EQ(agent.Wait(15s), std::optional<int>(0)) << agent.Output();
  EXPECT_LT(std::chrono::steady_clock::now() - terminated, 5s);
}

TEST(ConnectFailureExplanationTest, HostNameMissingFromTheCertificateIsNamed) {
  TlsSettings tls;
  tls.ca_file = "/etc/regionpulse/ca.pem";
  grpc::Status status(
      grpc::StatusCode::UNAVAILABLE,
      "failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.0.7:7700: Peer name "
      "10.0.0.7 is not in peer certificate");
  EXPECT_THAT(ConnectFailureExplanation(status, "10.0.0.7:7700", tls),
              HasSubstr("does not name host '10.0.0.7'"));
}

TEST(ConnectFailureExplanationTest, RefusedConnectionsAndOtherCodesNeedNoExplanation) {
  TlsSettings tls;
  tls.ca_file = "/etc/regionpulse/ca.pem";
  grpc::Status refused(
      grpc::StatusCode::UNAVAILABLE,
      "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:7700: Failed to "
      "connect to remote host: Connection refused");
  EXPECT_EQ(ConnectFailureExplanation(refused, "127.0.0.1:7700", tls), "");
  EXPECT_EQ(ConnectFailureExplanation(refused, "127.0.0.1:7700", TlsSettings{}), "");
  grpc::Status invalid(grpc::StatusCode::INVALID_ARGUMENT, "report 4: window_end is in the future");
  EXPECT_EQ(ConnectFailureExplanation(invalid, "127.0.0.1:7700", tls), "");
}

TEST(AggregatorChannelCredentialsTest, UnreadableFileIsNamedWithItsKey) {
  TlsSettings tls;
  tls.ca_file = "/nonexistent/regionpulse-ca.pem";
  auto credentials = AggregatorChannelCredentials(tls);
  ASSERT_FALSE(credentials.ok());
  EXPECT_THAT(credentials.error().ToString(), HasSubstr("tls.ca_file"));
  EXPECT_THAT(credentials.error().ToString(), HasSubstr("/nonexistent/regionpulse-ca.pem"));
}

}  // namespace
}  // namespace regionpulse
