// The real regionpulse-wan process and UDP endpoints for its end-to-end tests.
#include "tests/tools/wan_emulator_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/poll_until.h"

namespace regionpulse::test {

EmulatorProcess::EmulatorProcess(const std::string& log_path, const std::vector<std::string>& args,
                                 const std::string& netns)
    : log_path_(log_path) {
  std::vector<std::string> argv;
  if (!netns.empty()) argv = {"/usr/bin/ip", "netns", "exec", netns};
  argv.push_back(REGIONPULSE_WAN_BINARY);
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c_argv;
  for (auto& arg : argv) c_argv.push_back(arg.data());
  c_argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    const int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log >= 0) {
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
    }
    execv(c_argv[0], c_argv.data());
    _exit(127);
  }
}

EmulatorProcess::~EmulatorProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void EmulatorProcess::Signal(int signal_number) {
  if (pid_ > 0) kill(pid_, signal_number);
}

std::optional<int> EmulatorProcess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  std::optional<int> code;
  bool exited = PollUntil(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
        if (WIFEXITED(status)) code = WEXITSTATUS(status);
        pid_ = -1;
        return true;
      },
      timeout, std::chrono::milliseconds(10));
  return exited ? code : std::nullopt;
}

bool EmulatorProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::string EmulatorProcess::Output() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool WaitUntilServing(const std::string& socket_path, EmulatorProcess& process,
                      std::chrono::milliseconds timeout) {
  return PollUntil(
             [&] {
               if (!process.Running()) return true;  // the caller's next check reports it
               auto reply = wan::SendControlCommand(socket_path, "ports", std::chrono::seconds(2));
               return reply.ok() && reply->ok;
             },
             timeout) &&
         process.Running();
}

uint16_t PortFor(const std::string& ports_reply, const std::string& from, const std::string& to) {
  std::istringstream lines(ports_reply);
  std::string f, t;
  unsigned port = 0;
  while (lines >> f >> t >> port) {
    if (f == from && t == to) return static_cast<uint16_t>(port);
  }
  return 0;
}

std::optional<uint64_t> LinkCounter(const std::string& stats_json, const std::string& from,
                                    const std::string& to, const std::string& key) {
  const size_t links = stats_json.find("\"links\":[");
  if (links == std::string::npos) return std::nullopt;
  const size_t entry = stats_json.find("{\"from\":\"" + from + "\",\"to\":\"" + to + "\"", links);
  if (entry == std::string::npos) return std::nullopt;
  const size_t end = stats_json.find("\"send_error_ns\"", entry);
  const size_t at = stats_json.find("\"" + key + "\":", entry);
  if (at == std::string::npos || at > end) return std::nullopt;
  return std::strtoull(stats_json.c_str() + at + key.size() + 3, nullptr, 10);
}

UdpSocket::UdpSocket(const std::string& address, uint16_t port) {
  fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in bind_to{};
  bind_to.sin_family = AF_INET;
  bind_to.sin_port = htons(port);
  inet_pton(AF_INET, address.c_str(), &bind_to.sin_addr);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&bind_to), sizeof(bind_to)) != 0) {
    throw std::runtime_error("bind " + address + ":" + std::to_string(port) + ": " + std::strerror(errno));
  }
  socklen_t length = sizeof(bind_to);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&bind_to), &length);
  port_ = ntohs(bind_to.sin_port);
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) close(fd_);
}

void UdpSocket::SendTo(const std::string& address, uint16_t port, const std::string& payload) const {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, address.c_str(), &to.sin_addr);
  if (sendto(fd_, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) {
    throw std::runtime_error(std::string("sendto: ") + std::strerror(errno));
  }
}

std::optional<Datagram> UdpSocket::Receive(std::chrono::milliseconds timeout) const {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
  char buffer[65536];
  sockaddr_in from{};
  socklen_t length = sizeof(from);
  const ssize_t n = recvfrom(fd_, buffer, sizeof(buffer), 0, reinterpret_cast<sockaddr*>(&from), &length);
  if (n < 0) return std::nullopt;
  return Datagram{std::string(buffer, static_cast<size_t>(n)), ntohs(from.sin_port),
                  std::chrono::steady_clock::now()};
}

}  // namespace regionpulse::test
