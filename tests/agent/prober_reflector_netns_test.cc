// Prober and reflector each in its own network namespace, joined by veth, over IPv4 and IPv6;
// with a test-only nftables drop rule on one direction, the loss shows up in that direction
// only, at the configured rate; a reflector whose interface has several addresses answers
// from the one it was probed at; and what the reflector counts per sender joins the prober's
// paths on (source address, port, SSID).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "agent/prober.h"
#include "agent/reflector.h"
#include "common/report_validation.h"
#include "tests/agent/recording_sink.h"
#include "tests/support/test_network.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;
using test::NetworkNamespace;
using test::RunOrThrow;
using test::ScopedNetnsEntry;
using test::VethPair;

const MacKey kKey(32, 0x33);
constexpr uint16_t kPort = 862;

// Records every reflection; called on the reflector's thread, read on the test's.
class ReflectionRecorder final : public ReflectionSink {
 public:
  void OnProbeReflected(const ProbeReflected& reflected) override {
    std::lock_guard lock(mu_);
    reflected_.push_back(reflected);
  }
  void OnProbeRefused(const ProbeRefused&) override {}
  std::vector<ProbeReflected> reflected() const {
    std::lock_guard lock(mu_);
    return reflected_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<ProbeReflected> reflected_;
};

// A reflector serving from inside a namespace on its own thread until destroyed.
class ReflectorInNamespace {
 public:
  explicit ReflectorInNamespace(const std::string& netns, ReflectionSink* sink = nullptr) {
    std::promise<std::string> started;
    auto result = started.get_future();
    thread_ = std::thread([this, netns, sink, &started] {
      ScopedNetnsEntry inside(netns);
      ReflectorConfig config;
      config.port = kPort;
      config.key = kKey;
      // These tests probe every few milliseconds from one address; the per-source limit has
      // its own tests (prober_reflector_loopback_test.cc).
      config.rate_per_source = 1e6;
      config.burst_per_source = 1e6;
      auto reflector = Reflector::Start(io_, config, sink);
      if (!reflector.ok()) {
        started.set_value(reflector.error().ToString());
        return;
      }
      reflector_ = std::move(*reflector);
      started.set_value("");
      auto work = boost::asio::make_work_guard(io_);
      io_.run();
      reflector_.reset();
    });
    error_ = result.get();
  }
  ~ReflectorInNamespace() {
    io_.stop();
    thread_.join();
  }
  const std::string& error() const { return error_; }
  ReflectorCounters counters() const { return reflector_ ? reflector_->counters() : ReflectorCounters{}; }

 private:
  boost::asio::io_context io_;
  std::unique_ptr<Reflector> reflector_;
  std::thread thread_;
  std::string error_;
};

struct PathTotals {
  uint64_t sent = 0, forward = 0, reverse = 0, lost_unknown = 0;
  // As the newest report named them.
  uint32_t ssid = 0;
  std::string source_address;
  uint32_t source_port = 0;
  double loss_forward() const {
    return sent ? 1.0 - static_cast<double>(forward) / static_cast<double>(sent) : 0;
  }
  double loss_reverse() const {
    return forward ? 1.0 - static_cast<double>(reverse) / static_cast<double>(forward) : 0;
  }
};

// Probes `targets` from inside `netns` until each has `probes` sends, lets the last replies
// arrive, and folds everything into per-peer totals.
std::map<std::string, PathTotals> ProbeFrom(const std::string& netns, const std::vector<ProbeTarget>& targets,
                                            size_t probes, std::chrono::nanoseconds interval) {
  std::map<std::string, PathTotals> totals;
  std::thread([&] {
    ScopedNetnsEntry inside(netns);
    boost::asio::io_context io;
    WindowFolderConfig folder_config;
    folder_config.region_names = {"lab"};
    WindowFolder folder(folder_config, std::chrono::steady_clock::now(), std::chrono::system_clock::now(),
                        {});
    test::RecordingSink sink(&folder);
    ProberConfig config;
    config.interval = interval;
    config.key = kKey;
    Prober prober(io, config, sink);
    prober.SetTargets(targets);
    const bool enough = test::RunUntil(
        io,
        [&] {
          for (const auto& t : targets) {
            if (sink.SentTo(t.node) < probes) return false;
          }
          return true;
        },
        60s);
    EXPECT_TRUE(enough);
    prober.SetTargets({});
    test::RunUntil(
        io, [] { return false; }, 900ms);  // replies in flight arrive
    for (const auto& report :
         folder.Drain(std::chrono::steady_clock::now(), std::chrono::system_clock::now(), {})) {
      const auto problems = ReportProblems(report);
      EXPECT_TRUE(problems.empty()) << problems.front();
      for (const auto& path : report.paths()) {
        auto& t = totals[path.peer_node()];
        t.sent += path.probes_sent();
        t.forward += path.received_forward();
        t.reverse += path.received_reverse();
        t.lost_unknown += path.lost_direction_unknown();
        t.ssid = path.ssid();
        t.source_address = path.source().address();
        t.source_port = path.source().port();
      }
    }
  }).join();
  return totals;
}

// Sends one authenticated probe from inside `netns` to `address` on the probe port from a plain
// socket and returns the address its reply came from ("" after `attempts` seconds of silence).
// Unlike the prober, which drops a reply from anywhere but the address it probed, this shows
// where a reply really comes from.
std::string ReplySource(const std::string& netns, const std::string& address, int attempts = 5) {
  std::string source;
  std::thread([&] {
    ScopedNetnsEntry inside(netns);
    const bool v6 = address.find(':') != std::string::npos;
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(fd, 0);
    const timeval timeout{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_storage to{};
    socklen_t to_length = 0;
    if (v6) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&to);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons(kPort);
      ASSERT_EQ(inet_pton(AF_INET6, address.c_str(), &sin6->sin6_addr), 1) << address;
      to_length = sizeof(sockaddr_in6);
    } else {
      auto* sin = reinterpret_cast<sockaddr_in*>(&to);
      sin->sin_family = AF_INET;
      sin->sin_port = htons(kPort);
      ASSERT_EQ(inet_pton(AF_INET, address.c_str(), &sin->sin_addr), 1) << address;
      to_length = sizeof(sockaddr_in);
    }
    SenderPacket probe;
    probe.ssid = 4242;
    for (int attempt = 0; attempt < attempts && source.empty(); ++attempt) {
      probe.sequence = static_cast<uint32_t>(attempt);
      // A current timestamp: the reflector refuses authenticated probes stamped far from now.
      probe.timestamp = EncodeTimestamp(std::chrono::system_clock::now(), probe.error_estimate.ptp);
      const auto bytes = EncodeSender(probe, StampMode::kAuthenticated, kKey, 0);
      ASSERT_GT(
          ::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&to), to_length), 0);
      std::vector<uint8_t> reply(2048);
      sockaddr_storage from{};
      socklen_t from_length = sizeof(from);
      if (::recvfrom(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_length) <=
          0)
        continue;
      char text[INET6_ADDRSTRLEN] = {};
      if (from.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&from)->sin6_addr, text, sizeof(text));
      } else {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&from)->sin_addr, text, sizeof(text));
      }
      source = text;
    }
    ::close(fd);
  }).join();
  return source;
}

// The IPv4 headers of the probe-port datagrams crossing `ifname` in `netns`, both ways, from a
// packet socket opened now and read by Take() (which returns what arrived meanwhile).
class ProbePortCapture {
 public:
  ProbePortCapture(const std::string& netns, const std::string& ifname) {
    std::thread([&] {
      ScopedNetnsEntry inside(netns);
      // ETH_P_ALL: a socket bound to one protocol sees only what arrives, not what leaves.
      fd_ = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK, htons(ETH_P_ALL));
      ASSERT_GE(fd_, 0) << "packet socket: " << std::strerror(errno);
      sockaddr_ll at{};
      at.sll_family = AF_PACKET;
      at.sll_protocol = htons(ETH_P_ALL);
      at.sll_ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
      ASSERT_NE(at.sll_ifindex, 0) << ifname;
      ASSERT_EQ(::bind(fd_, reinterpret_cast<const sockaddr*>(&at), sizeof(at)), 0) << std::strerror(errno);
    }).join();
  }
  ~ProbePortCapture() {
    if (fd_ >= 0) ::close(fd_);
  }
  struct Datagram {
    bool to_probe_port;  // a probe (else a reply, from the probe port)
    bool dont_fragment;
    uint16_t ip_id;
  };
  std::vector<Datagram> Take() const {
    std::vector<Datagram> seen;
    uint8_t frame[2048];
    ssize_t n = 0;
    sockaddr_ll from{};
    socklen_t from_length = sizeof(from);
    while ((n = ::recvfrom(fd_, frame, sizeof(frame), 0, reinterpret_cast<sockaddr*>(&from), &from_length)) >
           0) {
      from_length = sizeof(from);
      if (from.sll_protocol != htons(ETH_P_IP) || static_cast<size_t>(n) < sizeof(iphdr) + sizeof(udphdr))
        continue;
      iphdr ip;
      std::memcpy(&ip, frame, sizeof(ip));
      if (ip.protocol != IPPROTO_UDP || static_cast<size_t>(n) < ip.ihl * 4u + sizeof(udphdr)) continue;
      udphdr udp;
      std::memcpy(&udp, frame + ip.ihl * 4, sizeof(udp));
      const bool probe = ntohs(udp.dest) == kPort;
      if (!probe && ntohs(udp.source) != kPort) continue;
      seen.push_back({probe, (ntohs(ip.frag_off) & IP_DF) != 0, ntohs(ip.id)});
    }
    return seen;
  }

 private:
  int fd_ = -1;
};

class ProberReflectorNetns : public ::testing::Test {
 protected:
  ProberReflectorNetns()
      : a_("probe-a"), b_("probe-b"), veth_(a_, b_, test::RunPrefix() + "pa", test::RunPrefix() + "pb", 77) {}

  void SetUp() override {
    // IPv6 neighbour discovery on a fresh veth takes about a second (the link-local address
    // is still tentative); probes sent before it completes would wait in the neighbour
    // queue beyond the probe timeout. Await a working path instead.
    for (const auto& address : {veth_.b().ipv4, veth_.b().ipv6}) {
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (test::RunStatus(a_.Exec() + "ping -c 1 -W 1 " + address + " >/dev/null 2>&1") != 0) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no path to " << address;
      }
    }
  }
  NetworkNamespace a_;
  NetworkNamespace b_;
  VethPair veth_;
};

TEST_F(ProberReflectorNetns, ProbesAcrossNamespacesOverIpv4AndIpv6WithoutLoss) {
  ReflectorInNamespace reflector(b_.name());
  ASSERT_EQ(reflector.error(), "");
  const auto totals = ProbeFrom(a_.name(),
                                {ProbeTarget{"b-v4", "lab", "", veth_.b().ipv4, kPort},
                                 ProbeTarget{"b-v6", "lab", "", veth_.b().ipv6, kPort}},
                                100, 5ms);
  for (const std::string node : {"b-v4", "b-v6"}) {
    ASSERT_TRUE(totals.count(node)) << node;
    const auto& t = totals.at(node);
    EXPECT_GE(t.sent, 100u) << node;
    EXPECT_EQ(t.forward, t.sent) << node;
    EXPECT_EQ(t.reverse, t.sent) << node;
  }
  EXPECT_EQ(reflector.counters().bad_mac, 0u);
  EXPECT_EQ(reflector.counters().sessions, 2u);
}

// Probes and replies carry Don't Fragment: a probe measures the path as it is, and an IPv4
// datagram with DF gets IP ID 0 instead of one drawn from the kernel's hashed generator per
// packet (the cost agent/probe_socket_options.h explains).
TEST_F(ProberReflectorNetns, ProbesAndRepliesLeaveWithDontFragmentAndIpIdZero) {
  ReflectorInNamespace reflector(b_.name());
  ASSERT_EQ(reflector.error(), "");
  ProbePortCapture capture(b_.name(), veth_.b().ifname);
  const auto totals = ProbeFrom(a_.name(), {ProbeTarget{"b-v4", "lab", "", veth_.b().ipv4, kPort}}, 20, 5ms);
  ASSERT_TRUE(totals.count("b-v4"));
  EXPECT_EQ(totals.at("b-v4").reverse, totals.at("b-v4").sent);
  size_t probes = 0, replies = 0;
  for (const auto& datagram : capture.Take()) {
    ++(datagram.to_probe_port ? probes : replies);
    EXPECT_TRUE(datagram.dont_fragment) << (datagram.to_probe_port ? "probe" : "reply");
    EXPECT_EQ(datagram.ip_id, 0) << (datagram.to_probe_port ? "probe" : "reply");
  }
  EXPECT_GE(probes, 20u);
  EXPECT_GE(replies, 20u);
}

// 600 probes with a 20% drop: the measured ratio has a standard deviation of
// sqrt(0.2 * 0.8 / 600) = 1.6%; +/-7% is over 4 standard deviations, so the test fails on
// a wrong attribution, not on chance. The other direction must stay below 1%: only the
// last few probes, unanswered with no later reply to prove they arrived, can be
// attributed to it.
constexpr size_t kLossProbes = 600;
constexpr double kDropRate = 0.20;
constexpr double kTolerance = 0.07;

TEST_F(ProberReflectorNetns, DropOnTheWayOutIsForwardLossOnly) {
  ReflectorInNamespace reflector(b_.name());
  ASSERT_EQ(reflector.error(), "");
  RunOrThrow(a_.Exec() + "nft add table inet rptest");
  RunOrThrow(a_.Exec() + "nft 'add chain inet rptest out { type filter hook output priority 0; }'");
  RunOrThrow(a_.Exec() + "nft 'add rule inet rptest out udp dport " + std::to_string(kPort) +
             " numgen random mod 100 < 20 drop'");
  const auto totals =
      ProbeFrom(a_.name(), {ProbeTarget{"b", "lab", "", veth_.b().ipv4, kPort}}, kLossProbes, 4ms);
  ASSERT_TRUE(totals.count("b"));
  const auto& t = totals.at("b");
  EXPECT_NEAR(t.loss_forward(), kDropRate, kTolerance) << t.sent << " sent, " << t.forward << " arrived";
  EXPECT_LT(t.loss_reverse(), 0.01);
}

TEST_F(ProberReflectorNetns, DropOnTheWayBackIsReverseLossOnly) {
  ReflectorInNamespace reflector(b_.name());
  ASSERT_EQ(reflector.error(), "");
  RunOrThrow(a_.Exec() + "nft add table inet rptest");
  RunOrThrow(a_.Exec() + "nft 'add chain inet rptest in { type filter hook input priority 0; }'");
  RunOrThrow(a_.Exec() + "nft 'add rule inet rptest in udp sport " + std::to_string(kPort) +
             " numgen random mod 100 < 20 drop'");
  const auto totals =
      ProbeFrom(a_.name(), {ProbeTarget{"b", "lab", "", veth_.b().ipv4, kPort}}, kLossProbes, 4ms);
  ASSERT_TRUE(totals.count("b"));
  const auto& t = totals.at("b");
  EXPECT_NEAR(t.loss_reverse(), kDropRate, kTolerance)
      << t.forward << " arrived, " << t.reverse << " came back";
  EXPECT_LT(t.loss_forward(), 0.01);
}

// The reflector's interface carries several addresses of each family; a prober probing one that
// is not the kernel's preferred source towards it (a secondary address in the same subnet,
// one in another subnet or prefix) must get its replies from exactly that address: it matches
// replies by the address it probed, so a reply from the interface's primary address would be
// dropped and read as total loss.
TEST_F(ProberReflectorNetns, ReplyComesFromTheProbedAddressAmongSeveral) {
  const std::string pa = veth_.a().ifname, pb = veth_.b().ifname;
  // 10.77.0.12 joins 10.77.0.2's subnet as a secondary address, so the connected route's
  // preferred source stays 10.77.0.2; 10.78.0.2 and fd01:77::2 are reached by routes whose
  // replies would leave from the primary ones; fd00:77::12 shares the primary's prefix.
  RunOrThrow(b_.Exec() + "ip addr add 10.77.0.12/24 dev " + pb);
  RunOrThrow(b_.Exec() + "ip addr add 10.78.0.2/24 dev " + pb);
  RunOrThrow(b_.Exec() + "ip -6 addr add fd00:77::12/64 dev " + pb + " nodad");
  RunOrThrow(b_.Exec() + "ip -6 addr add fd01:77::2/64 dev " + pb + " nodad");
  RunOrThrow(a_.Exec() + "ip route add 10.78.0.0/24 dev " + pa);
  RunOrThrow(a_.Exec() + "ip -6 route add fd01:77::/64 dev " + pa);
  const std::vector<std::string> probed = {"10.77.0.12", "10.78.0.2", "fd00:77::12", "fd01:77::2"};
  for (const auto& address : probed) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (test::RunStatus(a_.Exec() + "ping -c 1 -W 1 " + address + " >/dev/null 2>&1") != 0) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no path to " << address;
    }
  }

  ReflectorInNamespace reflector(b_.name());
  ASSERT_EQ(reflector.error(), "");
  for (const auto& address : probed) EXPECT_EQ(ReplySource(a_.name(), address), address);

  std::vector<ProbeTarget> targets;
  for (const auto& address : probed) targets.push_back(ProbeTarget{address, "lab", "", address, kPort});
  const auto totals = ProbeFrom(a_.name(), targets, 100, 5ms);
  for (const auto& address : probed) {
    ASSERT_TRUE(totals.count(address)) << address;
    const auto& t = totals.at(address);
    EXPECT_GE(t.sent, 100u) << address;
    EXPECT_EQ(t.forward, t.sent) << address;
    EXPECT_EQ(t.reverse, t.sent) << address << ": replies from elsewhere are not this path's";
    EXPECT_EQ(t.lost_unknown, 0u) << address;
  }
}

// The reflector's count of each sender session and the prober's path name the same session:
// the source address and port the probes leave from and the SSID, so the aggregator can join
// both ends. With no loss, every probe sent was reflected.
TEST_F(ProberReflectorNetns, ReflectorCountsPerSenderJoinThePathsOnSourceAndSsid) {
  ReflectionRecorder recorder;
  ReflectorInNamespace reflector(b_.name(), &recorder);
  ASSERT_EQ(reflector.error(), "");
  const auto totals = ProbeFrom(a_.name(),
                                {ProbeTarget{"b-v4", "lab", "", veth_.b().ipv4, kPort},
                                 ProbeTarget{"b-v6", "lab", "", veth_.b().ipv6, kPort}},
                                50, 5ms);
  const auto reflected = recorder.reflected();
  for (const auto& [node, source] :
       std::map<std::string, std::string>{{"b-v4", veth_.a().ipv4}, {"b-v6", veth_.a().ipv6}}) {
    ASSERT_TRUE(totals.count(node)) << node;
    const auto& t = totals.at(node);
    EXPECT_EQ(t.source_address, source) << node;
    EXPECT_NE(t.source_port, 0u) << node;
    uint64_t received = 0, replied = 0;
    for (const auto& r : reflected) {
      if (r.sender_address.ToText() == t.source_address && r.sender_port == t.source_port &&
          r.ssid == t.ssid) {
        ++received;
        replied += r.replied ? 1 : 0;
      }
    }
    EXPECT_EQ(received, t.sent) << node << ": the reflector saw every probe of the path's session";
    EXPECT_EQ(replied, t.sent) << node;
  }
}

}  // namespace
}  // namespace regionpulse
