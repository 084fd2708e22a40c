// BpfDatapath end to end on a veth pair between two network namespaces, one datapath per
// namespace as in the lab: kernel stamps on real probes, per-region and per-flow TCP signals
// under forced loss, counting only the own namespace's sockets, interfaces that appear later
// or are re-created, and nothing left behind after destruction.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>

#include <sys/wait.h>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <memory>
#include <sstream>
#include <thread>

#include "agent/bpf_datapath.h"
#include "agent/tcp_socket_dump.h"
#include "tests/agent/namespace_traffic.h"
#include "tests/support/test_network.h"

namespace regionpulse {
namespace {

using test::NetworkNamespace;
using test::PollUntil;
using test::RunOrThrow;
using test::ScopedNetnsEntry;
using test::VethPair;

constexpr uint16_t kProbePort = 862;
constexpr RegionId kPeerRegion = 1;

DatapathConfig ConfigFor(const std::string& ifname, int subnet) {
  DatapathConfig config;
  config.probe_port = kProbePort;
  config.interfaces = {ifname};
  const std::string s = std::to_string(subnet);
  // Both sides use the same table (the whole link is "the other region"): a datapath that
  // counted the other namespace's sockets would see every connection twice.
  config.region_cidrs = {{"10." + s + ".0.0/24", kPeerRegion}, {"fd00:" + s + "::/64", kPeerRegion}};
  config.flows = {{"replication", {5201}, kPeerRegion, 0}, {"control", {5202, 5203}, kPeerRegion, 0}};
  return config;
}

std::unique_ptr<BpfDatapath> StartIn(const std::string& netns, const DatapathConfig& config) {
  ScopedNetnsEntry inside(netns);
  auto started = BpfDatapath::Start(config);
  if (!started.ok())
    throw std::runtime_error("BpfDatapath::Start in " + netns + ": " + started.error().ToString());
  return std::move(started).value();
}

void ExpectStampsOrdered(const std::vector<std::array<uint64_t, 4>>& replies, size_t expected) {
  ASSERT_EQ(replies.size(), expected);
  for (const auto& t : replies) {
    EXPECT_GT(t[0], 0u);
    EXPECT_LT(t[0], t[1]) << "t1 < t2";
    EXPECT_LT(t[1], t[2]) << "t2 < t3";
    EXPECT_LT(t[2], t[3]) << "t3 < t4";
    // One host, one clock: the whole exchange takes well under a second.
    EXPECT_LT(t[3] - t[0], 1'000'000'000u);
  }
}

// Bytes the application wrote on `fd` that the peer has not acknowledged (SIOCOUTQ).
int Unacknowledged(int fd) {
  int bytes = -1;
  EXPECT_EQ(ioctl(fd, SIOCOUTQ, &bytes), 0) << strerror(errno);
  return bytes;
}

// Writes `bytes` on `from` and reads them all on `to`.
void Pass(int from, int to, size_t bytes) {
  std::vector<char> buffer(bytes, 'p');
  std::thread reader([&] {
    std::vector<char> in(65536);
    size_t got = 0;
    while (got < bytes) {
      const ssize_t n = read(to, in.data(), in.size());
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
  });
  size_t sent = 0;
  while (sent < bytes) {
    const ssize_t n = write(from, buffer.data() + sent, bytes - sent);
    ASSERT_GT(n, 0) << strerror(errno);
    sent += static_cast<size_t>(n);
  }
  reader.join();
}

class DatapathVethTest : public ::testing::Test {
 protected:
  DatapathVethTest() : a_("dp-a"), b_("dp-b"), veth_(a_, b_, "rpdpa0", "rpdpb0", 93) {}

  struct Connection {
    int client = -1;  // in a_
    int server = -1;  // in b_, accepted
    ~Connection() {
      if (client >= 0) close(client);
      if (server >= 0) close(server);
    }
  };
  // A TCP connection from a_ to b_'s IPv4 address on `port`.
  std::unique_ptr<Connection> Connect(uint16_t port) {
    const auto addr = test::MakeAddr(veth_.b().ipv4, port);
    const int listener = test::SocketIn(b_.name(), AF_INET, SOCK_STREAM);
    const int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(listener, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) != 0 ||
        listen(listener, 1) != 0)
      throw std::runtime_error("listening on port " + std::to_string(port) + ": " + strerror(errno));
    auto connection = std::make_unique<Connection>();
    connection->client = test::SocketIn(a_.name(), AF_INET, SOCK_STREAM);
    if (connect(connection->client, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) != 0)
      throw std::runtime_error("connecting to port " + std::to_string(port) + ": " + strerror(errno));
    connection->server = accept(listener, nullptr, nullptr);
    close(listener);
    return connection;
  }

  NetworkNamespace a_;
  NetworkNamespace b_;
  VethPair veth_;
};

TEST_F(DatapathVethTest, StampsT1ToT4OnRealProbesOverIpv4AndIpv6) {
  auto sender = StartIn(a_.name(), ConfigFor("rpdpa0", 93));
  auto reflector = StartIn(b_.name(), ConfigFor("rpdpb0", 93));
  ASSERT_TRUE(sender->Attached());
  const auto attachments = sender->Attachments();
  ASSERT_EQ(attachments.size(), 1u);
  EXPECT_EQ(attachments[0].name, "rpdpa0");
  EXPECT_TRUE(attachments[0].tcx);
  EXPECT_FALSE(attachments[0].l3_only);

  ExpectStampsOrdered(test::ExchangeProbes(a_.name(), b_.name(), veth_.b().ipv4, kProbePort, 20), 20);
  ExpectStampsOrdered(test::ExchangeProbes(a_.name(), b_.name(), veth_.b().ipv6, kProbePort, 20), 20);
  const auto sender_stamps = sender->StampsWritten();
  const auto reflector_stamps = reflector->StampsWritten();
  EXPECT_EQ(sender_stamps[0], 40u);     // t1
  EXPECT_EQ(sender_stamps[3], 40u);     // t4
  EXPECT_EQ(reflector_stamps[1], 40u);  // t2
  EXPECT_EQ(reflector_stamps[2], 40u);  // t3
}

// TCP from a to b's port 5201 (the replication flow) with every 10th packet dropped at b, a
// refused connect, and a connection b resets.
TEST_F(DatapathVethTest, CountsTcpSignalsPerRegionAndFlowForItsOwnNamespaceOnly) {
  RunOrThrow(b_.Exec() + "nft add table inet rptest");
  RunOrThrow(b_.Exec() + "nft 'add chain inet rptest in { type filter hook input priority 0; }'");
  RunOrThrow(b_.Exec() + "nft add rule inet rptest in tcp dport 5201 numgen inc mod 10 == 0 drop");

  auto client_side = StartIn(a_.name(), ConfigFor("rpdpa0", 93));
  auto server_side = StartIn(b_.name(), ConfigFor("rpdpb0", 93));

  constexpr size_t kBytes = 4 << 20;
  // Server: accepts one connection on 5201 and reads to the end; accepts one on 5202 and
  // resets it (SO_LINGER 0).
  const auto bulk_addr = test::MakeAddr(veth_.b().ipv4, 5201);
  const auto reset_addr = test::MakeAddr(veth_.b().ipv4, 5202);
  const int bulk_listener = test::SocketIn(b_.name(), AF_INET, SOCK_STREAM);
  const int reset_listener = test::SocketIn(b_.name(), AF_INET, SOCK_STREAM);
  ASSERT_EQ(bind(bulk_listener, reinterpret_cast<const sockaddr*>(&bulk_addr.storage), bulk_addr.length), 0);
  ASSERT_EQ(bind(reset_listener, reinterpret_cast<const sockaddr*>(&reset_addr.storage), reset_addr.length),
            0);
  ASSERT_EQ(listen(bulk_listener, 4), 0);
  ASSERT_EQ(listen(reset_listener, 4), 0);
  std::atomic<size_t> received{0};
  std::thread server([&] {
    const int conn = accept(bulk_listener, nullptr, nullptr);
    if (conn >= 0) {
      std::vector<char> buffer(65536);
      ssize_t n;
      while ((n = read(conn, buffer.data(), buffer.size())) > 0) received += static_cast<size_t>(n);
      close(conn);
    }
    const int doomed = accept(reset_listener, nullptr, nullptr);
    if (doomed >= 0) {
      linger abort_on_close{1, 0};
      setsockopt(doomed, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
      close(doomed);
    }
  });

  // Client: the bulk transfer, with a clean close.
  const int bulk = test::SocketIn(a_.name(), AF_INET, SOCK_STREAM);
  ASSERT_EQ(connect(bulk, reinterpret_cast<const sockaddr*>(&bulk_addr.storage), bulk_addr.length), 0)
      << strerror(errno);
  std::vector<char> data(kBytes, 'r');
  size_t sent = 0;
  while (sent < kBytes) {
    const ssize_t n = write(bulk, data.data() + sent, kBytes - sent);
    ASSERT_GT(n, 0) << strerror(errno);
    sent += static_cast<size_t>(n);
  }
  shutdown(bulk, SHUT_WR);
  char byte;
  EXPECT_EQ(read(bulk, &byte, 1), 0);  // the server's FIN: everything was acknowledged
  close(bulk);

  // A connection the server resets.
  const int reset = test::SocketIn(a_.name(), AF_INET, SOCK_STREAM);
  ASSERT_EQ(connect(reset, reinterpret_cast<const sockaddr*>(&reset_addr.storage), reset_addr.length), 0);
  EXPECT_LT(read(reset, &byte, 1), 0);
  EXPECT_EQ(errno, ECONNRESET);
  close(reset);
  server.join();
  close(bulk_listener);
  close(reset_listener);
  EXPECT_EQ(received.load(), kBytes);

  // A refused connect: nothing listens on 5203.
  const auto refused_addr = test::MakeAddr(veth_.b().ipv4, 5203);
  const int refused = test::SocketIn(a_.name(), AF_INET, SOCK_STREAM);
  EXPECT_NE(connect(refused, reinterpret_cast<const sockaddr*>(&refused_addr.storage), refused_addr.length),
            0);
  EXPECT_EQ(errno, ECONNREFUSED);
  close(refused);

  ASSERT_TRUE(PollUntil([&] {
    auto flows = client_side->FlowCountersNow();
    return !flows.empty() && flows[0].connections == 0 && flows[0].bytes_acked >= kBytes;
  }));
  const auto client = client_side->RegionCounters().at(kPeerRegion);
  EXPECT_EQ(client.tcp_established, 2u) << "the bulk and the reset connection, and not b's sockets";
  EXPECT_EQ(client.tcp_failed_connects, 1u);
  EXPECT_EQ(client.tcp_resets, 1u);
  EXPECT_GT(client.tcp_retransmits, 0u) << "every 10th packet was dropped";
  EXPECT_GT(client.tcp_srtt_samples, 0u);
  EXPECT_GT(client.tx_packets, kBytes / 1500) << "segments on the wire, not GSO super-packets";
  EXPECT_GT(client.tx_bytes, kBytes);
  EXPECT_GT(client.rx_packets, 10u);

  const auto flow = client_side->FlowCountersNow().at(0);
  EXPECT_EQ(flow.name, "replication");
  EXPECT_EQ(flow.remote_region, kPeerRegion);
  EXPECT_GE(flow.bytes_acked, kBytes);
  EXPECT_LE(flow.bytes_acked, kBytes + 2);  // the FIN takes one sequence number
  EXPECT_GT(flow.retransmits, 0u);
  EXPECT_GT(flow.srtt_samples, 0u);
  EXPECT_GT(flow.last_progress_ns, 0u);
  EXPECT_EQ(flow.connections, 0u);
  EXPECT_EQ(flow.established, 1u) << "the bulk connection only";
  EXPECT_EQ(flow.failed_connects, 0u);
  EXPECT_EQ(flow.resets, 0u);

  // The reset (5202) and the refused connect (5203) belong to the other flow.
  const auto control = client_side->FlowCountersNow().at(1);
  EXPECT_EQ(control.name, "control");
  EXPECT_EQ(control.established, 1u);
  EXPECT_EQ(control.failed_connects, 1u);
  EXPECT_EQ(control.resets, 1u);
  EXPECT_EQ(control.bytes_acked, 0u);
  EXPECT_EQ(control.connections, 0u);

  const auto server_counters = server_side->RegionCounters().at(kPeerRegion);
  EXPECT_EQ(server_counters.tcp_established, 2u) << "b's two accepted connections, and not a's";
  EXPECT_EQ(server_counters.tcp_failed_connects, 0u);
  EXPECT_GT(server_counters.rx_bytes, kBytes);
}

TEST_F(DatapathVethTest, ClassifiesIpv6ConnectionsThroughTheIpv6Trie) {
  auto client_side = StartIn(a_.name(), ConfigFor("rpdpa0", 93));
  constexpr size_t kBytes = 1 << 20;
  EXPECT_EQ(test::TcpTransfer(a_.name(), b_.name(), veth_.b().ipv6, 5201, kBytes), kBytes);
  ASSERT_TRUE(PollUntil([&] { return client_side->FlowCountersNow().at(0).bytes_acked >= kBytes; }));
  const auto counters = client_side->RegionCounters().at(kPeerRegion);
  EXPECT_EQ(counters.tcp_established, 1u);
  EXPECT_GT(counters.tcp_srtt_samples, 0u);
  EXPECT_GT(counters.tx_bytes, kBytes);
  EXPECT_EQ(client_side->FlowCountersNow().at(0).connections, 0u);
}

// The progress clock and the outstanding flag as a stall detector reads them: while data
// flows, progress moves; once everything is acknowledged on a connection that stays open,
// nothing is outstanding (even though RTT samples are thinned out to one per millisecond).
TEST_F(DatapathVethTest, AFlowThatWentIdleHasNothingOutstanding) {
  auto client_side = StartIn(a_.name(), ConfigFor("rpdpa0", 93));
  const auto addr = test::MakeAddr(veth_.b().ipv4, 5201);
  const int listener = test::SocketIn(b_.name(), AF_INET, SOCK_STREAM);
  ASSERT_EQ(bind(listener, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  constexpr size_t kBytes = 1 << 20;
  std::atomic<size_t> received{0};
  std::atomic<bool> done{false};
  std::thread server([&] {
    const int conn = accept(listener, nullptr, nullptr);
    std::vector<char> buffer(65536);
    while (received < kBytes) {
      const ssize_t n = read(conn, buffer.data(), buffer.size());
      if (n <= 0) break;
      received += static_cast<size_t>(n);
    }
    while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    close(conn);
  });
  const int client = test::SocketIn(a_.name(), AF_INET, SOCK_STREAM);
  ASSERT_EQ(connect(client, reinterpret_cast<const sockaddr*>(&addr.storage), addr.length), 0);
  std::vector<char> data(kBytes, 'r');
  size_t sent = 0;
  while (sent < kBytes) {
    const ssize_t n = write(client, data.data() + sent, kBytes - sent);
    ASSERT_GT(n, 0);
    sent += static_cast<size_t>(n);
  }
  const bool settled = PollUntil([&] {
    const auto flow = client_side->FlowCountersNow().at(0);
    return flow.bytes_acked >= kBytes && !flow.data_outstanding;
  });
  const auto flow = client_side->FlowCountersNow().at(0);
  EXPECT_TRUE(settled)
      << "all data acknowledged, the connection open and idle: nothing may look outstanding; "
      << "bytes_acked " << flow.bytes_acked << " of " << kBytes << ", outstanding " << flow.data_outstanding
      << ", srtt samples " << flow.srtt_samples << ", retransmits " << flow.retransmits;
  EXPECT_EQ(flow.connections, 1u);
  EXPECT_GT(flow.last_progress_ns, 0u);
  done = true;
  close(client);
  server.join();
  close(listener);
}

// A replica that stops consuming is a stall even though nothing is in flight: its receive
// window closes and the sender's data waits unsent. Once it reads again the flow catches up
// and, everything acknowledged, has nothing outstanding.
TEST_F(DatapathVethTest, AFlowWhoseReceiverStopsReadingHasDataOutstandingUntilItReadsAgain) {
  auto client_side = StartIn(a_.name(), ConfigFor("rpdpa0", 93));
  auto connection = Connect(5201);
  ASSERT_EQ(fcntl(connection->client, F_SETFL, O_NONBLOCK), 0);
  std::vector<char> data(65536, 's');
  size_t written = 0;
  for (;;) {  // until both sockets' buffers are full
    const ssize_t n = write(connection->client, data.data(), data.size());
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN) << strerror(errno);
      break;
    }
    written += static_cast<size_t>(n);
  }
  ASSERT_TRUE(PollUntil([&] { return client_side->FlowCountersNow().at(0).data_outstanding; }))
      << "the receiver holds back " << Unacknowledged(connection->client) << " bytes; the flow must say so";
  const auto stalled = client_side->FlowCountersNow().at(0);
  EXPECT_GT(Unacknowledged(connection->client), 0);
  // How much is outstanding: the socket's send queue (SIOCOUTQ), stable while the receiver's
  // window stays closed.
  EXPECT_EQ(stalled.bytes_outstanding, static_cast<uint64_t>(Unacknowledged(connection->client)));
  EXPECT_LT(stalled.bytes_acked, written);
  EXPECT_EQ(stalled.connections, 1u);

  std::vector<char> in(65536);
  size_t got = 0;
  while (got < written) {
    const ssize_t n = read(connection->server, in.data(), in.size());
    ASSERT_GT(n, 0) << strerror(errno);
    got += static_cast<size_t>(n);
  }
  ASSERT_TRUE(PollUntil([&] {
    const auto flow = client_side->FlowCountersNow().at(0);
    return !flow.data_outstanding && flow.bytes_acked >= written;
  }));
  EXPECT_EQ(client_side->FlowCountersNow().at(0).bytes_acked, written)
      << "counted from establishment: not the SYN";
  EXPECT_EQ(client_side->FlowCountersNow().at(0).bytes_outstanding, 0u);
  EXPECT_GT(client_side->FlowCountersNow().at(0).last_progress_ns, stalled.last_progress_ns);
}

// A long-lived replication connection (PostgreSQL keeps one for days) must survive an agent
// restart: a connection established before the datapath started is counted from when the
// datapath first lists it, and what it acknowledged before belongs to no window.
TEST_F(DatapathVethTest, CountsAConnectionEstablishedBeforeTheDatapathStarted) {
  auto connection = Connect(5201);
  Pass(connection->client, connection->server, 100'000);
  ASSERT_TRUE(PollUntil([&] { return Unacknowledged(connection->client) == 0; }));

  auto client_side = StartIn(a_.name(), ConfigFor("rpdpa0", 93));
  const auto first = client_side->FlowCountersNow().at(0);
  EXPECT_EQ(first.connections, 1u);
  EXPECT_EQ(first.bytes_acked, 0u);
  EXPECT_EQ(first.established, 0u) << "it was established before we watched";

  constexpr size_t kBytes = 1 << 20;
  Pass(connection->client, connection->server, kBytes);
  ASSERT_TRUE(PollUntil([&] { return client_side->FlowCountersNow().at(0).bytes_acked >= kBytes; }));
  EXPECT_EQ(client_side->FlowCountersNow().at(0).bytes_acked, kBytes);
  EXPECT_FALSE(client_side->FlowCountersNow().at(0).data_outstanding);

  connection.reset();  // both ends close: the socket leaves the listing, its bytes stay
  ASSERT_TRUE(PollUntil([&] { return client_side->FlowCountersNow().at(0).connections == 0; }));
  const auto closed = client_side->FlowCountersNow().at(0);
  EXPECT_GE(closed.bytes_acked, kBytes);
  EXPECT_LE(closed.bytes_acked, kBytes + 1) << "the FIN takes one sequence number";
}

// With the kernel's flow-connection map full, a connection it cannot track is found by a dump
// and still counted, once, also after it closes.
TEST_F(DatapathVethTest, CountsFlowConnectionsBeyondTheTrackingMapOnce) {
  DatapathConfig config = ConfigFor("rpdpa0", 93);
  config.max_tracked_flow_connections = 1;
  auto client_side = StartIn(a_.name(), config);
  // The first reading's dump (for connections older than the agent) finds nothing: from
  // here on only the kernel's report of a connection it had no room for starts a dump.
  EXPECT_EQ(client_side->FlowCountersNow().at(0).connections, 0u);
  auto tracked = Connect(5201);
  auto beyond = Connect(5201);
  // This reading finds the one the kernel had no room for; it is counted from here on.
  EXPECT_EQ(client_side->FlowCountersNow().at(0).connections, 2u);
  constexpr size_t kBytes = 300'000;
  Pass(tracked->client, tracked->server, kBytes);
  Pass(beyond->client, beyond->server, kBytes);
  ASSERT_TRUE(PollUntil([&] { return client_side->FlowCountersNow().at(0).bytes_acked >= 2 * kBytes; }));
  const auto open = client_side->FlowCountersNow().at(0);
  EXPECT_EQ(open.bytes_acked, 2 * kBytes);
  EXPECT_EQ(open.connections, 2u);
  EXPECT_EQ(open.established, 2u);

  tracked.reset();
  beyond.reset();
  ASSERT_TRUE(PollUntil([&] { return client_side->FlowCountersNow().at(0).connections == 0; }));
  const auto closed = client_side->FlowCountersNow().at(0);
  EXPECT_GE(closed.bytes_acked, 2 * kBytes);
  EXPECT_LE(closed.bytes_acked, 2 * kBytes + 2) << "two FINs at most; nothing counted twice";
}

// sock_diag lists the namespace's connections on the given ports only, with the socket
// cookie the BPF programs key their map by, and the socket's own acknowledged bytes.
TEST_F(DatapathVethTest, TcpSocketDumpListsOnlyConnectionsOnTheGivenPorts) {
  auto replication = Connect(5201);
  auto control = Connect(5202);
  auto other = Connect(5999);
  Pass(replication->client, replication->server, 4096);
  ASSERT_TRUE(PollUntil([&] { return Unacknowledged(replication->client) == 0; }));

  ScopedNetnsEntry inside(a_.name());
  auto dump = TcpSocketDump::Open();
  ASSERT_TRUE(dump.ok()) << dump.error().ToString();
  auto listed = dump->Connections({5201, 5202});
  ASSERT_TRUE(listed.ok()) << listed.error().ToString();
  ASSERT_EQ(listed->size(), 2u) << "a_'s two clients; not 5999, not b_'s accepted sockets";
  // Bytes acknowledged count the SYN's sequence number too.
  for (const auto& [connection, port, acked] :
       {std::tuple{replication.get(), 5201, 4097u}, std::tuple{control.get(), 5202, 1u}}) {
    uint64_t cookie = 0;
    socklen_t length = sizeof(cookie);
    ASSERT_EQ(getsockopt(connection->client, SOL_SOCKET, SO_COOKIE, &cookie, &length), 0);
    const auto it =
        std::find_if(listed->begin(), listed->end(), [&](const auto& c) { return c.key.cookie == cookie; });
    ASSERT_NE(it, listed->end()) << "port " << port;
    EXPECT_EQ(it->key.remote_port, port);
    EXPECT_EQ(it->state, TCP_ESTABLISHED);
    EXPECT_FALSE(it->HasDataOutstanding());
    EXPECT_EQ(it->bytes_acked, acked);
  }
  auto none = dump->Connections({6000});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(DatapathVethTest, AttachesToAnInterfaceThatAppearsLaterAndReattachesWhenRecreated) {
  DatapathConfig config = ConfigFor("rplate0", 94);
  auto datapath = StartIn(a_.name(), config);
  EXPECT_FALSE(datapath->Attached());

  auto make_link = [&] {
    RunOrThrow(a_.Exec() + "ip link add rplate0 type veth peer name rplate1 netns " + b_.name());
    RunOrThrow(a_.Exec() + "ip addr add 10.94.0.1/24 dev rplate0");
    RunOrThrow(b_.Exec() + "ip addr add 10.94.0.2/24 dev rplate1");
    RunOrThrow(a_.Exec() + "ip link set rplate0 up");
    RunOrThrow(b_.Exec() + "ip link set rplate1 up");
  };
  make_link();
  ASSERT_TRUE(PollUntil([&] { return datapath->Attached(); })) << "rplate0 appeared but was not attached";
  const uint32_t first_ifindex = datapath->Attachments().at(0).ifindex;
  auto replies = test::ExchangeProbes(a_.name(), b_.name(), "10.94.0.2", kProbePort, 5);
  ASSERT_EQ(replies.size(), 5u);
  for (const auto& t : replies) {
    EXPECT_GT(t[0], 0u) << "t1 stamped on the late interface";
    EXPECT_GT(t[3], t[0]) << "t4 stamped on the late interface";
  }

  RunOrThrow(a_.Exec() + "ip link del rplate0");
  ASSERT_TRUE(PollUntil([&] { return !datapath->Attached(); })) << "rplate0 deleted but still listed";

  make_link();
  ASSERT_TRUE(PollUntil([&] { return datapath->Attached(); })) << "rplate0 re-created but not re-attached";
  EXPECT_NE(datapath->Attachments().at(0).ifindex, first_ifindex);
  replies = test::ExchangeProbes(a_.name(), b_.name(), "10.94.0.2", kProbePort, 5);
  ASSERT_EQ(replies.size(), 5u);
  for (const auto& t : replies) EXPECT_GT(t[3], t[0]) << "stamped after re-attachment";
  RunOrThrow(a_.Exec() + "ip link del rplate0");
}

TEST_F(DatapathVethTest, DestructionLeavesNoFilterLinkOrProgramBehind) {
  for (const bool prefer_tcx : {true, false}) {
    SCOPED_TRACE(prefer_tcx ? "tcx" : "clsact");
    DatapathConfig config = ConfigFor("rpdpa0", 93);
    config.prefer_tcx = prefer_tcx;
    const auto progs_before = test::BpfIdsHeldByThisProcess("prog_id");
    const auto links_before = test::BpfIdsHeldByThisProcess("link_id");
    std::vector<uint32_t> our_progs, our_links;
    {
      auto datapath = StartIn(a_.name(), config);
      ASSERT_TRUE(datapath->Attached());
      EXPECT_EQ(datapath->Attachments().at(0).tcx, prefer_tcx);
      for (auto id : test::BpfIdsHeldByThisProcess("prog_id")) {
        if (std::find(progs_before.begin(), progs_before.end(), id) == progs_before.end())
          our_progs.push_back(id);
      }
      for (auto id : test::BpfIdsHeldByThisProcess("link_id")) {
        if (std::find(links_before.begin(), links_before.end(), id) == links_before.end())
          our_links.push_back(id);
      }
      // 4 tc programs + 4 TCP signal programs; sock_ops + 3 tracepoints (+ 2 tcx) links.
      EXPECT_EQ(our_progs.size(), 8u);
      EXPECT_GE(our_links.size(), prefer_tcx ? 6u : 4u);
      for (auto id : our_progs) EXPECT_TRUE(test::BpftoolShows("prog", id)) << "prog " << id;
      const std::string filters = RunOrThrow(a_.Exec() + "tc filter show dev rpdpa0 ingress");
      EXPECT_EQ(filters.find("rp_tc_ingress") != std::string::npos, !prefer_tcx) << filters;
    }
    EXPECT_EQ(RunOrThrow(a_.Exec() + "tc filter show dev rpdpa0 ingress"), "");
    EXPECT_EQ(RunOrThrow(a_.Exec() + "tc filter show dev rpdpa0 egress"), "");
    EXPECT_EQ(RunOrThrow(a_.Exec() + "bpftool net show dev rpdpa0 | grep rp_ || true"), "");
    for (auto id : our_progs) EXPECT_FALSE(test::BpftoolShows("prog", id)) << "prog " << id << " outlived us";
    for (auto id : our_links) EXPECT_FALSE(test::BpftoolShows("link", id)) << "link " << id << " outlived us";
  }
}

// tcx links and programs are owned by file descriptors: an agent killed with SIGKILL (no
// destructor runs) leaves nothing attached.
TEST_F(DatapathVethTest, AKilledAgentLeavesNothingAttached) {
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(report[0]);
    try {
      auto datapath = StartIn(a_.name(), ConfigFor("rpdpa0", 93));
      std::string ids;
      for (auto id : test::BpfIdsHeldByThisProcess("prog_id")) ids += "p" + std::to_string(id) + " ";
      for (auto id : test::BpfIdsHeldByThisProcess("link_id")) ids += "l" + std::to_string(id) + " ";
      ids += "\n";
      if (write(report[1], ids.data(), ids.size()) < 0) _exit(1);
      pause();
    } catch (...) {
    }
    _exit(1);
  }
  close(report[1]);
  std::string ids;
  char c;
  while (read(report[0], &c, 1) == 1 && c != '\n') ids += c;
  close(report[0]);
  ASSERT_FALSE(ids.empty()) << "the child agent did not start";
  EXPECT_NE(RunOrThrow(a_.Exec() + "bpftool net show dev rpdpa0"), "");

  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);

  std::istringstream parsed(ids);
  std::string token;
  while (parsed >> token) {
    const std::string kind = token[0] == 'p' ? "prog" : "link";
    const uint32_t id = static_cast<uint32_t>(std::stoul(token.substr(1)));
    // Programs are freed after an RCU grace period: poll rather than expect it at once.
    EXPECT_TRUE(PollUntil([&] { return !test::BpftoolShows(kind, id); }))
        << kind << " " << id << " outlived the agent";
  }
  EXPECT_EQ(RunOrThrow(a_.Exec() + "bpftool net show dev rpdpa0 | grep rp_ || true"), "");
}

TEST(DatapathStart, FailsNamingTheProblemForABadRegionCidr) {
  NetworkNamespace a("dp-bad");
  ScopedNetnsEntry inside(a.name());
  DatapathConfig config;
  config.interfaces = {"lo"};
  config.region_cidrs = {{"10.1.0.0/33", 1}};
  auto started = BpfDatapath::Start(config);
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.error().message.find("10.1.0.0/33"), std::string::npos) << started.error().ToString();
}

}  // namespace
}  // namespace regionpulse
