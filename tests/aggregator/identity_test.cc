// Evidence only from proven agents (issue 19), over real gRPC: a Hello is refused when it
// claims another node or region than its client certificate, comes from a region that is not
// configured, advertises an endpoint outside its region, or names a node another instance
// streams live; an invented region cannot hold up or receive a FAILOVER; Verdicts and Query
// need a certificate from the read CA. Certificates are made at test time
// (tests/support/tls_certificates.h).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <fstream>

#include "aggregator/peer_identity.h"
#include "tests/support/http_get.h"
#include "tests/support/in_process_aggregator.h"
#include "tests/support/poll_until.h"
#include "tests/support/sanitizer_slowdown.h"
#include "tests/support/tls_certificates.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

using test::AgentSpec;
using test::HttpGet;
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
using ::testing::Not;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// --- The certificate identity, pure.

TEST(NodeIdentityUri, RoundTripsAndRejectsOtherUris) {
  const CertifiedNode node{"eu-west-1", "node-7"};
  EXPECT_EQ(NodeIdentityUri(node), "spiffe://regionpulse/region/eu-west-1/node/node-7");
  EXPECT_EQ(ParseNodeIdentityUri(NodeIdentityUri(node)), node);
  EXPECT_FALSE(ParseNodeIdentityUri("spiffe://other/region/eu-west-1/node/node-7"));
  EXPECT_FALSE(ParseNodeIdentityUri("spiffe://regionpulse/region/eu-west-1/node/"));
  EXPECT_FALSE(ParseNodeIdentityUri("spiffe://regionpulse/region/eu/west/node/n"));
}

TEST(NodeIdentityOf, NeedsExactlyOneNode) {
  EXPECT_THAT(NodeIdentityOf({}).error().message, HasSubstr("no URI SAN spiffe://regionpulse/region/"));
  EXPECT_THAT(NodeIdentityOf({"spiffe://regionpulse/region/a/node/x", "spiffe://regionpulse/region/a/node/y"})
                  .error()
                  .message,
              HasSubstr("more than one node"));
  auto one = NodeIdentityOf({"https://example.com", "spiffe://regionpulse/region/a/node/x"});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->node, "x");
}

TEST(IdentityMismatch, NamesClaimedAndCertified) {
  v1::Hello hello;
  hello.set_node("n2");
  hello.set_region("a");
  EXPECT_EQ(IdentityMismatch(hello, {"a", "n2"}), std::nullopt);
  EXPECT_EQ(IdentityMismatch(hello, {"a", "n1"}),
            "Hello claims node 'n2' in region 'a' but the client certificate is for node 'n1' in region 'a'");
  EXPECT_TRUE(IdentityMismatch(hello, {"b", "n2"}));
}

// --- Regions and duplicate nodes, in-process (plaintext).

class IdentityServiceTest : public ::testing::Test {
 protected:
  void StartAggregator() {
    AggregatorOptions options;
    options.clock = clock_.AsFunction();
    options.evaluation_loop = false;
    auto started = Aggregator::Start(ThreeRegionConfig(dir_.path()), options);
    ASSERT_TRUE(started.ok()) << started.error().ToString();
    aggregator_ = std::move(*started);
    channel_ = aggregator_->InProcessChannel();
  }

  std::string Metrics() { return HttpGet(aggregator_->metrics_port(), "/metrics"); }

  ScratchDirectory dir_{"identity"};
  ManualClock clock_;
  std::unique_ptr<Aggregator> aggregator_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(IdentityServiceTest, HelloFromAnUnconfiguredRegionIsRefusedAndCounted) {
  StartAggregator();
  TestAgent invented(channel_, {"mars-node-1", "mars-1", "mars-1a", "10.9.0.1"}, 1);
  EXPECT_FALSE(invented.Connect());
  const grpc::Status status = invented.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("region 'mars-1' is not a configured region"));
  EXPECT_THAT(Metrics(),
              HasSubstr("regionpulse_aggregator_hello_refusals_total{reason=\"unknown_region\"} 1"));
}

TEST_F(IdentityServiceTest, ProbeEndpointOutsideItsRegionIsRefusedWithTheReason) {
  StartAggregator();
  AgentSpec spec = TwelveAgents()[0];  // us-east-1, 10.1.0.0/16
  spec.address = "10.2.0.50";          // an eu-west-1 address
  TestAgent agent(channel_, spec, 1);
  EXPECT_FALSE(agent.Connect());
  const grpc::Status status = agent.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(),
              HasSubstr("probe_endpoint 10.2.0.50 is outside region us-east-1's CIDRs"));
  EXPECT_THAT(Metrics(),
              HasSubstr("regionpulse_aggregator_hello_refusals_total{reason=\"endpoint_outside_region\"} 1"));
}

TEST_F(IdentityServiceTest, SecondAgentForALiveNodeIsRefusedAndAcceptedOnceTheFirstStreamCloses) {
  StartAggregator();
  const AgentSpec spec = TwelveAgents()[0];
  TestAgent first(channel_, spec, 1);
  ASSERT_TRUE(first.Connect());

  TestAgent second(channel_, spec, 2);
  EXPECT_FALSE(second.Connect());
  const grpc::Status refused = second.Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(refused.error_message(), HasSubstr("node already has a live stream from "));
  EXPECT_THAT(Metrics(),
              HasSubstr("regionpulse_aggregator_hello_refusals_total{reason=\"duplicate_node\"} 1"));
  // The first keeps its registration: its reports are still stored.
  clock_.Advance(1s);
  EXPECT_TRUE(first.Send(test::MakeReport(1, clock_.Now(), {})));

  // The first stream ends; once the server has seen it end, the node is free again.
  EXPECT_TRUE(first.Finish().ok());
  EXPECT_TRUE(test::PollUntil([&] {
    TestAgent again(channel_, spec, 2);
    if (again.Connect()) return true;
    EXPECT_EQ(again.Finish().error_code(), grpc::StatusCode::ALREADY_EXISTS);
    return false;
  }));
}

TEST_F(IdentityServiceTest, InventedRegionCanNeitherBlockAFailoverNorBecomeItsTarget) {
  StartAggregator();
  TwelveAgentFleet fleet(*aggregator_, clock_, channel_);
  // Every report also names a region nobody configured: its peer unreachable from everyone
  // (the evidence that could hold up a FAILOVER) and fed replicas by us-east-1 (what would
  // make it the target).
  const AgentSpec invented{"mars-node-1", "mars-1", "mars-1a", "10.9.0.1"};
  fleet.Decorate([&](const AgentSpec& agent, v1::HealthReport& report) {
    auto* path = report.add_paths();
    path->set_peer_node(invented.node);
    path->set_peer_region(invented.region);
    path->set_probes_sent(10);
    report.add_traffic()->set_remote_region(invented.region);
    if (agent.region == "us-east-1") {
      test::AddMovingFlow(report, "orders-db", "ap-southeast-1");
      test::AddMovingFlow(report, "orders-db-mars", invented.region);
    }
  });
  ASSERT_TRUE(fleet.ConnectAll());
  // An agent of the invented region cannot join.
  TestAgent impostor(channel_, invented, 77);
  EXPECT_FALSE(impostor.Connect());
  EXPECT_EQ(impostor.Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);

  v1::Verdict verdict;
  for (int step = 0; step < 40 && verdict.action() != v1::ACTION_STAY; ++step) verdict = fleet.Step();
  ASSERT_EQ(verdict.action(), v1::ACTION_STAY) << verdict.DebugString();

  fleet.Silence("us-east-1");
  auto dark = [](const AgentSpec&, const AgentSpec& peer) {
    PeerResult result;
    result.peer = &peer;
    if (peer.region == "us-east-1") result.received_forward = result.received_reverse = 0;
    return result;
  };
  std::optional<v1::Verdict> failover;
  for (int step = 0; step < 90 && !failover; ++step) {
    verdict = fleet.Step(dark);
    if (verdict.action() == v1::ACTION_FAILOVER) failover = verdict;
  }
  ASSERT_TRUE(failover) << "an invented region held up the FAILOVER: " << verdict.DebugString();
  EXPECT_EQ(failover->target_region(), "ap-southeast-1");
  for (const auto& region : failover->regions()) EXPECT_NE(region.region(), invented.region);
  EXPECT_THAT(failover->DebugString(), Not(HasSubstr(invented.region)));
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("regionpulse_aggregator_unknown_region_entries_total{kind=\"path\"}"));
  EXPECT_THAT(metrics, HasSubstr("regionpulse_aggregator_unknown_region_entries_total{kind=\"flow\"}"));
}

// --- Certificates, over a real TLS port.

class IdentityTlsTest : public ::testing::Test {
 protected:
  void SetUp() override { certificates_ = test::MakeTestCertificates(dir_.path()); }

  // Agents' certificates from the test CA; readers' from the other CA (read_ca false: any
  // client may read).
  void StartAggregator(bool agents_need_certificates, bool read_ca) {
    AggregatorConfig config = ThreeRegionConfig(dir_.path());
    config.plaintext = false;
    config.tls.cert_file = certificates_.server_cert;
    config.tls.key_file = certificates_.server_key;
    if (agents_need_certificates) config.tls.client_ca_file = certificates_.ca_cert;
    if (read_ca) config.tls.read_client_ca_file = certificates_.other_ca_cert;
    AggregatorOptions options;
    options.clock = clock_.AsFunction();
    options.evaluation_loop = false;
    auto started = Aggregator::Start(config, options);
    ASSERT_TRUE(started.ok()) << started.error().ToString();
    aggregator_ = std::move(*started);
  }

  // A TLS channel presenting `cert`/`key` (none when empty).
  std::shared_ptr<grpc::Channel> Channel(const std::string& cert = {}, const std::string& key = {}) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = ReadFile(certificates_.ca_cert);
    if (!cert.empty()) {
      options.pem_cert_chain = ReadFile(cert);
      options.pem_private_key = ReadFile(key);
    }
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(aggregator_->grpc_port()),
                               grpc::SslCredentials(options));
  }
  std::shared_ptr<grpc::Channel> AgentChannel() {
    return Channel(certificates_.node_client_cert, certificates_.node_client_key);
  }
  std::shared_ptr<grpc::Channel> ReaderChannel() {
    return Channel(certificates_.other_client_cert, certificates_.other_client_key);
  }

  static grpc::Status GetVerdict(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + SanitizerScaled(10s));
    v1::GetVerdictResponse response;
    return v1::Verdicts::NewStub(channel)->Get(&context, v1::GetVerdictRequest(), &response);
  }
  static grpc::Status ListAgents(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + SanitizerScaled(10s));
    v1::ListAgentsResponse response;
    return v1::Query::NewStub(channel)->ListAgents(&context, v1::ListAgentsRequest(), &response);
  }
  std::string Metrics() { return HttpGet(aggregator_->metrics_port(), "/metrics"); }

  ScratchDirectory dir_{"identity-tls"};
  test::TestCertificates certificates_;
  ManualClock clock_;
  std::unique_ptr<Aggregator> aggregator_;
};

// The node certificate is for eu-west-1-node-1 (TwelveAgents()[4]).
TEST_F(IdentityTlsTest, ForgedHelloIsRefusedNamingClaimedAndCertifiedIdentity) {
  StartAggregator(/*agents_need_certificates=*/true, /*read_ca=*/false);
  const auto agents = TwelveAgents();
  ASSERT_EQ(agents[4].node, "eu-west-1-node-1");

  TestAgent other_node(AgentChannel(), agents[5], 1);
  EXPECT_FALSE(other_node.Connect());
  grpc::Status status = other_node.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(),
              HasSubstr("claims node 'eu-west-1-node-2' in region 'eu-west-1' but the "
                        "client certificate is for node 'eu-west-1-node-1' in region "
                        "'eu-west-1'"));

  AgentSpec other_region = agents[4];
  other_region.region = "us-east-1";
  other_region.address = "10.1.0.44";
  TestAgent forged_region(AgentChannel(), other_region, 2);
  EXPECT_FALSE(forged_region.Connect());
  status = forged_region.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(),
              HasSubstr("in region 'us-east-1' but the client certificate is for node "
                        "'eu-west-1-node-1' in region 'eu-west-1'"));
  EXPECT_THAT(Metrics(),
              HasSubstr("regionpulse_aggregator_hello_refusals_total{reason=\"identity_mismatch\"} 2"));

  // The node the certificate names is accepted and reports.
  TestAgent honest(AgentChannel(), agents[4], 3);
  ASSERT_TRUE(honest.Connect());
  clock_.Advance(1s);
  EXPECT_TRUE(honest.Send(test::MakeReport(1, clock_.Now(), {})));
}

TEST_F(IdentityTlsTest, CertificateWithoutANodeIdentityCannotIngest) {
  StartAggregator(/*agents_need_certificates=*/true, /*read_ca=*/false);
  TestAgent agent(Channel(certificates_.client_cert, certificates_.client_key), TwelveAgents()[4], 1);
  EXPECT_FALSE(agent.Connect());
  const grpc::Status status = agent.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(),
              HasSubstr("no URI SAN spiffe://regionpulse/region/<region>/node/<node>"));
  EXPECT_THAT(Metrics(), HasSubstr("regionpulse_aggregator_denied_calls_total{api=\"ingest\"} 1"));
}

TEST_F(IdentityTlsTest, ReadApisNeedTheReadIdentityAndAgentsCannotRead) {
  StartAggregator(/*agents_need_certificates=*/true, /*read_ca=*/true);
  // An agent's certificate (the agents' CA) cannot read.
  auto agent = AgentChannel();
  grpc::Status status = GetVerdict(agent);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(),
              HasSubstr("need a client certificate issued by tls.read_client_ca_file"));
  EXPECT_EQ(ListAgents(agent).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  {
    VerdictWatcher watch(agent);
    auto ended = watch.WaitForEnd();
    ASSERT_TRUE(ended);
    EXPECT_EQ(ended->error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_TRUE(watch.received().empty());
  }

  // The reader's certificate reads, and watches.
  auto reader = ReaderChannel();
  EXPECT_TRUE(GetVerdict(reader).ok()) << GetVerdict(reader).error_message();
  EXPECT_TRUE(ListAgents(reader).ok());
  {
    VerdictWatcher watch(reader);
    EXPECT_TRUE(watch.WaitFor([](const v1::WatchVerdictsResponse& r) { return r.has_verdict(); }));
  }
  // ... but cannot report.
  TestAgent impostor(reader, TwelveAgents()[4], 1);
  EXPECT_FALSE(impostor.Connect());
  status = impostor.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("issued by tls.client_ca_file"));
  // The agent itself still reports.
  TestAgent honest(agent, TwelveAgents()[4], 2);
  EXPECT_TRUE(honest.Connect());
  EXPECT_THAT(Metrics(), HasSubstr("regionpulse_aggregator_denied_calls_total{api=\"read\"} 3"));
}

TEST_F(IdentityTlsTest, WithOnlyAReadCaAgentsNeedNoCertificateButReadersDo) {
  StartAggregator(/*agents_need_certificates=*/false, /*read_ca=*/true);
  auto anonymous = Channel();
  EXPECT_EQ(GetVerdict(anonymous).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(GetVerdict(ReaderChannel()).ok());
  TestAgent agent(anonymous, TwelveAgents()[4], 1);
  EXPECT_TRUE(agent.Connect());
}

}  // namespace
}  // namespace regionpulse
