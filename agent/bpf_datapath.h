// BpfDatapath: the real KernelDatapath. Loads the tc stamping/counting programs, the TCP
// retransmit/reset tracepoints and the sock_ops program, attaches them, keeps the attachments
// following interfaces as they come and go, and reads the maps. libbpf stays inside the .cc.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "agent/kernel_datapath.h"
#include "common/result.h"

namespace regionpulse {

class BpfDatapath final : public KernelDatapath {
 public:
  // Checks privileges and kernel features, mounts what is absent, loads, fills the region
  // LPM trie and flow table, attaches to the configured or auto-detected interfaces now and
  // to matching interfaces when they appear later. Errors name what is missing.
  //
  // Runs in the calling thread's network namespace: interfaces, netlink and the sockets it
  // counts are that namespace's, so several agents on one host (one netns each) stay apart.
  static Result<std::unique_ptr<BpfDatapath>> Start(const DatapathConfig& config);
  ~BpfDatapath() override;  // detaches everything it attached

  BpfDatapath(const BpfDatapath&) = delete;
  BpfDatapath& operator=(const BpfDatapath&) = delete;

  std::map<RegionId, RegionTrafficCounters> RegionCounters() const override;
  std::vector<FlowCounters> FlowCountersNow() const override;
  std::vector<InterfaceAttachment> Attachments() const override;
  std::vector<ProgramRunStats> ProgramStats() const override;
  uint64_t SamplesDropped() const override;
  bool Attached() const override;

  // Kernel stamps written so far, per slot (index 0 = t1 .. 3 = t4), cumulative. For
  // diagnostics and tests; the stamps themselves travel in the probe packets.
  std::vector<uint64_t> StampsWritten() const;

 private:
  struct Impl;
  explicit BpfDatapath(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace regionpulse
