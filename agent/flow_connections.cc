#include "agent/flow_connections.h"

#include <bpf/bpf.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "bpf/regionpulse_shared.h"

namespace regionpulse {

Result<FlowConnections> FlowConnections::Open(FlowMaps maps, size_t flows, std::vector<uint16_t> ports,
                                              uint32_t max_tracked) {
  Result<TcpSocketDump> dump = TcpSocketDump::Open();
  if (!dump.ok()) return dump.error();
  return FlowConnections(maps, flows, std::move(ports), max_tracked, std::move(dump).value());
}

std::optional<uint32_t> FlowConnections::Classify(const TcpConnectionKey& connection) const {
  static constexpr uint8_t kV4Mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  const uint8_t* address = connection.remote_address.data();
  bool v4 = connection.family == AF_INET;
  if (!v4 && std::memcmp(address, kV4Mapped, sizeof(kV4Mapped)) == 0) {
    v4 = true;  // a dual-stack socket talking IPv4: classified by its IPv4 address, as in BPF
    address += sizeof(kV4Mapped);
  }
  uint32_t region = 0;
  int rc;
  if (v4) {
    rp_lpm_v4_key key{};
    key.prefixlen = 32;
    std::memcpy(key.addr, address, 4);
    rc = bpf_map_lookup_elem(maps_.regions_v4, &key, &region);
  } else {
    rp_lpm_v6_key key{};
    key.prefixlen = 128;
    std::memcpy(key.addr, address, 16);
    rc = bpf_map_lookup_elem(maps_.regions_v6, &key, &region);
  }
  if (rc != 0 || region == 0) return std::nullopt;
  for (const uint16_t port : {connection.remote_port, connection.local_port}) {
    rp_flow_port_key key{};
    key.port = port;
    key.region = region;
    uint32_t flow = 0;
    if (bpf_map_lookup_elem(maps_.flow_ports, &key, &flow) == 0 && flow >= 1 && flow <= flows_)
      return flow - 1;
  }
  return std::nullopt;
}

Result<std::map<uint64_t, FlowConnections::Connection>> FlowConnections::ReadTracked() const {
  std::map<uint64_t, Connection> tracked;
  // Batched: one syscall for many entries (each costs microseconds in a VM).
  size_t chunk = 256;
  std::vector<uint64_t> cookies(chunk);
  std::vector<rp_flow_socket> entries(chunk);
  uint32_t in_batch = 0;  // a hash map's batch position is a bucket index
  uint32_t out_batch = 0;
  bool first = true;
  DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
  for (;;) {
    uint32_t count = static_cast<uint32_t>(chunk);
    const int rc = bpf_map_lookup_batch(maps_.flow_sockets, first ? nullptr : &in_batch, &out_batch,
                                        cookies.data(), entries.data(), &count, &opts);
    const int err = rc != 0 ? errno : 0;
    for (uint32_t i = 0; i < count; ++i) {
      const rp_flow_socket& entry = entries[i];
      if (entry.flow < 1 || entry.flow > flows_) continue;
      Connection& c = tracked[cookies[i]];
      c.key.cookie = cookies[i];
      c.key.family = entry.family;
      std::memcpy(c.key.local_address.data(), entry.local_addr, 16);
      std::memcpy(c.key.remote_address.data(), entry.remote_addr, 16);
      c.key.local_port = entry.local_port;
      c.key.remote_port = entry.remote_port;
      c.key.bound_ifindex = entry.bound_ifindex;
      c.flow = entry.flow - 1;
      c.kernel_baseline = entry.baseline_bytes_acked;
    }
    if (err == ENOENT) break;  // the whole map was read
    if (err == ENOSPC && count == 0 && chunk < max_tracked_) {
      chunk *= 2;  // one hash bucket holds more entries than the chunk
      cookies.resize(chunk);
      entries.resize(chunk);
      continue;
    }
    if (err != 0) return Error{"reading the tracked flow connections (rp_flow_sockets)", err};
    in_batch = out_batch;
    first = false;
  }
  return tracked;
}

Status FlowConnections::DiscoverUntracked(const std::map<uint64_t, Connection>& tracked) {
  const uint64_t untracked_now = __atomic_load_n(maps_.untracked_count, __ATOMIC_RELAXED);
  if (untracked_at_last_dump_ == untracked_now) return OkStatus();
  Result<std::vector<TcpConnectionInfo>> connections = dump_.Connections(ports_);
  if (!connections.ok()) return connections.error();
  for (const TcpConnectionInfo& connection : *connections) {
    const uint64_t cookie = connection.key.cookie;
    rp_flow_socket entry{};
    // Established after the map was read: the kernel published it before the dump saw it.
    if (tracked.count(cookie) != 0 || bpf_map_lookup_elem(maps_.flow_sockets, &cookie, &entry) == 0) continue;
    if (std::optional<uint32_t> flow = Classify(connection.key)) {
      untracked_.try_emplace(cookie, Connection{connection.key, *flow, std::nullopt});
    }
  }
  untracked_at_last_dump_ = untracked_now;
  return OkStatus();
}

Result<std::vector<FlowConnectionSample>> FlowConnections::List() {
  Result<std::map<uint64_t, Connection>> tracked = ReadTracked();
  if (!tracked.ok()) return tracked.error();
  if (Status s = DiscoverUntracked(*tracked); !s.ok()) return s.error();
  std::vector<TcpConnectionKey> keys;
  keys.reserve(tracked->size() + untracked_.size());
  for (const auto& [cookie, connection] : *tracked) keys.push_back(connection.key);
  for (const auto& [cookie, connection] : untracked_) keys.push_back(connection.key);
  Result<std::vector<TcpConnectionInfo>> alive = dump_.Lookup(keys);
  if (!alive.ok()) return alive.error();

  std::vector<FlowConnectionSample> samples;
  std::set<uint64_t> untracked_alive;
  for (const TcpConnectionInfo& info : *alive) {
    const uint64_t cookie = info.key.cookie;
    const Connection* connection = nullptr;
    if (const auto it = tracked->find(cookie); it != tracked->end()) {
      connection = &it->second;
    } else if (const auto old = untracked_.find(cookie); old != untracked_.end()) {
      connection = &old->second;
      untracked_alive.insert(cookie);
    } else {
      continue;
    }
    samples.push_back({cookie, connection->flow, info.bytes_acked, info.HasDataOutstanding(),
                       connection->kernel_baseline, info.unacked_bytes});
  }
  std::erase_if(untracked_, [&](const auto& entry) { return untracked_alive.count(entry.first) == 0; });
  return samples;
}

}  // namespace regionpulse
