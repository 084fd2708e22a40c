// Attaches what tools/bench/tc_cost measures to one interface of the current network
// namespace, waits until stdin closes, then prints each program's run count and run time.
//   --ours   the real datapath through BpfDatapath::Start (tc programs, sock_ops, tracepoints)
//   --empty  an empty tc program (bench_empty.bpf.c) on tcx after ours, and an empty sock_ops
//            program on the cgroup2 root: the floor
//   --count  the cheapest counting tc program (bench_empty.bpf.c) on tcx after those: the
//            floor of any program that reads the packet and updates a counter
// Output, one line per program:  <name> <run_cnt> <run_time_ns>, then wire_packets_tx/rx N
// Run it with kernel.bpf_stats_enabled=1, or the counts stay 0.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "agent/bpf_datapath.h"
#include "agent/kernel_mounts.h"
#include "agent/tcx_uapi.h"
#include "bench_empty.skel.h"

namespace {

void PrintStats(const std::string& name, int prog_fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0) {
    std::cout << name << " " << info.run_cnt << " " << info.run_time_ns << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string iface;
  bool ours = false, empty = false, count = false;
  std::string remote_cidr = "0.0.0.0/0";
  uint16_t flow_port = 5201;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--ours")
      ours = true;
    else if (arg == "--empty")
      empty = true;
    else if (arg == "--count")
      count = true;
    else if (arg == "--iface" && i + 1 < argc)
      iface = argv[++i];
    else if (arg == "--remote-cidr" && i + 1 < argc)
      remote_cidr = argv[++i];
    else if (arg == "--flow-port" && i + 1 < argc)
      flow_port = static_cast<uint16_t>(std::stoi(argv[++i]));
    else {
      std::cerr << "usage: " << argv[0]
                << " --iface IF [--ours] [--empty] [--count] [--remote-cidr CIDR] [--flow-port P]\n";
      return 2;
    }
  }
  if (iface.empty() || (!ours && !empty && !count)) {
    std::cerr << "need --iface and at least one of --ours, --empty, --count\n";
    return 2;
  }

  std::unique_ptr<regionpulse::BpfDatapath> datapath;
  if (ours) {
    regionpulse::DatapathConfig config;
    config.interfaces = {iface};
    config.region_cidrs = {{remote_cidr, 1}};
    config.flows = {{"bench", {flow_port}, 1, 0}};
    auto started = regionpulse::BpfDatapath::Start(config);
    if (!started.ok()) {
      std::cerr << "starting the datapath: " << started.error().ToString() << "\n";
      return 1;
    }
    datapath = std::move(started).value();
  }
  bench_empty* skel = nullptr;
  int links[2] = {-1, -1};
  int count_links[2] = {-1, -1};
  bpf_link* sock_ops_link = nullptr;
  const unsigned ifindex = if_nametoindex(iface.c_str());
  if (empty || count) {
    skel = bench_empty__open_and_load();
    if (skel == nullptr || ifindex == 0) {
      std::cerr << "loading the floor programs or finding " << iface << ": " << strerror(errno) << "\n";
      return 1;
    }
  }
  if (empty) {
    links[0] = bpf_link_create(bpf_program__fd(skel->progs.bench_empty_ingress), ifindex,
                               regionpulse::kTcxIngress, nullptr);
    links[1] = bpf_link_create(bpf_program__fd(skel->progs.bench_empty_egress), ifindex,
                               regionpulse::kTcxEgress, nullptr);
    if (links[0] < 0 || links[1] < 0) {
      std::cerr << "tcx attach of the empty program on " << iface << ": " << strerror(errno) << "\n";
      return 1;
    }
    // The empty sock_ops beside ours on the cgroup2 root (where BpfDatapath attaches).
    auto opened = regionpulse::OpenCgroup2("");
    const int cgroup = opened.ok() ? *opened : -1;
    sock_ops_link =
        cgroup >= 0 ? bpf_program__attach_cgroup(skel->progs.bench_empty_sock_ops, cgroup) : nullptr;
    if (cgroup >= 0) close(cgroup);
    if (sock_ops_link == nullptr) {
      std::cerr << "attaching the empty sock_ops program to the cgroup2 root: " << strerror(errno) << "\n";
      return 1;
    }
  }
  if (count) {
    count_links[0] = bpf_link_create(bpf_program__fd(skel->progs.bench_count_ingress), ifindex,
                                     regionpulse::kTcxIngress, nullptr);
    count_links[1] = bpf_link_create(bpf_program__fd(skel->progs.bench_count_egress), ifindex,
                                     regionpulse::kTcxEgress, nullptr);
    if (count_links[0] < 0 || count_links[1] < 0) {
      std::cerr << "tcx attach of the counting program on " << iface << ": " << strerror(errno) << "\n";
      return 1;
    }
  }
  std::cout << "ready" << std::endl;
  std::string ignored;
  while (std::getline(std::cin, ignored)) {
  }
  if (datapath) {
    for (const auto& stats : datapath->ProgramStats()) {
      std::cout << stats.name << " " << stats.run_count << " " << stats.run_time_ns << "\n";
    }
    // Packets on the wire (GSO packets counted by their segments), to express the cost per
    // packet as well as per program run.
    const auto counters = datapath->RegionCounters();
    if (auto it = counters.find(1); it != counters.end()) {
      std::cout << "wire_packets_tx " << it->second.tx_packets << "\n";
      std::cout << "wire_packets_rx " << it->second.rx_packets << "\n";
    }
  }
  if (empty) {
    PrintStats("bench_empty/bench_empty_ingress", bpf_program__fd(skel->progs.bench_empty_ingress));
    PrintStats("bench_empty/bench_empty_egress", bpf_program__fd(skel->progs.bench_empty_egress));
    PrintStats("bench_empty/bench_empty_sock_ops", bpf_program__fd(skel->progs.bench_empty_sock_ops));
  }
  if (count) {
    PrintStats("bench_count/bench_count_ingress", bpf_program__fd(skel->progs.bench_count_ingress));
    PrintStats("bench_count/bench_count_egress", bpf_program__fd(skel->progs.bench_count_egress));
  }
  bpf_link__destroy(sock_ops_link);
  for (const int fd : {links[0], links[1], count_links[0], count_links[1]}) {
    if (fd >= 0) close(fd);
  }
  bench_empty__destroy(skel);
  return 0;
}
