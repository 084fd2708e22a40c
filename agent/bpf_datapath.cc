// BpfDatapath: the one place that owns the BPF lifecycle (open -> configure -> load -> fill
// maps -> attach -> read -> detach -> destroy), so cleanup has a single path.
#include "agent/bpf_datapath.h"

#include "common/component_logger.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>

#include "agent/flow_ack_ledger.h"
#include "agent/flow_connections.h"
#include "agent/interface_selection.h"
#include "agent/interface_watcher.h"
#include "agent/kernel_mounts.h"
#include "agent/tunnel_attachment.h"
#include "bpf/regionpulse_shared.h"
#include "common/config_text.h"
#include "tcp_signals.skel.h"
#include "tunnel_tc.skel.h"

namespace regionpulse {
namespace {

static_assert(sizeof(rp_counter) == 16);
static_assert(sizeof(rp_region_lookup_cache) == 64);
static_assert(offsetof(rp_tc_cpu_state, traffic) == 64);
static_assert(sizeof(rp_lpm_v4_key) == 8);
static_assert(sizeof(rp_lpm_v6_key) == 20);
static_assert(sizeof(rp_tcp_region_counters) == 48);
static_assert(sizeof(rp_flow_port_key) == 8);
static_assert(sizeof(rp_flow_counters) == 56);
static_assert(sizeof(rp_flow_progress) == 8);
static_assert(sizeof(rp_flow_socket) == 56);
static_assert(sizeof(rp_sock_state) == 40);
static_assert(sizeof(rp_kstamp_tlv) == RP_KSTAMP_TLV_LEN);
static_assert(offsetof(rp_kstamp_tlv, t) == 12);

std::shared_ptr<spdlog::logger> Log() {
  return ComponentLogger("datapath");
}

// libbpf prints verifier logs and attach failures through this; they belong in our log.
int LibbpfPrint(libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  // Verifier logs arrive as one message of many kilobytes: size the buffer to fit.
  va_list copy;
  va_copy(copy, args);
  const int n = vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n <= 0) return n;
  std::string text(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(text.data(), text.size(), format, args);
  text.resize(static_cast<size_t>(n));
  while (!text.empty() && text.back() == '\n') text.pop_back();
  if (level == LIBBPF_WARN) {
    Log()->warn("libbpf: {}", text);
  } else {
    Log()->debug("libbpf: {}", text);
  }
  return n;
}

Result<uint64_t> OwnNetnsCookie() {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{"opening a socket to read the network namespace cookie", errno};
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  const int rc = getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len);
  const int err = errno;
  close(fd);
  if (rc != 0) return Error{"reading the network namespace cookie (SO_NETNS_COOKIE, Linux 5.14)", err};
  return cookie;
}

template <typename T>
std::vector<T> ReadPerCpu(int map_fd, uint32_t key) {
  std::vector<T> values(static_cast<size_t>(libbpf_num_possible_cpus()));
  if (bpf_map_lookup_elem(map_fd, &key, values.data()) != 0) return {};
  return values;
}

// The entries of an array holding one entry per CPU (rp_tc_cpu_state), in CPU order.
template <typename T>
std::vector<T> ReadCpuEntries(int map_fd) {
  std::vector<T> values(static_cast<size_t>(libbpf_num_possible_cpus()));
  for (uint32_t cpu = 0; cpu < values.size(); ++cpu) {
    if (bpf_map_lookup_elem(map_fd, &cpu, &values[cpu]) != 0) return {};
  }
  return values;
}

ProgramRunStats StatsOf(const std::string& object, bpf_program* program) {
  ProgramRunStats stats;
  stats.name = object + "/" + bpf_program__name(program);
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_program__fd(program), &info, &len) == 0) {
    stats.run_count = info.run_cnt;
    stats.run_time_ns = info.run_time_ns;
  }
  return stats;
}

}  // namespace

struct BpfDatapath::Impl {
  DatapathConfig config;
  tunnel_tc* tc = nullptr;
  tcp_signals* tcp = nullptr;
  int cgroup_fd = -1;
  std::vector<bpf_link*> links;  // tracepoints and sock_ops: owned by fds, gone with us
  std::set<RegionId> regions;    // every configured region id

  // Replication flows' live connections, read at every FlowCountersNow (see FlowAckLedger).
  mutable std::mutex flows_mutex;                           // one reading at a time
  std::vector<uint16_t> flow_ports;                         // every port of every flow
  mutable std::optional<FlowConnections> flow_connections;  // opened in the agent's namespace
  mutable FlowAckLedger ledger{0};
  mutable std::vector<FlowAckReading> last_readings;  // held while the sockets cannot be read
  mutable uint64_t last_reading_ns = 0;
  // Per flow: when a reading last saw progress the callbacks had not (CLOCK_MONOTONIC ns).
  mutable std::vector<uint64_t> observed_progress_ns;
  mutable bool flow_read_failing = false;  // to log a failure once, not every window

  mutable std::mutex mutex;  // guards attachments (the watcher thread changes them)
  struct Attached {
    std::unique_ptr<TunnelAttachment> attachment;
    bool l3_only = false;
  };
  std::map<uint32_t, Attached> attachments;  // by ifindex
  // Every link of the namespace as the watcher reported it, by ifindex: whether a wg*
  // interface is selected depends on whether a Cilium tunnel device exists beside it, so the
  // unselected ones are remembered too (to attach them when the last Cilium device goes).
  std::map<uint32_t, LinkInfo> present_links;
  // Selected links whose attach failed: not retried on every other link's notification, only
  // when the watcher reports the link itself again or it is selected anew.
  std::set<uint32_t> attach_failed;
  std::optional<SelectionMode> selection_mode;  // the last one applied, to log switches once
  std::unique_ptr<InterfaceWatcher> watcher;
  // Set while Start lists the existing interfaces: the first attach failure fails Start.
  bool starting = true;
  std::optional<Error> start_error;

  ~Impl() {
    watcher.reset();  // no more callbacks from here on
    {
      std::lock_guard lock(mutex);
      attachments.clear();
    }
    for (auto* link : links) bpf_link__destroy(link);
    if (cgroup_fd >= 0) close(cgroup_fd);
    tcp_signals__destroy(tcp);
    tunnel_tc__destroy(tc);
  }

  Status Load();
  Status FillMaps();
  Status AttachTcpSignals();
  void OnLinkAppeared(const LinkInfo& link);
  void OnLinkVanished(uint32_t ifindex, const std::string& name);
  // Brings the attachments in line with SelectInterfaces over present_links. Holds `mutex`.
  void ApplySelection();
  void AttachTo(const LinkInfo& link);
};

Status BpfDatapath::Impl::Load() {
  tc = tunnel_tc__open();
  if (tc == nullptr) return Error{"opening the tunnel_tc BPF object", errno};
  tc->rodata->rp_probe_port = config.probe_port;
  // One counter entry per CPU the kernel may run the programs on.
  if (int rc = bpf_map__set_max_entries(tc->maps.rp_tc_cpu_state, libbpf_num_possible_cpus()); rc != 0) {
    return Error{"sizing the per-CPU traffic counters of tunnel_tc", -rc};
  }
  if (tunnel_tc__load(tc) != 0) {
    return Error{
        "loading the tunnel_tc tc programs (the verifier or a missing kernel feature refused them; "
        "the libbpf log above says which)",
        errno};
  }

  tcp = tcp_signals__open();
  if (tcp == nullptr) return Error{"opening the tcp_signals BPF object", errno};
  Result<uint64_t> cookie = OwnNetnsCookie();
  if (cookie.ok()) {
    tcp->rodata->rp_netns_cookie = *cookie;
  } else {
    Log()->warn("{}; TCP signals will include every network namespace on this host",
                cookie.error().ToString());
  }
  // One set of region tries for both objects: filled once, read by all programs.
  if (bpf_map__reuse_fd(tcp->maps.rp_regions_v4, bpf_map__fd(tc->maps.rp_regions_v4)) != 0 ||
      bpf_map__reuse_fd(tcp->maps.rp_regions_v6, bpf_map__fd(tc->maps.rp_regions_v6)) != 0) {
    return Error{"sharing the region LPM tries between tunnel_tc and tcp_signals", errno};
  }
  if (config.max_tracked_flow_connections == 0) {
    return Error{"max_tracked_flow_connections is 0: at least one flow connection must be trackable", EINVAL};
  }
  if (int rc = bpf_map__set_max_entries(tcp->maps.rp_flow_sockets, config.max_tracked_flow_connections);
      rc != 0) {
    return Error{"sizing the flow connection map rp_flow_sockets", -rc};
  }
  if (tcp_signals__load(tcp) != 0) {
    return Error{
        "loading the tcp_signals programs (tracepoints, sock_ops; the libbpf log above says which "
        "part the kernel refused)",
        errno};
  }
  return OkStatus();
}

Status BpfDatapath::Impl::FillMaps() {
  if (config.probe_port == 0) return Error{"probe port 0: the STAMP reflector port must be set", EINVAL};
  for (const auto& entry : config.region_cidrs) {
    if (entry.region == 0 || entry.region >= RP_MAX_REGIONS) {
      return Error{"region id " + std::to_string(entry.region) + " for " + entry.cidr + " is outside 1.." +
                       std::to_string(RP_MAX_REGIONS - 1),
                   EINVAL};
    }
    Result<Cidr> cidr = ParseCidr(entry.cidr);
    if (!cidr.ok()) return cidr.error();
    const uint32_t region = entry.region;
    int rc;
    if (cidr->ipv6) {
      rp_lpm_v6_key key{};
      key.prefixlen = cidr->prefix_length;
      std::memcpy(key.addr, cidr->address.data(), 16);
      rc = bpf_map_update_elem(bpf_map__fd(tc->maps.rp_regions_v6), &key, &region, BPF_ANY);
    } else {
      rp_lpm_v4_key key{};
      key.prefixlen = cidr->prefix_length;
      std::memcpy(key.addr, cidr->address.data(), 4);
      rc = bpf_map_update_elem(bpf_map__fd(tc->maps.rp_regions_v4), &key, &region, BPF_ANY);
    }
    if (rc != 0) return Error{"adding region CIDR " + entry.cidr + " to the LPM trie", errno};
    regions.insert(entry.region);
  }
  if (config.flows.size() > RP_MAX_FLOWS) {
    return Error{std::to_string(config.flows.size()) + " replication flows configured; at most " +
                     std::to_string(RP_MAX_FLOWS),
                 EINVAL};
  }
  for (size_t i = 0; i < config.flows.size(); ++i) {
    const auto& flow = config.flows[i];
    if (flow.remote_region == 0 || flow.remote_region >= RP_MAX_REGIONS) {
      return Error{"replication flow " + flow.name + " has region id " + std::to_string(flow.remote_region) +
                       ", outside 1.." + std::to_string(RP_MAX_REGIONS - 1),
                   EINVAL};
    }
    regions.insert(flow.remote_region);
    const uint32_t flow_id = static_cast<uint32_t>(i + 1);
    for (const uint16_t port : flow.ports) {
      flow_ports.push_back(port);
      rp_flow_port_key key{};
      key.port = port;
      key.region = flow.remote_region;
      if (bpf_map_update_elem(bpf_map__fd(tcp->maps.rp_flow_ports), &key, &flow_id, BPF_NOEXIST) != 0) {
        return Error{"adding port " + std::to_string(port) + " of replication flow " + flow.name +
                         " (a port may belong to one flow per region)",
                     errno};
      }
    }
  }
  ledger = FlowAckLedger(config.flows.size());
  last_readings.assign(config.flows.size(), FlowAckReading{});
  observed_progress_ns.assign(config.flows.size(), 0);
  return OkStatus();
}

Status BpfDatapath::Impl::AttachTcpSignals() {
  for (bpf_program* program :
       {tcp->progs.rp_tcp_retransmit, tcp->progs.rp_tcp_receive_reset, tcp->progs.rp_tcp_send_reset}) {
    bpf_link* link = bpf_program__attach(program);
    if (link == nullptr) {
      return Error{std::string("attaching tracepoint program ") + bpf_program__name(program) +
                       " (needs tracefs at /sys/kernel/tracing and CAP_PERFMON)",
                   errno};
    }
    links.push_back(link);
  }
  Result<int> cgroup = OpenCgroup2(config.cgroup_path);
  if (!cgroup.ok()) return cgroup.error();
  cgroup_fd = *cgroup;
  bpf_link* link = bpf_program__attach_cgroup(tcp->progs.rp_sock_ops, cgroup_fd);
  if (link == nullptr) {
    return Error{"attaching sock_ops to the cgroup2 " +
                     (config.cgroup_path.empty() ? std::string("root") : config.cgroup_path) +
                     " (needs CAP_NET_ADMIN and CAP_BPF)",
                 errno};
  }
  links.push_back(link);
  return OkStatus();
}

void BpfDatapath::Impl::OnLinkAppeared(const LinkInfo& link) {
  std::lock_guard lock(mutex);
  // Names are unique within a namespace: another ifindex still listed under this name is a
  // deleted interface whose notification has not arrived yet (or was lost in an overflow).
  for (auto it = present_links.begin(); it != present_links.end();) {
    if (it->first != link.ifindex && it->second.name == link.name) {
      attach_failed.erase(it->first);
      it = present_links.erase(it);
    } else {
      ++it;
    }
  }
  present_links[link.ifindex] = link;
  attach_failed.erase(link.ifindex);  // reported again: worth another try
  // While Start lists the existing interfaces, decide once when all are known, so a wg0
  // listed before cilium_vxlan is not attached and detached again at once.
  if (!starting) ApplySelection();
}

void BpfDatapath::Impl::OnLinkVanished(uint32_t ifindex, const std::string& /*name*/) {
  std::lock_guard lock(mutex);
  present_links.erase(ifindex);
  attach_failed.erase(ifindex);
  if (!starting) ApplySelection();
}

void BpfDatapath::Impl::ApplySelection() {
  std::set<std::string> present_names;
  for (const auto& [ifindex, link] : present_links) present_names.insert(link.name);
  const InterfaceSelection selection = SelectInterfaces(present_names, config.interfaces);

  std::vector<uint32_t> to_detach;
  for (const auto& [ifindex, entry] : attachments) {
    auto link = present_links.find(ifindex);
    if (link == present_links.end() || link->second.name != entry.attachment->ifname() ||
        selection.names.count(link->second.name) == 0) {
      to_detach.push_back(ifindex);
    }
  }
  std::vector<const LinkInfo*> to_attach;
  for (const auto& [ifindex, link] : present_links) {
    if (selection.names.count(link.name) == 0) {
      attach_failed.erase(ifindex);  // when it is selected again, it is tried again
      continue;
    }
    auto attached = attachments.find(ifindex);
    const bool stays = attached != attachments.end() && attached->second.attachment->ifname() == link.name;
    if (!stays && attach_failed.count(ifindex) == 0) to_attach.push_back(&link);
  }

  if (selection_mode != selection.mode) {
    auto names_of = [&](const auto& items, auto name) {
      std::string text;
      for (const auto& item : items) text += (text.empty() ? "" : ", ") + name(item);
      return text.empty() ? std::string("none") : text;
    };
    const std::string attaching = names_of(to_attach, [](const LinkInfo* link) { return link->name; });
    const std::string detaching =
        names_of(to_detach, [&](uint32_t ifindex) { return attachments.at(ifindex).attachment->ifname(); });
    if (selection_mode) {
      Log()->info("interface selection switched from {} to {}: attaching {}; detaching {}",
                  SelectionModeName(*selection_mode), SelectionModeName(selection.mode), attaching,
                  detaching);
    } else {
      Log()->info("interface selection: {}: attaching {}", SelectionModeName(selection.mode), attaching);
    }
    selection_mode = selection.mode;
  }

  for (const uint32_t ifindex : to_detach) {
    const std::string name = attachments.at(ifindex).attachment->ifname();
    attachments.erase(ifindex);
    auto link = present_links.find(ifindex);
    if (link == present_links.end()) {
      Log()->info("{} (ifindex {}) went away; detached", name, ifindex);
    } else if (link->second.name != name) {
      Log()->info("{} (ifindex {}) was renamed to {}; detached", name, ifindex, link->second.name);
    } else {
      Log()->info("detached from {} (ifindex {}): not selected under {}", name, ifindex,
                  SelectionModeName(selection.mode));
    }
  }
  for (const LinkInfo* link : to_attach) AttachTo(*link);
}

void BpfDatapath::Impl::AttachTo(const LinkInfo& link) {
  const LinkLayer layer = LinkLayerOf(link.arphrd_type);
  if (layer == LinkLayer::kUnsupported) {
    Error error{"interface " + link.name + " has link type " + std::to_string(link.arphrd_type) +
                    ", neither Ethernet nor L3-only: not attached",
                EOPNOTSUPP};
    Log()->warn("{}", error.ToString());
    attach_failed.insert(link.ifindex);
    if (starting && !start_error) start_error = error;
    return;
  }
  const bool l3 = layer == LinkLayer::kL3Only;
  const int ingress = bpf_program__fd(l3 ? tc->progs.rp_tc_ingress_l3 : tc->progs.rp_tc_ingress_l2);
  const int egress = bpf_program__fd(l3 ? tc->progs.rp_tc_egress_l3 : tc->progs.rp_tc_egress_l2);
  auto attached = TunnelAttachment::Attach(link.name, link.ifindex, ingress, egress, config.prefer_tcx);
  if (!attached.ok()) {
    Log()->error("attaching to {}: {}", link.name, attached.error().ToString());
    attach_failed.insert(link.ifindex);
    if (starting && !start_error) start_error = attached.error();
    return;
  }
  Log()->info("attached to {} (ifindex {}, {}, {})", link.name, link.ifindex,
              (*attached)->tcx() ? "tcx" : "clsact", l3 ? "L3-only" : "Ethernet");
  attachments[link.ifindex] = Attached{std::move(attached).value(), l3};
}

Result<std::unique_ptr<BpfDatapath>> BpfDatapath::Start(const DatapathConfig& config) {
  static std::once_flag libbpf_print_once;
  std::call_once(libbpf_print_once, [] { libbpf_set_print(LibbpfPrint); });

  for (const Status& check :
       {CheckDatapathCapabilities(), CheckKernelBtf(), EnsureTracefs(), EnsureBpffs()}) {
    if (!check.ok()) return check.error();
  }
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  if (Status s = impl->Load(); !s.ok()) return s.error();
  if (Status s = impl->FillMaps(); !s.ok()) return s.error();
  if (Status s = impl->AttachTcpSignals(); !s.ok()) return s.error();
  FlowMaps maps;
  maps.flow_sockets = bpf_map__fd(impl->tcp->maps.rp_flow_sockets);
  maps.regions_v4 = bpf_map__fd(impl->tc->maps.rp_regions_v4);
  maps.regions_v6 = bpf_map__fd(impl->tc->maps.rp_regions_v6);
  maps.flow_ports = bpf_map__fd(impl->tcp->maps.rp_flow_ports);
  static_assert(sizeof(impl->tcp->bss->rp_flow_sockets_untracked) == sizeof(uint64_t));
  maps.untracked_count = reinterpret_cast<const uint64_t*>(&impl->tcp->bss->rp_flow_sockets_untracked);
  Result<FlowConnections> flows =
      FlowConnections::Open(maps, config.flows.size(), impl->flow_ports, config.max_tracked_flow_connections);
  if (!flows.ok()) return flows.error();
  impl->flow_connections.emplace(std::move(flows).value());

  Impl* raw = impl.get();
  auto watcher = InterfaceWatcher::Start(
      [raw](const LinkInfo& link) { raw->OnLinkAppeared(link); },
      [raw](uint32_t ifindex, const std::string& name) { raw->OnLinkVanished(ifindex, name); });
  if (!watcher.ok()) return watcher.error();
  {
    std::lock_guard lock(impl->mutex);
    impl->watcher = std::move(watcher).value();
    impl->ApplySelection();  // every interface listed at start is known now: one decision
    impl->starting = false;
    if (impl->start_error) return *impl->start_error;
  }
  return std::unique_ptr<BpfDatapath>(new BpfDatapath(std::move(impl)));
}

BpfDatapath::BpfDatapath(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

BpfDatapath::~BpfDatapath() = default;

std::map<RegionId, RegionTrafficCounters> BpfDatapath::RegionCounters() const {
  std::map<RegionId, RegionTrafficCounters> result;
  const int tc_fd = bpf_map__fd(impl_->tc->maps.rp_tc_cpu_state);
  const int tcp_fd = bpf_map__fd(impl_->tcp->maps.rp_tcp_regions);
  const std::vector<rp_tc_cpu_state> traffic = ReadCpuEntries<rp_tc_cpu_state>(tc_fd);
  for (const RegionId region : impl_->regions) {
    RegionTrafficCounters& out = result[region];
    for (const auto& cpu : traffic) {
      const rp_counter& tx = cpu.traffic[region * RP_DIR_COUNT + RP_DIR_EGRESS];
      const rp_counter& rx = cpu.traffic[region * RP_DIR_COUNT + RP_DIR_INGRESS];
      out.tx_packets += tx.packets;
      out.tx_bytes += tx.bytes;
      out.rx_packets += rx.packets;
      out.rx_bytes += rx.bytes;
    }
    for (const auto& c : ReadPerCpu<rp_tcp_region_counters>(tcp_fd, region)) {
      out.tcp_retransmits += c.retransmits;
      out.tcp_srtt_us_sum += c.srtt_us_sum;
      out.tcp_srtt_samples += c.srtt_samples;
      out.tcp_resets += c.resets;
      out.tcp_failed_connects += c.failed_connects;
      out.tcp_established += c.established;
    }
  }
  return result;
}

std::vector<FlowCounters> BpfDatapath::FlowCountersNow() const {
  Impl& impl = *impl_;
  std::lock_guard lock(impl.flows_mutex);
  std::vector<FlowCounters> result;
  const int counters_fd = bpf_map__fd(impl.tcp->maps.rp_flow_counters);
  const int progress_fd = bpf_map__fd(impl.tcp->maps.rp_flow_progress);
  std::vector<uint64_t> closed_bytes_acked(impl.config.flows.size(), 0);
  // The kernel's counts first, the live sockets second (FlowAckLedger says why).
  for (size_t i = 0; i < impl.config.flows.size(); ++i) {
    const auto& spec = impl.config.flows[i];
    FlowCounters out;
    out.name = spec.name;
    out.remote_region = spec.remote_region;
    const uint32_t key = static_cast<uint32_t>(i);
    for (const auto& c : ReadPerCpu<rp_flow_counters>(counters_fd, key)) {
      closed_bytes_acked[i] += c.closed_bytes_acked;
      out.srtt_us_sum += c.srtt_us_sum;
      out.srtt_samples += c.srtt_samples;
      out.retransmits += c.retransmits;
      out.established += c.established;
      out.failed_connects += c.failed_connects;
      out.resets += c.resets;
    }
    rp_flow_progress progress{};
    if (bpf_map_lookup_elem(progress_fd, &key, &progress) == 0)
      out.last_progress_ns = progress.last_progress_ns;
    result.push_back(std::move(out));
  }
  Result<std::vector<FlowConnectionSample>> live = impl.flow_connections->List();
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);  // bpf_ktime_get_ns's clock
  const uint64_t now_ns =
      static_cast<uint64_t>(now.tv_sec) * 1000000000ULL + static_cast<uint64_t>(now.tv_nsec);
  if (live.ok()) {
    if (impl.flow_read_failing) Log()->info("reading the replication flow sockets works again");
    impl.flow_read_failing = false;
    std::vector<FlowAckReading> readings = impl.ledger.Update(closed_bytes_acked, *live);
    for (size_t i = 0; i < readings.size(); ++i) {
      // Progress the callbacks did not see (the end of a burst) happened since the previous
      // reading: its time is known to that precision only, and kept for later readings.
      if (readings[i].progressed && result[i].last_progress_ns < impl.last_reading_ns) {
        impl.observed_progress_ns[i] = now_ns;
      }
    }
    impl.last_readings = std::move(readings);
    impl.last_reading_ns = now_ns;
  } else if (!impl.flow_read_failing) {
    impl.flow_read_failing = true;
    Log()->error(
        "{}; replication flows keep their last acknowledged bytes, outstanding data and "
        "connections until it works again",
        live.error().ToString());
  }
  for (size_t i = 0; i < result.size(); ++i) {
    const FlowAckReading& reading = impl.last_readings[i];
    result[i].bytes_acked = reading.bytes_acked;
    result[i].data_outstanding = reading.data_outstanding;
    result[i].bytes_outstanding = reading.bytes_outstanding;
    result[i].connections = reading.connections;
    result[i].last_progress_ns = std::max(result[i].last_progress_ns, impl.observed_progress_ns[i]);
  }
  return result;
}

std::vector<InterfaceAttachment> BpfDatapath::Attachments() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<InterfaceAttachment> result;
  for (const auto& [ifindex, entry] : impl_->attachments) {
    result.push_back({entry.attachment->ifname(), ifindex, entry.attachment->tcx(), entry.l3_only});
  }
  return result;
}

std::vector<ProgramRunStats> BpfDatapath::ProgramStats() const {
  std::vector<ProgramRunStats> result;
  bpf_program* program = nullptr;
  bpf_object__for_each_program(program, impl_->tc->obj) result.push_back(StatsOf("tunnel_tc", program));
  bpf_object__for_each_program(program, impl_->tcp->obj) result.push_back(StatsOf("tcp_signals", program));
  return result;
}

// Every kernel signal is a counter except the probe stamps, which travel in the probes
// themselves (no ring buffer). A stamp the kernel could not write is the one sample lost.
uint64_t BpfDatapath::SamplesDropped() const {
  const int fd = bpf_map__fd(impl_->tc->maps.rp_tc_stats);
  uint64_t total = 0;
  for (const uint64_t v : ReadPerCpu<uint64_t>(fd, RP_STAT_STAMP_FAILED)) total += v;
  return total;
}

bool BpfDatapath::Attached() const {
  std::lock_guard lock(impl_->mutex);
  return !impl_->attachments.empty();
}

std::vector<uint64_t> BpfDatapath::StampsWritten() const {
  std::vector<uint64_t> result(RP_KSTAMP_SLOTS, 0);
  const int fd = bpf_map__fd(impl_->tc->maps.rp_tc_stats);
  for (uint32_t slot = 0; slot < RP_KSTAMP_SLOTS; ++slot) {
    for (const uint64_t v : ReadPerCpu<uint64_t>(fd, RP_STAT_STAMP_T1 + slot)) result[slot] += v;
  }
  return result;
}

}  // namespace regionpulse
