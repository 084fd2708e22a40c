// The real regionpulse-wan binary on loopback: datagrams relayed both ways with the
// configured delay, loss and blackholes changed through ctl, foreign senders refused,
// garbage on the control socket survived, clean exit on SIGTERM.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "tests/support/poll_until.h"
#include "tests/support/test_network.h"
#include "tests/tools/wan_emulator_harness.h"

namespace regionpulse {
namespace {

using test::EmulatorProcess;
using test::LinkCounter;
using test::PortFor;
using test::ScratchDirectory;
using test::UdpSocket;
using test::WaitUntilServing;

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

// Two nodes in two regions, 20 ms each way; every port chosen by the kernel and read back
// through `ctl ports`.
class WanEmulatorProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_path_ = scratch_.path() + "/ctl.sock";
    config_ = scratch_.Write("wan.yaml",
                             "listen_address: 127.0.0.1\n"
                             "control_socket: " +
                                 socket_path_ +
                                 "\n"
                                 "seed: 3\n"
                                 "nodes:\n"
                                 "  - {name: a, region: r1, endpoint: 127.0.0.1:" +
                                 std::to_string(a_.port()) +
                                 "}\n"
                                 "  - {name: b, region: r2, endpoint: 127.0.0.1:" +
                                 std::to_string(b_.port()) +
                                 "}\n"
                                 "links:\n"
                                 "  - {a: a, b: b, port_for_a: 0, port_for_b: 0}\n"
                                 "impairments:\n"
                                 "  - {between: [r1, r2], delay: 20ms}\n");
    emulator_ = std::make_unique<EmulatorProcess>(scratch_.path() + "/wan.log",
                                                  std::vector<std::string>{"--config", config_});
    ASSERT_TRUE(WaitUntilServing(socket_path_, *emulator_)) << emulator_->Output();
    auto ports = wan::SendControlCommand(socket_path_, "ports");
    ASSERT_TRUE(ports.ok() && ports->ok);
    port_ab_ = PortFor(ports->body, "a", "b");
    port_ba_ = PortFor(ports->body, "b", "a");
    ASSERT_NE(port_ab_, 0) << ports->body;
    ASSERT_NE(port_ba_, 0) << ports->body;
  }

  // Runs `regionpulse-wan ctl --socket S ARGS` as a process; its exit status.
  int Ctl(const std::string& args) {
    return test::RunStatus(std::string(REGIONPULSE_WAN_BINARY) + " ctl --socket " + socket_path_ + " " +
                           args);
  }

  std::string Stats() {
    auto reply = wan::SendControlCommand(socket_path_, "stats");
    return reply.ok() && reply->ok ? reply->body : std::string();
  }

  // Waits for a counter of a link direction to reach `value`: the event that says the
  // emulator has seen (and dropped) the datagrams, so their absence at the receiver means
  // something.
  bool WaitForCounter(const std::string& from, const std::string& to, const std::string& key,
                      uint64_t value) {
    return test::PollUntil([&] { return LinkCounter(Stats(), from, to, key).value_or(0) >= value; },
                           seconds(5));
  }

  ScratchDirectory scratch_{"wan"};
  UdpSocket a_;
  UdpSocket b_;
  std::string socket_path_;
  std::string config_;
  std::unique_ptr<EmulatorProcess> emulator_;
  uint16_t port_ab_ = 0;
  uint16_t port_ba_ = 0;
};

TEST_F(WanEmulatorProcess, RelaysBothWaysWithTheConfiguredDelay) {
  std::vector<double> a_to_b_ms, b_to_a_ms;
  for (int i = 0; i < 10; ++i) {
    const std::string ping = "ping " + std::to_string(i);
    auto sent = std::chrono::steady_clock::now();
    a_.SendTo("127.0.0.1", port_ab_, ping);
    auto at_b = b_.Receive(seconds(2));
    ASSERT_TRUE(at_b) << "datagram " << i << " did not reach b\n" << emulator_->Output();
    EXPECT_EQ(at_b->payload, ping);
    // b sees it come from the port b itself sends to: WireGuard's roaming stays on the relay.
    EXPECT_EQ(at_b->source_port, port_ba_);
    a_to_b_ms.push_back(std::chrono::duration<double, std::milli>(at_b->received - sent).count());

    const std::string pong = "pong " + std::to_string(i);
    sent = std::chrono::steady_clock::now();
    b_.SendTo("127.0.0.1", at_b->source_port, pong);
    auto at_a = a_.Receive(seconds(2));
    ASSERT_TRUE(at_a) << "reply " << i << " did not reach a";
    EXPECT_EQ(at_a->payload, pong);
    EXPECT_EQ(at_a->source_port, port_ab_);
    b_to_a_ms.push_back(std::chrono::duration<double, std::milli>(at_a->received - sent).count());
  }
  for (auto* samples : {&a_to_b_ms, &b_to_a_ms}) {
    std::sort(samples->begin(), samples->end());
    // Never early: the delay is applied to every datagram...
    EXPECT_GE(samples->front(), 20.0);
    // ...and not much more than it (the median, so one late wake-up on a busy machine is not
    // a failure).
    EXPECT_LT((*samples)[samples->size() / 2], 30.0);
  }
  const std::string stats = Stats();
  EXPECT_EQ(LinkCounter(stats, "a", "b", "forwarded"), 10u) << stats;
  EXPECT_EQ(LinkCounter(stats, "b", "a", "forwarded"), 10u) << stats;
}

TEST_F(WanEmulatorProcess, LossOfAHundredPercentDropsEveryDatagramInThatDirectionOnly) {
  ASSERT_EQ(Ctl("set r1 r2 loss=100%"), 0);
  for (int i = 0; i < 20; ++i) a_.SendTo("127.0.0.1", port_ab_, "lost " + std::to_string(i));
  ASSERT_TRUE(WaitForCounter("a", "b", "dropped_loss", 20)) << Stats();
  // Every datagram has been dropped by now, and none was delivered: after 20 drops nothing
  // is left queued, so nothing can still arrive.
  EXPECT_EQ(LinkCounter(Stats(), "a", "b", "queued_packets"), 0u);
  EXPECT_FALSE(b_.Receive(milliseconds(0)));
  EXPECT_EQ(LinkCounter(Stats(), "a", "b", "forwarded"), 0u);

  b_.SendTo("127.0.0.1", port_ba_, "the other way");
  auto at_a = a_.Receive(seconds(2));
  ASSERT_TRUE(at_a);
  EXPECT_EQ(at_a->payload, "the other way");
}

TEST_F(WanEmulatorProcess, NodeBlackholeOnAndOffThroughCtl) {
  ASSERT_EQ(Ctl("node a blackhole=on"), 0);
  a_.SendTo("127.0.0.1", port_ab_, "into the void");
  b_.SendTo("127.0.0.1", port_ba_, "into the void too");
  ASSERT_TRUE(WaitForCounter("a", "b", "dropped_blackhole", 1));
  ASSERT_TRUE(WaitForCounter("b", "a", "dropped_blackhole", 1));
  EXPECT_FALSE(b_.Receive(milliseconds(0)));
  EXPECT_FALSE(a_.Receive(milliseconds(0)));

  ASSERT_EQ(Ctl("node a blackhole=off"), 0);
  a_.SendTo("127.0.0.1", port_ab_, "back");
  auto at_b = b_.Receive(seconds(2));
  ASSERT_TRUE(at_b);
  EXPECT_EQ(at_b->payload, "back");
}

TEST_F(WanEmulatorProcess, RegionBlackholeBothWaysThenReset) {
  ASSERT_EQ(Ctl("set --both r1 r2 blackhole=on"), 0);
  a_.SendTo("127.0.0.1", port_ab_, "x");
  b_.SendTo("127.0.0.1", port_ba_, "y");
  ASSERT_TRUE(WaitForCounter("a", "b", "dropped_blackhole", 1));
  ASSERT_TRUE(WaitForCounter("b", "a", "dropped_blackhole", 1));
  EXPECT_FALSE(b_.Receive(milliseconds(0)));
  EXPECT_FALSE(a_.Receive(milliseconds(0)));
  ASSERT_EQ(Ctl("reset"), 0);
  a_.SendTo("127.0.0.1", port_ab_, "after reset");
  ASSERT_TRUE(b_.Receive(seconds(2)));
}

// Sends `count` numbered datagrams a -> b back to back and returns the numbers in the order
// b received them (stops at the first 2 s without a datagram).
std::vector<int> SendNumberedAndCollect(const UdpSocket& from, const UdpSocket& to, uint16_t port,
                                        int count) {
  for (int i = 0; i < count; ++i) from.SendTo("127.0.0.1", port, std::to_string(i));
  std::vector<int> order;
  while (static_cast<int>(order.size()) < count) {
    auto datagram = to.Receive(seconds(2));
    if (!datagram) break;
    order.push_back(std::stoi(datagram->payload));
  }
  return order;
}

TEST_F(WanEmulatorProcess, JitterKeepsTheOrderOfADirection) {
  ASSERT_EQ(Ctl("set r1 r2 delay=10ms jitter=5ms"), 0);
  const std::vector<int> order = SendNumberedAndCollect(a_, b_, port_ab_, 200);
  ASSERT_EQ(order.size(), 200u);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
}

TEST_F(WanEmulatorProcess, ReorderLetsLaterDatagramsOvertake) {
  ASSERT_EQ(Ctl("set r1 r2 delay=5ms reorder=20% reorder_hold=20ms"), 0);
  const std::vector<int> order = SendNumberedAndCollect(a_, b_, port_ab_, 200);
  ASSERT_EQ(order.size(), 200u);
  EXPECT_FALSE(std::is_sorted(order.begin(), order.end()));
  const uint64_t reordered = LinkCounter(Stats(), "a", "b", "reordered").value_or(0);
  EXPECT_GT(reordered, 10u);
  EXPECT_LT(reordered, 80u);
}

TEST_F(WanEmulatorProcess, DatagramsFromAnyOtherAddressAreDroppedAndCounted) {
  UdpSocket stranger;
  stranger.SendTo("127.0.0.1", port_ab_, "let me in");
  ASSERT_TRUE(WaitForCounter("a", "b", "dropped_foreign", 1));
  EXPECT_FALSE(b_.Receive(milliseconds(0)));
  a_.SendTo("127.0.0.1", port_ab_, "from a");
  auto at_b = b_.Receive(seconds(2));
  ASSERT_TRUE(at_b);
  EXPECT_EQ(at_b->payload, "from a");
}

// A raw connection to the control socket, for what ctl would never send.
class RawControl {
 public:
  explicit RawControl(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawControl() { close(fd_); }
  bool connected() const { return connected_; }
  void Send(const std::string& bytes) { (void)!send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  void FinishSending() { shutdown(fd_, SHUT_WR); }
  // Everything until the peer closes or `timeout` passes.
  std::string ReadUntilClosedOr(milliseconds timeout) {
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char chunk[4096];
      const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      text.append(chunk, static_cast<size_t>(n));
    }
    return text;
  }
  // Reads until a line that closes a reply.
  std::string ReadReply(milliseconds timeout) {
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (text.find("ok\n") != std::string::npos || text.find("error: ") != std::string::npos) {
        if (!text.empty() && text.back() == '\n') break;
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char chunk[4096];
      const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) break;
      text.append(chunk, static_cast<size_t>(n));
    }
    return text;
  }
  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
};

TEST_F(WanEmulatorProcess, GarbageOnTheControlSocketLeavesItAnswering) {
  {
    RawControl raw(socket_path_);
    ASSERT_TRUE(raw.connected());
    static constexpr char kGarbage[] = "\x00\xff\xfe garbage \x01\x02\x03\n";
    raw.Send(std::string(kGarbage, sizeof(kGarbage) - 1));
    EXPECT_THAT(raw.ReadReply(seconds(5)),
                HasSubstr("error: command holds bytes that are not printable ASCII"));
    // The same connection still takes commands after the garbage.
    raw.Send("ports\n");
    EXPECT_THAT(raw.ReadReply(seconds(5)), HasSubstr("ok\n"));
  }
  {
    RawControl raw(socket_path_);
    raw.Send(std::string(10'000, 'x'));
    const std::string reply = raw.ReadUntilClosedOr(seconds(5));
    EXPECT_THAT(reply, HasSubstr("error: command longer than 4096 bytes"));
    EXPECT_TRUE(raw.closed()) << "an over-long line must close the connection";
  }
  {
    // A command cut off by the end of the connection still counts, as from `printf show | socat`.
    RawControl raw(socket_path_);
    raw.Send("set r1 r2 delay=5ms");
    raw.FinishSending();
    EXPECT_EQ(raw.ReadUntilClosedOr(seconds(5)), "ok\n");
  }
  {
    // More connections than allowed: the extra ones are told and closed; the first stay.
    std::vector<std::unique_ptr<RawControl>> many;
    for (int i = 0; i < 17; ++i) many.push_back(std::make_unique<RawControl>(socket_path_));
    EXPECT_THAT(many.back()->ReadUntilClosedOr(seconds(5)), HasSubstr("error: too many control connections"));
    many.front()->Send("help\n");
    EXPECT_THAT(many.front()->ReadReply(seconds(5)), HasSubstr("ok\n"));
  }
  for (int i = 0; i < 50; ++i) RawControl(socket_path_).Send("\n\n\r\n");  // connect, send, close at once
  auto show = wan::SendControlCommand(socket_path_, "show");
  ASSERT_TRUE(show.ok()) << show.error().ToString();
  EXPECT_TRUE(show->ok);
  EXPECT_THAT(show->body, HasSubstr("region directions"));
  EXPECT_TRUE(emulator_->Running());
}

TEST_F(WanEmulatorProcess, CtlExitStatusSaysRefusedOrUnreachable) {
  EXPECT_EQ(Ctl("show"), 0);
  EXPECT_EQ(Ctl("set r1 r2 loss=30"), 1);
  EXPECT_EQ(Ctl("frobnicate"), 1);
  EXPECT_EQ(test::RunStatus(std::string(REGIONPULSE_WAN_BINARY) + " ctl --socket " + scratch_.path() +
                            "/nobody.sock show"),
            2);
  const std::string refused = test::RunOrThrow(std::string(REGIONPULSE_WAN_BINARY) + " ctl --socket " +
                                               socket_path_ + " set r1 r2 loss=30 2>&1 || true");
  EXPECT_THAT(refused, HasSubstr("loss=30: expected a percentage with its % sign"));
}

TEST_F(WanEmulatorProcess, SigtermStopsItAndRemovesTheControlSocket) {
  // Datagrams waiting in the delay queue do not hold the exit up.
  for (int i = 0; i < 5; ++i) a_.SendTo("127.0.0.1", port_ab_, "in flight");
  ASSERT_TRUE(std::filesystem::exists(socket_path_));
  emulator_->Signal(SIGTERM);
  EXPECT_EQ(emulator_->Wait(seconds(5)), 0) << emulator_->Output();
  EXPECT_FALSE(std::filesystem::exists(socket_path_));
}

TEST_F(WanEmulatorProcess, SigintToo) {
  emulator_->Signal(SIGINT);
  EXPECT_EQ(emulator_->Wait(seconds(5)), 0) << emulator_->Output();
  EXPECT_FALSE(std::filesystem::exists(socket_path_));
}

TEST_F(WanEmulatorProcess, ASecondEmulatorDoesNotTakeARunningOnesSocket) {
  // Same control socket, other ports: refused, and the first keeps its socket.
  const std::string other = scratch_.Write("other.yaml",
                                           "listen_address: 127.0.0.1\n"
                                           "control_socket: " +
                                               socket_path_ +
                                               "\n"
                                               "nodes:\n"
                                               "  - {name: a, region: r1, endpoint: 127.0.0.1:1}\n"
                                               "  - {name: b, region: r2, endpoint: 127.0.0.1:2}\n"
                                               "links:\n"
                                               "  - {a: a, b: b, port_for_a: 0, port_for_b: 0}\n");
  EmulatorProcess second(scratch_.path() + "/second.log", {"--config", other});
  EXPECT_EQ(second.Wait(seconds(5)), 1);
  EXPECT_THAT(second.Output(), HasSubstr("another process is listening on it"));
  EXPECT_EQ(Ctl("show"), 0);
}

// Two nodes a and b at the given UDP sockets, ports chosen by the kernel, and extra top-level keys.
std::string TwoNodeConfig(const std::string& listen, const std::string& socket_path, const UdpSocket& a,
                          const UdpSocket& b, const std::string& extra = "") {
  return "listen_address: \"" + listen + "\"\ncontrol_socket: " + socket_path + "\n" + extra +
         "nodes:\n"
         "  - {name: a, region: r1, endpoint: 127.0.0.1:" +
         std::to_string(a.port()) +
         "}\n"
         "  - {name: b, region: r2, endpoint: 127.0.0.1:" +
         std::to_string(b.port()) +
         "}\n"
         "links:\n"
         "  - {a: a, b: b, port_for_a: 0, port_for_b: 0}\n";
}

TEST(WanEmulatorStart, ListensDualStackForIpv4Nodes) {
  // listen_address "::" takes IPv4 senders as IPv4-mapped addresses: they must still match
  // the configured IPv4 endpoints, and replies must go out to them.
  ScratchDirectory scratch("wan");
  UdpSocket a, b;
  const std::string socket_path = scratch.path() + "/ctl.sock";
  EmulatorProcess emulator(scratch.path() + "/wan.log",
                           {"--config", scratch.Write("wan.yaml", TwoNodeConfig("::", socket_path, a, b))});
  ASSERT_TRUE(WaitUntilServing(socket_path, emulator)) << emulator.Output();
  auto ports = wan::SendControlCommand(socket_path, "ports");
  ASSERT_TRUE(ports.ok() && ports->ok);
  a.SendTo("127.0.0.1", PortFor(ports->body, "a", "b"), "over v4-mapped");
  auto at_b = b.Receive(std::chrono::seconds(2));
  ASSERT_TRUE(at_b) << emulator.Output();
  EXPECT_EQ(at_b->payload, "over v4-mapped");
  EXPECT_EQ(at_b->source_port, PortFor(ports->body, "b", "a"));
}

TEST(WanEmulatorStart, RealtimePriorityRunsTheRelayAtSchedFifo) {
  if (geteuid() != 0) GTEST_SKIP() << "SCHED_FIFO needs root";
  ScratchDirectory scratch("wan");
  UdpSocket a, b;
  const std::string socket_path = scratch.path() + "/ctl.sock";
  EmulatorProcess emulator(
      scratch.path() + "/wan.log",
      {"--config",
       scratch.Write("wan.yaml", TwoNodeConfig("127.0.0.1", socket_path, a, b, "realtime_priority: 10\n"))});
  ASSERT_TRUE(WaitUntilServing(socket_path, emulator)) << emulator.Output();
  EXPECT_EQ(sched_getscheduler(emulator.pid()), SCHED_FIFO);
  EXPECT_THAT(emulator.Output(), HasSubstr("SCHED_FIFO 10"));
}

TEST(WanEmulatorStart, ABadConfigExitsWithTheKeyNamed) {
  ScratchDirectory scratch("wan");
  const std::string config = scratch.Write("bad.yaml",
                                           "listen_address: 127.0.0.1\n"
                                           "control_socket: " +
                                               scratch.path() +
                                               "/ctl.sock\n"
                                               "nodes:\n"
                                               "  - {name: a, regoin: r1, endpoint: 127.0.0.1:1}\n");
  EmulatorProcess emulator(scratch.path() + "/wan.log", {"--config", config});
  EXPECT_EQ(emulator.Wait(seconds(5)), 1);
  EXPECT_THAT(emulator.Output(), HasSubstr("config key 'nodes[0].regoin': unknown key"));
}

TEST(WanEmulatorStart, APortInUseFailsNamingItAndLeavesNoSocket) {
  ScratchDirectory scratch("wan");
  UdpSocket taken;
  const std::string config = scratch.Write("wan.yaml",
                                           "listen_address: 127.0.0.1\n"
                                           "control_socket: " +
                                               scratch.path() +
                                               "/ctl.sock\n"
                                               "nodes:\n"
                                               "  - {name: a, region: r1, endpoint: 127.0.0.1:1}\n"
                                               "  - {name: b, region: r2, endpoint: 127.0.0.1:2}\n"
                                               "links:\n"
                                               "  - {a: a, b: b, port_for_a: " +
                                               std::to_string(taken.port()) + ", port_for_b: 0}\n");
  EmulatorProcess emulator(scratch.path() + "/wan.log", {"--config", config});
  EXPECT_EQ(emulator.Wait(seconds(5)), 1);
  EXPECT_THAT(emulator.Output(), HasSubstr("bind 127.0.0.1 port " + std::to_string(taken.port())));
  EXPECT_FALSE(std::filesystem::exists(scratch.path() + "/ctl.sock"));
}

TEST(WanEmulatorStart, PortsCommandPrintsTheMappingWithoutStarting) {
  ScratchDirectory scratch("wan");
  const std::string config = scratch.Write("wan.yaml",
                                           "listen_address: 10.99.0.1\n"
                                           "control_socket: /nonexistent/ctl.sock\n"
                                           "port_range: 40000-40100\n"
                                           "nodes:\n"
                                           "  - {name: a, region: r1, endpoint: 10.99.0.2:51820}\n"
                                           "  - {name: b, region: r2, endpoint: 10.99.0.3:51820}\n");
  EXPECT_EQ(test::RunOrThrow(std::string(REGIONPULSE_WAN_BINARY) + " ports --config " + config),
            "a b 40000\nb a 40001\n");
}

}  // namespace
}  // namespace regionpulse
