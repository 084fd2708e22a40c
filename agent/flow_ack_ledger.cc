#include "agent/flow_ack_ledger.h"

#include <algorithm>
#include <unordered_set>

namespace regionpulse {

std::vector<FlowAckReading> FlowAckLedger::Update(const std::vector<uint64_t>& closed_bytes_acked,
                                                  const std::vector<FlowConnectionSample>& live) {
  const size_t flows = reported_.size();
  std::vector<FlowAckReading> readings(flows);
  std::vector<uint64_t> live_bytes(flows, 0);
  std::unordered_set<uint64_t> listed;
  for (const FlowConnectionSample& sample : live) {
    if (sample.flow >= flows) continue;
    listed.insert(sample.cookie);
    auto [it, inserted] = sockets_.try_emplace(sample.cookie);
    Tracked& socket = it->second;
    if (inserted) {
      socket.flow = sample.flow;
      // Bytes acknowledged before the kernel began tracking it, or before we first saw an
      // untracked one, belong to no window of ours.
      socket.baseline = sample.kernel_baseline.value_or(sample.bytes_acked);
      socket.kernel_counts_close = sample.kernel_baseline.has_value();
    }
    // The socket's counter only grows; a smaller value would be another socket reusing the
    // cookie, which the kernel never does, so it is simply not counted backwards.
    socket.contribution =
        std::max(socket.contribution, sample.bytes_acked - std::min(sample.bytes_acked, socket.baseline));
    live_bytes[socket.flow] += socket.contribution;
    readings[socket.flow].connections += 1;
    readings[socket.flow].data_outstanding =
        readings[socket.flow].data_outstanding || sample.data_outstanding;
    readings[socket.flow].bytes_outstanding += sample.bytes_outstanding;
  }
  for (auto it = sockets_.begin(); it != sockets_.end();) {
    if (listed.count(it->first) != 0) {
      ++it;
      continue;
    }
    // Gone: the kernel counted a tracked socket's bytes at its close; an untracked one's
    // last count is kept here.
    if (!it->second.kernel_counts_close) retired_[it->second.flow] += it->second.contribution;
    it = sockets_.erase(it);
  }
  for (size_t flow = 0; flow < flows; ++flow) {
    const uint64_t closed = flow < closed_bytes_acked.size() ? closed_bytes_acked[flow] : 0;
    const uint64_t total = closed + retired_[flow] + live_bytes[flow];
    readings[flow].progressed = total > reported_[flow];
    reported_[flow] = std::max(reported_[flow], total);
    readings[flow].bytes_acked = reported_[flow];
  }
  return readings;
}

}  // namespace regionpulse
