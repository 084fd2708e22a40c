// The WAN emulator's pure parts as specifications: per-datagram impairment decisions with a
// seeded RNG and hand-made times, the region/node model and its counters, the config parser
// and the control protocol. No sockets here (wan_emulator_e2e_test.cc runs the binary).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "tools/wan_emulator/control_protocol.h"
#include "tools/wan_emulator/link_impairment.h"
#include "tools/wan_emulator/wan_config.h"
#include "tools/wan_emulator/wan_model.h"

namespace regionpulse {
namespace {

using wan::Admission;
using wan::AdmitResult;
using wan::ApplyImpairmentSettings;
using wan::ClassifyReplyLine;
using wan::ControlReply;
using wan::Decision;
using wan::ExecuteControlLine;
using wan::Fate;
using wan::FormatImpairment;
using wan::Impairment;
using wan::LinkDirection;
using wan::Nanos;
using wan::ParseWanConfig;
using wan::ReplyEnd;
using wan::Rng;
using wan::WanConfig;
using wan::WanModel;

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

const MonoTime kStart = MonoTime(seconds(1000));

Impairment Settings(const std::vector<std::string>& words) {
  Impairment impairment;
  auto ok = ApplyImpairmentSettings(impairment, words);
  EXPECT_TRUE(ok) << ok.error().message;
  return impairment;
}

// ---- LinkDirection: one datagram's fate ----

TEST(WanLinkImpairment, NoImpairmentDeliversAtReceiveTime) {
  LinkDirection link;
  Rng rng(1);
  const Decision d = link.Decide(Impairment{}, false, 100, kStart, rng);
  EXPECT_EQ(d.fate, Fate::kDeliver);
  EXPECT_EQ(d.deliver_at, kStart);
  EXPECT_FALSE(d.reordered);
}

TEST(WanLinkImpairment, DelayIsAddedToEveryDatagram) {
  LinkDirection link;
  Rng rng(1);
  const Impairment impairment = Settings({"delay=35ms"});
  for (int i = 0; i < 100; ++i) {
    const MonoTime received = kStart + milliseconds(i);
    const Decision d = link.Decide(impairment, false, 100, received, rng);
    ASSERT_EQ(d.fate, Fate::kDeliver);
    EXPECT_EQ(d.deliver_at, received + milliseconds(35));
  }
}

TEST(WanLinkImpairment, JitterStaysWithinItsBoundsAndSpreadsOverThem) {
  LinkDirection link;
  Rng rng(2);
  const Impairment impairment = Settings({"delay=20ms", "jitter=5ms"});
  Nanos lowest = seconds(1), highest{0};
  // A second apart: far more than the jitter range, so order never holds a datagram back.
  for (int i = 0; i < 2000; ++i) {
    const MonoTime received = kStart + seconds(i);
    const Decision d = link.Decide(impairment, false, 100, received, rng);
    const Nanos delay = d.deliver_at - received;
    ASSERT_GE(delay, milliseconds(15));
    ASSERT_LE(delay, milliseconds(25));
    lowest = std::min(lowest, delay);
    highest = std::max(highest, delay);
  }
  // Uniform over +-5 ms: 2,000 draws reach within 0.5 ms of both ends.
  EXPECT_LT(lowest, microseconds(15'500));
  EXPECT_GT(highest, microseconds(24'500));
}

TEST(WanLinkImpairment, JitterKeepsOrderWithinADirection) {
  LinkDirection link;
  Rng rng(3);
  const Impairment impairment = Settings({"delay=20ms", "jitter=5ms"});
  MonoTime previous{};
  for (int i = 0; i < 5000; ++i) {
    // 100 us apart: far less than the jitter range, so draws would reorder without the floor.
    const MonoTime received = kStart + microseconds(100 * i);
    const Decision d = link.Decide(impairment, false, 100, received, rng);
    ASSERT_GE(d.deliver_at, previous) << "datagram " << i << " overtook the one before it";
    // Waiting behind an earlier datagram never pushes one past the top of the range.
    ASSERT_LE(d.deliver_at - received, milliseconds(25));
    ASSERT_GE(d.deliver_at - received, milliseconds(15));
    previous = d.deliver_at;
  }
}

TEST(WanLinkImpairment, JitterLargerThanDelayNeverDeliversBeforeReceipt) {
  LinkDirection link;
  Rng rng(4);
  const Impairment impairment = Settings({"delay=1ms", "jitter=5ms"});
  for (int i = 0; i < 1000; ++i) {
    const MonoTime received = kStart + seconds(i);
    EXPECT_GE(link.Decide(impairment, false, 100, received, rng).deliver_at, received);
  }
}

TEST(WanLinkImpairment, LossRatioMatchesTheSettingOverManyDatagrams) {
  LinkDirection link;
  Rng rng(5);
  const Impairment impairment = Settings({"loss=30%"});
  constexpr int kCount = 100'000;
  int dropped = 0;
  for (int i = 0; i < kCount; ++i) {
    const Decision d = link.Decide(impairment, false, 100, kStart + microseconds(i), rng);
    if (d.fate == Fate::kDropLoss) ++dropped;
  }
  // Binomial(100,000, 0.3): standard deviation 145; five of them either side.
  const double sd = std::sqrt(kCount * 0.3 * 0.7);
  EXPECT_NEAR(dropped, kCount * 0.3, 5 * sd);
}

TEST(WanLinkImpairment, LossOfZeroAndOfAHundredPercentAreExact) {
  LinkDirection link;
  Rng rng(6);
  const Impairment none = Settings({"loss=0%"});
  const Impairment all = Settings({"loss=100%"});
  for (int i = 0; i < 10'000; ++i) {
    EXPECT_EQ(link.Decide(none, false, 100, kStart + microseconds(i), rng).fate, Fate::kDeliver);
    EXPECT_EQ(link.Decide(all, false, 100, kStart + microseconds(i), rng).fate, Fate::kDropLoss);
  }
}

TEST(WanLinkImpairment, BlackholeDropsEverythingWhateverElseIsSet) {
  LinkDirection link;
  Rng rng(7);
  const Impairment impairment = Settings({"blackhole=on", "delay=10ms"});
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(link.Decide(impairment, false, 100, kStart + milliseconds(i), rng).fate, Fate::kDropBlackhole);
  }
}

TEST(WanLinkImpairment, BlackholedNodeDropsEverything) {
  LinkDirection link;
  Rng rng(8);
  EXPECT_EQ(link.Decide(Impairment{}, /*node_blackholed=*/true, 100, kStart, rng).fate, Fate::kDropBlackhole);
  EXPECT_EQ(link.Decide(Impairment{}, false, 100, kStart, rng).fate, Fate::kDeliver);
}

TEST(WanLinkImpairment, ReorderHoldsADatagramBackSoLaterOnesOvertakeIt) {
  LinkDirection link;
  Rng rng(9);
  const Impairment impairment = Settings({"delay=20ms", "reorder=10%", "reorder_hold=10ms"});
  constexpr int kCount = 20'000;
  std::vector<Decision> decisions;
  for (int i = 0; i < kCount; ++i) {
    // 1 ms apart: a 10 ms hold lets the next nine datagrams pass.
    decisions.push_back(link.Decide(impairment, false, 100, kStart + milliseconds(i), rng));
  }
  int reordered = 0;
  for (int i = 0; i < kCount; ++i) {
    const MonoTime received = kStart + milliseconds(i);
    if (decisions[i].reordered) {
      ++reordered;
      EXPECT_EQ(decisions[i].deliver_at, received + milliseconds(30));
      if (i + 1 < kCount && !decisions[i + 1].reordered) {
        EXPECT_LT(decisions[i + 1].deliver_at, decisions[i].deliver_at)
            << "the next datagram did not overtake";
      }
    } else {
      EXPECT_EQ(decisions[i].deliver_at, received + milliseconds(20)) << "an ordinary datagram waited";
    }
  }
  const double sd = std::sqrt(kCount * 0.1 * 0.9);
  EXPECT_NEAR(reordered, kCount * 0.1, 5 * sd);
}

TEST(WanLinkImpairment, RateLimitSendsDatagramsOneAfterTheOther) {
  LinkDirection link;
  Rng rng(10);
  // 8 Mbit/s is one byte per microsecond: a 1,000-byte datagram takes 1 ms to leave.
  const Impairment impairment = Settings({"rate=8mbit", "delay=5ms"});
  for (int i = 0; i < 5; ++i) {
    const Decision d = link.Decide(impairment, false, 1000, kStart, rng);
    EXPECT_EQ(d.deliver_at, kStart + milliseconds(1 + i) + milliseconds(5));
  }
  // After the link has drained, a datagram waits only for its own serialisation.
  const Decision later = link.Decide(impairment, false, 1000, kStart + seconds(1), rng);
  EXPECT_EQ(later.deliver_at, kStart + seconds(1) + milliseconds(6));
}

TEST(WanLinkImpairment, SameSeedSameDecisions) {
  const Impairment impairment = Settings({"delay=20ms", "jitter=5ms", "loss=10%", "reorder=5%"});
  LinkDirection a, b;
  Rng rng_a(42), rng_b(42);
  for (int i = 0; i < 1000; ++i) {
    const Decision x = a.Decide(impairment, false, 100, kStart + milliseconds(i), rng_a);
    const Decision y = b.Decide(impairment, false, 100, kStart + milliseconds(i), rng_b);
    ASSERT_EQ(x.fate, y.fate);
    ASSERT_EQ(x.deliver_at, y.deliver_at);
  }
}

// ---- Settings text ----

TEST(WanImpairmentSettings, ParsesEveryKey) {
  const Impairment i = Settings({"delay=35ms", "jitter=250us", "loss=0.5%", "reorder=1%", "reorder_hold=2ms",
                                 "blackhole=on", "rate=100mbit"});
  EXPECT_EQ(i.delay, milliseconds(35));
  EXPECT_EQ(i.jitter, microseconds(250));
  EXPECT_DOUBLE_EQ(i.loss, 0.005);
  EXPECT_DOUBLE_EQ(i.reorder, 0.01);
  EXPECT_EQ(i.reorder_hold, milliseconds(2));
  EXPECT_TRUE(i.blackhole);
  EXPECT_EQ(i.rate_bps, 100'000'000u);
}

TEST(WanImpairmentSettings, FormatReadsBackToTheSameImpairment) {
  const Impairment original =
      Settings({"delay=35ms", "jitter=1500us", "loss=12.5%", "reorder=1%", "blackhole=on", "rate=2gbit"});
  Impairment copy;
  const std::string text = FormatImpairment(original);
  std::vector<std::string> words;
  for (size_t at = 0; at < text.size();) {
    const size_t space = text.find(' ', at);
    words.push_back(text.substr(at, space == std::string::npos ? std::string::npos : space - at));
    at = space == std::string::npos ? text.size() : space + 1;
  }
  ASSERT_TRUE(ApplyImpairmentSettings(copy, words)) << text;
  EXPECT_EQ(copy, original) << text;
}

TEST(WanImpairmentSettings, RefusesBadValuesNamingTheKeyAndChangesNothing) {
  struct Case {
    std::string word;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"loss=30", "loss=30: expected a percentage with its % sign"},
      {"loss=101%", "above 100%"},
      {"loss=-1%", "expected a percentage"},
      {"loss=nan%", "expected a percentage"},
      {"delay=35", "delay=35"},
      {"delay=-5ms", "delay=-5ms"},
      {"delay=11s", "longer than the 10s limit"},
      {"blackhole=maybe", "expected on or off"},
      {"rate=10mbps", "expected a whole number with bit"},
      {"rate=1kbit", "below the 8kbit lower bound"},
      {"latency=5ms", "unknown impairment 'latency'"},
      {"delay", "expected key=value"},
      {"=5ms", "expected key=value"},
  };
  for (const auto& c : cases) {
    Impairment impairment = Settings({"delay=7ms"});
    auto ok = ApplyImpairmentSettings(impairment, {"jitter=1ms", c.word});
    ASSERT_FALSE(ok) << c.word;
    EXPECT_THAT(ok.error().message, HasSubstr(c.expected)) << c.word;
    EXPECT_EQ(impairment, Settings({"delay=7ms"})) << "a refused list changed something: " << c.word;
  }
}

TEST(WanImpairmentSettings, ZeroNeedsNoUnit) {
  const Impairment i = Settings({"delay=35ms", "delay=0", "rate=off"});
  EXPECT_EQ(i.delay, Nanos{0});
  EXPECT_EQ(i.rate_bps, 0u);
}

// ---- Config ----

constexpr const char* kThreeRegions = R"(
listen_address: 10.99.0.1
control_socket: /run/test-wan.sock
port_range: 40000-40999
seed: 11
nodes:
  - {name: use1-a, region: us-east-1, endpoint: 10.99.0.11:51820}
  - {name: use1-b, region: us-east-1, endpoint: 10.99.0.12:51820}
  - {name: euw1-a, region: eu-west-1, endpoint: 10.99.0.21:51820}
  - {name: apse1-a, region: ap-southeast-1, endpoint: 10.99.0.31:51820}
impairments:
  - {between: [us-east-1, eu-west-1], delay: 35ms}
  - {between: ["*", ap-southeast-1], delay: 80ms}
  - {from: us-east-1, to: eu-west-1, loss: 1%}
)";

WanConfig MustParse(const std::string& text) {
  auto config = ParseWanConfig(text);
  EXPECT_TRUE(config) << config.error().message;
  return config ? *config : WanConfig{};
}

TEST(WanConfig, DefaultLinksJoinEveryPairOfNodesInDifferentRegionsWithPortsFromTheRange) {
  const WanConfig config = MustParse(kThreeRegions);
  EXPECT_EQ(config.listen_address, "10.99.0.1");
  EXPECT_EQ(config.regions, (std::vector<std::string>{"us-east-1", "eu-west-1", "ap-southeast-1"}));
  ASSERT_EQ(config.links.size(), 5u);  // use1-a and use1-b are not linked to each other
  const std::vector<std::pair<std::string, std::string>> expected_pairs = {{"use1-a", "euw1-a"},
                                                                           {"use1-a", "apse1-a"},
                                                                           {"use1-b", "euw1-a"},
                                                                           {"use1-b", "apse1-a"},
                                                                           {"euw1-a", "apse1-a"}};
  for (size_t i = 0; i < config.links.size(); ++i) {
    EXPECT_EQ(config.nodes[config.links[i].a].name, expected_pairs[i].first);
    EXPECT_EQ(config.nodes[config.links[i].b].name, expected_pairs[i].second);
    EXPECT_EQ(config.links[i].port_for_a, 40000 + 2 * i);
    EXPECT_EQ(config.links[i].port_for_b, 40000 + 2 * i + 1);
  }
}

TEST(WanConfig, ImpairmentRulesApplyInOrderPerDirection) {
  const WanConfig config = MustParse(kThreeRegions);
  const WanModel model(config, 1);
  const size_t us = 0, eu = 1, ap = 2;
  EXPECT_EQ(model.RegionImpairment(us, eu), Settings({"delay=35ms", "loss=1%"}));
  EXPECT_EQ(model.RegionImpairment(eu, us), Settings({"delay=35ms"}));
  EXPECT_EQ(model.RegionImpairment(us, ap), Settings({"delay=80ms"}));
  EXPECT_EQ(model.RegionImpairment(ap, eu), Settings({"delay=80ms"}));
  EXPECT_EQ(model.RegionImpairment(us, us), Impairment{});
}

TEST(WanConfig, ExplicitLinksKeepTheirPortsAndTheRangeStepsAroundThem) {
  const WanConfig config = MustParse(R"(
listen_address: "::"
control_socket: /tmp/x.sock
port_range: 40000-40010
nodes:
  - {name: a, region: r1, endpoint: "[fd00::1]:51820"}
  - {name: b, region: r1, endpoint: "[fd00::2]:51820"}
  - {name: c, region: r2, endpoint: "10.0.0.3:51820"}
links:
  - {a: a, b: b, port_for_a: 40001, port_for_b: 40003}
  - {a: c, b: a}
)");
  ASSERT_EQ(config.links.size(), 2u);
  EXPECT_EQ(config.links[0].port_for_a, 40001);
  EXPECT_EQ(config.links[0].port_for_b, 40003);
  EXPECT_EQ(config.links[1].port_for_a, 40000);
  EXPECT_EQ(config.links[1].port_for_b, 40002);
  EXPECT_EQ(config.nodes[0].endpoint_ip, "fd00::1");
}

TEST(WanConfig, RefusesBadConfigsNamingTheKey) {
  const std::string nodes = R"(
nodes:
  - {name: a, region: r1, endpoint: 10.0.0.1:1}
  - {name: b, region: r2, endpoint: 10.0.0.2:1}
)";
  const std::string head = "listen_address: 10.0.0.9\ncontrol_socket: /tmp/x.sock\nport_range: 40000-40100\n";
  struct Case {
    std::string yaml;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"", "config is empty"},
      {"listen_address: [", "not valid YAML"},
      {head + "listen_adress: 1.2.3.4\n" + nodes, "'listen_adress': unknown key"},
      {"control_socket: /tmp/x.sock\nport_range: 1-9\n" + nodes, "'listen_address': missing"},
      {"listen_address: wan-hub\ncontrol_socket: /tmp/x\nport_range: 1-9\n" + nodes,
       "expected an IP address"},
      {"listen_address: 10.0.0.9\nport_range: 1-9\n" + nodes, "'control_socket': missing"},
      {"listen_address: 10.0.0.9\ncontrol_socket: /tmp/" + std::string(120, 'x') + "\n" + nodes,
       "longer than"},
      {head, "'nodes': missing"},
      {head + "nodes:\n  - {name: a, regoin: r1, endpoint: 10.0.0.1:1}\n", "'nodes[0].regoin': unknown key"},
      {head + "nodes:\n  - {name: 'a b', region: r1, endpoint: 10.0.0.1:1}\n", "'nodes[0].name'"},
      {head + "nodes:\n  - {name: a, region: r1, endpoint: host.example:1}\n", "'nodes[0].endpoint'"},
      {head + "nodes:\n  - {name: a, region: r1, endpoint: 10.0.0.1}\n", "'nodes[0].endpoint'"},
      {head + "nodes:\n  - {name: a, region: r1, endpoint: 10.0.0.1:1}\n  - {name: a, region: r2, endpoint: "
              "10.0.0.2:1}\n",
       "'nodes[1].name': node 'a' listed twice"},
      {head + "nodes:\n  - {name: a, region: r1, endpoint: 10.0.0.1:1}\n  - {name: b, region: r1, endpoint: "
              "10.0.0.2:1}\n",
       "nothing to relay"},
      {head + nodes + "links:\n  - {a: a, b: c}\n", "'links[0].b': no node named 'c'"},
      {head + nodes + "links:\n  - {a: a, b: a}\n", "'links[0].b'"},
      {head + nodes + "links:\n  - {a: a, b: b}\n  - {a: b, b: a}\n", "listed twice"},
      {head + nodes + "links:\n  - {a: a, b: b, port_for_a: 5}\n", "give both port_for_a and port_for_b"},
      {head + nodes + "links:\n  - {a: a, b: b, port_for_a: 5, port_for_b: 5}\n",
       "used by two link directions"},
      {head + nodes + "links:\n  - {a: a, b: b, port_for_a: 5, port_for_b: 70000}\n",
       "'links[0].port_for_b'"},
      {"listen_address: 10.0.0.9\ncontrol_socket: /tmp/x.sock\n" + nodes, "no port_range"},
      {"listen_address: 10.0.0.9\ncontrol_socket: /tmp/x.sock\nport_range: 40000-40000\n" + nodes,
       "too small"},
      {"listen_address: 10.0.0.9\ncontrol_socket: /tmp/x.sock\nport_range: 9-1\n" + nodes, "'port_range'"},
      {head + "max_queued_packets: 0\n" + nodes, "'max_queued_packets'"},
      {head + "max_queued_bytes: 1KiB\n" + nodes, "'max_queued_bytes': must be at least 64KiB"},
      {head + "realtime_priority: 100\n" + nodes, "'realtime_priority'"},
      {head + nodes + "impairments:\n  - {from: r1, to: r3, delay: 5ms}\n",
       "'impairments[0].to': no node is in region 'r3'"},
      {head + nodes + "impairments:\n  - {from: r1, to: r2, loss: 30}\n", "'impairments[0].loss'"},
      {head + nodes + "impairments:\n  - {from: r1, to: r2, dealy: 5ms}\n",
       "'impairments[0].dealy': unknown key"},
      {head + nodes + "impairments:\n  - {between: [r1], delay: 5ms}\n", "'impairments[0].between'"},
      {head + nodes + "impairments:\n  - {between: [r1, r2], to: r2, delay: 5ms}\n",
       "either between or from"},
  };
  for (const auto& c : cases) {
    auto config = ParseWanConfig(c.yaml);
    ASSERT_FALSE(config) << "accepted:\n" << c.yaml;
    EXPECT_THAT(config.error().message, HasSubstr(c.expected)) << c.yaml;
  }
}

// ---- WanModel: who gets which impairment, counters, runtime changes ----

WanModel ThreeRegionModel(const std::string& extra = "") {
  return WanModel(MustParse(std::string(kThreeRegions) + extra), 1);
}

size_t DirectionOf(const WanModel& model, const std::string& from, const std::string& to) {
  auto d = model.DirectionBetween(from, to);
  EXPECT_TRUE(d) << from << " -> " << to;
  return d.value_or(0);
}

TEST(WanModel, EachDirectionGetsItsRegionPairsImpairment) {
  WanModel model = ThreeRegionModel();
  ASSERT_TRUE(model.Set("us-east-1", "eu-west-1", {"loss=0%"}));
  const auto us_eu = model.Admit(DirectionOf(model, "use1-a", "euw1-a"), 100, kStart);
  const auto eu_us = model.Admit(DirectionOf(model, "euw1-a", "use1-b"), 100, kStart);
  const auto eu_ap = model.Admit(DirectionOf(model, "euw1-a", "apse1-a"), 100, kStart);
  EXPECT_EQ(us_eu.deliver_at, kStart + milliseconds(35));
  EXPECT_EQ(eu_us.deliver_at, kStart + milliseconds(35));
  EXPECT_EQ(eu_ap.deliver_at, kStart + milliseconds(80));
}

TEST(WanModel, SettingOneDirectionLeavesTheReverseAlone) {
  WanModel model = ThreeRegionModel();
  ASSERT_TRUE(model.Set("us-east-1", "eu-west-1", {"loss=100%", "delay=50ms"}));
  EXPECT_EQ(model.Admit(DirectionOf(model, "use1-a", "euw1-a"), 100, kStart).admission, Admission::kDropLoss);
  const auto back = model.Admit(DirectionOf(model, "euw1-a", "use1-a"), 100, kStart);
  EXPECT_EQ(back.admission, Admission::kDeliver);
  EXPECT_EQ(back.deliver_at, kStart + milliseconds(35));
}

TEST(WanModel, SetBothAndWildcardsReachEveryNamedDirection) {
  WanModel model = ThreeRegionModel();
  ASSERT_TRUE(model.Set("us-east-1", "*", {"blackhole=on"}, /*both_directions=*/true));
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"use1-a", "euw1-a"}, {"euw1-a", "use1-a"}, {"apse1-a", "use1-b"}, {"use1-b", "apse1-a"}}) {
    EXPECT_EQ(model.Admit(DirectionOf(model, from, to), 100, kStart).admission, Admission::kDropBlackhole)
        << from << " -> " << to;
  }
  EXPECT_EQ(model.Admit(DirectionOf(model, "euw1-a", "apse1-a"), 100, kStart).admission, Admission::kDeliver);
}

TEST(WanModel, SameRegionPairCanBeImpaired) {
  WanModel model(MustParse(R"(
listen_address: 127.0.0.1
control_socket: /tmp/x.sock
port_range: 40000-40010
nodes:
  - {name: a, region: r1, endpoint: 127.0.0.1:1}
  - {name: b, region: r1, endpoint: 127.0.0.1:2}
links:
  - {a: a, b: b}
impairments:
  - {from: r1, to: r1, delay: 3ms}
)"),
                 1);
  EXPECT_EQ(model.Admit(DirectionOf(model, "a", "b"), 10, kStart).deliver_at, kStart + milliseconds(3));
  EXPECT_EQ(model.Admit(DirectionOf(model, "b", "a"), 10, kStart).deliver_at, kStart + milliseconds(3));
}

TEST(WanModel, BlackholedNodeLosesEverythingFromAndToItAndOnlyThat) {
  WanModel model = ThreeRegionModel();
  ASSERT_TRUE(model.SetNode("use1-a", {"blackhole=on"}));
  EXPECT_EQ(model.Admit(DirectionOf(model, "use1-a", "euw1-a"), 100, kStart).admission,
            Admission::kDropBlackhole);
  EXPECT_EQ(model.Admit(DirectionOf(model, "apse1-a", "use1-a"), 100, kStart).admission,
            Admission::kDropBlackhole);
  EXPECT_EQ(model.Admit(DirectionOf(model, "use1-b", "euw1-a"), 100, kStart).admission, Admission::kDeliver);
  ASSERT_TRUE(model.SetNode("use1-a", {"blackhole=off"}));
  EXPECT_EQ(model.Admit(DirectionOf(model, "use1-a", "euw1-a"), 100, kStart).admission, Admission::kDeliver);
  EXPECT_EQ(model.Direction(DirectionOf(model, "use1-a", "euw1-a")).counters.dropped_blackhole, 1u);
}

TEST(WanModel, RuntimeChangeAppliesToDatagramsReceivedAfterIt) {
  WanModel model = ThreeRegionModel();
  const size_t d = DirectionOf(model, "euw1-a", "apse1-a");
  EXPECT_EQ(model.Admit(d, 100, kStart).deliver_at, kStart + milliseconds(80));
  ASSERT_TRUE(model.Set("eu-west-1", "ap-southeast-1", {"delay=120ms"}));
  EXPECT_EQ(model.Admit(d, 100, kStart + seconds(1)).deliver_at, kStart + seconds(1) + milliseconds(120));
  // A shorter delay does not let new datagrams overtake those still on the way.
  ASSERT_TRUE(model.Set("eu-west-1", "ap-southeast-1", {"delay=10ms"}));
  const auto next = model.Admit(d, 100, kStart + seconds(1) + milliseconds(1));
  EXPECT_EQ(next.deliver_at, kStart + seconds(1) + milliseconds(120));
  EXPECT_EQ(model.Admit(d, 100, kStart + seconds(2)).deliver_at, kStart + seconds(2) + milliseconds(10));
}

TEST(WanModel, QueueBoundDropsBeyondItAndCountsThem) {
  WanModel model = ThreeRegionModel("max_queued_packets: 3\n");
  const size_t d = DirectionOf(model, "use1-a", "euw1-a");
  ASSERT_TRUE(model.Set("us-east-1", "eu-west-1", {"loss=0%"}));
  std::vector<AdmitResult> admitted;
  for (int i = 0; i < 3; ++i) admitted.push_back(model.Admit(d, 100, kStart));
  EXPECT_EQ(model.Admit(d, 100, kStart).admission, Admission::kDropQueueFull);
  model.Sent(d, 100, admitted[0].deliver_at, admitted[0].deliver_at + microseconds(40));
  EXPECT_EQ(model.Admit(d, 100, kStart).admission, Admission::kDeliver);
  const auto& state = model.Direction(d);
  EXPECT_EQ(state.counters.dropped_queue_full, 1u);
  EXPECT_EQ(state.counters.forwarded, 1u);
  EXPECT_EQ(state.counters.forwarded_bytes, 100u);
  EXPECT_EQ(state.queued_packets, 3u);
  EXPECT_EQ(state.queued_bytes, 300u);
}

TEST(WanModel, QueueBoundInBytes) {
  WanModel model = ThreeRegionModel("max_queued_bytes: 64KiB\n");
  const size_t d = DirectionOf(model, "use1-a", "euw1-a");
  ASSERT_TRUE(model.Set("us-east-1", "eu-west-1", {"loss=0%"}));
  EXPECT_EQ(model.Admit(d, 60000, kStart).admission, Admission::kDeliver);
  EXPECT_EQ(model.Admit(d, 6000, kStart).admission, Admission::kDropQueueFull);
  EXPECT_EQ(model.Admit(d, 5536, kStart).admission, Admission::kDeliver);
}

TEST(WanModel, SendErrorHistogramHoldsActualMinusIntended) {
  WanModel model = ThreeRegionModel();
  const size_t d = DirectionOf(model, "euw1-a", "use1-a");
  for (int i = 0; i < 100; ++i) {
    const auto a = model.Admit(d, 100, kStart + milliseconds(i));
    model.Sent(d, 100, a.deliver_at, a.deliver_at + microseconds(i < 90 ? 50 : 2000));
  }
  const auto& h = model.Direction(d).send_error;
  EXPECT_EQ(h.Count(), 100u);
  EXPECT_NEAR(static_cast<double>(*h.Percentile(0.5)), 50'000, 500);
  EXPECT_NEAR(static_cast<double>(*h.Percentile(0.99)), 2'000'000, 20'000);
  EXPECT_THAT(model.ShowText(), HasSubstr("50 us"));
  EXPECT_THAT(model.StatsJson(), HasSubstr("\"send_error_ns\":{\"count\":100"));
}

TEST(WanModel, ResetRestoresTheConfigAndZeroesCounters) {
  WanModel model = ThreeRegionModel();
  const size_t d = DirectionOf(model, "use1-a", "euw1-a");
  ASSERT_TRUE(model.Set("us-east-1", "eu-west-1", {"blackhole=on"}));
  ASSERT_TRUE(model.SetNode("euw1-a", {"blackhole=on"}));
  (void)model.Admit(d, 100, kStart);
  model.Reset();
  EXPECT_EQ(model.RegionImpairment(0, 1), Settings({"delay=35ms", "loss=1%"}));
  EXPECT_FALSE(model.NodeBlackholed(*model.config().NodeIndex("euw1-a")));
  EXPECT_EQ(model.Direction(d).counters.dropped_blackhole, 0u);
}

TEST(WanModel, RefusedChangesChangeNothing) {
  WanModel model = ThreeRegionModel();
  EXPECT_THAT(model.Set("us-east-2", "eu-west-1", {"delay=1ms"}).error().message,
              HasSubstr("unknown region 'us-east-2'"));
  EXPECT_THAT(model.Set("us-east-1", "eu-west-1", {"delay=1ms", "loss=2"}).error().message,
              HasSubstr("loss=2"));
  EXPECT_THAT(model.Set("us-east-1", "eu-west-1", {}).error().message, HasSubstr("nothing to set"));
  EXPECT_EQ(model.RegionImpairment(0, 1), Settings({"delay=35ms", "loss=1%"}));
  EXPECT_THAT(model.SetNode("nobody", {"blackhole=on"}).error().message, HasSubstr("unknown node 'nobody'"));
  EXPECT_THAT(model.SetNode("use1-a", {"delay=5ms"}).error().message, HasSubstr("only blackhole"));
}

TEST(WanModel, PortsTextNamesTheEndpointPortOfEveryDirection) {
  const WanModel model = ThreeRegionModel();
  EXPECT_THAT(model.PortsText(), HasSubstr("use1-a euw1-a 40000\neuw1-a use1-a 40001\n"));
}

// ---- Control protocol ----

TEST(WanControlProtocol, CommandsChangeTheModelAndReplyOk) {
  WanModel model = ThreeRegionModel();
  EXPECT_EQ(
      ExecuteControlLine(model, "set us-east-1 eu-west-1 loss=30% delay=35ms jitter=2ms reorder=1%").Framed(),
      "ok\n");
  EXPECT_DOUBLE_EQ(model.RegionImpairment(0, 1).loss, 0.3);
  EXPECT_EQ(ExecuteControlLine(model, "set-both eu-west-1 ap-southeast-1 blackhole=on\r").Framed(), "ok\n");
  EXPECT_TRUE(model.RegionImpairment(1, 2).blackhole);
  EXPECT_TRUE(model.RegionImpairment(2, 1).blackhole);
  EXPECT_EQ(ExecuteControlLine(model, "node  use1-a\tblackhole=on").Framed(), "ok\n");
  EXPECT_TRUE(model.NodeBlackholed(0));
  const ControlReply show = ExecuteControlLine(model, "show");
  EXPECT_TRUE(show.ok);
  EXPECT_THAT(show.body, HasSubstr("nodes blackholed: use1-a"));
  EXPECT_THAT(show.body, HasSubstr("30 %"));
  EXPECT_THAT(ExecuteControlLine(model, "stats").body, HasSubstr("\"nodes_blackholed\":[\"use1-a\"]"));
  EXPECT_EQ(ExecuteControlLine(model, "reset").Framed(), "ok\n");
  EXPECT_FALSE(model.NodeBlackholed(0));
}

TEST(WanControlProtocol, BadCommandsGetAnErrorLineNamingWhatWasWrong) {
  WanModel model = ThreeRegionModel();
  struct Case {
    std::string line;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"", "empty command"},
      {"   ", "empty command"},
      {"frobnicate", "unknown command 'frobnicate'"},
      {"set us-east-1 eu-west-1", "set needs FROM TO KEY=VALUE"},
      {"set us-east-1 nowhere delay=5ms", "unknown region 'nowhere'"},
      {"set us-east-1 eu-west-1 delay=fast", "delay=fast"},
      {"node use1-a", "node needs NAME"},
      {"show everything", "show takes no arguments"},
      {std::string("set \x01\x02 x"), "not printable ASCII"},
      {std::string("show\0", 5), "not printable ASCII"},
      {"show \xff\xfe", "not printable ASCII"},
      {std::string(5000, 'a'), "longer than 4096"},
  };
  for (const auto& c : cases) {
    const ControlReply reply = ExecuteControlLine(model, c.line);
    const std::string shown = c.line.substr(0, 40);
    EXPECT_FALSE(reply.ok) << shown;
    EXPECT_EQ(reply.Framed().rfind("error: ", 0), 0u) << shown;
    EXPECT_THAT(reply.error, HasSubstr(c.expected)) << shown;
    EXPECT_EQ(ClassifyReplyLine(reply.Framed().substr(0, reply.Framed().size() - 1)), ReplyEnd::kError);
  }
  EXPECT_EQ(model.RegionImpairment(0, 1), Settings({"delay=35ms", "loss=1%"}));
}

TEST(WanControlProtocol, SetBothWithABadSettingChangesNeitherDirection) {
  WanModel model = ThreeRegionModel();
  EXPECT_FALSE(ExecuteControlLine(model, "set-both us-east-1 eu-west-1 delay=1ms loss=7").ok);
  EXPECT_EQ(model.RegionImpairment(0, 1), Settings({"delay=35ms", "loss=1%"}));
  EXPECT_EQ(model.RegionImpairment(1, 0), Settings({"delay=35ms"}));
}

TEST(WanControlProtocol, ReplyBodiesNeverContainAClosingLine) {
  WanModel model = ThreeRegionModel();
  for (const std::string command : {"show", "stats", "ports", "help"}) {
    const ControlReply reply = ExecuteControlLine(model, command);
    ASSERT_TRUE(reply.ok) << command;
    size_t start = 0;
    for (size_t nl; (nl = reply.body.find('\n', start)) != std::string::npos; start = nl + 1) {
      EXPECT_EQ(ClassifyReplyLine(reply.body.substr(start, nl - start)), ReplyEnd::kNotEnd) << command;
    }
  }
}

}  // namespace
}  // namespace regionpulse
