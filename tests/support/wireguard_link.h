// A real WireGuard tunnel (wireguard-go, a TUN device) between two network namespaces, with
// the same interface name on both sides (cilium_wg0 by default, as on Cilium nodes). Each
// side runs wireguard-go in its own mount namespace with a private /run/wireguard, because
// the UAPI socket /run/wireguard/<ifname>.sock would otherwise collide between the sides.
// Everything is removed by the destructor, also when a test fails.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace regionpulse::test {

struct WireguardSide {
  std::string netns;             // network namespace the interface lives in
  std::string tunnel_ipv4;       // "10.210.0.1/24": address on the WireGuard interface
  std::string tunnel_ipv6;       // "fd10:210::1/64", or empty for IPv4 only
  std::string underlay_ip;       // this side's address that the other side reaches it on
  uint16_t listen_port = 51820;  // UDP port on the underlay
  // Extra prefixes routed to this side through the tunnel (added to the peer's allowed-ips
  // and routes), e.g. a region's pod CIDR. The tunnel addresses are always included.
  std::vector<std::string> routed_prefixes;
};

class WireguardLink {
 public:
  // Starts wireguard-go on both sides, configures keys, peers and addresses, brings the
  // interfaces up, and returns once the tunnel carries a ping in both directions (throws
  // std::runtime_error with the command output otherwise).
  WireguardLink(const WireguardSide& a, const WireguardSide& b, const std::string& ifname = "cilium_wg0");
  ~WireguardLink();
  WireguardLink(const WireguardLink&) = delete;
  WireguardLink& operator=(const WireguardLink&) = delete;

  const std::string& ifname() const { return ifname_; }
  const WireguardSide& a() const { return a_; }
  const WireguardSide& b() const { return b_; }
  // Tunnel addresses without prefix length ("10.210.0.1").
  std::string a_ipv4() const;
  std::string b_ipv4() const;
  std::string a_ipv6() const;
  std::string b_ipv6() const;

  // Deletes the interface on side a (wireguard-go exits with it) and starts it again with the
  // same configuration: what a test of "interface deleted and re-created" needs.
  void RecreateSideA();

 private:
  struct Process {
    pid_t pid = -1;
    std::string private_key;
  };
  void StartSide(const WireguardSide& self, const WireguardSide& peer, Process& process);
  void StopSide(const WireguardSide& self, Process& process);
  void WaitForPing(const WireguardSide& from, const std::string& to_ipv4);

  std::string ifname_;
  WireguardSide a_;
  WireguardSide b_;
  Process process_a_;
  Process process_b_;
  std::string public_key_a_;
  std::string public_key_b_;
};

}  // namespace regionpulse::test
