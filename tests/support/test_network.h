// Test fixtures that build real networks on this host: network namespaces and veth pairs,
// named with a run-unique prefix and removed by their destructors (also when a test fails).
#pragma once

#include <string>
#include <vector>

namespace regionpulse::test {

// Runs a shell command; throws std::runtime_error with the command and its output on failure.
std::string RunOrThrow(const std::string& command);
// Runs a shell command and returns its exit status (no throw).
int RunStatus(const std::string& command);

// A prefix unique to this test process ("rpt<pid>"), short enough for interface names.
std::string RunPrefix();

// `ip netns add`; deleted on destruction. Loopback is brought up.
class NetworkNamespace {
 public:
  explicit NetworkNamespace(const std::string& suffix);
  ~NetworkNamespace();
  NetworkNamespace(const NetworkNamespace&) = delete;
  NetworkNamespace& operator=(const NetworkNamespace&) = delete;

  const std::string& name() const { return name_; }
  // Prefix for running a command inside: "ip netns exec NAME ".
  std::string Exec() const { return "ip netns exec " + name_ + " "; }

 private:
  std::string name_;
};

// Enters a network namespace on the calling thread for the scope (setns), returning to the
// previous one on destruction. BPF attachment to an interface inside a namespace needs this.
class ScopedNetnsEntry {
 public:
  explicit ScopedNetnsEntry(const std::string& netns_name);
  ~ScopedNetnsEntry();
  ScopedNetnsEntry(const ScopedNetnsEntry&) = delete;
  ScopedNetnsEntry& operator=(const ScopedNetnsEntry&) = delete;

 private:
  int original_fd_ = -1;
};

// A veth pair between two namespaces with IPv4 /24 and IPv6 /64 addresses, links up.
struct VethEndpoint {
  std::string netns;
  std::string ifname;
  std::string ipv4;  // without prefix length
  std::string ipv6;
};

class VethPair {
 public:
  // Addresses 10.<subnet>.0.1/2 and fd00:<subnet>::1/2.
  VethPair(const NetworkNamespace& a, const NetworkNamespace& b, const std::string& name_a,
           const std::string& name_b, int subnet);
  ~VethPair();
  VethPair(const VethPair&) = delete;
  VethPair& operator=(const VethPair&) = delete;

  const VethEndpoint& a() const { return a_; }
  const VethEndpoint& b() const { return b_; }

 private:
  VethEndpoint a_;
  VethEndpoint b_;
};

}  // namespace regionpulse::test
