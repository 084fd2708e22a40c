// The aggregator's configuration file and command line: defaults, every key, and errors that
// name the key and the problem.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "aggregator/aggregator_config.h"
#include "tests/support/in_process_aggregator.h"

namespace regionpulse {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

TEST(AggregatorConfig, EmptyDocumentMeansDefaultsAndNoRegions) {
  auto config = ParseAggregatorConfig("");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_TRUE(config->regions.empty());
  EXPECT_EQ(config->hold, 120s);
  EXPECT_EQ(config->dwell, 300s);
  EXPECT_EQ(config->matrix_window, 60s);
  EXPECT_EQ(config->evidence_window, 10s);
  EXPECT_EQ(config->probe_plan.targets_per_region, 3u);
  EXPECT_EQ(config->thresholds.min_observer_nodes, 2u);
}

TEST(AggregatorConfig, ParsesEveryKey) {
  auto config = ParseAggregatorConfig(R"(
regions:
  - name: us-east-1
    cidrs: [10.1.0.0/16, "fd00:1::/64"]
  - name: eu-west-1
    cidrs: [10.2.0.0/16]
active_region: us-east-1
own_region: eu-west-1
thresholds:
  degraded_loss: 0.1
  degraded_rtt_p99: 300ms
  unreachable_loss: 0.98
  quorum_fraction: 0.6
  min_observer_nodes: 3
  replication_staleness: 45s
hold: 2m
dwell: 400s
matrix_window: 90s
evidence_window: 4s
not_reporting_timeout: 15s
evaluation_interval: 500ms
heartbeat_interval: 2s
probe_plan:
  targets_per_region: 4
  interval: 50ms
  payload_size: 128
  rotation: 10m
history:
  path: /tmp/x/history.log
  max_file_bytes: 1MiB
  max_rotated_files: 2
listen:
  grpc: "127.0.0.1:7701"
  metrics: "[::1]:9200"
tls:
  cert_file: /etc/rp/tls.crt
  key_file: /etc/rp/tls.key
  client_ca_file: /etc/rp/ca.crt
  require_node_identity: false
  read_client_ca_file: /etc/rp/read-ca.crt
plaintext: true
)");
  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_EQ(config->regions.size(), 2u);
  EXPECT_EQ(config->regions[0].name, "us-east-1");
  EXPECT_THAT(config->regions[0].cidrs, ::testing::ElementsAre("10.1.0.0/16", "fd00:1::/64"));
  EXPECT_EQ(config->active_region, "us-east-1");
  EXPECT_EQ(config->own_region, "eu-west-1");
  EXPECT_DOUBLE_EQ(config->thresholds.degraded_loss, 0.1);
  EXPECT_EQ(config->thresholds.degraded_rtt_p99, 300ms);
  EXPECT_DOUBLE_EQ(config->thresholds.unreachable_loss, 0.98);
  EXPECT_DOUBLE_EQ(config->thresholds.quorum_fraction, 0.6);
  EXPECT_EQ(config->thresholds.min_observer_nodes, 3u);
  EXPECT_EQ(config->thresholds.replication_staleness, 45s);
  EXPECT_EQ(config->hold, 120s);
  EXPECT_EQ(config->dwell, 400s);
  EXPECT_EQ(config->matrix_window, 90s);
  EXPECT_EQ(config->evidence_window, 4s);
  EXPECT_EQ(config->not_reporting_timeout, 15s);
  EXPECT_EQ(config->evaluation_interval, 500ms);
  EXPECT_EQ(config->heartbeat_interval, 2s);
  EXPECT_EQ(config->probe_plan.targets_per_region, 4u);
  EXPECT_EQ(config->probe_plan.interval, 50ms);
  EXPECT_EQ(config->probe_plan.payload_size, 128u);
  EXPECT_EQ(config->probe_plan.rotation, 600s);
  EXPECT_EQ(config->history.path, "/tmp/x/history.log");
  EXPECT_EQ(config->history.max_file_bytes, 1u << 20);
  EXPECT_EQ(config->history.max_rotated_files, 2u);
  EXPECT_EQ(config->grpc_listen, "127.0.0.1:7701");
  EXPECT_EQ(config->metrics_listen, "[::1]:9200");
  EXPECT_TRUE(config->tls.Enabled());
  EXPECT_EQ(config->tls.client_ca_file, "/etc/rp/ca.crt");
  EXPECT_FALSE(config->tls.require_node_identity);
  EXPECT_EQ(config->tls.read_client_ca_file, "/etc/rp/read-ca.crt");
  EXPECT_TRUE(config->plaintext);
}

// The operators' reference, docs/aggregator.example.yaml, must parse, and every value it
// calls a default must be the aggregator's default.
TEST(AggregatorConfig, TheDocumentedExampleParsesAndItsDefaultsAreTheAggregators) {
  std::ifstream in(AGGREGATOR_EXAMPLE_CONFIG);
  ASSERT_TRUE(in) << AGGREGATOR_EXAMPLE_CONFIG;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto example = ParseAggregatorConfig(text);
  ASSERT_TRUE(example.ok()) << example.error().message;
  const AggregatorConfig& e = *example;
  const AggregatorConfig d;
  EXPECT_DOUBLE_EQ(e.thresholds.degraded_loss, d.thresholds.degraded_loss);
  EXPECT_EQ(e.thresholds.degraded_rtt_p99, d.thresholds.degraded_rtt_p99);
  EXPECT_DOUBLE_EQ(e.thresholds.unreachable_loss, d.thresholds.unreachable_loss);
  EXPECT_DOUBLE_EQ(e.thresholds.quorum_fraction, d.thresholds.quorum_fraction);
  EXPECT_EQ(e.thresholds.min_observer_nodes, d.thresholds.min_observer_nodes);
  EXPECT_EQ(e.thresholds.replication_staleness, d.thresholds.replication_staleness);
  EXPECT_EQ(e.hold, d.hold);
  EXPECT_EQ(e.dwell, d.dwell);
  EXPECT_EQ(e.matrix_window, d.matrix_window);
  EXPECT_EQ(e.evidence_window, d.evidence_window);
  EXPECT_EQ(e.not_reporting_timeout, d.not_reporting_timeout);
  EXPECT_EQ(e.evaluation_interval, d.evaluation_interval);
  EXPECT_EQ(e.heartbeat_interval, d.heartbeat_interval);
  EXPECT_EQ(e.probe_plan.targets_per_region, d.probe_plan.targets_per_region);
  EXPECT_EQ(e.probe_plan.interval, d.probe_plan.interval);
  EXPECT_EQ(e.probe_plan.payload_size, d.probe_plan.payload_size);
  EXPECT_EQ(e.probe_plan.rotation, d.probe_plan.rotation);
  EXPECT_EQ(e.history.path, d.history.path);
  EXPECT_EQ(e.history.max_file_bytes, d.history.max_file_bytes);
  EXPECT_EQ(e.history.max_rotated_files, d.history.max_rotated_files);
  EXPECT_EQ(e.grpc_listen, d.grpc_listen);
  EXPECT_EQ(e.metrics_listen, d.metrics_listen);
  EXPECT_EQ(e.tls.Enabled(), d.tls.Enabled());
  EXPECT_EQ(e.plaintext, d.plaintext);
  // The examples.
  ASSERT_EQ(e.regions.size(), 2u);
  EXPECT_EQ(e.active_region, "us-east-1");
  EXPECT_EQ(e.own_region, "eu-west-1");
}

struct BadConfig {
  const char* name;
  const char* yaml;
  const char* expected;  // substring of the error
};

class AggregatorConfigErrors : public ::testing::TestWithParam<BadConfig> {};

TEST_P(AggregatorConfigErrors, NameTheKeyAndTheProblem) {
  auto config = ParseAggregatorConfig(GetParam().yaml);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.error().message, HasSubstr(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    Table, AggregatorConfigErrors,
    ::testing::Values(
        BadConfig{"UnknownTopLevelKey", "hodl: 10s", "hodl: unknown key (known here: active_region, dwell,"},
        BadConfig{"UnknownNestedKey", "thresholds: {degraded_los: 0.1}",
                  "thresholds.degraded_los: unknown key"},
        BadConfig{"RatioOutOfRange", "thresholds: {degraded_loss: 1.5}",
                  "thresholds.degraded_loss: 1.5 is outside 0..1"},
        BadConfig{"DurationWithoutUnit", "hold: 120", "hold: \"120\" is not a duration"},
        BadConfig{"NegativeLikeDuration", "hold: -5s", "hold: \"-5s\" is not a duration"},
        BadConfig{"ZeroHold", "hold: 0s", "hold: 0s is outside 1s..24h"},
        BadConfig{"SubSecondHold", "hold: 1500ms", "hold: 1500ms is not a multiple of 1s"},
        BadConfig{"DwellShorterThanHold", "hold: 200s\ndwell: 100s",
                  "dwell: 100s is shorter than hold (200s)"},
        BadConfig{"EvidenceLongerThanMatrix", "matrix_window: 10s\nevidence_window: 20s",
                  "evidence_window: 20s is longer than matrix_window (10s)"},
        BadConfig{"SingleObserverQuorum", "thresholds: {min_observer_nodes: 1}",
                  "thresholds.min_observer_nodes: 1 is outside 2..100000"},
        BadConfig{"MinorityQuorum", "thresholds: {quorum_fraction: 0.3}",
                  "thresholds.quorum_fraction: 0.3 is outside 0.5..1"},
        BadConfig{"BadCidr", "regions: [{name: a, cidrs: [10.0.0.0/33]}]\nactive_region: a",
                  "regions[0].cidrs[0]: \"10.0.0.0/33\": prefix length 33 exceeds 32"},
        BadConfig{"CidrWithHostBits", "regions: [{name: a, cidrs: [10.0.0.1/8]}]\nactive_region: a",
                  "regions[0].cidrs[0]: \"10.0.0.1/8\": host bits set beyond /8"},
        BadConfig{"NotAnAddress", "regions: [{name: a, cidrs: [banana/8]}]\nactive_region: a",
                  "'banana' is not an IPv4 or IPv6 address"},
        BadConfig{
            "OverlappingCidrs",
            "regions: [{name: a, cidrs: [10.0.0.0/8]}, {name: b, cidrs: [10.1.0.0/16]}]\nactive_region: a",
            "regions[1].cidrs[0]: 10.1.0.0/16 overlaps 10.0.0.0/8 (regions[0].cidrs[0])"},
        BadConfig{
            "DuplicateRegion",
            "regions: [{name: a, cidrs: [10.0.0.0/8]}, {name: a, cidrs: [11.0.0.0/8]}]\nactive_region: a",
            "regions[1].name: \"a\" is listed twice"},
        BadConfig{"RegionWithoutCidrs", "regions: [{name: a}]\nactive_region: a",
                  "regions[0].cidrs: missing"},
        BadConfig{"UnknownActiveRegion", "regions: [{name: a, cidrs: [10.0.0.0/8]}]\nactive_region: b",
                  "active_region: \"b\" is not in regions"},
        BadConfig{"MissingActiveRegion", "regions: [{name: a, cidrs: [10.0.0.0/8]}]",
                  "active_region: missing"},
        BadConfig{"BadListen", "listen: {grpc: 'localhost'}",
                  "listen.grpc: \"localhost\": expected HOST:PORT"},
        BadConfig{"BadPort", "listen: {grpc: 'localhost:70000'}", "port '70000' is not in 0..65535"},
        BadConfig{"HalfTls", "tls: {cert_file: /a}",
                  "tls.key_file: missing (tls.cert_file and tls.key_file go together)"},
        BadConfig{"TinyHistoryFile", "history: {max_file_bytes: 100}",
                  "history.max_file_bytes: 100 is below the smallest allowed, 4096 bytes"},
        BadConfig{"HugeHistoryFile", "history: {max_file_bytes: 999999999999GiB}",
                  "history.max_file_bytes: \"999999999999GiB\" is too large"},
        BadConfig{"NotABool", "plaintext: maybe", "plaintext: \"maybe\" is not true or false"},
        BadConfig{"NotYaml", "regions: [", "not valid YAML"},
        BadConfig{"WrongShape", "thresholds: [1, 2]", "thresholds: must be a mapping, not a list"},
        BadConfig{"NotAMappingAtAll", "- hold", "config: must be a mapping, not a list"}),
    [](const auto& info) { return info.param.name; });

// Booleans follow YAML 1.2, as in the agent: a Helm value rendered as `on` is refused here and
// there alike, not read as true by one program and refused by the other.
TEST(AggregatorConfig, BooleansAreTrueOrFalseOnly) {
  for (const std::string word : {"yes", "no", "on", "off", "y", "Yes", "OFF"}) {
    auto config = ParseAggregatorConfig("plaintext: " + word);
    ASSERT_FALSE(config.ok()) << word;
    EXPECT_THAT(config.error().message,
                HasSubstr("plaintext: \"" + word + "\" is not true or false (write true or false"));
  }
  for (const std::string word : {"true", "True", "TRUE"}) {
    auto config = ParseAggregatorConfig("plaintext: " + word);
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_TRUE(config->plaintext);
  }
}

// The aggregator used to stop at the first problem; like the agent it now reports them all,
// one per line, each naming its key.
TEST(AggregatorConfig, EveryProblemIsReportedAtOnce) {
  auto config = ParseAggregatorConfig(
      "hodl: 10s\nthresholds: {degraded_loss: 1.5, min_observer_nodes: 1}\nhistory: {max_file_bytes: 4MB}\n"
      "plaintext: on\n");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(
      config.error().message,
      "invalid configuration:\n"
      "  hodl: unknown key (known here: active_region, dwell, evaluation_interval, evidence_window, "
      "heartbeat_interval, history, hold, limits, listen, matrix_window, max_data_loss, "
      "not_reporting_timeout, "
      "own_region, plaintext, prefer_availability, probe_plan, regions, standby_regions, thresholds, tls)\n"
      "  thresholds.degraded_loss: 1.5 is outside 0..1\n"
      "  thresholds.min_observer_nodes: 1 is outside 2..100000\n"
      "  history.max_file_bytes: \"4MB\" is not a size (examples: 4096, 64KiB, 4MiB, 1GiB)\n"
      "  plaintext: \"on\" is not true or false (write true or false: YAML 1.2 reads yes, no, on and off as "
      "strings, not booleans)");
}

// One shape for regions in both programs; the agent's old mapping is refused here too.
TEST(AggregatorConfig, RegionsAreAListNotAMapping) {
  auto config = ParseAggregatorConfig("regions: {us-east-1: [10.1.0.0/16]}\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.error().message,
              HasSubstr("regions: must be a list of {name, cidrs}, not a mapping: write"));
}

// Durations and sizes are parsed by common/config_text (tests/common/config_text_test.cc).
TEST(CommandLine, AcceptsTheDocumentedFlags) {
  auto cl = ParseCommandLine({"--config", "/etc/rp.yaml", "--grpc-listen=127.0.0.1:1", "--metrics-listen",
                              "[::1]:2", "--plaintext"});
  ASSERT_TRUE(cl.ok()) << cl.error().message;
  EXPECT_EQ(*cl->config_file, "/etc/rp.yaml");
  EXPECT_EQ(*cl->grpc_listen, "127.0.0.1:1");
  EXPECT_EQ(*cl->metrics_listen, "[::1]:2");
  EXPECT_TRUE(cl->plaintext);
}

TEST(CommandLine, RejectsUnknownAndIncompleteFlags) {
  EXPECT_THAT(ParseCommandLine({"--verbose"}).error().message, HasSubstr("--verbose: unknown flag"));
  EXPECT_THAT(ParseCommandLine({"--config"}).error().message, HasSubstr("--config: needs a value"));
  EXPECT_THAT(ParseCommandLine({"--grpc-listen", "nope"}).error().message,
              HasSubstr("--grpc-listen: expected HOST:PORT"));
  EXPECT_THAT(ParseCommandLine({"--plaintext=yes"}).error().message,
              HasSubstr("--plaintext: takes no value"));
  EXPECT_THAT(ParseCommandLine({"config.yaml"}).error().message,
              HasSubstr("config.yaml: unexpected argument"));
  // Every problem, one per line.
  EXPECT_EQ(
      ParseCommandLine({"--verbose", "--grpc-listen", "nope", "--config"}).error().message,
      "--verbose: unknown flag\n--config: needs a value\n--grpc-listen: expected HOST:PORT, got 'nope'");
}

TEST(CommandLine, WithoutConfigFileFlagsApplyOverDefaults) {
  auto cl = ParseCommandLine({"--grpc-listen", "127.0.0.1:0", "--plaintext"});
  ASSERT_TRUE(cl.ok());
  auto config = ResolveAggregatorConfig(*cl);
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(config->regions.empty());
  EXPECT_EQ(config->grpc_listen, "127.0.0.1:0");
  EXPECT_TRUE(config->plaintext);
}

TEST(CommandLine, MissingConfigFileNamesThePath) {
  CommandLine command_line;
  command_line.config_file = "/nonexistent/rp.yaml";
  auto config = ResolveAggregatorConfig(command_line);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.error().ToString(), HasSubstr("/nonexistent/rp.yaml"));
}

TEST(AggregatorConfig, NodeIdentityIsRequiredByDefault) {
  auto config = ParseAggregatorConfig("tls: {cert_file: /c, key_file: /k, client_ca_file: /ca}\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_TRUE(config->tls.require_node_identity);
  EXPECT_TRUE(config->tls.read_client_ca_file.empty());
}

TEST(AggregatorConfig, ReadClientCaNeedsTheServerCertificate) {
  auto config = ParseAggregatorConfig("tls: {read_client_ca_file: /ca}\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.error().message,
              HasSubstr("tls.read_client_ca_file: needs tls.cert_file and tls.key_file"));
}

TEST(AggregatorTransport, NoCertificateWithoutPlaintextIsAProblemSayingWhatToDo) {
  AggregatorConfig config;
  auto problem = TransportProblem(config);
  ASSERT_TRUE(problem);
  EXPECT_THAT(*problem, HasSubstr("no TLS certificate configured"));
  EXPECT_THAT(*problem, HasSubstr("--plaintext"));
  config.plaintext = true;
  EXPECT_FALSE(TransportProblem(config));
  config.plaintext = false;
  config.tls.cert_file = "/c";
  config.tls.key_file = "/k";
  EXPECT_FALSE(TransportProblem(config));
}

TEST(AggregatorTransport, StartRefusesWithoutCertificateOrPlaintext) {
  test::ScratchDirectory dir("aggregator");
  AggregatorConfig config = test::ThreeRegionConfig(dir.path());
  config.plaintext = false;
  AggregatorOptions options;
  options.evaluation_loop = false;
  options.status_server = false;
  auto started = Aggregator::Start(config, options);
  ASSERT_FALSE(started.ok());
  EXPECT_THAT(started.error().message, HasSubstr("no TLS certificate configured"));
}

}  // namespace
}  // namespace regionpulse
