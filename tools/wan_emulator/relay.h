// Relay: the WAN emulator's I/O on one Boost.Asio io_context. For every link (A, B) it owns
// two UDP sockets: S_AB on port_for_a, where A sends, and S_BA on port_for_b, where B sends.
// A datagram from A's configured endpoint on S_AB is impaired as A -> B and then sent FROM
// S_BA to B's endpoint, so B sees it come from the port it sends to itself, and WireGuard's
// endpoint roaming keeps B pointed at the emulator. Datagrams from any other address are
// dropped and counted. Delayed datagrams wait in one priority queue behind one steady_timer.
// The control socket takes the line protocol of control_protocol.h.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include "common/result.h"
#include "tools/wan_emulator/wan_config.h"
#include "tools/wan_emulator/wan_model.h"

namespace regionpulse::wan {

class Relay {
 public:
  // Binds every link direction's socket and the control socket, and starts serving. Fails,
  // naming the port or path, without leaving a socket file behind.
  static Result<std::unique_ptr<Relay>> Start(boost::asio::io_context& io, WanConfig config, uint64_t seed);
  // Closes everything and removes the control socket (Shutdown).
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Stops receiving, drops the datagrams still waiting (logged), closes the sockets and
  // removes the control socket file. Idempotent.
  void Shutdown();

  const WanModel& model() const;

 private:
  struct Impl;
  explicit Relay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace regionpulse::wan
