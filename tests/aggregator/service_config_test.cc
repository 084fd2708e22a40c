// The aggregator's configuration file and command line: defaults, every key, and errors that
// name the key and the problem.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "aggregator_config.h"

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
  EXPECT_TRUE(config->plaintext);
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
        BadConfig{"UnknownTopLevelKey", "hodl: 10s", "config key 'hodl': unknown key"},
        BadConfig{"UnknownNestedKey", "thresholds: {degraded_los: 0.1}",
                  "config key 'thresholds.degraded_los': unknown key"},
        BadConfig{"RatioOutOfRange", "thresholds: {degraded_loss: 1.5}",
                  "config key 'thresholds.degraded_loss': expected a ratio in [0, 1], got 1.5"},
        BadConfig{"DurationWithoutUnit", "hold: 120", "config key 'hold': expected a duration with a unit"},
        BadConfig{"NegativeLikeDuration", "hold: -5s", "config key 'hold'"},
        BadConfig{"SubSecondHold", "hold: 1500ms", "config key 'hold': must be a whole number of seconds"},
        BadConfig{"DwellShorterThanHold", "hold: 200s\ndwell: 100s", "config key 'dwell'"},
        BadConfig{"EvidenceLongerThanMatrix", "matrix_window: 10s\nevidence_window: 20s",
                  "config key 'evidence_window': must not be longer than matrix_window"},
        BadConfig{"SingleObserverQuorum", "thresholds: {min_observer_nodes: 1}",
                  "config key 'thresholds.min_observer_nodes': expected a value in [2,"},
        BadConfig{"MinorityQuorum", "thresholds: {quorum_fraction: 0.3}", "must be at least 0.5"},
        BadConfig{"BadCidr", "regions: [{name: a, cidrs: [10.0.0.0/33]}]\nactive_region: a",
                  "config key 'regions[0].cidrs[0]': \"10.0.0.0/33\": prefix length 33 exceeds 32"},
        BadConfig{"CidrWithHostBits", "regions: [{name: a, cidrs: [10.0.0.1/8]}]\nactive_region: a",
                  "config key 'regions[0].cidrs[0]': \"10.0.0.1/8\": host bits set beyond /8"},
        BadConfig{"NotAnAddress", "regions: [{name: a, cidrs: [banana/8]}]\nactive_region: a",
                  "'banana' is not an IPv4 or IPv6 address"},
        BadConfig{
            "OverlappingCidrs",
            "regions: [{name: a, cidrs: [10.0.0.0/8]}, {name: b, cidrs: [10.1.0.0/16]}]\nactive_region: a",
            "config key 'regions[1].cidrs[0]': 10.1.0.0/16 overlaps 10.0.0.0/8"},
        BadConfig{"DuplicateRegion", "regions: [{name: a}, {name: a}]\nactive_region: a",
                  "config key 'regions[1].name': region 'a' listed twice"},
        BadConfig{"UnknownActiveRegion", "regions: [{name: a}]\nactive_region: b",
                  "config key 'active_region': region 'b' is not listed"},
        BadConfig{"MissingActiveRegion", "regions: [{name: a}]", "config key 'active_region': missing"},
        BadConfig{"BadListen", "listen: {grpc: 'localhost'}", "config key 'listen.grpc': expected HOST:PORT"},
        BadConfig{"BadPort", "listen: {grpc: 'localhost:70000'}", "port '70000' is not in 0..65535"},
        BadConfig{"HalfTls", "tls: {cert_file: /a}", "cert_file and key_file go together"},
        BadConfig{"TinyHistoryFile", "history: {max_file_bytes: 100}", "must be at least 4KiB"},
        BadConfig{"NotABool", "plaintext: maybe", "config key 'plaintext': expected true or false"},
        BadConfig{"NotYaml", "regions: [", "not valid YAML"},
        BadConfig{"WrongShape", "thresholds: [1, 2]", "config key 'thresholds': expected a mapping"}),
    [](const auto& info) { return info.param.name; });

// Durations are parsed by common/config_text (tests/common/config_text_test.cc).
TEST(ByteSizes, AcceptBinaryUnitsAndBareBytes) {
  EXPECT_EQ(*ParseByteSize("4MiB"), 4u << 20);
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_FALSE(ParseByteSize("4MB").ok());
}

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
  EXPECT_THAT(ParseCommandLine({"--verbose"}).error().message, HasSubstr("unknown argument '--verbose'"));
  EXPECT_THAT(ParseCommandLine({"--config"}).error().message, HasSubstr("--config needs a value"));
  EXPECT_THAT(ParseCommandLine({"--grpc-listen", "nope"}).error().message, HasSubstr("--grpc-listen"));
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

}  // namespace
}  // namespace regionpulse
