// KernelDatapath: what the prober and the window folding read from the kernel side, with no
// libbpf type in sight. BpfDatapath (agent/bpf_datapath.h) is the real one; tests and hosts
// without BPF privileges use NullDatapath. Counters are cumulative since start: the window
// folding takes differences.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace regionpulse {

// Region ids are 1-based positions in the configured region table; 0 = no region matched.
using RegionId = uint32_t;

struct RegionCidr {
  std::string cidr;  // "10.1.0.0/16" or "fd00:1::/48"
  RegionId region = 0;
};

struct ReplicationFlowSpec {
  std::string name;             // "postgres"
  std::vector<uint16_t> ports;  // remote (or local) TCP ports that make up the flow
  RegionId remote_region = 0;
  uint64_t expected_min_rate_bps = 0;
};

struct DatapathConfig {
  uint16_t probe_port = 862;  // the STAMP reflector port, both directions
  std::vector<RegionCidr> region_cidrs;
  std::vector<ReplicationFlowSpec> flows;
  // Explicit interface names; empty means auto-detect cilium_wg0, cilium_vxlan,
  // cilium_geneve, then wg* only while none of those exists (agent/interface_selection.h).
  std::vector<std::string> interfaces;
  // cgroup v2 directory for the sock_ops program; empty means the cgroup2 root.
  std::string cgroup_path;
  // Try tcx first, fall back to clsact (true), or use clsact only (false).
  bool prefer_tcx = true;
  // Replication-flow connections the kernel tracks at once (rp_flow_sockets): each is read
  // by an exact lookup at window close. Beyond it, connections are found by a dump of the
  // namespace's sockets (a walk of the kernel's whole TCP hash table) and still counted.
  uint32_t max_tracked_flow_connections = 16384;
};

// Passive counters towards one remote region, cumulative.
struct RegionTrafficCounters {
  uint64_t tx_bytes = 0, rx_bytes = 0, tx_packets = 0, rx_packets = 0;
  uint64_t tcp_retransmits = 0;
  uint64_t tcp_srtt_us_sum = 0;   // sum of srtt samples (microseconds)
  uint64_t tcp_srtt_samples = 0;  // number of srtt samples
  uint64_t tcp_resets = 0;
  uint64_t tcp_failed_connects = 0;
  uint64_t tcp_established = 0;
};

// One replication flow, cumulative counters plus the progress clock.
struct FlowCounters {
  std::string name;
  RegionId remote_region = 0;
  // Acknowledged by the peer since the connections were established (or, for one
  // established before the agent started, since the agent first saw it); never decreases.
  uint64_t bytes_acked = 0;
  uint64_t srtt_us_sum = 0;
  uint64_t srtt_samples = 0;
  uint64_t retransmits = 0;
  uint64_t established = 0;      // connections that reached ESTABLISHED
  uint64_t failed_connects = 0;  // connects that never did
  uint64_t resets = 0;           // established connections reset
  // CLOCK_MONOTONIC ns when acknowledged bytes last advanced; 0 = never.
  uint64_t last_progress_ns = 0;
  // Whether, when these counters were read, any established socket of the flow held data the
  // application wrote that the peer has not acknowledged (in flight or held back by the
  // receiver's window).
  bool data_outstanding = false;
  // How much: bytes the application wrote on the flow's established sockets that the peer has
  // not acknowledged (the sockets' send queues, written and not yet acknowledged), when read.
  uint64_t bytes_outstanding = 0;
  uint32_t connections = 0;  // past the handshake and not yet closed, when read
};

struct InterfaceAttachment {
  std::string name;
  uint32_t ifindex = 0;
  bool tcx = false;      // false: clsact
  bool l3_only = false;  // no Ethernet header (WireGuard, tun)
};

struct ProgramRunStats {
  std::string name;
  uint64_t run_count = 0;
  uint64_t run_time_ns = 0;
};

class KernelDatapath {
 public:
  virtual ~KernelDatapath() = default;
  virtual std::map<RegionId, RegionTrafficCounters> RegionCounters() const = 0;
  virtual std::vector<FlowCounters> FlowCountersNow() const = 0;
  virtual std::vector<InterfaceAttachment> Attachments() const = 0;
  virtual std::vector<ProgramRunStats> ProgramStats() const = 0;
  // Kernel samples lost, cumulative: probe stamps the kernel could not write (the probe then
  // carries only user-space timestamps).
  virtual uint64_t SamplesDropped() const = 0;
  // Stamping probes in the kernel: at least one interface attached.
  virtual bool Attached() const = 0;
};

// A datapath with nothing attached: probing still works, with user-space RTTs only.
class NullDatapath final : public KernelDatapath {
 public:
  std::map<RegionId, RegionTrafficCounters> RegionCounters() const override { return {}; }
  std::vector<FlowCounters> FlowCountersNow() const override { return {}; }
  std::vector<InterfaceAttachment> Attachments() const override { return {}; }
  std::vector<ProgramRunStats> ProgramStats() const override { return {}; }
  uint64_t SamplesDropped() const override { return 0; }
  bool Attached() const override { return false; }
};

}  // namespace regionpulse
