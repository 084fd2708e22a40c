// One configuration dialect: the same document means the same thing to the agent and to the
// aggregator, and no document, however hostile, makes either parser throw or crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/agent_config.h"
#include "aggregator/aggregator_config.h"

namespace regionpulse {
namespace {

using ::testing::HasSubstr;

// The agent needs an identity and, authenticated by default, a key; neither matters here.
std::string AgentMessage(const std::string& yaml) {
  auto config =
      ParseAgentConfig(yaml, {{"NODE_NAME", "node-a"}, {"REGION", "us-east-1"}}, {"--unauthenticated"});
  return config.ok() ? "" : config.error().message;
}

std::string AggregatorMessage(const std::string& yaml) {
  auto config = ParseAggregatorConfig(yaml);
  return config.ok() ? "" : config.error().message;
}

// Each former difference between the two parsers: the same document, the same line in both
// programs' messages.
TEST(ConfigDialect, BothProgramsGiveTheSameAnswer) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"colour: blue\n", "colour: unknown key (known here: "},
      {"regions: [{name: us-east-1, cidrs: [10.1.0.0/16]}, {name: eu, cidrs: [10.1.2.0/24]}]\n",
       "regions[1].cidrs[0]: 10.1.2.0/24 overlaps 10.1.0.0/16 (regions[0].cidrs[0])"},
      {"regions: {us-east-1: [10.1.0.0/16]}\n", "regions: must be a list of {name, cidrs}, not a mapping"},
      {"regions: [{name: us-east-1, cidrs: [10.1.0.1/16]}]\n",
       "regions[0].cidrs[0]: \"10.1.0.1/16\": host bits set beyond /16"},
      {"regions: [{name: us-east-1}]\n", "regions[0].cidrs: missing"},
      {"regions: [{name: a, cidrs: [10.0.0.0/8]}, {name: a, cidrs: [11.0.0.0/8]}]\n",
       "regions[1].name: \"a\" is listed twice"},
      {"{[a, b]: 1}\n", "config: has a key that is a list; keys are plain names"},
      {"tls: [1]\n", "tls: must be a mapping, not a list"},
      {"regions: [\n", "not valid YAML"},
  };
  for (const auto& [yaml, line] : cases) {
    EXPECT_THAT(AgentMessage(yaml), HasSubstr(line)) << yaml;
    EXPECT_THAT(AggregatorMessage(yaml), HasSubstr(line)) << yaml;
  }
}

TEST(ConfigDialect, BooleansAreYaml12InBothPrograms) {
  for (const std::string word : {"yes", "no", "on", "off"}) {
    const std::string line = "\"" + word + "\" is not true or false (write true or false";
    EXPECT_THAT(AgentMessage("bpf: {enabled: " + word + "}\n"), HasSubstr("bpf.enabled: " + line));
    EXPECT_THAT(AggregatorMessage("plaintext: " + word + "\n"), HasSubstr("plaintext: " + line));
  }
}

TEST(ConfigDialect, BothProgramsReportEveryProblemOnItsOwnLine) {
  const std::string yaml = "colour: blue\nflavour: red\n";
  for (const std::string& message : {AgentMessage(yaml), AggregatorMessage(yaml)}) {
    EXPECT_THAT(message, HasSubstr("invalid configuration:\n  colour: unknown key"));
    EXPECT_THAT(message, HasSubstr("\n  flavour: unknown key"));
  }
}

// Values too large for their type, or not numbers at all, name their key in both programs.
TEST(ConfigDialect, OutOfRangeValuesAreProblemsNamingTheKey) {
  EXPECT_THAT(AgentMessage("probe: {port: 99999999999999999999999}\n"),
              HasSubstr("probe.port: 99999999999999999999999 is outside 1..65535"));
  EXPECT_THAT(AggregatorMessage("probe_plan: {targets_per_region: 99999999999999999999999}\n"),
              HasSubstr("probe_plan.targets_per_region: 99999999999999999999999 is outside 1..64"));
  EXPECT_THAT(AgentMessage("probe: {jitter: 1e400}\n"), HasSubstr("probe.jitter: 1e400 is outside 0..0.5"));
  EXPECT_THAT(AggregatorMessage("thresholds: {degraded_loss: 1e400}\n"),
              HasSubstr("thresholds.degraded_loss: 1e400 is outside 0..1"));
  EXPECT_THAT(AgentMessage("window: 99999999999h\n"), HasSubstr("window: 99999999999h is outside 100ms..5m"));
  EXPECT_THAT(AggregatorMessage("hold: 99999999999h\n"), HasSubstr("hold: 99999999999h is outside 1s..24h"));
  EXPECT_THAT(AggregatorMessage("history: {max_file_bytes: 999999999999GiB}\n"),
              HasSubstr("history.max_file_bytes: \"999999999999GiB\" is too large"));
  EXPECT_THAT(AggregatorMessage("history: {max_file_bytes: -4MiB}\n"),
              HasSubstr("history.max_file_bytes: \"-4MiB\" is not a size"));
  EXPECT_THAT(
      AgentMessage("regions: [{name: r, cidrs: [10.0.0.0/8]}]\nreplication_flows: [{name: f, ports: [5432], "
                   "remote_region: r, expected_min_rate: 999999999999GB/s}]\n"),
      HasSubstr("replication_flows[0].expected_min_rate: \"999999999999GB/s\" is too high"));
  EXPECT_THAT(AgentMessage("probe: {port: -1}\n"), HasSubstr("probe.port: \"-1\" is not a whole number"));
  EXPECT_THAT(AgentMessage("probe: {[a, b]: 1}\n"), HasSubstr("probe: has a key that is a list"));
  EXPECT_THAT(AggregatorMessage("thresholds: {{a: b}: 1}\n"),
              HasSubstr("thresholds: has a key that is a mapping"));
}

std::string AliasBomb() {
  std::string yaml = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (char c = 'b'; c <= 'k'; ++c) {
    const std::string previous(1, static_cast<char>(c - 1));
    yaml += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) yaml += (i ? ", *" : "*") + previous;
    yaml += "]\n";
  }
  return yaml;
}

// Every document here is hostile or malformed; the only requirement is that both parsers
// return (an error or a configuration), never throw, never crash, never hang.
TEST(ConfigDialect, HostileDocumentsNeverThrowFromEitherParser) {
  const std::vector<std::string> documents = {
      "",
      "~",
      "42",
      "\"just a string\"",
      "[]",
      "{[a, b]: 1}",
      "? [a, b]\n: 1\n",
      "? {a: b}\n: 1\nprobe: {? [x]\n : 1}\n",
      "probe: {[x]: 1}\nthresholds: {[x]: 1}\nhistory: {{a: b}: c}\n",
      "regions: [{[a]: b}]",
      "regions: {[a]: [10.0.0.0/8]}",
      "regions: [null, ~, 5, [1], {name: [a], cidrs: [[x], {y: z}, ~]}]",
      "regions: [{name: ~, cidrs: ~}]",
      "regions: *undefined",
      "a: &a [*a]",
      std::string(100000, '[') + std::string(100000, ']'),
      "a: " + std::string(100000, '['),
      [] {
        std::string deep;
        for (int i = 0; i < 5000; ++i) deep += "{a: ";
        return deep + "1" + std::string(5000, '}');
      }(),
      AliasBomb(),
      AliasBomb() + "regions: *k\ninterfaces: *k\nstatic_peers: *k\nreplication_flows: *k\naggregators: *k\n",
      AliasBomb() + "thresholds: *k\nprobe: *k\nhistory: *k\n",
      "probe: {port: 99999999999999999999999999999999999999999, jitter: 1e400, interval: 1e400s}",
      "probe: {port: -99999999999999999999999, jitter: -1e400, timeout: 99999999999999999999h}",
      "window: " + std::string(5000, '9') + "s\nhold: " + std::string(5000, '9') + "h",
      "history: {max_file_bytes: 999999999999GiB}\nthresholds: {degraded_loss: .nan, unreachable_loss: .inf}",
      "history: {max_file_bytes: " + std::string(5000, '9') + "GiB}",
      "replication_flows: [{ports: [1e400, -1, 99999999999999999999, [1], ~], expected_min_rate: 1e400GB/s}]",
      "static_peers: [{port: 1e400, address: [1]}, 7, ~]",
      "port: !!binary aGVsbG8=\nprobe: {port: !!int 5, authenticated: !!bool yes}",
      "%YAML 1.1\n---\nplaintext: yes\n",
      "a: 1\n---\nb: 2\n",
      "base: &base {port: 1}\nprobe:\n  <<: *base\n",
      "plaintext: true\nplaintext: false\n",
      "key: \"\xff\xfe\x00invalid utf-8\"",
      std::string("\x00\x01\x02", 3),
      "huge: " + std::string(1 << 20, 'x'),
      "tls: {cert_file: [a], key_file: {b: c}, client_ca_file: ~, ca_file: 7}",
      "listen: {grpc: \"[::1\", metrics: \":\"}\nstatus: {listen: \"[\"}",
      "log: {format: [json], level: {a: b}}",
      "interfaces: [" + std::string(1000, 'x') + ", ~, [a]]",
      "aggregators: [\"[\", \"]:\", \"::::\", ~, [1]]",
  };
  for (const auto& document : documents) {
    EXPECT_NO_THROW({ (void)ParseAgentConfig(document, {}); }) << document.substr(0, 200);
    EXPECT_NO_THROW({
      (void)ParseAgentConfig(document, {{"HOST_IP", "x"}}, {"--set", "probe.port.x=1"});
    }) << document.substr(0, 200);
    EXPECT_NO_THROW({ (void)ParseAggregatorConfig(document); }) << document.substr(0, 200);
  }
}

TEST(ConfigDialect, HostileFlagsNeverThrow) {
  const std::vector<std::vector<std::string>> flag_sets = {
      {"--set", "..=1"},
      {"--set", "=x"},
      {"--set", "regions.0=1"},
      {"--set", "probe.port.x=1"},
      {"--set", "a.b.c.d.e=1"},
      {"--set", "probe=5", "--set", "probe.port=1"},
      {"--peer", ",,,,,"},
      {"--peer", ""},
      {"--"},
      {"-"},
      {"--=x"},
  };
  for (const auto& flags : flag_sets) {
    EXPECT_NO_THROW(
        { (void)ParseAgentConfig("regions: [{name: r, cidrs: [10.0.0.0/8]}]\nprobe: [1]\n", {}, flags); });
    EXPECT_NO_THROW({ (void)ParseCommandLine(flags); });
  }
}

}  // namespace
}  // namespace regionpulse
