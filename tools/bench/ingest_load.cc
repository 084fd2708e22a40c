// Ingest load generator: see ingest_load.h.
#include "tools/bench/ingest_load.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "agent/window_folder.h"
#include "common/grpc_callback_queue.h"
#include "common/latency_histogram.h"
#include "common/proto_convert.h"
#include "regionpulse/v1/ingest.grpc.pb.h"
#include "regionpulse/v1/query.grpc.pb.h"
#include "regionpulse/v1/verdicts.grpc.pb.h"

namespace regionpulse::bench {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

constexpr uint16_t kReflectorPort = 862;
constexpr uint16_t kProberPort = 41000;
constexpr uint32_t kProbesPerTarget = 10;  // one every 100 ms in a 1 s window

double Seconds(Steady::duration d) {
  return std::chrono::duration<double>(d).count();
}

// ---- /proc and the status port ------------------------------------------------------------

// utime + stime of a process, all threads.
std::optional<std::chrono::nanoseconds> CpuTime(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const double tick = 1e9 / static_cast<double>(sysconf(_SC_CLK_TCK));
  return std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(utime + stime) * tick));
}

uint64_t StatusKib(int pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(key + ":")) return std::stoull(line.substr(key.size() + 1));
  }
  return 0;
}

// GET /metrics from HOST:PORT over a plain socket (IPv4 literal or localhost); empty on failure.
std::string FetchMetrics(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return {};
  std::string host = host_port.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(std::stoi(host_port.substr(colon + 1))));
  if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) return {};
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return {};
  }
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  (void)!write(fd, request.data(), request.size());
  std::string reply;
  char buffer[16384];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) > 0) reply.append(buffer, static_cast<size_t>(n));
  close(fd);
  const size_t body = reply.find("\r\n\r\n");
  return body == std::string::npos ? std::string() : reply.substr(body + 4);
}

// ---- the simulated network -----------------------------------------------------------------

// Kernel RTT between two regions, by their position in the options' list (same region: 1 ms).
std::chrono::microseconds BaseRtt(size_t a, size_t b) {
  static constexpr uint64_t kUs[3][3] = {
      {1'000, 70'000, 220'000}, {70'000, 1'000, 160'000}, {220'000, 160'000, 1'000}};
  if (a < 3 && b < 3) return std::chrono::microseconds(kUs[a][b]);
  return a == b ? 1ms : 100ms;
}

struct PlannedTarget {
  size_t agent = 0;  // index into the fleet
  uint16_t ssid = 0;
};

// Who probes an agent's reflector: (sender, the sender's session id towards it).
struct Inbound {
  size_t sender = 0;
  uint16_t ssid = 0;
};

// One window of this agent as its WindowFolder reports it: every planned target probed ten
// times, answered unless `cut` says the path is lost, every sender that probes this node
// reflected unless cut. Built once per agent and mode, then sent every window with its own
// sequence and window times.
v1::HealthReport BuildReport(const std::vector<FleetMember>& fleet, const std::vector<size_t>& region_of,
                             const std::vector<std::string>& region_names, size_t self,
                             const std::vector<PlannedTarget>& targets, const std::vector<Inbound>& inbound,
                             size_t active, bool cut) {
  WindowFolderConfig config;
  config.region_names = region_names;
  config.probe_timeout = 800ms;
  const MonoTime start = MonoTime(1h);
  const WallTime wall_start = WallTime(std::chrono::seconds(1'800'000'000));
  DatapathSnapshot baseline;
  baseline.interfaces.push_back({"wg0", 3, true, true});
  WindowFolder folder(config, start, wall_start, baseline);
  const size_t own = region_of[self];
  auto lost = [&](size_t other) { return cut && (own == active) != (region_of[other] == active); };

  for (size_t t = 0; t < targets.size(); ++t) {
    const FleetMember& peer = fleet[targets[t].agent];
    const size_t peer_region = region_of[targets[t].agent];
    const bool path_lost = lost(targets[t].agent);
    const auto base = std::chrono::duration_cast<std::chrono::nanoseconds>(BaseRtt(own, peer_region));
    const auto session = static_cast<SessionId>(t);
    folder.OnSession(SessionInfo{session,
                                 PeerInfo{peer.node, peer.region, peer.zone, peer.address, kReflectorPort},
                                 targets[t].ssid, fleet[self].address, kProberPort});
    for (uint32_t k = 0; k < kProbesPerTarget; ++k) {
      ProbeSent sent;
      sent.session = session;
      sent.sequence = k;
      sent.sent_at = start + k * 100ms + t * 1ms;
      folder.OnProbeSent(sent);
      if (path_lost) continue;
      // A few buckets per path: RTTs 0-4 % above the base, plus a little per agent.
      const auto rtt = base + base * (k % 5) / 100 + std::chrono::microseconds(self % 97);
      const auto residence = 20us;
      ProbeReply reply;
      reply.session = session;
      reply.sender_sequence = k;
      reply.reflector_sequence = k;
      reply.received_at = sent.sent_at + rtt + residence + 60us + std::chrono::microseconds(k);
      KernelStamps stamps;
      stamps.t[0] = static_cast<uint64_t>((sent.sent_at.time_since_epoch()).count());
      stamps.t[1] = stamps.t[0] + static_cast<uint64_t>(rtt.count() / 2);
      stamps.t[2] = stamps.t[1] + static_cast<uint64_t>(std::chrono::nanoseconds(residence).count());
      stamps.t[3] = stamps.t[0] + static_cast<uint64_t>(rtt.count()) +
                    static_cast<uint64_t>(std::chrono::nanoseconds(residence).count());
      reply.kernel = stamps;
      folder.OnProbeReply(reply);
    }
  }
  for (const Inbound& in : inbound) {
    if (lost(in.sender)) continue;
    const auto sender = SenderAddress::Parse(fleet[in.sender].address).value();
    for (uint32_t k = 0; k < kProbesPerTarget; ++k) {
      folder.OnProbeReflected(ProbeReflected{sender, kProberPort, in.ssid, true});
    }
  }
  // Passive traffic with every other region; none across the cut.
  DatapathSnapshot end = baseline;
  for (size_t r = 0; r < region_names.size(); ++r) {
    if (r == own) continue;
    RegionTrafficCounters counters;
    if (!(cut && (own == active || r == active))) {
      counters.tx_bytes = 1'000'000 + self % 1000;
      counters.rx_bytes = 1'200'000;
      counters.tx_packets = 900;
      counters.rx_packets = 1'000;
      counters.tcp_established = 2;
      counters.tcp_srtt_us_sum = static_cast<uint64_t>(BaseRtt(own, r).count()) * 4;
      counters.tcp_srtt_samples = 4;
    }
    end.regions[static_cast<RegionId>(r + 1)] = counters;
  }
  (void)folder.CloseWindow(start + 1s, wall_start + 1s, end);
  auto reports = folder.CloseWindow(start + 2s, wall_start + 2s, end);
  if (reports.empty()) return {};
  return std::move(reports.front());
}

// ---- the simulated agents ------------------------------------------------------------------

class Fleet;

// The generator's agents write pre-encoded StreamRequests (EncodedReport) through a generic
// stub: the generator is a bench tool sharing the machine with the aggregator it measures, and
// copying and serialising each ~1.8 KiB report again per window was a tenth of its CPU. What
// reaches the aggregator is byte for byte what the typed stub would send.
using IngestStub = grpc::TemplatedGenericStub<grpc::ByteBuffer, v1::StreamResponse>;
const std::string kIngestStreamMethod = "/" + std::string(v1::Ingest::service_full_name()) + "/Stream";

grpc::ByteBuffer ByteBufferOf(const std::string& bytes) {
  grpc::Slice slice(bytes.data(), bytes.size());
  return grpc::ByteBuffer(&slice, 1);
}

void AppendVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

}  // namespace

namespace {

// What EncodedReport puts around `base`: the StreamRequest's length-delimited `report` field
// header, and this window's sequence and times. A serialised message followed by another is their
// merge, so the three fields are appended to the report's bytes rather than the report copied and
// set.
struct WindowFraming {
  std::string header;
  std::string stamp;
};

WindowFraming FramingFor(size_t base_size, uint64_t sequence, WallTime start, WallTime end) {
  // Reused per thread: a fresh message would allocate its two Timestamps for every report.
  thread_local v1::HealthReport stamp;
  stamp.set_sequence(sequence);
  *stamp.mutable_window_start() = ToTimestamp(start);
  *stamp.mutable_window_end() = ToTimestamp(end);
  WindowFraming framing;
  stamp.SerializeToString(&framing.stamp);
  AppendVarint(framing.header,
               (static_cast<uint64_t>(v1::StreamRequest::kReportFieldNumber) << 3) | 2);  // length-delimited
  AppendVarint(framing.header, base_size + framing.stamp.size());
  return framing;
}

}  // namespace

std::string EncodedReport(const std::string& base, uint64_t sequence, WallTime start, WallTime end) {
  const WindowFraming framing = FramingFor(base.size(), sequence, start, end);
  std::string out;
  out.reserve(framing.header.size() + base.size() + framing.stamp.size());
  out.append(framing.header).append(base).append(framing.stamp);
  return out;
}

grpc::ByteBuffer EncodedReportBuffer(const grpc::Slice& base, uint64_t sequence, WallTime start,
                                     WallTime end) {
  const WindowFraming framing = FramingFor(base.size(), sequence, start, end);
  grpc::Slice slices[3] = {grpc::Slice(framing.header), base, grpc::Slice(framing.stamp)};
  return grpc::ByteBuffer(slices, 3);
}

namespace {

// A report without what EncodedReport appends: a Timestamp appended to one already there would
// merge with it field by field (a zero nanos is not on the wire and would keep the old one).
v1::HealthReport WithoutWindow(v1::HealthReport report) {
  report.clear_sequence();
  report.clear_window_start();
  report.clear_window_end();
  return report;
}

// One agent's Ingest stream on the async API. The sender thread queues reports (Push); the
// completion-queue threads (CompletionThreads) finish writes, read plans and Acks. One write in
// flight at a time. Not the callback API: that puts every stream's pending read and status on
// one process-wide completion queue, and Debian's libgrpc (built without NDEBUG) checks each
// completed operation against that queue's list of outstanding ones by a linear scan
// (`cq_check_tag`): with 10,000 streams, 20,000 entries scanned under the queue's lock per
// completion, a quarter of the generator's CPU. Several queues keep each list short.
class SimAgent {
 public:
  enum class Event { kStarted, kRead, kWritten, kFinished };
  struct Tag {
    SimAgent* agent;
    Event event;
  };

  SimAgent(Fleet& fleet, size_t index) : fleet_(fleet), index_(index) {}

  void Start(IngestStub& stub, grpc::CompletionQueue& queue, const FleetMember& member, uint64_t instance_id);
  // Queues a report for window `sequence` (EncodedReportBuffer); false when the stream is gone.
  bool Push(grpc::ByteBuffer encoded_request, uint64_t sequence, WallTime window_end);
  void Stop();
  bool WaitDone(std::chrono::milliseconds timeout);
  void OnEvent(Event event, bool ok);

  std::optional<v1::ProbePlan> plan() {
    std::lock_guard lock(mutex_);
    return plan_;
  }
  size_t max_backlog() {
    std::lock_guard lock(mutex_);
    return max_backlog_;
  }

 private:
  void OnWriteDone(bool ok);
  void OnReadDone(bool ok);
  // Done once the status is in and no read or write is outstanding: nothing refers to the call.
  void NotifyIfDoneLocked();

  Fleet& fleet_;
  const size_t index_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<grpc::ByteBuffer, v1::StreamResponse>> call_;
  Tag started_tag_{this, Event::kStarted};
  Tag read_tag_{this, Event::kRead};
  Tag written_tag_{this, Event::kWritten};
  Tag finished_tag_{this, Event::kFinished};
  v1::StreamResponse response_;
  grpc::Status status_;
  bool finish_started_ = false;

  std::mutex mutex_;
  std::condition_variable done_cv_;
  grpc::ByteBuffer in_flight_;
  bool in_flight_is_report_ = false;
  std::deque<grpc::ByteBuffer> pending_;
  std::deque<std::pair<uint64_t, WallTime>> unacked_;  // (sequence, window end)
  std::optional<v1::ProbePlan> plan_;
  bool writing_ = false;
  bool read_ended_ = false;
  bool finished_ = false;
  bool stopping_ = false;
  bool done_ = false;
  size_t max_backlog_ = 0;
};

// Threads draining the agents' completion queues, one each.
class CompletionThreads {
 public:
  explicit CompletionThreads(size_t count) : queues_(count) {
    for (auto& queue : queues_) queue = std::make_unique<grpc::CompletionQueue>();
    for (auto& queue : queues_) {
      threads_.emplace_back([q = queue.get()] {
        void* tag = nullptr;
        bool ok = false;
        while (q->Next(&tag, &ok)) {
          auto* event = static_cast<SimAgent::Tag*>(tag);
          event->agent->OnEvent(event->event, ok);
        }
      });
    }
  }
  grpc::CompletionQueue& queue(size_t i) { return *queues_[i % queues_.size()]; }
  size_t size() const { return queues_.size(); }
  // After every call has ended: the queues drain and the threads return.
  void ShutDownAndJoin() {
    for (auto& queue : queues_) queue->Shutdown();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
  }
  // A call that did not end may still complete on a queue: leave the threads to the process.
  ~CompletionThreads() {
    for (auto& thread : threads_) thread.detach();
    if (threads_.empty()) return;
    for (auto& queue : queues_) (void)queue.release();
  }

 private:
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues_;
  std::vector<std::thread> threads_;
};

// Collects the verdicts Watch pushes.
class VerdictReader final : public grpc::ClientReadReactor<v1::WatchVerdictsResponse> {
 public:
  struct Seen {
    Steady::time_point received;
    uint64_t generation = 0;
    WallTime computed_at;
    v1::RegionState active_state = v1::REGION_STATE_UNSPECIFIED;
    bool heartbeat = false;
  };

  VerdictReader(v1::Verdicts::Stub& stub, std::string active_region) : active_(std::move(active_region)) {
    stub.async()->Watch(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    Seen seen{Steady::now(), response_.verdict().generation(),
              FromTimestamp(response_.verdict().computed_at()), v1::REGION_STATE_UNSPECIFIED,
              response_.heartbeat()};
    for (const auto& region : response_.verdict().regions()) {
      if (region.region() == active_) seen.active_state = region.state();
    }
    {
      std::lock_guard lock(mutex_);
      seen_.push_back(seen);
    }
    changed_.notify_all();
    StartRead(&response_);
  }
  void OnDone(const grpc::Status&) override {
    std::lock_guard lock(mutex_);
    done_ = true;
    changed_.notify_all();
  }
  // The first verdict received at or after `from` that satisfies `match`.
  template <typename Match>
  std::optional<Seen> WaitFor(Steady::time_point from, Match match, Steady::time_point deadline) {
    std::unique_lock lock(mutex_);
    std::optional<Seen> found;
    changed_.wait_until(lock, deadline, [&] {
      for (const Seen& seen : seen_) {
        if (seen.received >= from && match(seen)) {
          found = seen;
          return true;
        }
      }
      return done_;
    });
    return found;
  }
  std::optional<Seen> Latest() {
    std::lock_guard lock(mutex_);
    if (seen_.empty()) return std::nullopt;
    return seen_.back();
  }
  void Stop() {
    context_.TryCancel();
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 10s, [&] { return done_; });
  }

 private:
  const std::string active_;
  grpc::ClientContext context_;
  v1::WatchVerdictsRequest request_;
  v1::WatchVerdictsResponse response_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Seen> seen_;
  bool done_ = false;
};

// What every agent's callbacks report to: plans, Acks, ends.
class Fleet {
 public:
  void OnPlan() {
    planned_generation_.fetch_add(1);
    last_plan_ns_.store(Steady::now().time_since_epoch().count());
  }
  void OnAcked(WallTime window_end, WallTime now) {
    if (!recording_.load(std::memory_order_relaxed)) return;
    std::lock_guard lock(mutex_);
    ++acked_;
    ack_lag_.Record(static_cast<uint64_t>(std::max<int64_t>(0, (now - window_end).count())));
  }
  void OnSent() {
    if (recording_.load(std::memory_order_relaxed)) sent_.fetch_add(1);
  }
  void OnEnded(const grpc::Status& status) {
    if (stopping_.load()) return;
    std::lock_guard lock(mutex_);
    ++ended_;
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
        status.error_message().starts_with("Hello refused")) {
      ++hellos_refused_;
    }
    if (first_error_.empty()) {
      first_error_ = "code " + std::to_string(status.error_code()) + ": " + status.error_message();
    }
  }

  std::atomic<bool> recording_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> planned_generation_{0};
  std::atomic<int64_t> last_plan_ns_{0};
  std::atomic<uint64_t> sent_{0};

  std::mutex mutex_;
  LatencyHistogram ack_lag_;
  uint64_t acked_ = 0;
  uint32_t ended_ = 0;
  uint32_t hellos_refused_ = 0;
  std::string first_error_;
};

void SimAgent::Start(IngestStub& stub, grpc::CompletionQueue& queue, const FleetMember& member,
                     uint64_t instance_id) {
  v1::StreamRequest hello_request;
  auto* hello = hello_request.mutable_hello();
  hello->set_node(member.node);
  hello->set_region(member.region);
  hello->set_zone(member.zone);
  hello->set_agent_version("ingest-load");
  hello->set_instance_id(instance_id);
  hello->mutable_probe_endpoint()->set_address(member.address);
  hello->mutable_probe_endpoint()->set_port(kReflectorPort);
  auto* interface = hello->add_interfaces();
  interface->set_name("wg0");
  interface->set_ifindex(3);
  interface->set_mode(v1::ATTACH_MODE_TCX);
  interface->set_l3_only(true);
  auto* capabilities = hello->mutable_capabilities();
  capabilities->set_kernel_stamps(true);
  capabilities->set_tcx(true);
  capabilities->set_tcp_retransmit_tracepoint(true);
  capabilities->set_sock_ops(true);
  capabilities->set_authenticated_probes(true);
  *hello->mutable_window() = ToDuration(1s);
  std::lock_guard lock(mutex_);  // the queue's thread may see the first events before we return
  in_flight_ = ByteBufferOf(hello_request.SerializeAsString());
  in_flight_is_report_ = false;
  writing_ = true;
  call_ = stub.PrepareCall(&context_, kIngestStreamMethod, &queue);
  call_->StartCall(&started_tag_);  // the Hello is written when this is done (same operation set)
  // Finish after the first read: both would ask for the initial metadata until it has come.
  call_->Read(&response_, &read_tag_);
}

bool SimAgent::Push(grpc::ByteBuffer encoded_request, uint64_t sequence, WallTime window_end) {
  std::lock_guard lock(mutex_);
  if (stopping_ || read_ended_ || finished_) return false;
  unacked_.emplace_back(sequence, window_end);
  if (writing_) {
    pending_.push_back(std::move(encoded_request));
    max_backlog_ = std::max(max_backlog_, pending_.size());
    return true;
  }
  writing_ = true;
  in_flight_ = std::move(encoded_request);
  in_flight_is_report_ = true;
  call_->Write(in_flight_, &written_tag_);
  return true;
}

void SimAgent::OnEvent(Event event, bool ok) {
  switch (event) {
    case Event::kStarted: {
      std::lock_guard lock(mutex_);
      if (ok) {
        call_->Write(in_flight_, &written_tag_);  // the Hello, queued by Start
      } else {
        writing_ = false;  // the read and the status show the failure
        NotifyIfDoneLocked();
      }
      return;
    }
    case Event::kRead:
      return OnReadDone(ok);
    case Event::kWritten:
      return OnWriteDone(ok);
    case Event::kFinished: {
      fleet_.OnEnded(status_);
      std::lock_guard lock(mutex_);
      finished_ = true;
      NotifyIfDoneLocked();
      return;
    }
  }
}

void SimAgent::NotifyIfDoneLocked() {
  if (finished_ && read_ended_ && !writing_ && !done_) {
    done_ = true;
    done_cv_.notify_all();
  }
}

void SimAgent::OnWriteDone(bool ok) {
  std::lock_guard lock(mutex_);
  writing_ = false;
  if (ok && in_flight_is_report_) fleet_.OnSent();
  if (ok && !stopping_ && !pending_.empty()) {
    in_flight_ = std::move(pending_.front());
    in_flight_is_report_ = true;
    pending_.pop_front();
    writing_ = true;
    call_->Write(in_flight_, &written_tag_);
    return;
  }
  if (!ok) pending_.clear();
  NotifyIfDoneLocked();
}

void SimAgent::OnReadDone(bool ok) {
  if (!finish_started_) {  // only this thread touches it
    finish_started_ = true;
    call_->Finish(&status_, &finished_tag_);
  }
  if (!ok) {
    std::lock_guard lock(mutex_);
    read_ended_ = true;
    NotifyIfDoneLocked();
    return;
  }
  if (response_.has_probe_plan()) {
    {
      std::lock_guard lock(mutex_);
      if (!plan_ || response_.probe_plan().plan_version() > plan_->plan_version())
        plan_ = response_.probe_plan();
    }
    fleet_.OnPlan();
  }
  if (response_.has_ack()) {
    const WallTime now = WallClock::now();
    std::vector<WallTime> acked;
    {
      std::lock_guard lock(mutex_);
      while (!unacked_.empty() && unacked_.front().first <= response_.ack().highest_sequence()) {
        acked.push_back(unacked_.front().second);
        unacked_.pop_front();
      }
    }
    for (WallTime end : acked) fleet_.OnAcked(end, now);
  }
  call_->Read(&response_, &read_tag_);
}

void SimAgent::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    pending_.clear();
  }
  // Every outstanding read, write and the status complete (failed) on the queue.
  context_.TryCancel();
}

bool SimAgent::WaitDone(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return done_cv_.wait_for(lock, timeout, [&] { return done_; });
}

LagSummary Summarize(const LatencyHistogram& histogram) {
  LagSummary summary;
  summary.count = histogram.Count();
  if (histogram.Empty()) return summary;
  summary.p50_ms = static_cast<double>(*histogram.Percentile(0.5)) / 1e6;
  summary.p99_ms = static_cast<double>(*histogram.Percentile(0.99)) / 1e6;
  summary.max_ms = static_cast<double>(histogram.MaxNs()) / 1e6;
  return summary;
}

std::string StateName(v1::RegionState state) {
  std::string name = v1::RegionState_Name(state);
  return name.starts_with("REGION_STATE_") ? name.substr(13) : name;
}

}  // namespace

// ---- pure parts ----------------------------------------------------------------------------

std::vector<FleetMember> MakeFleet(const IngestLoadOptions& options) {
  std::vector<FleetMember> fleet;
  uint32_t assigned = 0;
  for (size_t r = 0; r < options.regions.size(); ++r) {
    const LoadRegion& region = options.regions[r];
    const uint32_t count = r + 1 == options.regions.size()
                               ? options.agents - assigned
                               : static_cast<uint32_t>(std::floor(options.agents * region.share));
    for (uint32_t i = 0; i < count; ++i) {
      char node[96];
      std::snprintf(node, sizeof node, "%s-node-%05u", region.name.c_str(), i);
      // x.y.(1 + i / 250).(1 + i % 250): 62,500 nodes per region, none on .0 or .255.
      const std::string address =
          region.address_prefix + "." + std::to_string(1 + i / 250) + "." + std::to_string(1 + i % 250);
      fleet.push_back({node, region.name, region.name + static_cast<char>('a' + i % 3), address});
    }
    assigned += count;
  }
  return fleet;
}

double HistogramDelta::QuantileBound(double q) const {
  if (count == 0) return 0;
  const double wanted = q * static_cast<double>(count);
  for (const auto& [le, cumulative_count] : cumulative) {
    if (static_cast<double>(cumulative_count) >= wanted) return le;
  }
  return std::numeric_limits<double>::infinity();
}

std::optional<double> SampleValue(const std::string& metrics, const std::string& name_and_labels) {
  std::istringstream lines(metrics);
  std::string line;
  const std::string prefix = name_and_labels + " ";
  while (std::getline(lines, line)) {
    if (line.starts_with(prefix)) return std::stod(line.substr(prefix.size()));
  }
  return std::nullopt;
}

HistogramDelta HistogramBetween(const std::string& before, const std::string& after,
                                const std::string& name) {
  auto parse = [&](const std::string& text) {
    std::map<double, double> buckets;
    std::istringstream lines(text);
    std::string line;
    const std::string prefix = name + "_bucket{le=\"";
    while (std::getline(lines, line)) {
      if (!line.starts_with(prefix)) continue;
      const size_t close = line.find('"', prefix.size());
      if (close == std::string::npos) continue;
      const std::string le = line.substr(prefix.size(), close - prefix.size());
      const double bound = le == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(le);
      buckets[bound] = std::stod(line.substr(line.rfind(' ') + 1));
    }
    return buckets;
  };
  const auto b = parse(before), a = parse(after);
  HistogramDelta delta;
  for (const auto& [le, count] : a) {
    const auto old = b.find(le);
    delta.cumulative.emplace_back(le, static_cast<uint64_t>(count - (old == b.end() ? 0 : old->second)));
  }
  delta.count = static_cast<uint64_t>(SampleValue(after, name + "_count").value_or(0) -
                                      SampleValue(before, name + "_count").value_or(0));
  delta.sum = SampleValue(after, name + "_sum").value_or(0) - SampleValue(before, name + "_sum").value_or(0);
  return delta;
}

std::string MarkdownHeader() {
  return "| agents (channels) | connect + plans | ingest lag p50 / p99 / max, window end → visible in Query "
         "(samples) | "
         "window end → Ack p50 / p99 | reports sent / acked | evaluation tick mean / p50 / p99 | "
         "Watch push after the cut / after the decisive window | aggregator CPU (µs per report filed) | "
         "generator CPU (µs per report sent) | aggregator "
         "RSS / peak | streams ended early, Hellos refused, max backlog |\n"
         "|---|---|---|---|---|---|---|---|---|---|---|";
}

std::string MarkdownRow(const IngestLoadOptions& options, const IngestLoadResult& r) {
  auto fixed = [](double value, int decimals) {
    char text[64];
    std::snprintf(text, sizeof text, "%.*f", decimals, value);
    return std::string(text);
  };
  auto le = [&](double bound) {
    return std::isinf(bound) ? std::string("> 5 s") : "≤ " + fixed(bound * 1000, 0);
  };
  const uint32_t channels = (options.agents + options.agents_per_channel - 1) / options.agents_per_channel;
  std::ostringstream row;
  row << "| " << options.agents << " (" << channels << ") | " << fixed(r.connect_seconds, 1) << " s | "
      << fixed(r.visible_lag.p50_ms, 1) << " / **" << fixed(r.visible_lag.p99_ms, 1) << "** / "
      << fixed(r.visible_lag.max_ms, 0) << " ms (" << r.visible_lag.count << "; " << r.list_failures << " of "
      << r.list_calls << " ListAgents failed) | " << fixed(r.ack_lag.p50_ms, 1) << " / "
      << fixed(r.ack_lag.p99_ms, 1) << " ms | " << r.reports_sent << " / " << r.reports_acked << " | ";
  if (r.ticks > 0) {
    row << fixed(r.tick_mean_ms, 1) << " / " << le(r.tick_p50_le_ms / 1000) << " / "
        << le(r.tick_p99_le_ms / 1000) << " ms (" << r.ticks << " ticks) | ";
  } else {
    row << "not measured | ";
  }
  if (r.verdict_after_cut_s) {
    row << fixed(*r.verdict_after_cut_s, 2) << " s / **" << fixed(r.verdict_after_decisive_s.value_or(0), 2)
        << " s** (" << r.verdict_change << ") | ";
  } else {
    row << (options.cut_active_region ? "**no change pushed** (" + r.verdict_change + ") | "
                                      : "not measured | ");
  }
  // CPU per report: what the aggregator spent over the measured period (ticks included) per
  // report it filed, and the generator per report it sent; robust to whatever else runs.
  const auto filed = r.aggregator_reports.find("accepted");
  const double per_filed = filed != r.aggregator_reports.end() && filed->second > 0
                               ? r.aggregator_cpu * r.measured_seconds * 1e6 / filed->second
                               : 0;
  const double per_sent =
      r.reports_sent > 0 ? r.generator_cpu * r.measured_seconds * 1e6 / static_cast<double>(r.reports_sent)
                         : 0;
  row << fixed(r.aggregator_cpu * 100, 0) << " % (" << fixed(per_filed, 0) << " µs) | "
      << fixed(r.generator_cpu * 100, 0) << " % (" << fixed(per_sent, 0) << " µs) | "
      << fixed(static_cast<double>(r.aggregator_rss_kib) / 1024, 0) << " / "
      << fixed(static_cast<double>(r.aggregator_hwm_kib) / 1024, 0) << " MiB | " << r.streams_ended << ", "
      << r.hellos_refused << ", " << r.max_write_backlog << " |";
  return row.str();
}

// ---- the run -------------------------------------------------------------------------------

Result<IngestLoadResult> RunIngestLoad(const IngestLoadOptions& options, std::ostream& progress) {
  const std::vector<FleetMember> members = MakeFleet(options);
  std::vector<std::string> region_names;
  for (const auto& region : options.regions) region_names.push_back(region.name);
  const auto active_it = std::find(region_names.begin(), region_names.end(), options.active_region);
  if (active_it == region_names.end())
    return Error{"active region " + options.active_region + " is not a region"};
  const size_t active = static_cast<size_t>(active_it - region_names.begin());
  std::vector<size_t> region_of;
  std::unordered_map<std::string, size_t> index_of;
  for (size_t i = 0; i < members.size(); ++i) {
    region_of.push_back(static_cast<size_t>(
        std::find(region_names.begin(), region_names.end(), members[i].region) - region_names.begin()));
    index_of.emplace(members[i].node, i);
  }
  IngestLoadResult result;
  result.agents = static_cast<uint32_t>(members.size());

  HoldGrpcCallbackQueue();  // before the first channel: see grpc_callback_queue.h
  std::vector<std::unique_ptr<IngestStub>> stubs;
  const uint32_t per_channel = std::max<uint32_t>(1, options.agents_per_channel);
  for (uint32_t c = 0; c * per_channel < members.size(); ++c) {
    grpc::ChannelArguments args;
    // A connection per channel: without these, channels to one target share one subchannel.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("regionpulse.ingest_load.channel", static_cast<int>(c));
    stubs.push_back(std::make_unique<IngestStub>(
        grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args)));
  }
  grpc::ChannelArguments query_args;
  query_args.SetMaxReceiveMessageSize(256 * 1024 * 1024);
  query_args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto query_channel =
      grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), query_args);
  auto query = v1::Query::NewStub(query_channel);
  auto verdicts = v1::Verdicts::NewStub(query_channel);

  Fleet fleet;
  // By default a completion queue per ten connections (at most 16): short outstanding-operation
  // lists (see SimAgent) without a thread per connection.
  CompletionThreads completion(options.completion_queues > 0
                                   ? std::min<size_t>(options.completion_queues, stubs.size())
                                   : std::clamp<size_t>(stubs.size() / 10, 1, 16));
  std::vector<std::unique_ptr<SimAgent>> agents;
  for (size_t i = 0; i < members.size(); ++i) agents.push_back(std::make_unique<SimAgent>(fleet, i));
  VerdictReader watch(*verdicts, options.active_region);
  std::atomic<bool> stop_sending{false};
  std::thread sender;
  // Every stream ends before the reactors are destroyed, on every way out of this function.
  bool stopped = false;
  auto stop_all = [&]() -> Status {
    if (stopped) return OkStatus();
    stopped = true;
    stop_sending = true;
    if (sender.joinable()) sender.join();
    fleet.stopping_ = true;
    for (auto& agent : agents) agent->Stop();
    // Generous: on a loaded machine gRPC's threads may still be working through Acks.
    const auto deadline = Steady::now() + 120s;
    size_t not_ended = 0;
    for (auto& agent : agents) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
      not_ended += agent->WaitDone(std::max(left, std::chrono::milliseconds(0))) ? 0 : 1;
    }
    watch.Stop();
    if (not_ended == 0) completion.ShutDownAndJoin();
    if (not_ended > 0) {
      return Error{std::to_string(not_ended) + " streams did not end within 120 s of being cancelled"};
    }
    return OkStatus();
  };
  struct StopGuard {
    std::function<Status()> stop;
    ~StopGuard() { (void)stop(); }
  } stop_guard{stop_all};

  // Connect: every agent says Hello; the aggregator answers with its plan.
  const auto connect_started = Steady::now();
  const uint64_t instance_base = static_cast<uint64_t>(WallClock::now().time_since_epoch().count());
  for (size_t i = 0; i < agents.size(); ++i) {
    const size_t channel = i / per_channel;
    agents[i]->Start(*stubs[channel], completion.queue(channel * completion.size() / stubs.size()),
                     members[i], instance_base + i);
  }
  progress << "ingest_load: " << agents.size() << " agents connecting over " << stubs.size() << " channels\n";
  const auto connect_deadline = connect_started + options.connect_timeout;
  uint32_t planned = 0;
  while (Steady::now() < connect_deadline) {
    std::this_thread::sleep_for(100ms);
    planned = 0;
    for (auto& agent : agents) planned += agent->plan().has_value() ? 1 : 0;
    uint32_t ended = 0;
    {
      std::lock_guard lock(fleet.mutex_);
      ended = fleet.ended_;
    }
    const auto quiet = Steady::now().time_since_epoch() - Steady::duration(fleet.last_plan_ns_.load());
    if (planned + ended >= agents.size() && quiet >= options.plan_quiet) break;
  }
  result.agents_planned = planned;
  result.connect_seconds = Seconds(Steady::now() - connect_started);
  progress << "ingest_load: " << planned << " agents planned in " << result.connect_seconds << " s\n";
  if (planned == 0) {
    std::lock_guard lock(fleet.mutex_);
    return Error{"no agent got a probe plan from " + options.target +
                 (fleet.first_error_.empty() ? "" : " (" + fleet.first_error_ + ")")};
  }

  // Every agent's reports, healthy and cut, from its plan and the plans that target it.
  const auto build_started = Steady::now();
  std::vector<std::vector<PlannedTarget>> targets(members.size());
  std::vector<std::vector<Inbound>> inbound(members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    auto plan = agents[i]->plan();
    if (!plan) continue;
    uint16_t ssid = 1;
    for (const auto& target : plan->targets()) {
      auto found = index_of.find(target.node());
      if (found == index_of.end()) continue;
      targets[i].push_back({found->second, ssid});
      inbound[found->second].push_back({i, ssid});
      ++ssid;
    }
  }
  std::vector<v1::HealthReport> healthy(members.size()), cut(members.size());
  // Serialised once; each window appends its sequence and times (EncodedReport).
  std::vector<grpc::Slice> healthy_encoded(members.size()), cut_encoded(members.size());
  uint64_t healthy_bytes = 0;
  for (size_t i = 0; i < members.size(); ++i) {
    healthy[i] = BuildReport(members, region_of, region_names, i, targets[i], inbound[i], active, false);
    cut[i] = BuildReport(members, region_of, region_names, i, targets[i], inbound[i], active, true);
    healthy_bytes += healthy[i].ByteSizeLong();
    healthy_encoded[i] = grpc::Slice(WithoutWindow(healthy[i]).SerializeAsString());
    cut_encoded[i] = grpc::Slice(WithoutWindow(cut[i]).SerializeAsString());
  }
  result.build_seconds = Seconds(Steady::now() - build_started);
  result.report_bytes = healthy_bytes / std::max<size_t>(1, members.size());
  progress << "ingest_load: reports built in " << result.build_seconds << " s (" << result.report_bytes
           << " bytes each)\n";

  // Report: agent i's windows end at start + phase_i + k * window, phases spread evenly over one
  // window (agents start at different times), so reports arrive at a steady rate.
  const auto window = std::chrono::duration_cast<Steady::duration>(options.window);
  const Steady::time_point steady_start = Steady::now();
  const WallTime wall_start = WallClock::now();
  auto wall_of = [&](Steady::time_point t) {
    return wall_start + std::chrono::duration_cast<WallClock::duration>(t - steady_start);
  };
  std::vector<std::pair<Steady::duration, size_t>> by_phase;
  for (size_t i = 0; i < members.size(); ++i) {
    const double fraction = std::fmod(static_cast<double>(i) * 0.6180339887498949, 1.0);
    by_phase.emplace_back(std::chrono::duration_cast<Steady::duration>(window * fraction), i);
  }
  std::sort(by_phase.begin(), by_phase.end());
  std::atomic<int64_t> cut_at{std::numeric_limits<int64_t>::max()};  // steady ns
  sender = std::thread([&] {
    for (uint64_t sequence = 1; !stop_sending.load(); ++sequence) {
      for (const auto& [phase, i] : by_phase) {
        if (stop_sending.load()) return;
        const Steady::time_point end = steady_start + phase + window * static_cast<int64_t>(sequence);
        // Reports due within a millisecond go together: one wake-up per batch, not per agent.
        if (end > Steady::now() + 1ms) std::this_thread::sleep_until(end);
        const Steady::time_point start = end - window;
        if (targets[i].empty() && inbound[i].empty()) continue;
        const grpc::Slice& base =
            start.time_since_epoch().count() >= cut_at.load() ? cut_encoded[i] : healthy_encoded[i];
        agents[i]->Push(EncodedReportBuffer(base, sequence, wall_of(start), wall_of(end)), sequence,
                        wall_of(end));
      }
    }
  });

  // Warm-up, then until the active region is HEALTHY.
  std::this_thread::sleep_for(options.warmup);
  auto healthy_verdict = watch.WaitFor(
      Steady::time_point{},
      [](const VerdictReader::Seen& seen) { return seen.active_state == v1::REGION_STATE_HEALTHY; },
      Steady::now() + options.healthy_timeout);
  if (!healthy_verdict) progress << "ingest_load: the active region is not HEALTHY after the warm-up\n";

  // The measured period.
  const int self_pid = static_cast<int>(getpid());
  const std::string metrics_before = options.metrics.empty() ? "" : FetchMetrics(options.metrics);
  const auto cpu_agg_before = options.aggregator_pid ? CpuTime(options.aggregator_pid) : std::nullopt;
  const auto cpu_self_before = CpuTime(self_pid);
  const Steady::time_point measure_started = Steady::now();
  const WallTime measure_wall_start = WallClock::now();
  fleet.recording_ = true;
  LatencyHistogram visible_lag;
  std::vector<uint64_t> last_seen_sequence(members.size(), 0);
  std::vector<Steady::duration> phase_of(members.size());
  for (const auto& [phase, i] : by_phase) phase_of[i] = phase;
  const std::string sampled_region = region_names.back();  // the smallest: the cheapest query
  while (Steady::now() - measure_started < options.measure) {
    std::this_thread::sleep_for(std::min<Steady::duration>(
        options.list_interval, options.measure - (Steady::now() - measure_started)));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::ListAgentsRequest request;
    request.set_region(sampled_region);
    v1::ListAgentsResponse response;
    ++result.list_calls;
    if (const grpc::Status status = query->ListAgents(&context, request, &response); !status.ok()) {
      ++result.list_failures;
      progress << "ingest_load: ListAgents failed: " << status.error_message() << "\n";
      continue;
    }
    for (const auto& agent : response.agents()) {
      auto found = index_of.find(agent.node());
      if (found == index_of.end() || agent.last_sequence() <= last_seen_sequence[found->second]) continue;
      last_seen_sequence[found->second] = agent.last_sequence();
      const WallTime end = wall_of(steady_start + phase_of[found->second] +
                                   window * static_cast<int64_t>(agent.last_sequence()));
      // Reports filed during the measured period, however old their window.
      const WallTime filed = FromTimestamp(agent.last_report_at());
      if (filed < measure_wall_start) continue;
      const auto lag = filed - end;
      visible_lag.Record(static_cast<uint64_t>(std::max<int64_t>(0, lag.count())));
    }
  }
  fleet.recording_ = false;
  const Steady::time_point measure_ended = Steady::now();
  result.measured_seconds = Seconds(measure_ended - measure_started);
  const std::string metrics_after = options.metrics.empty() ? "" : FetchMetrics(options.metrics);
  if (auto after = CpuTime(self_pid); after && cpu_self_before) {
    result.generator_cpu = Seconds(*after - *cpu_self_before) / result.measured_seconds;
  }
  if (options.aggregator_pid) {
    if (auto after = CpuTime(options.aggregator_pid); after && cpu_agg_before) {
      result.aggregator_cpu = Seconds(*after - *cpu_agg_before) / result.measured_seconds;
    }
    result.aggregator_rss_kib = StatusKib(options.aggregator_pid, "VmRSS");
    result.aggregator_hwm_kib = StatusKib(options.aggregator_pid, "VmHWM");
  }
  if (!metrics_after.empty()) {
    const std::string name = "regionpulse_aggregator_evaluation_duration_seconds";
    const HistogramDelta ticks = HistogramBetween(metrics_before, metrics_after, name);
    result.ticks = ticks.count;
    result.tick_mean_ms = ticks.count ? ticks.sum / static_cast<double>(ticks.count) * 1000 : 0;
    result.tick_p50_le_ms = ticks.QuantileBound(0.5) * 1000;
    result.tick_p99_le_ms = ticks.QuantileBound(0.99) * 1000;
    result.tick_last_ms =
        SampleValue(metrics_after, "regionpulse_aggregator_evaluation_seconds").value_or(0) * 1000;
    result.streams_at_aggregator = static_cast<uint32_t>(
        SampleValue(metrics_after, "regionpulse_aggregator_streams{kind=\"ingest\"}").value_or(0));
    for (const char* outcome :
         {"accepted", "duplicate", "unknown_agent", "invalid", "future_window", "sequence_backwards"}) {
      const std::string sample =
          std::string("regionpulse_aggregator_reports_total{result=\"") + outcome + "\"}";
      const double delta =
          SampleValue(metrics_after, sample).value_or(0) - SampleValue(metrics_before, sample).value_or(0);
      if (delta > 0) result.aggregator_reports[outcome] = delta;
    }
  }
  {
    std::lock_guard lock(fleet.mutex_);
    result.ack_lag = Summarize(fleet.ack_lag_);
    result.reports_acked = fleet.acked_;
  }
  result.reports_sent = fleet.sent_.load();
  result.visible_lag = Summarize(visible_lag);
  progress << "ingest_load: measured " << result.measured_seconds << " s: " << result.reports_sent
           << " reports sent, lag p99 " << result.visible_lag.p99_ms << " ms (visible), "
           << result.ack_lag.p99_ms << " ms (Ack)\n";

  // The cut: windows that start from now on lose every probe across the active region's border.
  if (options.cut_active_region) {
    auto before = watch.Latest();
    result.state_before_cut = before ? StateName(before->active_state) : "no verdict";
    const Steady::time_point cut_time = Steady::now();
    cut_at = cut_time.time_since_epoch().count();
    // The decisive window: the one by whose end more than half of every observer region's agents
    // have reported a cut window (quorum_fraction 0.5), i.e. the latest of the observer regions'
    // median first cut windows.
    Steady::time_point decisive{};
    for (size_t r = 0; r < region_names.size(); ++r) {
      if (r == active) continue;
      std::vector<Steady::time_point> first_cut_end;
      for (size_t i = 0; i < members.size(); ++i) {
        if (region_of[i] != r || targets[i].empty()) continue;
        // First window starting at or after the cut.
        const auto since = cut_time - (steady_start + phase_of[i]);
        const int64_t k = (since.count() + window.count() - 1) / window.count();
        first_cut_end.push_back(steady_start + phase_of[i] + window * (k + 1));
      }
      if (first_cut_end.empty()) continue;
      std::sort(first_cut_end.begin(), first_cut_end.end());
      decisive = std::max(decisive, first_cut_end[first_cut_end.size() / 2]);
    }
    auto changed = watch.WaitFor(
        cut_time,
        [](const VerdictReader::Seen& seen) {
          return !seen.heartbeat && seen.active_state != v1::REGION_STATE_HEALTHY;
        },
        cut_time + options.verdict_timeout);
    if (changed) {
      result.verdict_after_cut_s = Seconds(changed->received - cut_time);
      result.verdict_after_decisive_s = Seconds(changed->received - decisive);
      result.verdict_change = options.active_region + " " + result.state_before_cut + " → " +
                              StateName(changed->active_state) + ", generation " +
                              std::to_string(changed->generation);
    } else {
      auto latest = watch.Latest();
      result.verdict_change = "still " +
                              (latest ? StateName(latest->active_state) : std::string("no verdict")) +
                              " after " + std::to_string(options.verdict_timeout.count()) + " s";
    }
    progress << "ingest_load: after the cut: " << result.verdict_change << "\n";
  }

  // Stop: no more reports, every stream cancelled.
  for (auto& agent : agents)
    result.max_write_backlog = std::max(result.max_write_backlog, agent->max_backlog());
  if (auto stopped_all = stop_all(); !stopped_all) return stopped_all.error();
  {
    std::lock_guard lock(fleet.mutex_);
    result.streams_ended = fleet.ended_;
    result.hellos_refused = fleet.hellos_refused_;
    result.first_stream_error = fleet.first_error_;
  }
  return result;
}

}  // namespace regionpulse::bench
