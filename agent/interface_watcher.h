// InterfaceWatcher: follows the network interfaces of the calling thread's network namespace
// through rtnetlink notifications (RTM_NEWLINK / RTM_DELLINK), so the datapath attaches to an
// interface the moment it appears and re-attaches when it is deleted and created again. It
// reports every link, selected or not: which ones to attach to depends on which others exist
// (wg* only while no Cilium tunnel device does), decided by agent/interface_selection.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "common/result.h"

namespace regionpulse {

struct LinkInfo {
  std::string name;
  uint32_t ifindex = 0;
  uint16_t arphrd_type = 0;  // ifinfomsg.ifi_type: ARPHRD_ETHER, ARPHRD_NONE (WireGuard, tun), ...
};

// How the tc programs find the IP header on a device: behind an Ethernet header, at the start
// of the packet, or not at all (a link type we do not parse).
enum class LinkLayer { kEthernet, kL3Only, kUnsupported };
LinkLayer LinkLayerOf(uint16_t arphrd_type);

class InterfaceWatcher {
 public:
  using AppearedFn = std::function<void(const LinkInfo&)>;
  using VanishedFn = std::function<void(uint32_t ifindex, const std::string& name)>;

  // Subscribes to link notifications, reports every existing interface through `appeared`
  // on the calling thread before returning, then keeps reporting changes from a thread of
  // its own (created here, so it stays in the caller's network namespace). `appeared` may be
  // called again for an interface it already reported (any attribute change); callers treat
  // it as "this interface exists now with this ifindex".
  static Result<std::unique_ptr<InterfaceWatcher>> Start(AppearedFn appeared, VanishedFn vanished);
  ~InterfaceWatcher();  // stops and joins the thread
  InterfaceWatcher(const InterfaceWatcher&) = delete;
  InterfaceWatcher& operator=(const InterfaceWatcher&) = delete;

 private:
  InterfaceWatcher(int netlink_fd, int stop_fd, AppearedFn appeared, VanishedFn vanished);
  Status RequestDump();
  // Reads and dispatches what is queued; returns false when the dump in progress is done.
  Status ReadMessages(bool* dump_done);
  void Run();

  int netlink_fd_;
  int stop_fd_;  // eventfd: written by the destructor to end Run()
  AppearedFn appeared_;
  VanishedFn vanished_;
  std::thread thread_;
  // Every link seen, so that a re-listing after lost notifications (ENOBUFS) can report the
  // ones that vanished meanwhile. Touched by one thread at a time (Start, then Run).
  std::map<uint32_t, std::string> known_;
  bool resyncing_ = false;
  std::set<uint32_t> seen_in_resync_;
};

}  // namespace regionpulse
