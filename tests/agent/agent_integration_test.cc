// regionpulse-agent end to end: real agent processes, each in its own network namespace.
//  - Two agents probe each other with no aggregator, over veth and over wireguard-go: no
//    loss, and the kernel-stamped RTT is below the user-space RTT.
//  - A test-only nftables rule drops 20% of one direction's probes: the loss shows in that
//    direction only, at the right rate.
//  - An in-process aggregator stand-in is stopped for 10 s and started again on the same
//    port: it then holds every window the agent produced, exactly once and in order,
//    including the last one the agent sends on SIGTERM.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string_view>
#include <system_error>
#include <thread>

#include "common/latency_histogram.h"
#include "common/proto_convert.h"
#include "tests/support/agent_process.h"
#include "tests/support/ingest_stand_in.h"
#include "tests/support/poll_until.h"
#include "tests/support/probe_key.h"
#include "tests/support/test_network.h"
#include "tests/support/wireguard_link.h"

namespace regionpulse {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test::AgentProcess;
using test::IngestStandIn;
using test::NetworkNamespace;
using test::ScratchDirectory;
using test::VethPair;

constexpr uint16_t kProbePort = 8620;

struct AgentSpec {
  std::string node, region, zone, netns;
  std::string address;                  // where the other agent reaches this one
  std::vector<std::string> interfaces;  // for the tc programs
};

// A YAML config for `self` probing `peer` every 10 ms (100 probes per 1 s window).
std::string AgentYaml(const AgentSpec& self, const AgentSpec& peer, const std::string& key_file) {
  std::ostringstream yaml;
  yaml << "node: " << self.node << "\nregion: " << self.region << "\nzone: " << self.zone << "\n"
       << "regions:\n"
       << "  - {name: " << self.region << ", cidrs: [" << self.address << "/32]}\n"
       << "  - {name: " << peer.region << ", cidrs: [" << peer.address << "/32]}\n"
       << "probe:\n  port: " << kProbePort << "\n  interval: 10ms\n  timeout: 500ms\n  key_file: " << key_file
       << "\n"
       << "window: 1s\n"
       << "interfaces: [" << (self.interfaces.empty() ? "" : self.interfaces[0]) << "]\n"
       << "status:\n  listen: 127.0.0.1:0\n"
       << "static_peers:\n"
       << "  - {node: " << peer.node << ", region: " << peer.region << ", zone: " << peer.zone
       << ", address: " << peer.address << ", port: " << kProbePort << "}\n";
  return yaml.str();
}

struct PathTotals {
  uint64_t sent = 0, received_forward = 0, received_reverse = 0, duplicates = 0;
  uint64_t kernel_rejected = 0, windows = 0;
  LatencyHistogram rtt_kernel, rtt_user;
  double LossForward() const { return sent ? 1.0 - double(received_forward) / double(sent) : 0; }
  double LossReverse() const {
    return received_forward ? 1.0 - double(received_reverse) / double(received_forward) : 0;
  }
};

// Sums the steady-state windows: the first two (the peer may not be listening yet) and the
// last two (the peer may already have stopped) are left out.
PathTotals SteadyTotals(const std::vector<v1::HealthReport>& reports, const std::string& peer_node) {
  PathTotals totals;
  for (size_t i = 2; i + 2 < reports.size(); ++i) {
    for (const auto& path : reports[i].paths()) {
      if (path.peer_node() != peer_node) continue;
      ++totals.windows;
      totals.sent += path.probes_sent();
      totals.received_forward += path.received_forward();
      totals.received_reverse += path.received_reverse();
      totals.duplicates += path.duplicates();
      totals.kernel_rejected += path.kernel_stamps_rejected();
      if (auto h = FromProto(path.rtt_kernel()); h.ok()) totals.rtt_kernel.Merge(*h);
      if (auto h = FromProto(path.rtt_user()); h.ok()) totals.rtt_user.Merge(*h);
    }
  }
  return totals;
}

std::string Describe(const PathTotals& t) {
  std::ostringstream out;
  out << t.windows << " windows, sent " << t.sent << ", fwd " << t.received_forward << ", rev "
      << t.received_reverse << ", kernel p50 " << t.rtt_kernel.Percentile(0.5).value_or(0)
      << " ns (n=" << t.rtt_kernel.Count() << "), user p50 " << t.rtt_user.Percentile(0.5).value_or(0)
      << " ns (n=" << t.rtt_user.Count() << "), kernel rejected " << t.kernel_rejected;
  return out.str();
}

// GET http://127.0.0.1:PORT/PATH from inside a namespace: "CODE\nBODY".
std::string HttpGet(const NetworkNamespace& ns, uint16_t port, const std::string& path) {
  return test::RunOrThrow(ns.Exec() + "curl -s -m 5 -w '%{http_code}' -o /dev/stdout http://127.0.0.1:" +
                          std::to_string(port) + path + " | tail -c 100000");
}

// The status port the agent logged at start ("status on port N"), 0 when not found yet.
// Not std::regex: GCC 12 reports a false -Wmaybe-uninitialized inside it under -fsanitize, and
// -Werror then stops the sanitizer build.
uint16_t LoggedStatusPort(const AgentProcess& agent) {
  static constexpr std::string_view kMarker = "status on port ";
  const std::string output = agent.Output();
  const size_t at = output.find(kMarker);
  if (at == std::string::npos) return 0;
  unsigned port = 0;
  const char* first = output.data() + at + kMarker.size();
  const char* last = output.data() + output.size();
  auto [end, error] = std::from_chars(first, last, port);
  if (error != std::errc() || end == first || port > 65535) return 0;
  return static_cast<uint16_t>(port);
}

class AgentIntegrationTest : public ::testing::Test {
 protected:
  // Runs both agents until each has logged `windows` reports, stops them with SIGTERM and
  // checks they exit 0. Returns (a's reports, b's reports).
  std::pair<std::vector<v1::HealthReport>, std::vector<v1::HealthReport>> RunPair(const AgentSpec& a,
                                                                                  const AgentSpec& b,
                                                                                  size_t windows = 8) {
    std::string key_file = scratch_.Write("probe.key", test::RandomProbeKeyHex());
    std::string config_a = scratch_.Write(a.node + ".yaml", AgentYaml(a, b, key_file));
    std::string config_b = scratch_.Write(b.node + ".yaml", AgentYaml(b, a, key_file));
    AgentProcess agent_a(REGIONPULSE_AGENT_BINARY, a.netns, config_a, scratch_.path(), a.node);
    AgentProcess agent_b(REGIONPULSE_AGENT_BINARY, b.netns, config_b, scratch_.path(), b.node);
    bool a_ok = agent_a.WaitForReports(windows, seconds(30));
    bool b_ok = agent_b.WaitForReports(windows, seconds(30));
    agent_a.Terminate();
    agent_b.Terminate();
    auto exit_a = agent_a.Wait(seconds(15));
    auto exit_b = agent_b.Wait(seconds(15));
    EXPECT_TRUE(a_ok) << agent_a.Output();
    EXPECT_TRUE(b_ok) << agent_b.Output();
    EXPECT_EQ(exit_a, std::optional<int>(0)) << agent_a.Output();
    EXPECT_EQ(exit_b, std::optional<int>(0)) << agent_b.Output();
    return {agent_a.Reports(), agent_b.Reports()};
  }

  void ExpectCleanPath(const PathTotals& t) {
    std::printf("path totals: %s\n", Describe(t).c_str());  // the figures, for the record
    SCOPED_TRACE(Describe(t));
    ASSERT_GE(t.windows, 3u);
    // 10 ms interval, 1 s windows: about 100 probes per window.
    EXPECT_GE(t.sent, 60u * t.windows);
    EXPECT_EQ(t.received_forward, t.sent);
    EXPECT_EQ(t.received_reverse, t.received_forward);
    EXPECT_EQ(t.duplicates, 0u);
    // Kernel stamps on (almost) every probe, and the kernel RTT below the user-space one:
    // it excludes both agents' scheduling and the reflector's turnaround.
    EXPECT_GE(t.rtt_kernel.Count(), t.received_reverse * 9 / 10);
    ASSERT_FALSE(t.rtt_kernel.Empty());
    ASSERT_FALSE(t.rtt_user.Empty());
    EXPECT_LT(*t.rtt_kernel.Percentile(0.5), *t.rtt_user.Percentile(0.5));
    EXPECT_LT(*t.rtt_kernel.Percentile(0.9), *t.rtt_user.Percentile(0.9));
  }

  ScratchDirectory scratch_{"daemon"};
};

TEST_F(AgentIntegrationTest, TwoAgentsOverVethSeeNoLossAndKernelRttBelowUserRtt) {
  NetworkNamespace ns_a("dva"), ns_b("dvb");
  VethPair veth(ns_a, ns_b, test::RunPrefix() + "va", test::RunPrefix() + "vb", 71);
  AgentSpec a{"node-a", "region-a", "zone-a", ns_a.name(), veth.a().ipv4, {veth.a().ifname}};
  AgentSpec b{"node-b", "region-b", "zone-b", ns_b.name(), veth.b().ipv4, {veth.b().ifname}};
  auto [reports_a, reports_b] = RunPair(a, b);
  ExpectCleanPath(SteadyTotals(reports_a, "node-b"));
  ExpectCleanPath(SteadyTotals(reports_b, "node-a"));
  // Every window is reported once, numbered 1, 2, 3, ...
  for (size_t i = 0; i < reports_a.size(); ++i) EXPECT_EQ(reports_a[i].sequence(), i + 1);
}

TEST_F(AgentIntegrationTest, TwoAgentsOverWireguardSeeNoLossAndKernelRttBelowUserRtt) {
  NetworkNamespace ns_a("dwa"), ns_b("dwb");
  VethPair underlay(ns_a, ns_b, test::RunPrefix() + "wa", test::RunPrefix() + "wb", 72);
  test::WireguardSide side_a{ns_a.name(), "10.172.0.1/24", "", underlay.a().ipv4, 51820, {}};
  test::WireguardSide side_b{ns_b.name(), "10.172.0.2/24", "", underlay.b().ipv4, 51820, {}};
  test::WireguardLink link(side_a, side_b);
  AgentSpec a{"node-a", "region-a", "zone-a", ns_a.name(), link.a_ipv4(), {link.ifname()}};
  AgentSpec b{"node-b", "region-b", "zone-b", ns_b.name(), link.b_ipv4(), {link.ifname()}};
  auto [reports_a, reports_b] = RunPair(a, b);
  ExpectCleanPath(SteadyTotals(reports_a, "node-b"));
  ExpectCleanPath(SteadyTotals(reports_b, "node-a"));
}

// nftables in b's namespace drops 20% (numgen random mod 100 < 20) of the UDP packets to the
// reflector port: a's probes to b. b's replies to a, b's probes to a and a's replies to b
// all travel with other destination ports or in the other namespace, untouched.
TEST_F(AgentIntegrationTest, DropRuleOnOneDirectionShowsAsLossInThatDirectionOnly) {
  NetworkNamespace ns_a("dda"), ns_b("ddb");
  VethPair veth(ns_a, ns_b, test::RunPrefix() + "da", test::RunPrefix() + "db", 73);
  test::RunOrThrow(ns_b.Exec() + "nft add table inet rp_test_drop");
  test::RunOrThrow(
      ns_b.Exec() +
      "nft add chain inet rp_test_drop input '{ type filter hook input priority 0; policy accept; }'");
  test::RunOrThrow(ns_b.Exec() + "nft add rule inet rp_test_drop input udp dport " +
                   std::to_string(kProbePort) + " numgen random mod 100 '<' 20 drop");
  AgentSpec a{"node-a", "region-a", "zone-a", ns_a.name(), veth.a().ipv4, {veth.a().ifname}};
  AgentSpec b{"node-b", "region-b", "zone-b", ns_b.name(), veth.b().ipv4, {veth.b().ifname}};
  auto [reports_a, reports_b] = RunPair(a, b, 10);

  PathTotals a_to_b = SteadyTotals(reports_a, "node-b");
  std::printf("a->b: %s, forward loss %.3f\n", Describe(a_to_b).c_str(), a_to_b.LossForward());
  SCOPED_TRACE("a->b: " + Describe(a_to_b));
  ASSERT_GE(a_to_b.sent, 400u);
  // Tolerance: each probe is dropped independently with p = 0.2, so over n probes the loss
  // ratio has standard deviation sqrt(p(1-p)/n) <= 0.02 for n >= 400. 0.1 is five of them:
  // a correct agent fails this less than once in a million runs; a direction mix-up (0 or
  // 0.2 in the wrong place) or a double count (0.36) cannot pass.
  EXPECT_NEAR(a_to_b.LossForward(), 0.20, 0.10);
  EXPECT_EQ(a_to_b.received_reverse, a_to_b.received_forward) << "reverse direction must show no loss";

  PathTotals b_to_a = SteadyTotals(reports_b, "node-a");
  std::printf("b->a: %s\n", Describe(b_to_a).c_str());
  SCOPED_TRACE("b->a: " + Describe(b_to_a));
  ASSERT_GE(b_to_a.sent, 400u);
  EXPECT_EQ(b_to_a.received_forward, b_to_a.sent);
  EXPECT_EQ(b_to_a.received_reverse, b_to_a.received_forward);
}

// report_log_format: binary (what tools/bench/agent_cost uses): each window's report, in order,
// as a length-delimited binary HealthReport.
TEST_F(AgentIntegrationTest, ABinaryReportLogHoldsEachWindowsReportInOrder) {
  NetworkNamespace ns("dbl");
  std::ostringstream yaml;
  yaml << "node: node-a\nregion: region-a\nzone: zone-a\n"
       << "regions:\n  - {name: region-a, cidrs: [10.0.0.0/8]}\n"
       << "probe:\n  port: " << kProbePort
       << "\n  key_file: " << scratch_.Write("probe.key", test::RandomProbeKeyHex()) << "\n"
       << "window: 200ms\nbpf:\n  enabled: false\nstatus:\n  listen: 127.0.0.1:0\n";
  AgentProcess agent(REGIONPULSE_AGENT_BINARY, ns.name(), scratch_.Write("agent.yaml", yaml.str()),
                     scratch_.path(), "node-a", {"--set", "report_log_format=binary"});
  ASSERT_TRUE(agent.WaitForReports(3, seconds(20))) << agent.Output();
  const auto reports = agent.Reports();  // read back as binary records
  for (size_t i = 0; i < reports.size(); ++i) EXPECT_EQ(reports[i].sequence(), i + 1);
  agent.Terminate();
  EXPECT_EQ(agent.Wait(seconds(15)), std::optional<int>(0)) << agent.Output();
}

// The agent in its own namespace reports to a stand-in listening inside that namespace.
TEST_F(AgentIntegrationTest, AggregatorStoppedForTenSecondsReceivesEveryWindowExactlyOnceInOrder) {
  NetworkNamespace ns("dag");
  IngestStandIn stand_in;
  uint16_t port = 0;
  {
    test::ScopedNetnsEntry inside(ns.name());  // the listening socket is the namespace's
    port = stand_in.Start("127.0.0.1");
  }
  std::ostringstream yaml;
  yaml << "node: node-a\nregion: region-a\nzone: zone-a\n"
       << "regions:\n  - {name: region-a, cidrs: [10.0.0.0/8]}\n"
       << "probe:\n  port: " << kProbePort
       << "\n  key_file: " << scratch_.Write("probe.key", test::RandomProbeKeyHex()) << "\n"
       << "window: 200ms\n"  // 50 windows during the 10 s outage
       << "bpf:\n  enabled: false\n"
       << "status:\n  listen: 127.0.0.1:0\n"
       << "reconnect:\n  initial: 100ms\n  max: 1s\n"
       << "aggregators: [127.0.0.1:" << port << "]\n";
  AgentProcess agent(REGIONPULSE_AGENT_BINARY, ns.name(), scratch_.Write("agent.yaml", yaml.str()),
                     scratch_.path(), "node-a");

  ASSERT_TRUE(
      stand_in.WaitUntil([](const IngestStandIn& s) { return s.StoredReports().size() >= 5; }, seconds(20)))
      << agent.Output();
  stand_in.Stop();
  size_t logged_at_stop = agent.Reports().size();
  std::this_thread::sleep_for(seconds(10));  // the outage itself
  size_t produced_during_outage = agent.Reports().size() - logged_at_stop;
  EXPECT_GE(produced_during_outage, 40u);
  {
    test::ScopedNetnsEntry inside(ns.name());
    ASSERT_EQ(stand_in.Start("127.0.0.1", port), port);
  }
  // Replay and live windows interleave for a moment, then the agent stops: its last window
  // must arrive too.
  ASSERT_TRUE(stand_in.WaitUntil(
      [&](const IngestStandIn& s) {
        return s.StoredReports().size() >= logged_at_stop + produced_during_outage + 5;
      },
      seconds(20)))
      << agent.Output();
  agent.Terminate();
  ASSERT_EQ(agent.Wait(seconds(15)), std::optional<int>(0)) << agent.Output();
  stand_in.Stop();

  auto produced = agent.Reports();  // the report log: every window the agent closed
  auto stored = stand_in.StoredReports();
  ASSERT_EQ(stored.size(), produced.size()) << agent.Output();
  for (size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i].report.sequence(), i + 1);
    EXPECT_EQ(stored[i].report.window_start().seconds(), produced[i].window_start().seconds());
    EXPECT_EQ(stored[i].report.window_start().nanos(), produced[i].window_start().nanos());
  }
  EXPECT_LE(stand_in.ReplaysDiscarded(), 1u);  // only a report in flight when it stopped
  auto hellos = stand_in.Hellos();
  ASSERT_EQ(hellos.size(), 2u);
  EXPECT_EQ(hellos[0].instance_id(), hellos[1].instance_id());
  EXPECT_EQ(hellos[1].node(), "node-a");
}

// Targets from the aggregator: a has no static peers and probes b because the stand-in's
// ProbePlan says so; a later plan replaces it only when its version is newer. /readyz follows the stream (BPF
// is attached throughout), /metrics shows kernel RTTs by peer region, and --log-format json makes every log
// line one JSON object.
// A TCP socket of namespace `netns` (sockets stay in the namespace they were created in).
int TcpSocketIn(const std::string& netns) {
  test::ScopedNetnsEntry inside(netns);
  return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

// The flow's figures in the reports from index `from` on: bytes acknowledged in them, and
// the largest and the last staleness reported.
struct FlowSeen {
  uint64_t bytes_acked = 0;
  double max_staleness_s = 0;
  double last_staleness_s = -1;
  uint32_t last_connections = 0;
};
FlowSeen FlowIn(const std::vector<v1::HealthReport>& reports, size_t from, const std::string& name) {
  FlowSeen seen;
  for (size_t i = from; i < reports.size(); ++i) {
    for (const auto& flow : reports[i].flows()) {
      if (flow.name() != name) continue;
      const double staleness =
          static_cast<double>(flow.last_progress_age().seconds()) + flow.last_progress_age().nanos() / 1e9;
      seen.bytes_acked += flow.bytes_acked();
      seen.max_staleness_s = std::max(seen.max_staleness_s, staleness);
      seen.last_staleness_s = staleness;
      seen.last_connections = flow.connections();
    }
  }
  return seen;
}

// The replication story end to end, through the real agent and its reports: a PostgreSQL-like
// flow moves data (staleness 0); the replica stops consuming while the primary has more to
// send, so its window closes with nothing in flight (staleness grows, window after window);
// it catches up (staleness back to 0, every byte counted).
TEST_F(AgentIntegrationTest, AReplicaThatStopsConsumingShowsAsGrowingStalenessUntilItCatchesUp) {
  NetworkNamespace ns_a("dra"), ns_b("drb");
  VethPair veth(ns_a, ns_b, test::RunPrefix() + "ra", test::RunPrefix() + "rb", 74);
  std::ostringstream yaml;
  yaml << "node: node-a\nregion: region-a\nzone: zone-a\n"
       << "regions:\n  - {name: region-a, cidrs: [" << veth.a().ipv4 << "/32]}\n"
       << "  - {name: region-b, cidrs: [" << veth.b().ipv4 << "/32]}\n"
       << "probe:\n  port: " << kProbePort
       << "\n  key_file: " << scratch_.Write("probe.key", test::RandomProbeKeyHex()) << "\n"
       << "window: 1s\n"
       << "interfaces: [" << veth.a().ifname << "]\n"
       << "replication_flows:\n  - {name: pg, ports: [5432], remote_region: region-b}\n"
       << "status:\n  listen: 127.0.0.1:0\n";
  AgentProcess agent(REGIONPULSE_AGENT_BINARY, ns_a.name(), scratch_.Write("a.yaml", yaml.str()),
                     scratch_.path(), "node-a");
  ASSERT_TRUE(agent.WaitForReports(1, seconds(30))) << agent.Output();

  const int listener = TcpSocketIn(ns_b.name());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(5432);
  inet_pton(AF_INET, veth.b().ipv4.c_str(), &addr.sin_addr);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  ASSERT_EQ(listen(listener, 1), 0);
  const int primary = TcpSocketIn(ns_a.name());
  ASSERT_EQ(connect(primary, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  const int replica = accept(listener, nullptr, nullptr);
  ASSERT_GE(replica, 0);
  ASSERT_EQ(fcntl(primary, F_SETFL, O_NONBLOCK), 0);
  std::vector<char> data(65536, 'w');
  auto write_until_full = [&] {
    size_t written = 0;
    for (;;) {
      const ssize_t n = write(primary, data.data(), data.size());
      if (n <= 0) return written;
      written += static_cast<size_t>(n);
    }
  };
  auto drain = [&](size_t bytes) {
    std::vector<char> in(65536);
    for (size_t got = 0; got < bytes;) {
      const ssize_t n = read(replica, in.data(), in.size());
      if (n <= 0) return false;
      got += static_cast<size_t>(n);
    }
    return true;
  };

  // Flowing: a burst that is read at once.
  const size_t start = agent.Reports().size();
  const size_t first = write_until_full();
  ASSERT_TRUE(drain(first));
  ASSERT_TRUE(
      test::PollUntil([&] { return FlowIn(agent.Reports(), start, "pg").bytes_acked >= first; }, seconds(10)))
      << agent.Output();
  EXPECT_EQ(FlowIn(agent.Reports(), start, "pg").max_staleness_s, 0.0) << "idle after a burst is not stale";

  // Stalled: the replica reads nothing, the primary's data waits.
  const size_t stall_start = agent.Reports().size();
  const size_t second = write_until_full();
  ASSERT_TRUE(test::PollUntil(
      [&] { return FlowIn(agent.Reports(), stall_start, "pg").last_staleness_s >= 3.0; }, seconds(15)))
      << "the stall must show as growing staleness; " << agent.Output();
  const FlowSeen stalled = FlowIn(agent.Reports(), stall_start, "pg");
  EXPECT_EQ(stalled.last_connections, 1u);
  EXPECT_LT(stalled.bytes_acked, second);

  // Caught up: staleness back to 0 and every byte of the second burst counted.
  const size_t catch_up = agent.Reports().size();
  ASSERT_TRUE(drain(second));
  ASSERT_TRUE(test::PollUntil(
      [&] {
        const FlowSeen seen = FlowIn(agent.Reports(), stall_start, "pg");
        return seen.bytes_acked >= second && FlowIn(agent.Reports(), catch_up, "pg").last_staleness_s == 0.0;
      },
      seconds(10)))
      << agent.Output();
  EXPECT_EQ(FlowIn(agent.Reports(), stall_start, "pg").bytes_acked, second);

  close(primary);
  close(replica);
  close(listener);
  agent.Terminate();
  EXPECT_EQ(agent.Wait(seconds(15)), std::optional<int>(0)) << agent.Output();
}

TEST_F(AgentIntegrationTest, AgentProbesThePlannedPeerAndServesReadinessAndMetrics) {
  NetworkNamespace ns_a("dpa"), ns_b("dpb");
  VethPair veth(ns_a, ns_b, test::RunPrefix() + "pa", test::RunPrefix() + "pb", 74);
  IngestStandIn stand_in;
  v1::ProbePlan plan;
  plan.set_plan_version(3);
  auto* target = plan.add_targets();
  target->set_node("node-b");
  target->set_region("region-b");
  target->set_zone("zone-b");
  target->mutable_endpoint()->set_address(veth.b().ipv4);
  target->mutable_endpoint()->set_port(kProbePort);
  *plan.mutable_interval() = ToDuration(milliseconds(20));
  stand_in.SetProbePlan(plan);
  uint16_t aggregator_port = 0;
  {
    test::ScopedNetnsEntry inside(ns_a.name());
    aggregator_port = stand_in.Start("127.0.0.1");
  }
  std::string aggregator = "127.0.0.1:" + std::to_string(aggregator_port);
  std::string key_file = scratch_.Write("probe.key", test::RandomProbeKeyHex());
  auto yaml = [&](const std::string& node, const std::string& region, const std::string& ifname,
                  const std::string& extra) {
    std::ostringstream out;
    out << "node: " << node << "\nregion: " << region << "\nzone: z\n"
        << "regions:\n  - {name: region-a, cidrs: [" << veth.a().ipv4 << "/32]}\n"
        << "  - {name: region-b, cidrs: [" << veth.b().ipv4 << "/32]}\n"
        << "probe:\n  port: " << kProbePort << "\n  key_file: " << key_file
        << "\n"
        // The plan asks for 20 ms, below the default floor of 100 ms.
        << "  plan_limits: {min_interval: 20ms}\n"
        << "interfaces: [" << ifname << "]\nstatus:\n  listen: 127.0.0.1:0\n"
        << extra;
    return out.str();
  };
  AgentProcess agent_b(REGIONPULSE_AGENT_BINARY, ns_b.name(),
                       scratch_.Write("b.yaml", yaml("node-b", "region-b", veth.b().ifname, "")),
                       scratch_.path(), "node-b");
  AgentProcess agent_a(
      REGIONPULSE_AGENT_BINARY, ns_a.name(),
      scratch_.Write("a.yaml",
                     yaml("node-a", "region-a", veth.a().ifname,
                          "reconnect:\n  initial: 100ms\n  max: 1s\naggregators: [" + aggregator + "]\n")),
      scratch_.path(), "node-a", {"--log-format", "json"});

  ASSERT_TRUE(agent_a.WaitForReports(5, seconds(30))) << agent_a.Output();
  uint16_t status_port = LoggedStatusPort(agent_a);
  ASSERT_NE(status_port, 0) << agent_a.Output();

  auto reports = agent_a.Reports();
  const v1::PathStats* planned = nullptr;
  for (const auto& path : reports.back().paths()) {
    if (path.peer_node() == "node-b") planned = &path;
  }
  ASSERT_NE(planned, nullptr) << "the plan's target is not probed";
  EXPECT_EQ(planned->peer_region(), "region-b");
  EXPECT_GE(planned->probes_sent(), 25u);  // 20 ms interval: ~50 per window
  EXPECT_EQ(planned->received_reverse(), planned->probes_sent());

  std::string ready = HttpGet(ns_a, status_port, "/readyz");
  EXPECT_EQ(ready.substr(ready.size() - 3), "200") << ready;
  std::string metrics = HttpGet(ns_a, status_port, "/metrics");
  EXPECT_NE(metrics.find("regionpulse_probe_rtt_seconds_bucket{kind=\"kernel\",peer_region=\"region-b\""),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("regionpulse_aggregator_stream_up{aggregator=\"" + aggregator + "\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("regionpulse_bpf_attached 1"), std::string::npos) << metrics;

  // Newest plan wins: a plan older than the one applied (version 2 < 3) is ignored, a newer
  // one (5) replaces the targets. node-c does not exist; probing it just loses probes.
  auto path_to = [](const v1::HealthReport& report, const std::string& node) -> const v1::PathStats* {
    for (const auto& path : report.paths()) {
      if (path.peer_node() == node) return &path;
    }
    return nullptr;
  };
  v1::ProbePlan other = plan;
  other.mutable_targets(0)->set_node("node-c");
  other.mutable_targets(0)->mutable_endpoint()->set_address("10.0.0.99");
  other.set_plan_version(2);
  size_t before_stale = agent_a.Reports().size();
  stand_in.BroadcastProbePlan(other);
  ASSERT_TRUE(agent_a.WaitForReports(before_stale + 4, seconds(15))) << agent_a.Output();
  reports = agent_a.Reports();
  for (size_t i = before_stale; i < reports.size(); ++i) {
    EXPECT_EQ(path_to(reports[i], "node-c"), nullptr) << "stale plan applied, report " << i + 1;
    EXPECT_NE(path_to(reports[i], "node-b"), nullptr) << "report " << i + 1;
  }
  // Hostile plans, each newer than the current one, are refused whole and the current plan
  // stays: a 1 us interval, a 4 GiB payload, 5,001 targets, a target outside the allowed
  // networks. The refusal is reported back in the next report's status.errors.
  std::vector<v1::ProbePlan> hostile(4, other);
  *hostile[0].mutable_interval() = ToDuration(std::chrono::microseconds(1));
  hostile[1].set_payload_size(std::numeric_limits<uint32_t>::max());
  for (int i = 0; i < 5001; ++i) *hostile[2].add_targets() = other.targets(0);  // one past the cap
  hostile[3].mutable_targets(0)->mutable_endpoint()->set_address("8.8.8.8");
  size_t before_hostile = agent_a.Reports().size();
  for (size_t i = 0; i < hostile.size(); ++i) {
    hostile[i].set_plan_version(10 + i);
    stand_in.BroadcastProbePlan(hostile[i]);
  }
  ASSERT_TRUE(agent_a.WaitForReports(before_hostile + 4, seconds(15))) << agent_a.Output();
  reports = agent_a.Reports();
  std::string errors;
  for (size_t i = before_hostile; i < reports.size(); ++i) {
    EXPECT_EQ(path_to(reports[i], "node-c"), nullptr) << "hostile plan applied, report " << i + 1;
    const auto* to_b_still = path_to(reports[i], "node-b");
    ASSERT_NE(to_b_still, nullptr) << "the current plan did not stay, report " << i + 1;
    for (const auto& error : reports[i].status().errors()) errors += error + "\n";
  }
  EXPECT_GT(path_to(reports.back(), "node-b")->probes_sent(), 25u);
  for (const char* reason : {"(interval)", "(payload_size)", "(target_count)", "(target_outside_cidrs)"}) {
    EXPECT_NE(errors.find(reason), std::string::npos) << reason << " not reported in:\n" << errors;
  }
  const std::string refused_metrics = HttpGet(ns_a, status_port, "/metrics");
  EXPECT_NE(refused_metrics.find("regionpulse_probe_plans_refused_total{reason=\"interval\"} 1"),
            std::string::npos)
      << refused_metrics;

  // Versions are per aggregator, and this one's last applied plan is 3: 5 is newer.
  other.set_plan_version(5);
  size_t before_newer = reports.size();
  stand_in.BroadcastProbePlan(other);
  ASSERT_TRUE(agent_a.WaitForReports(before_newer + 4, seconds(15))) << agent_a.Output();
  reports = agent_a.Reports();
  // Reports come out one window late: the last one covers a window wholly after the switch.
  const v1::PathStats* to_c = path_to(reports.back(), "node-c");
  ASSERT_NE(to_c, nullptr) << "newer plan not applied";
  EXPECT_GT(to_c->probes_sent(), 0u);
  const v1::PathStats* to_b = path_to(reports.back(), "node-b");
  EXPECT_TRUE(to_b == nullptr || to_b->probes_sent() == 0) << "node-b still probed after the newer plan";

  stand_in.Stop();
  const bool not_ready = test::PollUntil(
      [&] {
        ready = HttpGet(ns_a, status_port, "/readyz");
        return ready.substr(ready.size() - 3) == "503";
      },
      seconds(10), milliseconds(100));
  EXPECT_TRUE(not_ready) << ready;
  EXPECT_NE(ready.find("no aggregator stream is up"), std::string::npos) << ready;

  agent_a.Terminate();
  agent_b.Terminate();
  EXPECT_EQ(agent_a.Wait(seconds(15)), std::optional<int>(0)) << agent_a.Output();
  EXPECT_EQ(agent_b.Wait(seconds(15)), std::optional<int>(0)) << agent_b.Output();
  std::istringstream lines(agent_a.Output());
  std::string line;
  size_t count = 0;
  while (std::getline(lines, line)) {
    ++count;
    EXPECT_TRUE(line.rfind("{\"time\":\"", 0) == 0 && line.back() == '}') << "not a JSON log line: " << line;
  }
  EXPECT_GE(count, 2u);  // at least "started" and "stopped"
}

TEST_F(AgentIntegrationTest, StartFailureExitsOneNamingThePartThatFailed) {
  NetworkNamespace ns("dsf");
  // Hold the status port inside the agent's namespace so its status server cannot listen.
  int holder = -1;
  uint16_t port = 0;
  {
    test::ScopedNetnsEntry inside(ns.name());
    holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(holder, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ASSERT_EQ(listen(holder, 1), 0);
    socklen_t length = sizeof(address);
    ASSERT_EQ(getsockname(holder, reinterpret_cast<sockaddr*>(&address), &length), 0);
    port = ntohs(address.sin_port);
  }
  std::string config = scratch_.Write(
      "busy.yaml",
      "node: n\nregion: r\nregions: [{name: r, cidrs: [10.0.0.0/8]}]\nprobe:\n  authenticated: false\n"
      "bpf:\n  enabled: false\nstatus:\n  listen: 127.0.0.1:" +
          std::to_string(port) + "\n");
  AgentProcess agent(REGIONPULSE_AGENT_BINARY, ns.name(), config, scratch_.path(), "busy");
  EXPECT_EQ(agent.Wait(seconds(10)), std::optional<int>(1)) << agent.Output();
  EXPECT_NE(agent.Output().find("status server on 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << agent.Output();
  close(holder);
}

}  // namespace
}  // namespace regionpulse
