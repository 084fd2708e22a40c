// The WAN emulator's sockets, delay queue and control server on Boost.Asio. Readiness comes
// from Asio; datagrams are read with recvmsg so the kernel receive time (SO_TIMESTAMPNS)
// comes with each one, and delays count from when the datagram reached the host, not from
// when a busy emulator got round to reading it.
#include "tools/wan_emulator/relay.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <set>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "common/component_logger.h"
#include "tools/wan_emulator/control_protocol.h"

namespace regionpulse::wan {

namespace asio = boost::asio;
using asio::ip::udp;
using asio::local::stream_protocol;

namespace {

// IPv4 UDP carries at most 65,507 bytes of payload; one more byte of buffer tells a
// datagram that was cut short (MSG_TRUNC) from one that fits.
constexpr size_t kReadBufferBytes = 65536;
// Datagrams read per readiness event and socket, so a flood on one link cannot starve the
// others or the delay queue.
constexpr int kReadBurst = 64;
constexpr size_t kMaxControlSessions = 16;
constexpr auto kControlIdleTimeout = std::chrono::seconds(60);
constexpr int kLoggedRefusalsPerConnection = 5;
// A kernel stamp further from the read than this is not believed (the wall clock stepped).
constexpr auto kMaxBelievedReceiveLag = std::chrono::seconds(1);

// An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) as plain IPv4.
udp::endpoint Unmapped(const udp::endpoint& endpoint) {
  if (endpoint.address().is_v6() && endpoint.address().to_v6().is_v4_mapped()) {
    return udp::endpoint(asio::ip::make_address_v4(asio::ip::v4_mapped, endpoint.address().to_v6()),
                         endpoint.port());
  }
  return endpoint;
}

// The endpoint as a socket of `protocol` must be given it.
udp::endpoint ForProtocol(const udp::endpoint& endpoint, const udp& protocol) {
  if (protocol == udp::v6() && endpoint.address().is_v4()) {
    return udp::endpoint(asio::ip::make_address_v6(asio::ip::v4_mapped, endpoint.address().to_v4()),
                         endpoint.port());
  }
  return endpoint;
}

// At most 200 characters of a control line with anything unprintable as '?': what a
// hostile client sends must not reach the log as raw bytes.
std::string Printable(const std::string& line) {
  std::string text = line.substr(0, 200);
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return text;
}

struct Pending {
  MonoTime at;
  uint64_t sequence = 0;  // ties keep arrival order
  size_t direction = 0;
  std::vector<uint8_t> payload;
};

// Min-heap order for std::push_heap / pop_heap: the earliest (then first received) on top.
bool Later(const Pending& a, const Pending& b) {
  return a.at != b.at ? a.at > b.at : a.sequence > b.sequence;
}

}  // namespace

struct Relay::Impl {
  class ControlSession;

  Impl(asio::io_context& io_context, WanConfig config, uint64_t seed)
      : io(io_context),
        model(std::move(config), seed),
        timer(io_context),
        acceptor(io_context),
        accept_retry(io_context),
        log(ComponentLogger("wan")) {}
  // A start that failed half-way must not leave its socket file behind either.
  ~Impl() {
    try {
      Shutdown();
    } catch (const std::exception& e) {
      log->error("shutdown: {}", e.what());
    }
  }

  asio::io_context& io;
  WanModel model;
  std::vector<udp::socket> sockets;        // one per link direction: receives it
  std::vector<udp::endpoint> expected;     // the sending node's endpoint, unmapped
  std::vector<udp::endpoint> destination;  // the receiving node's endpoint, for the socket's family
  std::vector<bool> send_error_logged;
  std::vector<uint8_t> buffer = std::vector<uint8_t>(kReadBufferBytes);

  std::vector<Pending> queue;  // a heap ordered by Later
  uint64_t next_sequence = 0;
  asio::steady_timer timer;
  // Each arming of the timer gets a generation; a completion of an older arming is stale.
  uint64_t timer_generation = 0;
  bool timer_armed = false;
  MonoTime timer_at{};

  stream_protocol::acceptor acceptor;
  asio::steady_timer accept_retry;
  std::string control_path;
  bool control_bound = false;
  std::set<std::shared_ptr<ControlSession>> sessions;

  std::shared_ptr<spdlog::logger> log;
  bool stopped = false;

  Status OpenSockets();
  Status OpenControl();
  void WaitReadable(size_t direction);
  void Drain(size_t direction);
  void Send(size_t direction, const uint8_t* data, size_t bytes, MonoTime intended);
  void Enqueue(Pending pending);
  void Arm();
  void FlushDue();
  void Accept();
  void Shutdown();
};

// One control connection: lines in, framed replies out, bounded line length and idle time.
class Relay::Impl::ControlSession : public std::enable_shared_from_this<ControlSession> {
 public:
  ControlSession(Impl& relay, stream_protocol::socket socket)
      : relay_(relay), socket_(std::move(socket)), idle_(relay.io) {}

  void Start() {
    ReadMore();
    ArmIdle();
  }

  // Sends `text` (if any) and closes once it is written.
  void CloseAfter(const std::string& text) {
    closing_ = true;
    reading_closed_ = true;
    Write(text);
  }

  void Close() {
    boost::system::error_code ignored;
    idle_.cancel();
    socket_.close(ignored);
    relay_.sessions.erase(shared_from_this());
  }

 private:
  void ArmIdle() {
    idle_.expires_after(kControlIdleTimeout);
    idle_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->relay_.stopped) return;
      self->CloseAfter("error: idle for 60s, closing\n");
    });
  }

  void ReadMore() {
    socket_.async_read_some(asio::buffer(chunk_),
                            [self = shared_from_this()](const boost::system::error_code& ec, size_t bytes) {
                              if (self->relay_.stopped || self->reading_closed_) return;
                              if (ec) {
                                // End of input: a last line without '\n' still counts (`printf show | socat
                                // ...`).
                                if (ec == asio::error::eof && !self->pending_.empty()) {
                                  std::string line = std::move(self->pending_);
                                  self->pending_.clear();
                                  self->CloseAfter(ExecuteControlLine(self->relay_.model, line).Framed());
                                } else if (self->writing_) {
                                  self->closing_ = true;
                                  self->reading_closed_ = true;
                                } else {
                                  self->Close();
                                }
                                return;
                              }
                              self->ArmIdle();
                              self->pending_.append(self->chunk_.data(), bytes);
                              size_t newline;
                              while ((newline = self->pending_.find('\n')) != std::string::npos) {
                                std::string line = self->pending_.substr(0, newline);
                                self->pending_.erase(0, newline + 1);
                                self->Handle(line);
                              }
                              if (self->pending_.size() > kMaxControlLineBytes) {
                                self->pending_.clear();
                                self->CloseAfter("error: command longer than 4096 bytes, closing\n");
                                return;
                              }
                              self->ReadMore();
                            });
  }

  void Handle(const std::string& line) {
    const ControlReply reply = ExecuteControlLine(relay_.model, line);
    const auto words = SplitWords(line);
    const bool changes = !words.empty() && (words[0] == "set" || words[0] == "set-both" ||
                                            words[0] == "node" || words[0] == "reset");
    // Changes are logged so a run's log says when the WAN changed; reads are not.
    if (changes && reply.ok) relay_.log->info("ctl: {}", line);
    // A few refusals per connection are worth a log line; a client sending garbage by the
    // megabyte must not turn into as many lines.
    if (!reply.ok && ++refused_ <= kLoggedRefusalsPerConnection) {
      relay_.log->info("ctl refused '{}': {}{}", Printable(line), reply.error,
                       refused_ == kLoggedRefusalsPerConnection
                           ? " (further refusals on this connection not logged)"
                           : "");
    }
    Write(reply.Framed());
  }

  void Write(const std::string& text) {
    outbox_ += text;
    if (!writing_) WriteNext();
  }

  void WriteNext() {
    if (outbox_.empty()) {
      if (closing_) Close();
      return;
    }
    writing_ = true;
    current_ = std::move(outbox_);
    outbox_.clear();
    asio::async_write(socket_, asio::buffer(current_),
                      [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                        self->writing_ = false;
                        if (self->relay_.stopped) return;
                        if (ec) {
                          self->Close();
                          return;
                        }
                        self->WriteNext();
                      });
  }

  Impl& relay_;
  stream_protocol::socket socket_;
  asio::steady_timer idle_;
  std::array<char, 1024> chunk_{};
  std::string pending_;
  std::string outbox_;
  std::string current_;
  bool writing_ = false;
  bool closing_ = false;
  bool reading_closed_ = false;
  int refused_ = 0;
};

Status Relay::Impl::OpenSockets() {
  const WanConfig& config = model.config();
  boost::system::error_code ec;
  const auto listen = asio::ip::make_address(config.listen_address, ec);
  if (ec) return Error{"listen_address " + config.listen_address + ": " + ec.message()};
  const udp protocol = listen.is_v6() ? udp::v6() : udp::v4();
  for (size_t d = 0; d < model.DirectionCount(); ++d) {
    const LinkDirectionState& direction = model.Direction(d);
    const NodeConfig& from = config.nodes[direction.from];
    const NodeConfig& to = config.nodes[direction.to];
    const udp::endpoint from_endpoint(asio::ip::make_address(from.endpoint_ip), from.endpoint_port);
    const udp::endpoint to_endpoint(asio::ip::make_address(to.endpoint_ip), to.endpoint_port);
    for (const auto* node : {&from, &to}) {
      if (listen.is_v4() && asio::ip::make_address(node->endpoint_ip).is_v6()) {
        return Error{"node " + node->name + " has an IPv6 endpoint but listen_address " +
                     config.listen_address + " is IPv4"};
      }
    }
    expected.push_back(Unmapped(from_endpoint));
    destination.push_back(ForProtocol(to_endpoint, protocol));

    udp::socket socket(io);
    socket.open(protocol, ec);
    if (ec) return Error{"UDP socket for " + from.name + " -> " + to.name + ": " + ec.message(), ec.value()};
    if (protocol == udp::v6()) socket.set_option(asio::ip::v6_only(false), ec);
    // No SO_REUSEADDR: a port taken by another process must fail loudly, not be shared.
    socket.bind(udp::endpoint(listen, direction.in_port), ec);
    if (ec) {
      return Error{"bind " + config.listen_address + " port " + std::to_string(direction.in_port) + " (" +
                       from.name + " -> " + to.name + "): " + ec.message(),
                   ec.value()};
    }
    model.SetBoundPort(d, socket.local_endpoint().port());
    const int on = 1;
    if (::setsockopt(socket.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) != 0) {
      log->warn("SO_TIMESTAMPNS on port {}: {}; delays count from the read instead", direction.in_port,
                std::strerror(errno));
    }
    socket.non_blocking(true, ec);
    sockets.push_back(std::move(socket));
    send_error_logged.push_back(false);
  }
  return OkStatus();
}

Status Relay::Impl::OpenControl() {
  control_path = model.config().control_socket;
  struct stat st {};
  if (::lstat(control_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Error{"control_socket " + control_path + " exists and is not a socket"};
    // A socket file that nobody answers on is a crashed run's leftover; one that answers
    // belongs to a running emulator, which must not lose its socket to us.
    stream_protocol::socket probe(io);
    boost::system::error_code ec;
    probe.connect(stream_protocol::endpoint(control_path), ec);
    if (!ec) return Error{"control_socket " + control_path + ": another process is listening on it"};
    ::unlink(control_path.c_str());
  }
  boost::system::error_code ec;
  acceptor.open(stream_protocol(), ec);
  if (!ec) acceptor.bind(stream_protocol::endpoint(control_path), ec);
  if (ec) return Error{"control_socket " + control_path + ": " + ec.message(), ec.value()};
  control_bound = true;
  // Only root (the lab) may change the WAN.
  ::chmod(control_path.c_str(), 0600);
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{"listen on control_socket " + control_path + ": " + ec.message(), ec.value()};
  return OkStatus();
}

void Relay::Impl::WaitReadable(size_t direction) {
  sockets[direction].async_wait(udp::socket::wait_read,
                                [this, direction](const boost::system::error_code& ec) {
                                  if (ec || stopped) return;
                                  Drain(direction);
                                  WaitReadable(direction);
                                });
}

void Relay::Impl::Drain(size_t direction) {
  const int fd = sockets[direction].native_handle();
  for (int i = 0; i < kReadBurst; ++i) {
    sockaddr_storage from{};
    iovec iov{buffer.data(), buffer.size()};
    alignas(cmsghdr) char control[128];
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        log->warn("recvmsg on port {}: {}", model.Direction(direction).in_port, std::strerror(errno));
      }
      return;
    }
    const MonoTime now = std::chrono::steady_clock::now();
    MonoTime received = now;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
      timespec ts{};
      std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
      // The stamp is wall-clock time; its distance from the wall clock now, taken off the
      // steady clock now, puts it on the steady clock the delay queue runs on.
      const auto wall_now = std::chrono::system_clock::now().time_since_epoch();
      const auto lag = std::chrono::duration_cast<Nanos>(wall_now) -
                       (std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
      if (lag >= Nanos{0} && lag < kMaxBelievedReceiveLag) {
        received = now - lag;
        model.RecordReceiveLag(lag);
      }
    }
    if ((msg.msg_flags & MSG_TRUNC) != 0) {
      model.CountOversize(direction);
      continue;
    }
    udp::endpoint sender;
    // An address longer than an endpoint holds is not from an IP peer of ours.
    if (msg.msg_namelen > sender.capacity()) {
      model.CountForeign(direction);
      continue;
    }
    std::memcpy(sender.data(), &from, msg.msg_namelen);
    sender.resize(msg.msg_namelen);
    if (Unmapped(sender) != expected[direction]) {
      model.CountForeign(direction);
      continue;
    }
    const size_t bytes = static_cast<size_t>(n);
    const AdmitResult admit = model.Admit(direction, bytes, received);
    if (admit.admission != Admission::kDeliver) continue;
    // Due already and nothing of this direction waiting ahead of it: send now, skipping the
    // queue and a timer wake-up (the common case at zero delay).
    if (admit.deliver_at <= now && model.Direction(direction).queued_packets == 1) {
      Send(direction, buffer.data(), bytes, admit.deliver_at);
      continue;
    }
    Enqueue(Pending{admit.deliver_at, next_sequence++, direction,
                    std::vector<uint8_t>(buffer.begin(), buffer.begin() + static_cast<ptrdiff_t>(bytes))});
  }
}

void Relay::Impl::Send(size_t direction, const uint8_t* data, size_t bytes, MonoTime intended) {
  // Leaves from the reverse direction's socket: the receiver sees the port it sends to.
  const udp::endpoint& to = destination[direction];
  // Stamped before the call: on a veth or loopback, sendto delivers into the receiver's
  // socket and may run the woken receiver before it returns, which is not our lateness.
  const MonoTime sent = std::chrono::steady_clock::now();
  const ssize_t rc = ::sendto(sockets[WanModel::Reverse(direction)].native_handle(), data, bytes,
                              MSG_DONTWAIT, to.data(), to.size());
  if (rc < 0) {
    const int error = errno;
    model.SendFailed(direction, bytes);
    // Once per direction at warn (a down peer would otherwise flood the log), then debug.
    const auto& d = model.Direction(direction);
    const auto& nodes = model.config().nodes;
    if (!send_error_logged[direction]) {
      send_error_logged[direction] = true;
      log->warn("send {} -> {} to {}: {} (further errors on this direction at debug level)",
                nodes[d.from].name, nodes[d.to].name,
                to.address().to_string() + ":" + std::to_string(to.port()), std::strerror(error));
    } else {
      log->debug("send {} -> {}: {}", nodes[d.from].name, nodes[d.to].name, std::strerror(error));
    }
    return;
  }
  model.Sent(direction, bytes, intended, sent);
}

void Relay::Impl::Enqueue(Pending pending) {
  queue.push_back(std::move(pending));
  std::push_heap(queue.begin(), queue.end(), Later);
  Arm();
}

void Relay::Impl::Arm() {
  if (queue.empty() || stopped) return;
  const MonoTime next = queue.front().at;
  if (timer_armed && timer_at <= next) return;
  timer_armed = true;
  timer_at = next;
  const uint64_t generation = ++timer_generation;
  // Re-arming cancels the previous wait; its handler sees operation_aborted or, if it had
  // already fired, a stale generation.
  timer.expires_at(next);
  timer.async_wait([this, generation](const boost::system::error_code& ec) {
    if (ec || stopped || generation != timer_generation) return;
    timer_armed = false;
    FlushDue();
    Arm();
  });
}

void Relay::Impl::FlushDue() {
  while (!queue.empty() && queue.front().at <= std::chrono::steady_clock::now()) {
    std::pop_heap(queue.begin(), queue.end(), Later);
    Pending pending = std::move(queue.back());
    queue.pop_back();
    Send(pending.direction, pending.payload.data(), pending.payload.size(), pending.at);
  }
}

void Relay::Impl::Accept() {
  acceptor.async_accept([this](const boost::system::error_code& ec, stream_protocol::socket socket) {
    if (stopped) return;
    if (ec) {
      // Out of descriptors, most likely: try again shortly rather than spin.
      log->warn("accept on {}: {}", control_path, ec.message());
      accept_retry.expires_after(std::chrono::milliseconds(100));
      accept_retry.async_wait([this](const boost::system::error_code& wait_ec) {
        if (!wait_ec && !stopped) Accept();
      });
      return;
    }
    auto session = std::make_shared<ControlSession>(*this, std::move(socket));
    sessions.insert(session);
    if (sessions.size() > kMaxControlSessions) {
      session->CloseAfter("error: too many control connections (16), closing\n");
    } else {
      session->Start();
    }
    Accept();
  });
}

void Relay::Impl::Shutdown() {
  if (stopped) return;
  stopped = true;
  boost::system::error_code ignored;
  timer.cancel();
  accept_retry.cancel();
  acceptor.close(ignored);
  for (const auto& session : std::set<std::shared_ptr<ControlSession>>(sessions)) session->Close();
  sessions.clear();
  for (auto& socket : sockets) socket.close(ignored);
  if (!queue.empty()) log->info("{} delayed datagrams not sent: shutting down", queue.size());
  for (const auto& pending : queue) model.Discarded(pending.direction, pending.payload.size());
  queue.clear();
  if (control_bound) {
    ::unlink(control_path.c_str());
    control_bound = false;
  }
}

Result<std::unique_ptr<Relay>> Relay::Start(asio::io_context& io, WanConfig config, uint64_t seed) {
  auto impl = std::make_unique<Impl>(io, std::move(config), seed);
  if (auto ok = impl->OpenSockets(); !ok) return ok.error();
  if (auto ok = impl->OpenControl(); !ok) return ok.error();
  for (size_t d = 0; d < impl->sockets.size(); ++d) impl->WaitReadable(d);
  impl->Accept();
  return std::unique_ptr<Relay>(new Relay(std::move(impl)));
}

Relay::Relay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

// ~Impl shuts down.
Relay::~Relay() = default;

void Relay::Shutdown() {
  impl_->Shutdown();
}

const WanModel& Relay::model() const {
  return impl_->model;
}

}  // namespace regionpulse::wan
