// What reading the replication flows costs the agent at every window close, against what a
// script would do instead (`ss -ti` on the flow ports, as SRE scripts do), against a
// port-filtered sock_diag dump at every window (the design not taken), and against reading
// the BPF counters alone (the floor: what sock_ops-only accounting would cost).
//
// Setup: two network namespaces joined by veth; N open connections on a flow port, and 1,024
// connections on another port the kernel-side port filter must skip. Run as root:
//   build/tools/bench/rp_flow_read_cost
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "agent/bpf_datapath.h"
#include "agent/tcp_socket_dump.h"
#include "tests/support/test_network.h"

namespace regionpulse {
namespace {

using test::NetworkNamespace;
using test::ScopedNetnsEntry;
using test::VethPair;

constexpr uint16_t kFlowPort = 5432;
constexpr uint16_t kOtherPort = 8080;
constexpr int kOtherConnections = 1024;

struct Lab {
  NetworkNamespace a{"bench-fa"};
  NetworkNamespace b{"bench-fb"};
  VethPair veth{a, b, "rpbfa0", "rpbfb0", 97};
  std::vector<int> fds;
  std::unique_ptr<BpfDatapath> datapath;
  int flow_connections = 0;

  ~Lab() {
    datapath.reset();
    for (const int fd : fds) close(fd);
  }

  int Listen(uint16_t port) {
    ScopedNetnsEntry inside(b.name());
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    inet_pton(AF_INET, veth.b().ipv4.c_str(), &addr.sin_addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 4096) != 0) {
      throw std::runtime_error("listen on port " + std::to_string(port));
    }
    fds.push_back(fd);
    return fd;
  }

  void Open(uint16_t port, int listener, int count) {
    ScopedNetnsEntry inside(a.name());
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    inet_pton(AF_INET, veth.b().ipv4.c_str(), &addr.sin_addr);
    for (int i = 0; i < count; ++i) {
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
        throw std::runtime_error("connect");
      fds.push_back(fd);
      fds.push_back(accept(listener, nullptr, nullptr));
    }
  }
};

Lab* lab = nullptr;
int flow_listener = -1;

void EnsureFlowConnections(int n) {
  if (lab->flow_connections < n) {
    lab->Open(kFlowPort, flow_listener, n - lab->flow_connections);
    lab->flow_connections = n;
  }
}

// The agent's window-close read: BPF counters, then the flow sockets through sock_diag.
void BM_FlowCountersNow(benchmark::State& state) {
  EnsureFlowConnections(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(lab->datapath->FlowCountersNow());
  state.counters["connections"] = static_cast<double>(lab->datapath->FlowCountersNow().at(0).connections);
}

// The floor: the BPF counters alone (what sock_ops-only accounting read per window).
void BM_RegionCountersOnly(benchmark::State& state) {
  EnsureFlowConnections(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(lab->datapath->RegionCounters());
}

// The design not taken: a dump of the flow ports at every window (the kernel filters by port,
// but walks its whole established-socket hash table to do it).
void BM_PortFilteredDump(benchmark::State& state) {
  EnsureFlowConnections(static_cast<int>(state.range(0)));
  ScopedNetnsEntry inside(lab->a.name());
  auto dump = TcpSocketDump::Open();
  if (!dump.ok()) {
    state.SkipWithError(dump.error().ToString().c_str());
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(dump->Connections({kFlowPort}));
}

// A script's way: ss with tcp_info on the flow port, in the namespace.
void BM_SsScript(benchmark::State& state) {
  EnsureFlowConnections(static_cast<int>(state.range(0)));
  const std::string command = "ip netns exec " + lab->a.name() +
                              " ss -tinH '( sport = :" + std::to_string(kFlowPort) +
                              " or dport = :" + std::to_string(kFlowPort) + " )' > /dev/null";
  for (auto _ : state) {
    if (std::system(command.c_str()) != 0) state.SkipWithError("ss failed");
  }
}

BENCHMARK(BM_FlowCountersNow)->Arg(1)->Arg(64)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PortFilteredDump)->Arg(1)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RegionCountersOnly)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SsScript)->Arg(1)->Arg(1024)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace regionpulse

int main(int argc, char** argv) {
  using namespace regionpulse;
  if (geteuid() != 0) {
    std::cerr << "rp_flow_read_cost: run as root (network namespaces, BPF)\n";
    return 1;
  }
  rlimit files{16384, 16384};
  setrlimit(RLIMIT_NOFILE, &files);
  benchmark::Initialize(&argc, argv);
  Lab setup;
  lab = &setup;
  flow_listener = setup.Listen(kFlowPort);
  setup.Open(kOtherPort, setup.Listen(kOtherPort), kOtherConnections);
  DatapathConfig config;
  config.interfaces = {"rpbfa0"};
  config.region_cidrs = {{"10.97.0.0/24", 1}};
  config.flows = {{"postgres", {kFlowPort}, 1, 0}};
  {
    ScopedNetnsEntry inside(setup.a.name());
    auto started = BpfDatapath::Start(config);
    if (!started.ok()) {
      std::cerr << "rp_flow_read_cost: " << started.error().ToString() << "\n";
      return 1;
    }
    setup.datapath = std::move(started).value();
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
