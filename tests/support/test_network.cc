// Namespaces and veth pairs for integration tests, built with iproute2.
#include "tests/support/test_network.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace regionpulse::test {

std::string RunOrThrow(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed for: " + command);
  std::array<char, 512> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
  const int status = pclose(pipe);
  if (status != 0) {
    throw std::runtime_error("command failed (status " + std::to_string(WEXITSTATUS(status)) +
                             "): " + command + "\n" + output);
  }
  return output;
}

int RunStatus(const std::string& command) {
  const int status = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string RunPrefix() {
  return "rpt" + std::to_string(getpid() % 100000);
}

NetworkNamespace::NetworkNamespace(const std::string& suffix) : name_(RunPrefix() + "-" + suffix) {
  RunStatus("ip netns del " + name_);  // a leftover of a crashed run with the same pid
  RunOrThrow("ip netns add " + name_);
  RunOrThrow(Exec() + "ip link set lo up");
}

NetworkNamespace::~NetworkNamespace() {
  RunStatus("ip netns del " + name_);
}

ScopedNetnsEntry::ScopedNetnsEntry(const std::string& netns_name) {
  original_fd_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original_fd_ < 0) throw std::runtime_error(std::string("open own netns: ") + strerror(errno));
  const std::string path = "/run/netns/" + netns_name;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + path + ": " + strerror(errno));
  const int rc = setns(fd, CLONE_NEWNET);
  const int saved = errno;
  close(fd);
  if (rc != 0) throw std::runtime_error("setns " + netns_name + ": " + strerror(saved));
}

ScopedNetnsEntry::~ScopedNetnsEntry() {
  if (original_fd_ >= 0) {
    setns(original_fd_, CLONE_NEWNET);
    close(original_fd_);
  }
}

VethPair::VethPair(const NetworkNamespace& a, const NetworkNamespace& b, const std::string& name_a,
                   const std::string& name_b, int subnet) {
  const std::string s = std::to_string(subnet);
  a_ = {a.name(), name_a, "10." + s + ".0.1", "fd00:" + s + "::1"};
  b_ = {b.name(), name_b, "10." + s + ".0.2", "fd00:" + s + "::2"};
  RunOrThrow(a.Exec() + "ip link add " + name_a + " type veth peer name " + name_b + " netns " + b.name());
  for (const auto* end : {&a_, &b_}) {
    const std::string exec = "ip netns exec " + end->netns + " ";
    RunOrThrow(exec + "ip addr add " + end->ipv4 + "/24 dev " + end->ifname);
    RunOrThrow(exec + "ip -6 addr add " + end->ipv6 + "/64 dev " + end->ifname + " nodad");
    RunOrThrow(exec + "ip link set " + end->ifname + " up");
  }
}

VethPair::~VethPair() {
  RunStatus("ip netns exec " + a_.netns + " ip link del " + a_.ifname);
}

}  // namespace regionpulse::test
