// Agent configuration: defaults, precedence (flags > environment > file), and every
// validation error naming its key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "agent/agent.h"
#include "agent/agent_config.h"
#include "bpf/regionpulse_shared.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

class AgentConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/rp-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    key_ = Write("probe.key", "0123456789abcdef0123456789abcdef\n");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    return path;
  }

  // A complete, valid configuration; tests append or override keys.
  std::string Valid() const {
    return "node: node-a\n"
           "region: us-east-1\n"
           "zone: us-east-1a\n"
           "regions:\n"
           "  - {name: us-east-1, cidrs: [10.1.0.0/16, 'fd00:1::/48']}\n"
           "  - {name: eu-west-1, cidrs: [10.2.0.0/16]}\n"
           "probe:\n"
           "  key_file: " +
           key_ + "\n";
  }

  // Parses and expects failure; returns the message.
  std::string Problem(const std::string& yaml, const Environment& env = {},
                      const std::vector<std::string>& flags = {}) {
    auto result = ParseAgentConfig(yaml, env, flags);
    EXPECT_FALSE(result.ok()) << "expected a configuration error";
    return result.ok() ? std::string() : result.error().message;
  }

  std::string dir_;
  std::string key_;
};

TEST_F(AgentConfigTest, DefaultsAreTheDocumentedOnes) {
  auto c = ParseAgentConfig(Valid(), {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->node, "node-a");
  EXPECT_EQ(c->probe.port, 862);
  EXPECT_EQ(c->probe.interval, 100ms);
  EXPECT_EQ(c->window, 1s);
  EXPECT_EQ(c->report_buffer, 10min);
  EXPECT_EQ(c->ReportBufferWindows(), 600u);
  EXPECT_TRUE(c->probe.authenticated);
  EXPECT_FALSE(c->probe.allow_unauthenticated);
  EXPECT_EQ(c->probe.key.size(), 32u);  // the trailing newline is not part of the key
  EXPECT_EQ(c->log_format, LogFormat::kText);
  ASSERT_EQ(c->regions.size(), 2u);
  EXPECT_EQ(c->regions[0].cidrs[1], "fd00:1::/48");
  EXPECT_EQ(c->RegionIdOf("eu-west-1"), 2u);
}

TEST_F(AgentConfigTest, StatusServerLimitsDefaultToTheServersOwnAndParse) {
  auto defaults = ParseAgentConfig(Valid(), {});
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->status_limits.read_timeout, 5s);
  EXPECT_EQ(defaults->status_limits.write_timeout, 10s);
  EXPECT_EQ(defaults->status_limits.max_connections, 64u);
  EXPECT_EQ(defaults->status_limits.max_request_bytes, 16u * 1024);

  auto set = ParseAgentConfig(Valid() +
                                  "status: {listen: '127.0.0.1:0', read_timeout: 2s, write_timeout: 1500ms, "
                                  "max_connections: 8, max_request_bytes: 4KiB}\n",
                              {});
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->status_limits.read_timeout, 2s);
  EXPECT_EQ(set->status_limits.write_timeout, 1500ms);
  EXPECT_EQ(set->status_limits.max_connections, 8u);
  EXPECT_EQ(set->status_limits.max_request_bytes, 4096u);
}

TEST_F(AgentConfigTest, EveryKeyParses) {
  const std::string yaml =
      Valid() +
      "  port: 9862\n"
      "  interval: 50ms\n"
      "  jitter: 0.2\n"
      "  payload_size: 512\n"
      "  timeout: 500ms\n"
      "  allow_unauthenticated: true\n"
      "window: 2s\n"
      "report_buffer: 1m\n"
      "interfaces: [cilium_wg0, wg1]\n"
      "replication_flows:\n"
      "  - name: postgres\n"
      "    ports: [5432]\n"
      "    remote_region: eu-west-1\n"
      "    expected_min_rate: 10MB/s\n"
      "aggregators: ['agg.eu-west-1:9090', '[fd00::1]:9090']\n"
      "static_peers:\n"
      "  - {node: node-b, region: eu-west-1, zone: eu-west-1a, address: 10.2.0.5}\n"
      "  - {node: node-c, region: eu-west-1, address: 'fd00:2::5', port: 9862}\n"
      "status: {listen: '127.0.0.1:0'}\n"
      "log: {format: json, level: debug}\n"
      "bpf: {enabled: false, prefer_tcx: false, cgroup_path: /sys/fs/cgroup, max_tracked_flow_connections: "
      "64}\n"
      "reconnect: {initial: 100ms, max: 5s, keepalive: 20s, keepalive_timeout: 2s, connect_timeout: 3s}\n"
      "shutdown: {flush_timeout: 3s}\n"
      "report_log_file: /tmp/reports.jsonl\n"
      "report_log_format: binary\n";
  auto c = ParseAgentConfig(yaml, {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->probe.port, 9862);
  EXPECT_EQ(c->probe.interval, 50ms);
  EXPECT_DOUBLE_EQ(c->probe.jitter, 0.2);
  EXPECT_EQ(c->probe.payload_size, 512u);
  EXPECT_EQ(c->ReportBufferWindows(), 30u);
  EXPECT_EQ(c->interfaces.size(), 2u);
  ASSERT_EQ(c->replication_flows.size(), 1u);
  EXPECT_EQ(c->replication_flows[0].expected_min_rate_bps, 10'000'000u);
  EXPECT_EQ(c->aggregators.size(), 2u);
  ASSERT_EQ(c->static_peers.size(), 2u);
  EXPECT_EQ(c->static_peers[0].port, 862);
  EXPECT_EQ(c->static_peers[1].port, 9862);
  EXPECT_EQ(c->log_format, LogFormat::kJson);
  EXPECT_EQ(c->report_log_format, ReportLogFormat::kBinary);
  EXPECT_FALSE(c->bpf_enabled);
  EXPECT_EQ(c->reconnect_max, 5s);
  EXPECT_EQ(c->keepalive_interval, 20s);
  EXPECT_EQ(c->keepalive_timeout, 2s);
  EXPECT_EQ(c->connect_timeout, 3s);
  EXPECT_EQ(c->shutdown_flush_timeout, 3s);

  const DatapathConfig d = ToDatapathConfig(*c);
  EXPECT_EQ(d.probe_port, 9862);
  ASSERT_EQ(d.region_cidrs.size(), 3u);
  EXPECT_EQ(d.region_cidrs[2].cidr, "10.2.0.0/16");
  EXPECT_EQ(d.region_cidrs[2].region, 2u);
  ASSERT_EQ(d.flows.size(), 1u);
  EXPECT_EQ(d.flows[0].remote_region, 2u);
  EXPECT_EQ(d.flows[0].ports, std::vector<uint16_t>{5432});
  EXPECT_FALSE(d.prefer_tcx);
  EXPECT_EQ(d.max_tracked_flow_connections, 64u);
}

TEST_F(AgentConfigTest, EnvironmentOverridesTheFileAndFlagsOverrideTheEnvironment) {
  const Environment env = {{"NODE_NAME", "node-env"}, {"REGION", "eu-west-1"}, {"ZONE", "eu-west-1b"}};
  auto c = ParseAgentConfig(Valid(), env);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->node, "node-env");
  EXPECT_EQ(c->region, "eu-west-1");
  EXPECT_EQ(c->zone, "eu-west-1b");
  c = ParseAgentConfig(Valid(), env, {"--node", "node-flag", "--zone=z9", "--set", "probe.interval=20ms"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->node, "node-flag");
  EXPECT_EQ(c->zone, "z9");
  EXPECT_EQ(c->probe.interval, 20ms);
}

// HOST_IP is read like NODE_NAME: an environment value for a key, probe.advertise_address,
// between the file and the flags.
TEST_F(AgentConfigTest, HostIpIsTheAdvertisedAddressWithTheUsualPrecedence) {
  auto c = ParseAgentConfig(Valid(), {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->probe.advertise_address, "");
  const std::string file = Valid() + "  advertise_address: 10.1.0.9\n";
  c = ParseAgentConfig(file, {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->probe.advertise_address, "10.1.0.9");
  c = ParseAgentConfig(file, {{"HOST_IP", "10.1.0.7"}, {"POD_IP", "10.1.0.8"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->probe.advertise_address, "10.1.0.7");
  c = ParseAgentConfig(file, {{"HOST_IP", ""}, {"POD_IP", "fd00:1::8"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->probe.advertise_address, "fd00:1::8") << "POD_IP when HOST_IP is unset";
  c = ParseAgentConfig(file, {{"HOST_IP", "10.1.0.7"}}, {"--set", "probe.advertise_address=10.1.0.6"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->probe.advertise_address, "10.1.0.6");
  EXPECT_NE(Problem(Valid(), {{"HOST_IP", "node-a.internal"}})
                .find("probe.advertise_address: \"node-a.internal\" is not an IP address"),
            std::string::npos);
}

TEST_F(AgentConfigTest, FlagsForPeersAggregatorsAndModes) {
  auto c =
      ParseAgentConfig("", {{"NODE_NAME", "n"}, {"REGION", "r"}},
                       {"--unauthenticated", "--no-bpf", "--peer", "node-b,r,z,10.0.0.2,9000", "--aggregator",
                        "a:1", "--aggregator=b:2", "--status-listen", "127.0.0.1:0", "--log-format", "json"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c->probe.authenticated);
  EXPECT_TRUE(c->probe.allow_unauthenticated);
  EXPECT_FALSE(c->bpf_enabled);
  ASSERT_EQ(c->static_peers.size(), 1u);
  EXPECT_EQ(c->static_peers[0].port, 9000);
  EXPECT_EQ(c->aggregators, (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(c->log_format, LogFormat::kJson);
}

// The operators' reference, docs/agent.example.yaml, must parse, and every value it calls a
// default must be the agent's default.
TEST_F(AgentConfigTest, TheDocumentedExampleParsesAndItsDefaultsAreTheAgents) {
  std::ifstream in(AGENT_EXAMPLE_CONFIG);
  ASSERT_TRUE(in) << AGENT_EXAMPLE_CONFIG;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string placeholder = "/etc/regionpulse/probe.key";
  ASSERT_NE(text.find(placeholder), std::string::npos);
  text.replace(text.find(placeholder), placeholder.size(), key_);
  auto example = ParseAgentConfig(text, {});
  ASSERT_TRUE(example.ok()) << example.error().message;
  auto defaults = ParseAgentConfig(Valid(), {});
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  const AgentConfig& e = *example;
  const AgentConfig& d = *defaults;
  EXPECT_EQ(e.probe.port, d.probe.port);
  EXPECT_EQ(e.probe.listen_address, d.probe.listen_address);
  EXPECT_EQ(e.probe.advertise_address, d.probe.advertise_address);
  EXPECT_EQ(e.probe.interval, d.probe.interval);
  EXPECT_DOUBLE_EQ(e.probe.jitter, d.probe.jitter);
  EXPECT_EQ(e.probe.timeout, d.probe.timeout);
  EXPECT_EQ(e.probe.payload_size, d.probe.payload_size);
  EXPECT_EQ(e.probe.authenticated, d.probe.authenticated);
  EXPECT_EQ(e.probe.allow_unauthenticated, d.probe.allow_unauthenticated);
  EXPECT_EQ(e.probe.reflector_session_idle, d.probe.reflector_session_idle);
  EXPECT_EQ(e.window, d.window);
  EXPECT_EQ(e.report_buffer, d.report_buffer);
  EXPECT_EQ(e.interfaces, d.interfaces);
  EXPECT_EQ(e.aggregators, d.aggregators);
  EXPECT_TRUE(e.static_peers.empty());
  EXPECT_EQ(e.tls.enabled(), d.tls.enabled());
  EXPECT_EQ(e.status_listen, d.status_listen);
  EXPECT_EQ(e.status_limits.read_timeout, d.status_limits.read_timeout);
  EXPECT_EQ(e.status_limits.write_timeout, d.status_limits.write_timeout);
  EXPECT_EQ(e.status_limits.max_connections, d.status_limits.max_connections);
  EXPECT_EQ(e.status_limits.max_request_bytes, d.status_limits.max_request_bytes);
  EXPECT_EQ(e.log_format, d.log_format);
  EXPECT_EQ(e.log_level, d.log_level);
  EXPECT_EQ(e.bpf_enabled, d.bpf_enabled);
  EXPECT_EQ(e.cgroup_path, d.cgroup_path);
  EXPECT_EQ(e.prefer_tcx, d.prefer_tcx);
  EXPECT_EQ(e.max_tracked_flow_connections, d.max_tracked_flow_connections);
  EXPECT_EQ(e.reconnect_initial, d.reconnect_initial);
  EXPECT_EQ(e.reconnect_max, d.reconnect_max);
  EXPECT_EQ(e.keepalive_interval, d.keepalive_interval);
  EXPECT_EQ(e.keepalive_timeout, d.keepalive_timeout);
  EXPECT_EQ(e.connect_timeout, d.connect_timeout);
  EXPECT_EQ(e.shutdown_flush_timeout, d.shutdown_flush_timeout);
  EXPECT_EQ(e.report_log_file, d.report_log_file);
  EXPECT_EQ(e.report_log_format, ReportLogFormat::kJson);
  EXPECT_EQ(d.report_log_format, ReportLogFormat::kJson);
  // The examples.
  ASSERT_EQ(e.replication_flows.size(), 1u);
  EXPECT_EQ(e.replication_flows[0].expected_min_rate_bps, 10'000'000u);
  EXPECT_EQ(e.regions.size(), 2u);
}

TEST_F(AgentConfigTest, LoadReadsTheConfigFileNamedByTheFlag) {
  const std::string path = Write("agent.yaml", Valid());
  const char* argv[] = {"regionpulse-agent", "--config", path.c_str(), "--region", "eu-west-1"};
  auto c = LoadAgentConfig(5, argv, {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->region, "eu-west-1");

  const char* missing[] = {"regionpulse-agent", "--config=/nonexistent/agent.yaml"};
  auto m = LoadAgentConfig(2, missing, {});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().ToString().find("/nonexistent/agent.yaml"), std::string::npos);
  EXPECT_NE(m.error().ToString().find("No such file"), std::string::npos);
}

struct ErrorCase {
  const char* name;
  std::string yaml_suffix;  // appended to Valid() (after the probe section)
  std::string expected;     // substring of the message: key and problem
};

TEST_F(AgentConfigTest, EachErrorNamesTheKeyAndTheProblem) {
  const std::vector<ErrorCase> cases = {
      {"bad duration", "  interval: fast\n", "probe.interval: \"fast\" is not a duration"},
      {"duration without unit", "  interval: 100\n", "probe.interval: \"100\" is not a duration"},
      {"interval out of range", "  interval: 2m\n", "probe.interval: 2m is outside 1ms..1m"},
      {"jitter out of range", "  jitter: 0.9\n", "probe.jitter: 0.9 is outside"},
      {"port not a number", "  port: http\n", "probe.port: \"http\" is not a whole number"},
      {"port out of range", "  port: 70000\n", "probe.port: 70000 is outside 1..65535"},
      {"payload below minimum", "  payload_size: 100\n",
       "probe.payload_size: 100 is below the smallest probe, 156"},
      {"bool", "  authenticated: maybe\n", "probe.authenticated: \"maybe\" is not true or false"},
      {"unknown probe key", "  intervall: 1s\n", "probe.intervall: unknown key"},
      {"unknown top-level key", "colour: blue\n", "colour: unknown key"},
      {"bad listen address", "  listen_address: anywhere\n",
       "probe.listen_address: \"anywhere\" is not an IP"},
      {"window too short", "window: 10ms\n", "window: 10ms is outside 100ms..5m"},
      {"buffer below a window", "window: 5s\nreport_buffer: 2s\n",
       "report_buffer: 2s holds less than one window"},
      {"interface name", "interfaces: [a-very-long-interface-name]\n",
       "interfaces[0]: \"a-very-long-interface-name\""},
      {"flow without ports", "replication_flows: [{name: pg, remote_region: eu-west-1}]\n",
       "replication_flows[0].ports: missing"},
      {"flow bad port", "replication_flows: [{name: pg, ports: [0], remote_region: eu-west-1}]\n",
       "replication_flows[0].ports[0]: \"0\" is not a port"},
      {"flow unknown region", "replication_flows: [{name: pg, ports: [5432], remote_region: mars}]\n",
       "replication_flows[0].remote_region: \"mars\" is not in regions"},
      {"flow duplicate name",
       "replication_flows: [{name: pg, ports: [1], remote_region: eu-west-1}, {name: pg, ports: [2], "
       "remote_region: eu-west-1}]\n",
       "replication_flows[1].name: \"pg\" is used by another flow"},
      {"flow bad rate",
       "replication_flows: [{name: pg, ports: [1], remote_region: eu-west-1, expected_min_rate: 10}]\n",
       "replication_flows[0].expected_min_rate: \"10\" is not a rate"},
      {"aggregator without port", "aggregators: [agg.example]\n",
       "aggregators[0]: \"agg.example\": expected HOST:PORT"},
      {"aggregator ipv6 without brackets", "aggregators: ['fd00::1:9090']\n", "IPv6 addresses need brackets"},
      {"peer bad address", "static_peers: [{node: b, region: eu-west-1, address: not-an-ip}]\n",
       "static_peers[0].address: \"not-an-ip\" is not an IPv4 or IPv6 address"},
      {"peer missing node", "static_peers: [{region: eu-west-1, address: 10.0.0.1}]\n",
       "static_peers[0].node: missing"},
      {"peer unknown region", "static_peers: [{node: b, region: mars, address: 10.0.0.1}]\n",
       "static_peers[0].region: \"mars\" is not in regions"},
      {"tls cert without key", "tls: {cert_file: /etc/hostname}\n", "tls.key_file: missing"},
      {"tls file missing", "tls: {cert_file: /nonexistent.crt, key_file: /nonexistent.key}\n",
       "tls.cert_file: /nonexistent.crt: No such file or directory"},
      {"log format", "log: {format: xml}\n", "log.format: \"xml\" is not text or json"},
      {"log level", "log: {level: loud}\n", "log.level: \"loud\" is not one of"},
      {"report log format", "report_log_format: csv\n", "report_log_format: \"csv\" is not json or binary"},
      {"status listen", "status: {listen: nowhere}\n", "status.listen: \"nowhere\": expected HOST:PORT"},
      {"status read timeout too short", "status: {read_timeout: 10ms}\n", "status.read_timeout: 10ms"},
      {"status write timeout not a duration", "status: {write_timeout: soon}\n", "status.write_timeout:"},
      {"status no connections", "status: {max_connections: 0}\n", "status.max_connections:"},
      {"status request too small", "status: {max_request_bytes: 100}\n",
       "status.max_request_bytes: 100 is below the smallest allowed, 1024 bytes"},
      {"status request too large", "status: {max_request_bytes: 2MiB}\n",
       "status.max_request_bytes: 2097152 bytes exceeds 1MiB"},
      {"status unknown key", "status: {max_connection: 5}\n", "status.max_connection"},
      {"keepalive too often", "reconnect: {keepalive: 1s}\n", "reconnect.keepalive: 1s"},
      {"reconnect order", "reconnect: {initial: 10s, max: 1s}\n",
       "reconnect.initial: 10s exceeds reconnect.max (1s)"},
      {"section not a map", "bpf: true\n", "bpf: must be a mapping"},
      {"plan beyond a report's paths", "  plan_limits: {max_targets: 9000}\n",
       "probe.plan_limits.max_targets: 9000 is outside 1..8192"},
      {"static peers beside the largest plan",
       "  plan_limits: {max_targets: 8192}\nstatic_peers: [{node: b, region: eu-west-1, address: "
       "10.0.0.1}]\n",
       "static_peers: 1 peers beside probe.plan_limits.max_targets 8192 exceed the 8192 paths a report "
       "carries"},
  };
  for (const auto& c : cases) {
    const std::string message = Problem(Valid() + c.yaml_suffix);
    EXPECT_NE(message.find(c.expected), std::string::npos)
        << c.name << ": expected \"" << c.expected << "\" in:\n"
        << message;
  }
}

TEST_F(AgentConfigTest, RegionListErrors) {
  const std::string base = "node: a\nregion: us-east-1\nprobe: {key_file: " + key_ + "}\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"regions: [{name: us-east-1, cidrs: [10.1.0.0/33]}]",
       "regions[0].cidrs[0]: \"10.1.0.0/33\": prefix length 33 exceeds 32"},
      {"regions: [{name: us-east-1, cidrs: [10.1.0.1/16]}]",
       "regions[0].cidrs[0]: \"10.1.0.1/16\": host bits set"},
      {"regions: [{name: us-east-1, cidrs: [10.1.0.0]}]", "missing /prefix-length"},
      {"regions: [{name: us-east-1, cidrs: [banana/8]}]", "not an IPv4 or IPv6 address"},
      {"regions: [{name: us-east-1, cidrs: [10.1.0.0/16]}, {name: eu, cidrs: [10.1.0.0/16]}]",
       "regions[1].cidrs[0]: 10.1.0.0/16 overlaps 10.1.0.0/16 (regions[0].cidrs[0])"},
      // Stricter than longest-prefix match: a network inside another region's is refused too.
      {"regions: [{name: us-east-1, cidrs: [10.0.0.0/8]}, {name: eu, cidrs: [10.1.0.0/16]}]",
       "regions[1].cidrs[0]: 10.1.0.0/16 overlaps 10.0.0.0/8 (regions[0].cidrs[0])"},
      {"regions: [{name: us-east-1, cidrs: []}]", "regions[0].cidrs: must be a non-empty list of CIDRs"},
      {"regions: [{name: us-east-1}]", "regions[0].cidrs: missing"},
      {"regions: [{cidrs: [10.1.0.0/16]}]", "regions[0].name: missing"},
      {"regions: [{name: us-east-1, cidrs: [10.1.0.0/16]}, {name: us-east-1, cidrs: [10.2.0.0/16]}]",
       "regions[1].name: \"us-east-1\" is listed twice"},
      {"regions: [{name: us-east-1, cidrs: [10.1.0.0/16], weight: 2}]", "regions[0].weight: unknown key"},
      {"regions: [{name: eu-west-1, cidrs: [10.2.0.0/16]}]", "region: \"us-east-1\" is not in regions"},
      {"regions: us-east-1", "regions: must be a list, not \"us-east-1\""},
  };
  for (const auto& [yaml, expected] : cases) {
    EXPECT_NE(Problem(base + yaml + "\n").find(expected), std::string::npos)
        << yaml << "\nexpected: " << expected;
  }
}

// The form the agent read before: a mapping cannot carry the region order through Helm's
// toYaml (it sorts keys), so it is refused with the list form to write instead.
TEST_F(AgentConfigTest, TheOldRegionMappingIsRefusedShowingTheList) {
  const std::string message =
      Problem("node: a\nregion: us-east-1\nprobe: {key_file: " + key_ +
              "}\nregions:\n  us-east-1: [10.1.0.0/16]\n  eu-west-1: [10.2.0.0/16]\n");
  EXPECT_NE(
      message.find("regions: must be a list of {name, cidrs}, not a mapping: write \"- {name: us-east-1, "
                   "cidrs: [...]}\" for each region"),
      std::string::npos)
      << message;
  EXPECT_NE(message.find("Helm's toYaml sorts mapping keys"), std::string::npos) << message;
}

// What the BPF maps hold (bpf/regionpulse_shared.h) is checked when the config is read, with
// the key, rather than first when the agent fills the maps.
TEST_F(AgentConfigTest, TheBpfMapLimitsAreCheckedAtParseTime) {
  const std::string base = "node: a\nregion: r1\nprobe: {key_file: " + key_ + "}\n";
  auto regions = [](int count) {
    std::string yaml = "regions:\n";
    for (int i = 1; i <= count; ++i) {
      yaml += "  - {name: r" + std::to_string(i) + ", cidrs: [10." + std::to_string(i) + ".0.0/16]}\n";
    }
    return yaml;
  };
  EXPECT_TRUE(ParseAgentConfig(base + regions(RP_MAX_REGIONS - 1), {}).ok()) << "ids 1..63";
  EXPECT_NE(Problem(base + regions(RP_MAX_REGIONS)).find("regions: 64 regions; at most 63 (region ids 1..63"),
            std::string::npos);

  std::string cidrs = "regions:\n  - {name: r1, cidrs: [";
  for (int i = 0; i <= RP_MAX_REGION_CIDRS; ++i) {
    cidrs += (i ? ", " : "") + std::string("10.") + std::to_string(i / 256) + "." + std::to_string(i % 256) +
             ".0/24";
  }
  cidrs += "]}\n";
  EXPECT_NE(
      Problem(base + cidrs).find("regions: more than 4096 IPv4 CIDRs (the size of the BPF region LPM tries)"),
      std::string::npos);

  std::string flows = regions(2) + "replication_flows:\n";
  for (int i = 0; i <= RP_MAX_FLOWS; ++i) {
    flows += "  - {name: f" + std::to_string(i) + ", ports: [" + std::to_string(1000 + i) +
             "], remote_region: r2}\n";
  }
  EXPECT_NE(Problem(base + flows).find("replication_flows: 65 flows; at most 64"), std::string::npos);

  std::string ports = regions(2) + "replication_flows:\n  - {name: f, remote_region: r2, ports: [";
  for (int i = 1; i <= RP_MAX_FLOW_PORTS + 1; ++i) ports += (i > 1 ? ", " : "") + std::to_string(i);
  ports += "]}\n";
  EXPECT_NE(Problem(base + ports).find("replication_flows: 1025 ports in all flows; at most 1024"),
            std::string::npos);
}

TEST_F(AgentConfigTest, APortBelongsToOneFlowPerRegion) {
  const std::string base = Valid() +
                           "replication_flows:\n"
                           "  - {name: pg, ports: [5432], remote_region: eu-west-1}\n";
  EXPECT_NE(Problem(base + "  - {name: pg2, ports: [5433, 5432], remote_region: eu-west-1}\n")
                .find("replication_flows[1].ports[1]: port 5432 towards eu-west-1 is already in flow \"pg\""),
            std::string::npos);
  EXPECT_NE(
      Problem(Valid() + "replication_flows: [{name: pg, ports: [5432, 5432], remote_region: eu-west-1}]\n")
          .find("replication_flows[0].ports[1]: port 5432 towards eu-west-1 is already in flow \"pg\""),
      std::string::npos);
  auto other_region =
      ParseAgentConfig(base + "  - {name: pg-us, ports: [5432], remote_region: us-east-1}\n", {});
  EXPECT_TRUE(other_region.ok()) << other_region.error().message;
}

// YAML 1.2's core schema: a Helm value rendered as `on` is not silently true here while the
// aggregator refuses it.
TEST_F(AgentConfigTest, BooleansAreTrueOrFalseOnly) {
  for (const std::string word : {"yes", "no", "on", "off", "y", "Yes", "OFF"}) {
    const std::string message = Problem(Valid() + "bpf: {enabled: " + word + "}\n");
    EXPECT_NE(message.find("bpf.enabled: \"" + word + "\" is not true or false (write true or false"),
              std::string::npos)
        << message;
  }
  for (const std::string word : {"true", "True", "TRUE"}) {
    auto c = ParseAgentConfig(Valid() + "bpf: {prefer_tcx: false, enabled: " + word + "}\n", {});
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_TRUE(c->bpf_enabled);
    EXPECT_FALSE(c->prefer_tcx);
  }
  EXPECT_NE(Problem(Valid(), {}, {"--set", "bpf.prefer_tcx=on"})
                .find("bpf.prefer_tcx: \"on\" is not true or false"),
            std::string::npos);
}

TEST_F(AgentConfigTest, UnknownKeysListTheKnownOnes) {
  const std::string message = Problem(Valid() + "log: {colour: blue}\n");
  EXPECT_NE(message.find("log.colour: unknown key (known here: format, level)"), std::string::npos)
      << message;
}

TEST_F(AgentConfigTest, IdentityIsRequired) {
  const std::string message = Problem("probe: {key_file: " + key_ + "}\n");
  EXPECT_NE(message.find("node: missing (set node in the file, NODE_NAME in the environment or --node)"),
            std::string::npos);
  EXPECT_NE(message.find("region: missing"), std::string::npos);
}

TEST_F(AgentConfigTest, KeyFileProblems) {
  EXPECT_NE(Problem("node: a\nregion: r\n").find("probe.key_file: required when probe.authenticated is true"),
            std::string::npos);
  EXPECT_NE(Problem("node: a\nregion: r\nprobe: {key_file: /nonexistent.key}\n")
                .find("probe.key_file: /nonexistent.key: No such file or directory"),
            std::string::npos);
  const std::string short_key = Write("short.key", "tiny\n");
  EXPECT_NE(Problem("node: a\nregion: r\nprobe: {key_file: " + short_key + "}\n")
                .find("key is 4 bytes, at least 16 are needed"),
            std::string::npos);
}

TEST_F(AgentConfigTest, AcceptedKeyFilesForARotation) {
  const std::string next = Write("next.key", "fedcba9876543210fedcba9876543210\n");
  auto config = ParseAgentConfig(Valid() + "  accepted_key_files: [" + next + "]\n", {});
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  ASSERT_EQ(config->probe.accepted_keys.size(), 1u);
  EXPECT_EQ(std::string(config->probe.accepted_keys[0].begin(), config->probe.accepted_keys[0].end()),
            "fedcba9876543210fedcba9876543210");
  EXPECT_NE(
      Problem(Valid() + "  accepted_key_files: [" + next + ", " + next + ", " + next + ", " + next + "]\n")
          .find("probe.accepted_key_files: 4 files, at most 3"),
      std::string::npos);
  EXPECT_NE(Problem(Valid() + "  accepted_key_files: [/nonexistent.key]\n")
                .find("probe.accepted_key_files[0]: /nonexistent.key: No such file or directory"),
            std::string::npos);
  EXPECT_NE(Problem("node: a\nregion: r\nprobe: {authenticated: false, accepted_key_files: [" + next + "]}\n")
                .find("probe.accepted_key_files: set without probe.key_file"),
            std::string::npos);
}

TEST_F(AgentConfigTest, ReflectorLimitsParseAndAreBounded) {
  auto config = ParseAgentConfig(
      Valid() +
          "  reflector_limits: {rate_per_source: 50, burst_per_source: 80, max_sources: 100, "
          "max_clock_offset: 5s}\n",
      {});
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  EXPECT_EQ(config->probe.reflector_rate_per_source, 50);
  EXPECT_EQ(config->probe.reflector_burst_per_source, 80);
  EXPECT_EQ(config->probe.reflector_max_sources, 100u);
  EXPECT_EQ(config->probe.reflector_max_clock_offset, 5s);
  EXPECT_NE(
      Problem(Valid() + "  reflector_limits: {max_sources: 0}\n").find("probe.reflector_limits.max_sources"),
      std::string::npos);
  EXPECT_NE(Problem(Valid() + "  plan_limits: {frequency: 1}\n").find("probe.plan_limits.frequency"),
            std::string::npos);
}

TEST_F(AgentConfigTest, EveryProblemIsReportedAtOnce) {
  const std::string message = Problem(Valid() + "  interval: x\n  port: 0\nlog: {format: xml}\n");
  EXPECT_EQ(message,
            "invalid configuration:\n"
            "  probe.port: 0 is outside 1..65535\n"
            "  probe.interval: \"x\" is not a duration (examples: 250us, 100ms, 1s, 10m)\n"
            "  log.format: \"xml\" is not text or json");
}

TEST_F(AgentConfigTest, SyntaxErrorsGiveTheLine) {
  EXPECT_NE(Problem("node: a\nregions: [unclosed\n").find("config: line "), std::string::npos);
}

TEST_F(AgentConfigTest, FlagErrors) {
  EXPECT_NE(Problem(Valid(), {}, {"--frobnicate"}).find("--frobnicate: unknown flag"), std::string::npos);
  EXPECT_NE(Problem(Valid(), {}, {"--node"}).find("--node: needs a value"), std::string::npos);
  EXPECT_NE(Problem(Valid(), {}, {"--no-bpf=yes"}).find("--no-bpf: takes no value"), std::string::npos);
  EXPECT_NE(Problem(Valid(), {}, {"stray"}).find("stray: unexpected argument"), std::string::npos);
  EXPECT_NE(Problem(Valid(), {}, {"--set", "novalue"}).find("--set: \"novalue\" is not KEY=VALUE"),
            std::string::npos);
  EXPECT_NE(
      Problem(Valid(), {}, {"--peer", "a,b"}).find("--peer: \"a,b\" is not NODE,REGION,ZONE,ADDRESS[,PORT]"),
      std::string::npos);
}

}  // namespace
}  // namespace regionpulse
