// Another program on the interface, standing in for Cilium's (it ends the chain with a verdict
// as Cilium's do), is attached first and still sees every packet while ours is attached, with
// tcx and with clsact; and it is still attached and working after ours is gone.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <net/if.h>

#include "agent/bpf_datapath.h"
#include "agent/tcx_uapi.h"
#include "bpf/regionpulse_shared.h"
#include "cilium_standin.skel.h"
#include "tests/agent/namespace_traffic.h"
#include "tests/support/test_network.h"

namespace regionpulse {
namespace {

using test::NetworkNamespace;
using test::RunOrThrow;
using test::ScopedNetnsEntry;
using test::VethPair;

uint64_t StandinCount(cilium_standin* skel, uint32_t direction) {
  std::vector<uint64_t> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
  bpf_map_lookup_elem(bpf_map__fd(skel->maps.standin_packets), &direction, per_cpu.data());
  uint64_t total = 0;
  for (auto v : per_cpu) total += v;
  return total;
}

TEST(DatapathBesideCilium, AStandInAttachedFirstStillSeesEveryPacket) {
  for (const bool tcx : {true, false}) {
    SCOPED_TRACE(tcx ? "tcx" : "clsact");
    NetworkNamespace a("cil-a");
    NetworkNamespace b("cil-b");
    VethPair veth(a, b, "rpcila0", "rpcilb0", 95);
    cilium_standin* standin = cilium_standin__open_and_load();
    ASSERT_NE(standin, nullptr);
    int ingress_link = -1, egress_link = -1;
    {
      ScopedNetnsEntry inside(a.name());
      const unsigned ifindex = if_nametoindex("rpcila0");
      if (tcx) {
        ingress_link =
            bpf_link_create(bpf_program__fd(standin->progs.standin_ingress), ifindex, kTcxIngress, nullptr);
        egress_link =
            bpf_link_create(bpf_program__fd(standin->progs.standin_egress), ifindex, kTcxEgress, nullptr);
        ASSERT_GE(ingress_link, 0);
        ASSERT_GE(egress_link, 0);
      } else {
        // Cilium's legacy filters sit on clsact too; this one at priority 2, after ours.
        RunOrThrow("tc qdisc add dev rpcila0 clsact");
        for (const auto point : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
          LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = point);
          LIBBPF_OPTS(bpf_tc_opts, opts,
                      .prog_fd = bpf_program__fd(point == BPF_TC_INGRESS ? standin->progs.standin_ingress
                                                                         : standin->progs.standin_egress),
                      .handle = 1, .priority = 2);
          ASSERT_EQ(bpf_tc_attach(&hook, &opts), 0);
        }
      }
    }

    DatapathConfig config;
    config.interfaces = {"rpcila0"};
    config.prefer_tcx = tcx;
    config.region_cidrs = {{"10.95.0.0/24", 1}};  // IPv4 only, like the stand-in's count
    std::unique_ptr<BpfDatapath> datapath;
    {
      ScopedNetnsEntry inside(a.name());
      auto started = BpfDatapath::Start(config);
      ASSERT_TRUE(started.ok()) << started.error().ToString();
      datapath = std::move(started).value();
    }
    ASSERT_EQ(datapath->Attachments().at(0).tcx, tcx);

    const uint64_t standin_out_before = StandinCount(standin, RP_DIR_EGRESS);
    const uint64_t standin_in_before = StandinCount(standin, RP_DIR_INGRESS);
    RunOrThrow(a.Exec() + "ping -c 20 -i 0.01 -W 1 -q " + veth.b().ipv4);
    const auto ours = datapath->RegionCounters().at(1);
    const uint64_t standin_out = StandinCount(standin, RP_DIR_EGRESS) - standin_out_before;
    const uint64_t standin_in = StandinCount(standin, RP_DIR_INGRESS) - standin_in_before;
    EXPECT_GE(standin_out, 20u);
    EXPECT_GE(standin_in, 20u);
    // Every IPv4 packet went through both programs.
    EXPECT_EQ(standin_out, ours.tx_packets);
    EXPECT_EQ(standin_in, ours.rx_packets);

    datapath.reset();
    const uint64_t after_out = StandinCount(standin, RP_DIR_EGRESS);
    RunOrThrow(a.Exec() + "ping -c 5 -i 0.01 -W 1 -q " + veth.b().ipv4);
    EXPECT_GE(StandinCount(standin, RP_DIR_EGRESS) - after_out, 5u) << "the stand-in is still attached";
    if (tcx) {
      close(ingress_link);
      close(egress_link);
    } else {
      const std::string filters = RunOrThrow(a.Exec() + "tc filter show dev rpcila0 ingress");
      EXPECT_NE(filters.find("standin_ingress"), std::string::npos) << filters;
      EXPECT_EQ(filters.find("rp_tc_"), std::string::npos) << filters;
    }
    cilium_standin__destroy(standin);
  }
}

}  // namespace
}  // namespace regionpulse
