// wireguard-go tunnels between namespaces, driven with iproute2, wg and nsenter.
#include "tests/support/wireguard_link.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "tests/support/poll_until.h"
#include "tests/support/test_network.h"

namespace regionpulse::test {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string WithoutPrefixLength(const std::string& cidr) {
  return cidr.substr(0, cidr.find('/'));
}

// Polls `command` until it succeeds or the deadline passes.
bool PollUntilSuccess(const std::string& command, std::chrono::milliseconds timeout) {
  return PollUntil([&] { return RunStatus(command) == 0; }, timeout);
}

}  // namespace

WireguardLink::WireguardLink(const WireguardSide& a, const WireguardSide& b, const std::string& ifname)
    : ifname_(ifname), a_(a), b_(b) {
  process_a_.private_key = Trim(RunOrThrow("wg genkey"));
  process_b_.private_key = Trim(RunOrThrow("wg genkey"));
  public_key_a_ = Trim(RunOrThrow("echo " + process_a_.private_key + " | wg pubkey"));
  public_key_b_ = Trim(RunOrThrow("echo " + process_b_.private_key + " | wg pubkey"));
  try {
    StartSide(a_, b_, process_a_);
    StartSide(b_, a_, process_b_);
    WaitForPing(a_, b_ipv4());
    WaitForPing(b_, a_ipv4());
  } catch (...) {
    StopSide(b_, process_b_);
    StopSide(a_, process_a_);
    throw;
  }
}

WireguardLink::~WireguardLink() {
  StopSide(b_, process_b_);
  StopSide(a_, process_a_);
}

std::string WireguardLink::a_ipv4() const {
  return WithoutPrefixLength(a_.tunnel_ipv4);
}
std::string WireguardLink::b_ipv4() const {
  return WithoutPrefixLength(b_.tunnel_ipv4);
}
std::string WireguardLink::a_ipv6() const {
  return WithoutPrefixLength(a_.tunnel_ipv6);
}
std::string WireguardLink::b_ipv6() const {
  return WithoutPrefixLength(b_.tunnel_ipv6);
}

void WireguardLink::RecreateSideA() {
  StopSide(a_, process_a_);
  StartSide(a_, b_, process_a_);
  WaitForPing(a_, b_ipv4());
}

void WireguardLink::StartSide(const WireguardSide& self, const WireguardSide& peer, Process& process) {
  RunOrThrow("mkdir -p /run/wireguard");
  // `ip netns exec` already gives the child its own mount namespace (it remounts /sys there);
  // a tmpfs over /run/wireguard inside it makes the UAPI socket private to this side.
  const std::string script = "mount -t tmpfs rpwg /run/wireguard && exec wireguard-go -f " + ifname_;
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork for wireguard-go failed");
  if (pid == 0) {
    // wireguard-go prints a banner about the kernel module on stderr; keep test output clean.
    const int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      dup2(devnull, STDOUT_FILENO);
      dup2(devnull, STDERR_FILENO);
    }
    execlp("ip", "ip", "netns", "exec", self.netns.c_str(), "sh", "-c", script.c_str(),
           static_cast<char*>(nullptr));
    _exit(127);
  }
  process.pid = pid;
  const std::string in_side = "nsenter -t " + std::to_string(pid) + " -m -n ";
  if (!PollUntilSuccess(in_side + "test -S /run/wireguard/" + ifname_ + ".sock", std::chrono::seconds(10))) {
    throw std::runtime_error("wireguard-go " + ifname_ + " in " + self.netns + " did not create its socket");
  }

  const std::string key_file = "/dev/shm/" + RunPrefix() + "-" + self.netns + "-wg.key";
  RunOrThrow("umask 077 && echo " + process.private_key + " > " + key_file);
  std::string allowed = WithoutPrefixLength(peer.tunnel_ipv4) + "/32";
  if (!peer.tunnel_ipv6.empty()) allowed += "," + WithoutPrefixLength(peer.tunnel_ipv6) + "/128";
  for (const auto& prefix : peer.routed_prefixes) allowed += "," + prefix;
  const std::string& peer_public = (&process == &process_a_) ? public_key_b_ : public_key_a_;
  const bool peer_is_ipv6 = peer.underlay_ip.find(':') != std::string::npos;
  const std::string endpoint = peer_is_ipv6 ? "[" + peer.underlay_ip + "]" : peer.underlay_ip;
  std::string wg_error;
  try {
    RunOrThrow(in_side + "wg set " + ifname_ + " private-key " + key_file + " listen-port " +
               std::to_string(self.listen_port) + " peer " + peer_public + " allowed-ips " + allowed +
               " endpoint " + endpoint + ":" + std::to_string(peer.listen_port) + " persistent-keepalive 0");
  } catch (const std::exception& e) {
    wg_error = e.what();
  }
  RunStatus("rm -f " + key_file);
  if (!wg_error.empty()) throw std::runtime_error(wg_error);

  const std::string exec = "ip netns exec " + self.netns + " ";
  RunOrThrow(exec + "ip addr add " + self.tunnel_ipv4 + " dev " + ifname_);
  if (!self.tunnel_ipv6.empty())
    RunOrThrow(exec + "ip -6 addr add " + self.tunnel_ipv6 + " dev " + ifname_ + " nodad");
  RunOrThrow(exec + "ip link set " + ifname_ + " up");
  for (const auto& prefix : peer.routed_prefixes) {
    RunOrThrow(exec + "ip route replace " + prefix + " dev " + ifname_);
  }
}

void WireguardLink::StopSide(const WireguardSide& self, Process& process) {
  if (process.pid <= 0) return;
  // Deleting the interface makes wireguard-go exit; the signal covers a half-started side.
  RunStatus("ip netns exec " + self.netns + " ip link del " + ifname_);
  kill(process.pid, SIGTERM);
  int status = 0;
  waitpid(process.pid, &status, 0);
  process.pid = -1;
}

void WireguardLink::WaitForPing(const WireguardSide& from, const std::string& to_ipv4) {
  // The first packet triggers the handshake; a few retries cover it.
  if (!PollUntilSuccess("ip netns exec " + from.netns + " ping -c 1 -W 1 " + to_ipv4,
                        std::chrono::seconds(15))) {
    throw std::runtime_error("no ping over " + ifname_ + " from " + from.netns + " to " + to_ipv4);
  }
}

}  // namespace regionpulse::test
