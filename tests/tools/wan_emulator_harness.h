// Test harness for the real regionpulse-wan binary: a scratch directory, the emulator as a
// child process (optionally inside a network namespace) and plain UDP sockets standing in
// for WireGuard endpoints, with waits that end on events and a deadline, never on sleeps.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/scratch_directory.h"
#include "tools/wan_emulator/control_client.h"

namespace regionpulse::test {

// regionpulse-wan ARGS... with stdout and stderr in a log file; SIGKILLed by the destructor
// if it still runs.
class EmulatorProcess {
 public:
  EmulatorProcess(const std::string& log_path, const std::vector<std::string>& args,
                  const std::string& netns = "");
  ~EmulatorProcess();
  EmulatorProcess(const EmulatorProcess&) = delete;
  EmulatorProcess& operator=(const EmulatorProcess&) = delete;

  void Signal(int signal_number);
  // The exit code once it exited within `timeout`; nullopt on timeout or death by a signal.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Running();
  std::string Output() const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

// Polls the control socket until `ports` answers (the emulator is serving) or the deadline.
bool WaitUntilServing(const std::string& socket_path, EmulatorProcess& process,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The port FROM sends to for TO, from a `ports` reply; 0 when absent.
uint16_t PortFor(const std::string& ports_reply, const std::string& from, const std::string& to);

// A number from a `stats` JSON reply: the value of "key" inside the object of the link
// direction from -> to ({"from":"a","to":"b",...}); nullopt when absent.
std::optional<uint64_t> LinkCounter(const std::string& stats_json, const std::string& from,
                                    const std::string& to, const std::string& key);

struct Datagram {
  std::string payload;
  uint16_t source_port = 0;
  std::chrono::steady_clock::time_point received;
};

// A UDP socket bound to ADDRESS:PORT (port 0: any), standing in for a node's WireGuard.
class UdpSocket {
 public:
  explicit UdpSocket(const std::string& address = "127.0.0.1", uint16_t port = 0);
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  uint16_t port() const { return port_; }
  void SendTo(const std::string& address, uint16_t port, const std::string& payload) const;
  // The next datagram, or nullopt when none came within `timeout`.
  std::optional<Datagram> Receive(std::chrono::milliseconds timeout) const;

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace regionpulse::test
