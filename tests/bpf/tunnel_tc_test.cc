// The tunnel tc programs on crafted packets through BPF_PROG_TEST_RUN (katran style: a table
// of packets, the verdict and the exact output bytes). No network needed, but root to load.
//
// BPF_PROG_TEST_RUN always hands a tc program an Ethernet frame: the kernel runs
// eth_type_trans() on the data (which sets skb->protocol from the EtherType) and pushes the
// 14 bytes back (hh_len = ETH_HLEN in bpf_prog_test_run_skb). A truly L3-only packet cannot
// be fed in. So the test loads the object with rp_l3_header_offset = 14: the _l3 programs then
// run their real code path (IP version from skb->protocol, no Ethernet parsing) on the bytes
// after the frame header. The real L3 device path is exercised on wireguard-go's cilium_wg0
// by the datapath integration tests.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <time.h>

#include <optional>

#include "bpf/regionpulse_shared.h"
#include "tests/bpf/packet_builder.h"
#include "tunnel_tc.skel.h"

namespace regionpulse {
namespace {

using namespace test;

constexpr uint16_t kProbePort = 8620;  // not the default: proves the .rodata port is used
constexpr uint32_t kTcActUnspec = 0xffffffff;

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

class TunnelTcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    skel_ = tunnel_tc__open();
    ASSERT_NE(skel_, nullptr);
    skel_->rodata->rp_probe_port = kProbePort;
    skel_->rodata->rp_l3_header_offset = kEthHeader;
    ASSERT_EQ(bpf_map__set_max_entries(skel_->maps.rp_tc_cpu_state, libbpf_num_possible_cpus()), 0);
    ASSERT_EQ(tunnel_tc__load(skel_), 0) << "loading tunnel_tc: " << strerror(errno);
    AddV4("10.1.0.0", 16, 1);
    AddV4("10.1.5.0", 24, 2);
    AddV6("fd00:1::", 48, 3);
  }
  void TearDown() override { tunnel_tc__destroy(skel_); }

  void AddV4(const std::string& addr, uint32_t len, uint32_t region) {
    rp_lpm_v4_key key{len, {}};
    const auto a = Addr(addr);
    std::memcpy(key.addr, a.data(), 4);
    ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel_->maps.rp_regions_v4), &key, &region, BPF_ANY), 0);
  }
  void AddV6(const std::string& addr, uint32_t len, uint32_t region) {
    rp_lpm_v6_key key{len, {}};
    const auto a = Addr(addr);
    std::memcpy(key.addr, a.data(), 16);
    ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel_->maps.rp_regions_v6), &key, &region, BPF_ANY), 0);
  }

  bpf_program* Program(bool egress, bool l3) const {
    if (l3) return egress ? skel_->progs.rp_tc_egress_l3 : skel_->progs.rp_tc_ingress_l3;
    return egress ? skel_->progs.rp_tc_egress_l2 : skel_->progs.rp_tc_ingress_l2;
  }

  // Runs one packet; returns the output bytes and stores the verdict.
  Bytes Run(bpf_program* program, const Bytes& in, uint32_t* verdict) {
    Bytes out(4096);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = out.data(),
                .data_size_in = static_cast<uint32_t>(in.size()),
                .data_size_out = static_cast<uint32_t>(out.size()), .repeat = 1);
    const int rc = bpf_prog_test_run_opts(bpf_program__fd(program), &opts);
    EXPECT_EQ(rc, 0) << "BPF_PROG_TEST_RUN: " << strerror(errno);
    out.resize(opts.data_size_out);
    *verdict = opts.retval;
    return out;
  }

  uint64_t Stat(uint32_t which) const {
    std::vector<uint64_t> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
    bpf_map_lookup_elem(bpf_map__fd(skel_->maps.rp_tc_stats), &which, per_cpu.data());
    uint64_t total = 0;
    for (auto v : per_cpu) total += v;
    return total;
  }

  rp_counter Traffic(uint32_t region, uint32_t direction) const {
    std::vector<rp_tc_cpu_state> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
    for (uint32_t cpu = 0; cpu < per_cpu.size(); ++cpu) {
      EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(skel_->maps.rp_tc_cpu_state), &cpu, &per_cpu[cpu]), 0);
    }
    rp_counter total{};
    for (const auto& cpu : per_cpu) {
      total.packets += cpu.traffic[region * RP_DIR_COUNT + direction].packets;
      total.bytes += cpu.traffic[region * RP_DIR_COUNT + direction].bytes;
    }
    return total;
  }

  tunnel_tc* skel_ = nullptr;
};

struct StampCase {
  std::string name;
  PacketSpec spec;
  bool egress;
  bool l3;
  std::optional<int> slot;  // the slot that must be stamped, none = bytes unchanged
  size_t base = RP_STAMP_BASE_UNAUTH;
};

PacketSpec Udp(bool ipv6, uint16_t sport, uint16_t dport, Bytes payload, bool zero_csum = false) {
  PacketSpec s;
  s.ipv6 = ipv6;
  if (ipv6) {
    s.src = "fd00:9::1";
    s.dst = "fd00:1::5";
  }
  s.sport = sport;
  s.dport = dport;
  s.payload = std::move(payload);
  s.zero_udp_checksum = zero_csum;
  return s;
}

std::vector<StampCase> StampCases() {
  const Bytes unauth = StampPayload(RP_STAMP_BASE_UNAUTH);
  const Bytes auth = StampPayload(RP_STAMP_BASE_AUTH);
  std::vector<StampCase> cases;
  for (const bool l3 : {false, true}) {
    for (const bool v6 : {false, true}) {
      const std::string tag = std::string(l3 ? "L3" : "Eth") + (v6 ? "/IPv6" : "/IPv4");
      cases.push_back({tag + " sender egress writes t1", Udp(v6, 40000, kProbePort, unauth), true, l3, 0});
      cases.push_back(
          {tag + " reflector ingress writes t2", Udp(v6, 40000, kProbePort, unauth), false, l3, 1});
      cases.push_back({tag + " reflector egress writes t3", Udp(v6, kProbePort, 40000, unauth), true, l3, 2});
      cases.push_back({tag + " sender ingress writes t4", Udp(v6, kProbePort, 40000, unauth), false, l3, 3});
      cases.push_back({tag + " authenticated probe: TLV after 112 bytes", Udp(v6, 40000, kProbePort, auth),
                       true, l3, 0, RP_STAMP_BASE_AUTH});
      cases.push_back(
          {tag + " other UDP port is left alone", Udp(v6, 40000, 8621, unauth), true, l3, std::nullopt});
      cases.push_back({tag + " wrong TLV type is left alone",
                       Udp(v6, 40000, kProbePort, StampPayload(RP_STAMP_BASE_UNAUTH, 251)), true, l3,
                       std::nullopt});
      cases.push_back({tag + " wrong magic is left alone",
                       Udp(v6, 40000, kProbePort, StampPayload(RP_STAMP_BASE_UNAUTH, 250, 0x52504b32)), true,
                       l3, std::nullopt});
      cases.push_back(
          {tag + " slot already stamped is kept",
           Udp(v6, 40000, kProbePort, StampPayload(RP_STAMP_BASE_UNAUTH, 250, 0x52504b31, {7, 0, 0, 0})),
           true, l3, std::nullopt});
      Bytes short_tlv = unauth;
      short_tlv.resize(RP_STAMP_BASE_UNAUTH + 20);  // TLV cut off
      cases.push_back({tag + " probe too short for the TLV is left alone",
                       Udp(v6, 40000, kProbePort, short_tlv), true, l3, std::nullopt});
      cases.push_back({tag + " plain STAMP without our TLV is left alone",
                       Udp(v6, 40000, kProbePort, Bytes(RP_STAMP_BASE_UNAUTH, 0x11)), false, l3,
                       std::nullopt});
    }
    cases.push_back({std::string(l3 ? "L3" : "Eth") + "/IPv4 zero UDP checksum stays zero",
                     Udp(false, 40000, kProbePort, unauth, true), true, l3, 0});
  }
  PacketSpec tcp = Udp(false, 40000, kProbePort, unauth);
  tcp.l4_proto = kProtoTcp;
  cases.push_back({"TCP to the probe port is left alone", tcp, true, false, std::nullopt});
  return cases;
}

TEST_F(TunnelTcTest, StampsExactlyTheOwnSlotOfProbesAndKeepsTheChecksumValid) {
  for (const auto& c : StampCases()) {
    SCOPED_TRACE(c.name);
    const Bytes in = BuildFrame(c.spec);
    const size_t l3 = kEthHeader;
    const size_t l4 = l3 + (c.spec.ipv6 ? kIpv6Header : kIpv4Header);
    const uint64_t stamped_before = c.slot ? Stat(RP_STAT_STAMP_T1 + *c.slot) : 0;
    const uint64_t before_ns = MonotonicNs();
    uint32_t verdict = 0;
    const Bytes out = Run(Program(c.egress, c.l3), in, &verdict);
    const uint64_t after_ns = MonotonicNs();
    EXPECT_EQ(verdict, kTcActUnspec);
    ASSERT_EQ(out.size(), in.size());
    if (!c.slot) {
      EXPECT_EQ(out, in);
      continue;
    }
    const size_t slot_at = l4 + kUdpHeader + c.base + 12 + 8 * static_cast<size_t>(*c.slot);
    const uint64_t stamp = Get64(out, slot_at);
    EXPECT_GE(stamp, before_ns);
    EXPECT_LE(stamp, after_ns);
    EXPECT_EQ(Stat(RP_STAT_STAMP_T1 + *c.slot), stamped_before + 1);
    // Nothing but the slot and the UDP checksum changed.
    for (size_t i = 0; i < in.size(); ++i) {
      if ((i >= slot_at && i < slot_at + 8) || i == l4 + 6 || i == l4 + 7) continue;
      ASSERT_EQ(out[i], in[i]) << "byte " << i << " changed";
    }
    if (c.spec.zero_udp_checksum) {
      EXPECT_EQ(Get16(out, l4 + 6), 0) << "an IPv4 UDP checksum of 0 means none and must stay 0";
    } else {
      EXPECT_EQ(Get16(out, l4 + 6), UdpChecksum(out, l3, l4, c.spec.ipv6));
    }
  }
}

TEST_F(TunnelTcTest, TruncatedAndMalformedPacketsPassUnchanged) {
  const Bytes probe4 = BuildFrame(Udp(false, 40000, kProbePort, StampPayload(RP_STAMP_BASE_UNAUTH)));
  const Bytes probe6 = BuildFrame(Udp(true, 40000, kProbePort, StampPayload(RP_STAMP_BASE_UNAUTH)));
  std::vector<std::pair<std::string, Bytes>> cases;
  // BPF_PROG_TEST_RUN refuses (EINVAL) frames shorter than Ethernet + a minimal IP header, so
  // the cuts start there: no L4 header, part of it, part of the payload, part of the TLV.
  for (const size_t cut : {kEthHeader + kIpv4Header, kEthHeader + kIpv4Header + 4,
                           kEthHeader + kIpv4Header + 30, probe4.size() - 1}) {
    Bytes b(probe4.begin(), probe4.begin() + static_cast<long>(cut));
    cases.push_back({"IPv4 probe cut at " + std::to_string(cut), b});
  }
  for (const size_t cut : {kEthHeader + kIpv6Header, kEthHeader + kIpv6Header + 4, probe6.size() - 8}) {
    Bytes b(probe6.begin(), probe6.begin() + static_cast<long>(cut));
    cases.push_back({"IPv6 probe cut at " + std::to_string(cut), b});
  }
  Bytes bad_ihl = probe4;
  bad_ihl[kEthHeader] = 0x43;  // IHL 3 < 5
  cases.push_back({"IPv4 header length below 5 words", bad_ihl});
  Bytes wrong_version = probe4;
  wrong_version[kEthHeader] = 0x65;  // says IPv6 inside an IPv4 EtherType
  cases.push_back({"version nibble disagrees with skb->protocol", wrong_version});
  Bytes fragment = probe4;
  Put16(fragment, kEthHeader + 6, 0x2000);  // more fragments
  cases.push_back({"IPv4 first fragment", fragment});
  Bytes udp_len_short = probe4;
  Put16(udp_len_short, kEthHeader + kIpv4Header + 4, kUdpHeader + 50);  // UDP length excludes the TLV
  cases.push_back({"UDP length shorter than base + TLV", udp_len_short});
  Bytes arp(60, 0);
  Put16(arp, 12, 0x0806);
  cases.push_back({"ARP", arp});
  const uint64_t failed_before = Stat(RP_STAT_STAMP_FAILED);
  for (const auto& [name, in] : cases) {
    SCOPED_TRACE(name);
    for (const bool egress : {false, true}) {
      for (const bool l3 : {false, true}) {
        uint32_t verdict = 0;
        const Bytes out = Run(Program(egress, l3), in, &verdict);
        EXPECT_EQ(verdict, kTcActUnspec);
        EXPECT_EQ(out, in);
      }
    }
  }
  EXPECT_EQ(Stat(RP_STAT_STAMP_FAILED), failed_before);
}

TEST_F(TunnelTcTest, CountsTrafficPerRemoteRegionByLongestPrefix) {
  struct Case {
    std::string name;
    PacketSpec spec;
    bool egress;
    uint32_t region;
  };
  auto spec = [](bool v6, const std::string& src, const std::string& dst, uint8_t proto) {
    PacketSpec s;
    s.ipv6 = v6;
    s.src = src;
    s.dst = dst;
    s.l4_proto = proto;
    s.payload = Bytes(100, 0x55);
    return s;
  };
  const std::vector<Case> cases = {
      {"egress to 10.1.9.9 is region 1 (/16)", spec(false, "10.9.0.1", "10.1.9.9", kProtoTcp), true, 1},
      {"egress to 10.1.5.9 is region 2 (the longer /24)", spec(false, "10.9.0.1", "10.1.5.9", kProtoUdp),
       true, 2},
      {"ingress from 10.1.5.200 is region 2", spec(false, "10.1.5.200", "10.9.0.1", kProtoTcp), false, 2},
      {"ingress from fd00:1::5 is region 3", spec(true, "fd00:1::5", "fd00:9::1", kProtoUdp), false, 3},
      {"egress to fd00:1:0:ffff::1 is region 3", spec(true, "fd00:9::1", "fd00:1:0:ffff::1", kProtoTcp), true,
       3},
      {"egress to 192.0.2.1 matches no region", spec(false, "10.9.0.1", "192.0.2.1", kProtoTcp), true, 0},
      {"egress to fd00:2::1 matches no region", spec(true, "fd00:9::1", "fd00:2::1", kProtoTcp), true, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const uint32_t dir = c.egress ? RP_DIR_EGRESS : RP_DIR_INGRESS;
    for (const bool l3 : {false, true}) {
      const Bytes in = BuildFrame(c.spec);
      std::vector<rp_counter> before;
      for (uint32_t r = 0; r < 4; ++r) before.push_back(Traffic(r, dir));
      uint32_t verdict = 0;
      const Bytes out = Run(Program(c.egress, l3), in, &verdict);
      EXPECT_EQ(verdict, kTcActUnspec);
      EXPECT_EQ(out, in);
      for (uint32_t r = 0; r < 4; ++r) {
        const rp_counter now = Traffic(r, dir);
        EXPECT_EQ(now.packets - before[r].packets, r == c.region ? 1u : 0u) << "region " << r;
        EXPECT_EQ(now.bytes - before[r].bytes, r == c.region ? in.size() : 0u) << "region " << r;
      }
    }
  }
}

}  // namespace
}  // namespace regionpulse
