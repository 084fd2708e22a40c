// WanModel: everything the WAN emulator knows and decides, without I/O. Which impairment a
// link direction gets (its region pair, and whether a node is blackholed), the admission of
// each datagram (queue bounds, then the impairment), the counters and the histogram of the
// emulator's own added error, and the runtime changes made by ctl commands. The relay feeds
// it receive and send events with their times; tests feed it the same events by hand.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clocks.h"
#include "common/latency_histogram.h"
#include "common/result.h"
#include "tools/wan_emulator/link_impairment.h"
#include "tools/wan_emulator/wan_config.h"

namespace regionpulse::wan {

struct DirectionCounters {
  uint64_t forwarded = 0;
  uint64_t forwarded_bytes = 0;
  uint64_t dropped_loss = 0;
  uint64_t dropped_blackhole = 0;
  uint64_t dropped_queue_full = 0;
  // From an address other than the configured endpoint of the sending node.
  uint64_t dropped_foreign = 0;
  // Larger than the read buffer (cut short by the kernel): never forwarded truncated.
  uint64_t dropped_oversize = 0;
  uint64_t send_errors = 0;
  uint64_t reordered = 0;

  void Add(const DirectionCounters& other);
};

// One direction of one relayed link: datagrams from node `from` to node `to`. The relay
// receives them on listen port `in_port` and sends them from the other direction's port.
struct LinkDirectionState {
  size_t from = 0;  // node index
  size_t to = 0;
  uint16_t in_port = 0;  // as configured; the relay reports the bound port with SetBoundPort
  LinkDirection impairment_state;
  DirectionCounters counters;
  // Actual send time minus intended send time, in nanoseconds.
  LatencyHistogram send_error;
  uint64_t queued_packets = 0;
  uint64_t queued_bytes = 0;
};

enum class Admission { kDeliver, kDropLoss, kDropBlackhole, kDropQueueFull };

struct AdmitResult {
  Admission admission = Admission::kDeliver;
  MonoTime deliver_at{};
};

class WanModel {
 public:
  WanModel(WanConfig config, uint64_t seed);

  const WanConfig& config() const { return config_; }
  // Two per link: 2*i is a -> b (received on port_for_a), 2*i+1 is b -> a.
  size_t DirectionCount() const { return directions_.size(); }
  const LinkDirectionState& Direction(size_t index) const { return directions_[index]; }
  // The direction whose datagrams come from `from` and go to `to`.
  std::optional<size_t> DirectionBetween(const std::string& from, const std::string& to) const;
  // The reverse direction of the same link: its socket is the one a datagram leaves from.
  static size_t Reverse(size_t direction) { return direction ^ 1; }
  void SetBoundPort(size_t direction, uint16_t port) { directions_[direction].in_port = port; }

  // A datagram of `bytes` arrived for `direction` at `received`: drop it (counted) or queue it
  // to be sent at deliver_at (counted as queued until Sent or SendFailed).
  AdmitResult Admit(size_t direction, size_t bytes, MonoTime received);
  // A queued datagram left at `sent`; `intended` is the deliver_at Admit gave it.
  void Sent(size_t direction, size_t bytes, MonoTime intended, MonoTime sent);
  void SendFailed(size_t direction, size_t bytes);
  // A queued datagram thrown away without sending (shutdown).
  void Discarded(size_t direction, size_t bytes);
  void CountForeign(size_t direction) { ++directions_[direction].counters.dropped_foreign; }
  void CountOversize(size_t direction) { ++directions_[direction].counters.dropped_oversize; }
  // How long datagrams waited in the socket before the emulator read them (kernel receive
  // stamp to user space): context for the send error, not part of it.
  void RecordReceiveLag(Nanos lag);

  // The impairment currently applied from one region to another.
  const Impairment& RegionImpairment(size_t from_region, size_t to_region) const;
  bool NodeBlackholed(size_t node) const { return node_blackholed_[node]; }

  // Runtime changes (ctl). `from`/`to` are region names or "*" (every region); the settings
  // change only the keys given. `both_directions` also sets TO -> FROM. Nothing changes
  // when any setting is refused.
  Status Set(const std::string& from, const std::string& to, const std::vector<std::string>& settings,
             bool both_directions = false);
  Status SetNode(const std::string& node, const std::vector<std::string>& settings);
  // Back to the configured impairments, no node blackholed, every counter and histogram zero.
  void Reset();

  // ctl replies: a table of every region direction and link direction, the same as JSON,
  // and the port each node sends to for each peer.
  std::string ShowText() const;
  std::string StatsJson() const;
  std::string PortsText() const;

 private:
  size_t RegionOf(size_t node) const;
  Result<std::vector<size_t>> Regions(const std::string& name) const;

  WanConfig config_;
  Rng rng_;
  std::vector<LinkDirectionState> directions_;
  // Indexed [from_region * region count + to_region].
  std::vector<Impairment> impairments_;
  std::vector<bool> node_blackholed_;
  LatencyHistogram receive_lag_;
};

}  // namespace regionpulse::wan
