// AgentRegistry: Hello, the stateful report checks, and "not reporting" as evidence.
#include "aggregator/agent_registry.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace regionpulse {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

const WallClock::time_point kT0 = WallClock::time_point(std::chrono::seconds(1'800'000'000));

v1::Hello MakeHello(const std::string& node, uint64_t instance, std::chrono::milliseconds window = 1000ms) {
  v1::Hello hello;
  hello.set_node(node);
  hello.set_region("us-east-1");
  hello.set_zone("us-east-1a");
  hello.set_agent_version("0.1.0");
  hello.set_instance_id(instance);
  hello.mutable_probe_endpoint()->set_address("10.1.0.7");
  hello.mutable_probe_endpoint()->set_port(862);
  *hello.mutable_window() = ToDuration(window);
  return hello;
}

// Report `sequence` for the one-second window ending at `end`.
v1::HealthReport MakeReport(uint64_t sequence, WallClock::time_point end) {
  v1::HealthReport report;
  report.set_sequence(sequence);
  *report.mutable_window_start() = ToTimestamp(end - 1s);
  *report.mutable_window_end() = ToTimestamp(end);
  auto* path = report.add_paths();
  path->set_peer_node("eu-node-1");
  path->set_peer_region("eu-west-1");
  path->set_probes_sent(10);
  path->set_received_forward(10);
  path->set_received_reverse(10);
  return report;
}

TEST(AgentRegistryTest, HelloRegistersAndReportsAreAccepted) {
  AgentRegistry registry;
  const auto hello = registry.Hello(MakeHello("us-node-1", 42), kT0);
  ASSERT_TRUE(hello.ok) << hello.reason;
  EXPECT_EQ(hello.agent.region, "us-east-1");
  EXPECT_EQ(hello.highest_sequence, 0u);

  const auto result = registry.Accept(hello.session, MakeReport(1, kT0 + 1s), kT0 + 1s);
  EXPECT_EQ(result.status, AcceptStatus::kAccepted) << result.reason;
  EXPECT_TRUE(result.stored_now());
  EXPECT_EQ(result.agent.node, "us-node-1");
  EXPECT_EQ(result.instance_id, 42u);
  EXPECT_EQ(result.highest_sequence, 1u);
  EXPECT_EQ(RejectCodeOf(result.status), RejectCode::kOk);

  const auto agents = registry.List(kT0 + 1s);
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].state(), v1::AGENT_STATE_REPORTING);
  EXPECT_EQ(agents[0].last_sequence(), 1u);
  EXPECT_EQ(agents[0].probe_endpoint().port(), 862u);
  EXPECT_EQ(FromTimestamp(agents[0].last_report_at()), kT0 + 1s);
}

TEST(AgentRegistryTest, LateWindowsAreCountedPerAgentAndTheClockSkewIsEstimated) {
  AgentRegistry registry;
  const auto a = registry.Hello(MakeHello("us-node-1", 1), kT0);
  const auto b = registry.Hello(MakeHello("us-node-2", 2), kT0);
  // us-node-1's clock runs 1.5 s behind ours: each report arrives 1.5 s after its window end.
  // us-node-2 is on time, then was cut off and replays windows 10 to 60 s old.
  for (uint64_t s = 1; s <= 3; ++s) {
    const auto end = kT0 + std::chrono::seconds(s);
    EXPECT_FALSE(registry.Accept(a.session, MakeReport(s, end), end + 1500ms).late);
    EXPECT_FALSE(registry.Accept(b.session, MakeReport(s, end), end + 200ms).late);
  }
  const auto now = kT0 + 100s;
  uint64_t late = 0;
  for (uint64_t s = 4; s <= 9; ++s) {
    // Windows that ended 60, 50, ... 10 s ago; the last one (sequence 9) 5 s ago is not late.
    const auto end = now - std::chrono::seconds(60 - (s - 4) * 10 - (s == 9 ? 5 : 0));
    const auto result = registry.Accept(b.session, MakeReport(s, end), now);
    ASSERT_EQ(result.status, AcceptStatus::kAccepted) << result.reason;
    late += result.late ? 1 : 0;
  }
  EXPECT_EQ(late, 5u);
  const auto agents = registry.List(now);
  ASSERT_EQ(agents.size(), 2u);
  EXPECT_EQ(agents[0].node(), "us-node-1");
  EXPECT_EQ(agents[0].late_windows(), 0u);
  ASSERT_TRUE(agents[0].has_clock_skew());
  EXPECT_EQ(FromDuration(agents[0].clock_skew()), 1500ms);
  EXPECT_EQ(agents[1].late_windows(), 5u);
  // The replayed backlog does not make the clock look late: the smallest recent delay.
  EXPECT_EQ(FromDuration(agents[1].clock_skew()), 200ms);
  // A new instance (after the old one's stream ended) starts counting again.
  registry.EndSession(b.session);
  const auto restarted = registry.Hello(MakeHello("us-node-2", 3), now);
  ASSERT_TRUE(restarted.ok) << restarted.reason;
  EXPECT_EQ(registry.List(now)[1].late_windows(), 0u);
}

TEST(AgentRegistryTest, HelloWithoutNodeOrRegionIsRefused) {
  AgentRegistry registry;
  auto hello = MakeHello("", 1);
  EXPECT_FALSE(registry.Hello(hello, kT0).ok);
  hello = MakeHello("us-node-1", 1);
  hello.clear_region();
  const auto result = registry.Hello(hello, kT0);
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.reason, HasSubstr("region is empty"));
}

TEST(AgentRegistryTest, HelloWithoutAReachableProbeEndpointIsRefused) {
  // Such an agent would be planned as a probe target nobody can reach.
  AgentRegistry registry;
  auto hello = MakeHello("us-node-1", 1);
  hello.mutable_probe_endpoint()->clear_address();
  auto result = registry.Hello(hello, kT0);
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.reason, HasSubstr("probe_endpoint has no address"));
  hello.mutable_probe_endpoint()->set_address("node-1.example");
  result = registry.Hello(hello, kT0);
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.reason, HasSubstr("is not an IPv4 or IPv6 address"));
  hello.mutable_probe_endpoint()->set_address("fd00:1::7");
  hello.mutable_probe_endpoint()->set_port(0);
  result = registry.Hello(hello, kT0);
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.reason, HasSubstr("port 0 out of range"));
  EXPECT_EQ(registry.size(), 0u) << "a refused Hello registers nothing";
  hello.mutable_probe_endpoint()->set_port(862);
  EXPECT_TRUE(registry.Hello(hello, kT0).ok);
  EXPECT_EQ(registry.size(), 1u);
}

TEST(AgentRegistryTest, ReportWithoutHelloIsUnknownAgent) {
  AgentRegistry registry;
  const auto result = registry.Accept(99, MakeReport(1, kT0), kT0);
  EXPECT_EQ(result.status, AcceptStatus::kUnknownAgent);
  EXPECT_EQ(RejectCodeOf(result.status), RejectCode::kFailedPrecondition);
  EXPECT_FALSE(result.reason.empty());
}

TEST(AgentRegistryTest, ReplayAfterReconnectIsAcknowledgedAsDuplicateAndNotStoredTwice) {
  AgentRegistry registry;
  const auto first = registry.Hello(MakeHello("us-node-1", 42), kT0);
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    ASSERT_EQ(
        registry.Accept(first.session, MakeReport(seq, kT0 + std::chrono::seconds(seq)), kT0 + 6s).status,
        AcceptStatus::kAccepted);
  }
  registry.EndSession(first.session);
  // The agent reconnects with the same instance and replays what it holds unacknowledged.
  const auto second = registry.Hello(MakeHello("us-node-1", 42), kT0 + 7s);
  EXPECT_EQ(second.highest_sequence, 5u);
  for (uint64_t seq = 3; seq <= 7; ++seq) {
    const auto result =
        registry.Accept(second.session, MakeReport(seq, kT0 + std::chrono::seconds(seq)), kT0 + 8s);
    EXPECT_EQ(result.status, seq <= 5 ? AcceptStatus::kDuplicate : AcceptStatus::kAccepted) << seq;
    EXPECT_TRUE(result.acknowledged());
    EXPECT_EQ(result.highest_sequence, std::max<uint64_t>(seq, 5)) << seq;
  }
}

TEST(AgentRegistryTest, SequenceGoingBackwardsOnAStreamIsInvalidArgument) {
  AgentRegistry registry;
  const auto hello = registry.Hello(MakeHello("us-node-1", 42), kT0);
  ASSERT_EQ(registry.Accept(hello.session, MakeReport(5, kT0 + 5s), kT0 + 5s).status,
            AcceptStatus::kAccepted);
  const auto result = registry.Accept(hello.session, MakeReport(3, kT0 + 3s), kT0 + 6s);
  EXPECT_EQ(result.status, AcceptStatus::kSequenceBackwards);
  EXPECT_EQ(RejectCodeOf(result.status), RejectCode::kInvalidArgument);
  EXPECT_THAT(result.reason, HasSubstr("previous 5"));
  // The same sequence again on the stream is a harmless resend.
  EXPECT_EQ(registry.Accept(hello.session, MakeReport(5, kT0 + 5s), kT0 + 6s).status,
            AcceptStatus::kDuplicate);
}

TEST(AgentRegistryTest, NewInstanceRestartsSequences) {
  AgentRegistry registry;
  const auto first = registry.Hello(MakeHello("us-node-1", 42), kT0);
  ASSERT_EQ(registry.Accept(first.session, MakeReport(9, kT0 + 1s), kT0 + 1s).status,
            AcceptStatus::kAccepted);
  // The old process's stream ended with it.
  registry.EndSession(first.session);
  const auto restarted = registry.Hello(MakeHello("us-node-1", 43), kT0 + 2s);
  EXPECT_EQ(restarted.highest_sequence, 0u);
  const auto result = registry.Accept(restarted.session, MakeReport(1, kT0 + 3s), kT0 + 3s);
  EXPECT_EQ(result.status, AcceptStatus::kAccepted);
  EXPECT_EQ(result.instance_id, 43u);
}

TEST(AgentRegistryTest, NewerStreamOfTheSameNodeSupersedesTheOld) {
  AgentRegistry registry;
  const auto old_stream = registry.Hello(MakeHello("us-node-1", 42), kT0);
  const auto new_stream = registry.Hello(MakeHello("us-node-1", 42), kT0 + 1s);
  EXPECT_NE(old_stream.session, new_stream.session);
  EXPECT_EQ(registry.Accept(old_stream.session, MakeReport(1, kT0 + 1s), kT0 + 1s).status,
            AcceptStatus::kUnknownAgent);
  EXPECT_EQ(registry.Accept(new_stream.session, MakeReport(1, kT0 + 1s), kT0 + 1s).status,
            AcceptStatus::kAccepted);
}

TEST(AgentRegistryTest, WindowInTheFutureBeyondClockSkewIsRefused) {
  AgentRegistry registry;  // 5 s allowance
  const auto hello = registry.Hello(MakeHello("us-node-1", 42), kT0);
  const auto ahead = registry.Accept(hello.session, MakeReport(1, kT0 + 10s), kT0);
  EXPECT_EQ(ahead.status, AcceptStatus::kFutureWindow);
  EXPECT_EQ(RejectCodeOf(ahead.status), RejectCode::kInvalidArgument);
  EXPECT_THAT(ahead.reason, HasSubstr("10000 ms in the future"));
  // A refused report changes nothing: the same sequence is still new.
  EXPECT_EQ(registry.Accept(hello.session, MakeReport(1, kT0 + 4s), kT0).status, AcceptStatus::kAccepted);
}

// Past the year 2262 seconds * 1e9 overflows int64: such a window used to wrap into the past,
// pass the future-window check and be stored. It is refused before any arithmetic.
TEST(AgentRegistryTest, WindowPastTheYear2262IsRefusedNotWrappedToNow) {
  AgentRegistry registry;
  const auto hello = registry.Hello(MakeHello("us-node-1", 42), kT0);
  auto report = MakeReport(1, kT0 + 1s);
  report.mutable_window_start()->set_seconds(10'413'792'000);  // 2300-01-01
  report.mutable_window_end()->set_seconds(10'413'792'001);
  const auto result = registry.Accept(hello.session, report, kT0 + 1s);
  EXPECT_EQ(result.status, AcceptStatus::kInvalid);
  EXPECT_THAT(result.reason, HasSubstr("window timestamps out of range"));
  EXPECT_EQ(registry.List(kT0 + 1s)[0].last_sequence(), 0u);
}

TEST(AgentRegistryTest, HelloWindowBeyondInt64NanosecondsIsRefused) {
  AgentRegistry registry;
  auto hello = MakeHello("us-node-1", 42);
  // 2^62 s: times 1e9 it wraps, and the wrapped value may well look like a sane window.
  hello.mutable_window()->set_seconds(int64_t{1} << 62);
  hello.mutable_window()->set_nanos(0);
  const auto refused = registry.Hello(hello, kT0);
  EXPECT_FALSE(refused.ok);
  EXPECT_THAT(refused.reason, HasSubstr("is not a valid duration"));
  hello.mutable_window()->set_seconds(3600);  // valid, beyond max_window
  EXPECT_THAT(registry.Hello(hello, kT0).reason, HasSubstr("out of range"));
}

TEST(AgentRegistryTest, InconsistentReportIsInvalidArgumentNamingTheField) {
  AgentRegistry registry;
  const auto hello = registry.Hello(MakeHello("us-node-1", 42), kT0);
  auto report = MakeReport(1, kT0 + 1s);
  report.mutable_paths(0)->set_received_forward(11);
  const auto result = registry.Accept(hello.session, report, kT0 + 1s);
  EXPECT_EQ(result.status, AcceptStatus::kInvalid);
  EXPECT_EQ(RejectCodeOf(result.status), RejectCode::kInvalidArgument);
  EXPECT_THAT(result.reason, HasSubstr("received_forward 11 > probes_sent 10"));
  EXPECT_EQ(registry.List(kT0 + 1s)[0].last_sequence(), 0u);
}

// The aggregator checks a report's consistency before it takes its core lock and hands the
// problems in: a report with problems is refused just the same, naming its sender.
TEST(AgentRegistryTest, ProblemsFoundBeforeAcceptRefuseTheReport) {
  AgentRegistry registry;
  const auto hello = registry.Hello(MakeHello("us-node-1", 42), kT0);
  const auto result = registry.Accept(hello.session, MakeReport(1, kT0 + 1s),
                                      {"paths[0] (peer eu-node-1): ssid 70000 > 65535"}, kT0 + 1s);
  EXPECT_EQ(result.status, AcceptStatus::kInvalid);
  EXPECT_THAT(result.reason, HasSubstr("report 1 from us-node-1: paths[0] (peer eu-node-1): ssid 70000"));
  EXPECT_EQ(registry.List(kT0 + 1s)[0].last_sequence(), 0u);
  // With none, the same report is stored.
  EXPECT_TRUE(registry.Accept(hello.session, MakeReport(1, kT0 + 1s), {}, kT0 + 1s).stored_now());
}

TEST(AgentRegistryTest, OversizedReportIsRefused) {
  AgentRegistryConfig config;
  config.limits.max_bytes = 200;
  AgentRegistry registry(config);
  const auto hello = registry.Hello(MakeHello("us-node-1", 42), kT0);
  auto report = MakeReport(1, kT0 + 1s);
  for (int i = 0; i < 10; ++i) report.mutable_status()->add_errors("attach cilium_wg0: EPERM");
  const auto result = registry.Accept(hello.session, report, kT0 + 1s);
  EXPECT_EQ(result.status, AcceptStatus::kInvalid);
  EXPECT_THAT(result.reason, HasSubstr("limit 200"));
}

TEST(AgentRegistryTest, AgentSilentForNWindowsIsNotReporting) {
  AgentRegistryConfig config;
  config.not_reporting_timeout = 2s;
  config.not_reporting_windows = 5;
  AgentRegistry registry(config);
  // 1 s windows: 5 windows = 5 s, longer than the 2 s floor.
  const auto fast = registry.Hello(MakeHello("us-node-1", 1, 1000ms), kT0);
  ASSERT_EQ(registry.Accept(fast.session, MakeReport(1, kT0 + 1s), kT0 + 1s).status, AcceptStatus::kAccepted);
  EXPECT_TRUE(registry.IsReporting("us-node-1", kT0 + 6s));
  EXPECT_FALSE(registry.IsReporting("us-node-1", kT0 + 6s + 1ms));
  // 100 ms windows: 5 windows is 500 ms, so the 2 s floor applies.
  const auto slow = registry.Hello(MakeHello("us-node-2", 2, 100ms), kT0);
  ASSERT_EQ(registry.Accept(slow.session, MakeReport(1, kT0 + 1s), kT0 + 1s).status, AcceptStatus::kAccepted);
  EXPECT_TRUE(registry.IsReporting("us-node-2", kT0 + 3s));
  EXPECT_FALSE(registry.IsReporting("us-node-2", kT0 + 3s + 1ms));

  const auto presence = registry.Presence(kT0 + 10s);
  ASSERT_EQ(presence.size(), 2u);
  EXPECT_FALSE(presence[0].reporting);
  EXPECT_EQ(registry.List(kT0 + 10s)[0].state(), v1::AGENT_STATE_NOT_REPORTING);
  // Reporting again makes it REPORTING again.
  ASSERT_EQ(registry.Accept(fast.session, MakeReport(2, kT0 + 11s), kT0 + 11s).status,
            AcceptStatus::kAccepted);
  EXPECT_TRUE(registry.IsReporting("us-node-1", kT0 + 11s));
}

TEST(AgentRegistryTest, ListFiltersByRegionAndExpireForgetsLongSilentAgents) {
  AgentRegistryConfig config;
  config.forget_after = std::chrono::hours(1);
  AgentRegistry registry(config);
  const auto a = registry.Hello(MakeHello("us-node-1", 1), kT0);
  auto eu = MakeHello("eu-node-1", 2);
  eu.set_region("eu-west-1");
  const auto b = registry.Hello(eu, kT0);
  ASSERT_EQ(registry.List(kT0, "eu-west-1").size(), 1u);
  EXPECT_EQ(registry.List(kT0, "eu-west-1")[0].node(), "eu-node-1");
  registry.EndSession(a.session);
  // The agent with an open stream stays however quiet; the other is forgotten.
  EXPECT_EQ(registry.Expire(kT0 + std::chrono::hours(2)), std::vector<std::string>{"us-node-1"});
  EXPECT_EQ(registry.size(), 1u);
  EXPECT_EQ(
      registry.Accept(b.session, MakeReport(1, kT0 + std::chrono::hours(2)), kT0 + std::chrono::hours(2))
          .status,
      AcceptStatus::kAccepted);
}

// List keeps its (region, node) order between calls and must rebuild it when an agent is
// added, forgotten or moves to another region: compared with a sort of the list itself.
TEST(AgentRegistryTest, ListIsInRegionThenNodeOrderAcrossHellosRegionChangesAndExpiry) {
  AgentRegistryConfig config;
  config.forget_after = std::chrono::hours(1);
  AgentRegistry registry(config);
  const auto nodes_of = [&](WallClock::time_point now) {
    std::vector<std::pair<std::string, std::string>> listed;
    for (const auto& agent : registry.List(now)) listed.emplace_back(agent.region(), agent.node());
    return listed;
  };
  const auto sorted = [](std::vector<std::pair<std::string, std::string>> listed) {
    std::sort(listed.begin(), listed.end());
    return listed;
  };
  const auto hello_in = [&](const std::string& node, const std::string& region, uint64_t instance) {
    auto hello = MakeHello(node, instance);
    hello.set_region(region);
    return registry.Hello(hello, kT0);
  };
  hello_in("b-node", "us-east-1", 1);
  const auto quiet = hello_in("z-node", "eu-west-1", 2);
  EXPECT_EQ(nodes_of(kT0), (std::vector<std::pair<std::string, std::string>>{{"eu-west-1", "z-node"},
                                                                             {"us-east-1", "b-node"}}));
  hello_in("a-node", "us-east-1", 3);
  EXPECT_EQ(nodes_of(kT0), sorted(nodes_of(kT0)));
  EXPECT_EQ(nodes_of(kT0).size(), 3u);
  // b-node comes back from another region (its stream ended first): it moves in the list.
  registry.EndSession(registry.Hello(MakeHello("b-node", 1), kT0).session);
  hello_in("b-node", "ap-southeast-1", 4);
  const auto moved = nodes_of(kT0);
  EXPECT_EQ(moved.front(), (std::pair<std::string, std::string>{"ap-southeast-1", "b-node"}));
  EXPECT_EQ(moved, sorted(moved));
  registry.EndSession(quiet.session);
  EXPECT_EQ(registry.Expire(kT0 + std::chrono::hours(2)), std::vector<std::string>{"z-node"});
  const auto after_expiry = nodes_of(kT0 + std::chrono::hours(2));
  EXPECT_EQ(after_expiry, (std::vector<std::pair<std::string, std::string>>{{"ap-southeast-1", "b-node"},
                                                                            {"us-east-1", "a-node"}}));
}

// --- Identity: only configured regions exist, endpoints lie in their region, one live
// stream per node (issue 19).

AgentRegistryConfig TwoRegions() {
  AgentRegistryConfig config;
  config.regions = {{"us-east-1", {"10.1.0.0/16", "fd00:1::/48"}}, {"eu-west-1", {"10.2.0.0/16"}}};
  return config;
}

TEST(AgentRegistryIdentityTest, HelloFromAnUnconfiguredRegionIsRefusedNamingIt) {
  AgentRegistry registry(TwoRegions());
  auto hello = MakeHello("mars-node-1", 1);
  hello.set_region("mars-1");
  const auto result = registry.Hello(hello, kT0);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.refusal, HelloRefusal::kUnknownRegion);
  EXPECT_THAT(result.reason, HasSubstr("region 'mars-1' is not a configured region (us-east-1, eu-west-1)"));
  EXPECT_EQ(registry.size(), 0u);
}

TEST(AgentRegistryIdentityTest, ProbeEndpointOutsideItsRegionsCidrsIsRefused) {
  AgentRegistry registry(TwoRegions());
  auto hello = MakeHello("us-node-1", 1);
  // An address of the other region: peers would be planned to probe eu-west-1 as us-east-1.
  hello.mutable_probe_endpoint()->set_address("10.2.0.9");
  const auto result = registry.Hello(hello, kT0);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.refusal, HelloRefusal::kEndpointOutsideRegion);
  EXPECT_THAT(result.reason, HasSubstr("probe_endpoint 10.2.0.9 is outside region us-east-1's CIDRs "
                                       "(10.1.0.0/16, fd00:1::/48)"));
  hello.mutable_probe_endpoint()->set_address("fd00:1::7");
  EXPECT_TRUE(registry.Hello(hello, kT0).ok) << "IPv6 inside the region";
}

TEST(AgentRegistryIdentityTest, WithoutConfiguredRegionsAnyRegionIsAccepted) {
  AgentRegistry registry;
  auto hello = MakeHello("mars-node-1", 1);
  hello.set_region("mars-1");
  EXPECT_TRUE(registry.Hello(hello, kT0).ok);
}

TEST(AgentRegistryIdentityTest, SecondInstanceOfALiveNodeIsRefusedNamingTheFirstPeer) {
  AgentRegistry registry(TwoRegions());
  const auto first = registry.Hello(MakeHello("us-node-1", 42), kT0, "ipv4:10.1.0.7:40000");
  ASSERT_TRUE(first.ok) << first.reason;
  const auto second = registry.Hello(MakeHello("us-node-1", 99), kT0 + 1s, "ipv4:10.9.9.9:50000");
  EXPECT_FALSE(second.ok);
  EXPECT_EQ(second.refusal, HelloRefusal::kDuplicateNode);
  EXPECT_THAT(second.reason, HasSubstr("live stream from ipv4:10.1.0.7:40000"));
  // The first keeps reporting: its evidence is not alternated with the impostor's.
  EXPECT_EQ(registry.Accept(first.session, MakeReport(1, kT0 + 1s), kT0 + 1s).status,
            AcceptStatus::kAccepted);
}

TEST(AgentRegistryIdentityTest, SecondInstanceIsAcceptedOnceTheFirstStreamEnded) {
  AgentRegistry registry(TwoRegions());
  const auto first = registry.Hello(MakeHello("us-node-1", 42), kT0, "ipv4:10.1.0.7:40000");
  registry.EndSession(first.session);
  const auto second = registry.Hello(MakeHello("us-node-1", 99), kT0 + 1s, "ipv4:10.1.0.7:40001");
  ASSERT_TRUE(second.ok) << second.reason;
  EXPECT_EQ(registry.Accept(second.session, MakeReport(1, kT0 + 2s), kT0 + 2s).status,
            AcceptStatus::kAccepted);
}

TEST(AgentRegistryIdentityTest, SecondInstanceIsAcceptedWhenTheFirstStreamWentSilent) {
  // A stream the server has not seen end (a half-open connection) but with no report for the
  // not-reporting timeout is not live.
  AgentRegistry registry(TwoRegions());
  const auto first = registry.Hello(MakeHello("us-node-1", 42), kT0);
  ASSERT_TRUE(first.ok);
  EXPECT_FALSE(registry.Hello(MakeHello("us-node-1", 99), kT0 + 5s).ok);
  EXPECT_TRUE(registry.Hello(MakeHello("us-node-1", 99), kT0 + 11s).ok);
}

TEST(AgentRegistryIdentityTest, SameInstanceReconnectingReplacesItsOwnStream) {
  AgentRegistry registry(TwoRegions());
  const auto first = registry.Hello(MakeHello("us-node-1", 42), kT0);
  const auto again = registry.Hello(MakeHello("us-node-1", 42), kT0 + 1s);
  ASSERT_TRUE(again.ok) << again.reason;
  EXPECT_EQ(registry.Accept(first.session, MakeReport(1, kT0 + 1s), kT0 + 1s).status,
            AcceptStatus::kUnknownAgent);
}

TEST(DropUnknownRegionEntriesTest, RemovesPathsTrafficAndFlowsNamingUnconfiguredRegions) {
  v1::HealthReport report = MakeReport(1, kT0);  // a path to eu-west-1
  auto* invented_path = report.add_paths();
  invented_path->set_peer_node("mars-node-1");
  invented_path->set_peer_region("mars-1");
  report.add_traffic()->set_remote_region("mars-1");
  report.add_traffic()->set_remote_region("eu-west-1");
  report.add_flows()->set_remote_region("mars-1");
  EXPECT_TRUE(NamesUnknownRegion(report, TwoRegions().regions));
  EXPECT_FALSE(NamesUnknownRegion(report, {}));
  const DroppedRegionEntries dropped = DropUnknownRegionEntries(report, TwoRegions().regions);
  EXPECT_EQ(dropped.paths, 1u);
  EXPECT_EQ(dropped.traffic, 1u);
  EXPECT_EQ(dropped.flows, 1u);
  ASSERT_EQ(report.paths_size(), 1);
  EXPECT_EQ(report.paths(0).peer_region(), "eu-west-1");
  ASSERT_EQ(report.traffic_size(), 1);
  EXPECT_EQ(report.flows_size(), 0);
  EXPECT_EQ(DropUnknownRegionEntries(report, {}).total(), 0u);
  EXPECT_FALSE(NamesUnknownRegion(report, TwoRegions().regions));
}

}  // namespace
}  // namespace regionpulse
