// rtnetlink link notifications, read with plain sockets: the messages needed are few and
// simple, so no netlink library is pulled in.
#include "agent/interface_watcher.h"

#include "common/component_logger.h"

#include <linux/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <span>

#include "agent/netlink_parse.h"

namespace regionpulse {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  return ComponentLogger("datapath");
}

}  // namespace

LinkLayer LinkLayerOf(uint16_t arphrd_type) {
  switch (arphrd_type) {
    case ARPHRD_ETHER:
      return LinkLayer::kEthernet;
    case ARPHRD_NONE:   // WireGuard (kernel and wireguard-go's TUN), tun
    case ARPHRD_RAWIP:  // raw-IP devices
      return LinkLayer::kL3Only;
    default:
      return LinkLayer::kUnsupported;
  }
}

Result<std::unique_ptr<InterfaceWatcher>> InterfaceWatcher::Start(AppearedFn appeared, VanishedFn vanished) {
  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) return Error{"opening an rtnetlink socket to follow interfaces", errno};
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  local.nl_groups = RTMGRP_LINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    const int err = errno;
    close(fd);
    return Error{"subscribing to rtnetlink link notifications (RTMGRP_LINK)", err};
  }
  const int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) {
    const int err = errno;
    close(fd);
    return Error{"creating the interface watcher's stop eventfd", err};
  }
  std::unique_ptr<InterfaceWatcher> watcher(
      new InterfaceWatcher(fd, stop_fd, std::move(appeared), std::move(vanished)));
  // Subscribed first, dumped second: a link created in between is in one or the other.
  if (Status dump = watcher->RequestDump(); !dump.ok()) return dump.error();
  bool done = false;
  while (!done) {
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, 5000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return Error{"waiting for the rtnetlink link dump", ready == 0 ? ETIMEDOUT : errno};
    if (Status read = watcher->ReadMessages(&done); !read.ok()) return read.error();
  }
  watcher->thread_ = std::thread([w = watcher.get()] { w->Run(); });
  return watcher;
}

InterfaceWatcher::InterfaceWatcher(int netlink_fd, int stop_fd, AppearedFn appeared, VanishedFn vanished)
    : netlink_fd_(netlink_fd),
      stop_fd_(stop_fd),
      appeared_(std::move(appeared)),
      vanished_(std::move(vanished)) {}

InterfaceWatcher::~InterfaceWatcher() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof(one)) < 0)
      Log()->error("stopping the interface watcher: {}", strerror(errno));
    thread_.join();
  }
  close(stop_fd_);
  close(netlink_fd_);
}

Status InterfaceWatcher::RequestDump() {
  struct {
    nlmsghdr header;
    ifinfomsg body;
  } request{};
  request.header.nlmsg_len = sizeof(request);
  request.header.nlmsg_type = RTM_GETLINK;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.header.nlmsg_seq = 1;
  request.body.ifi_family = AF_UNSPEC;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(netlink_fd_, &request, sizeof(request), 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof(kernel)) < 0) {
    return Error{"requesting the interface list (RTM_GETLINK dump)", errno};
  }
  return OkStatus();
}

Status InterfaceWatcher::ReadMessages(bool* dump_done) {
  alignas(nlmsghdr) std::array<char, 32768> buffer{};
  while (true) {
    const ssize_t n = recv(netlink_fd_, buffer.data(), buffer.size(), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return OkStatus();
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        // Notifications were lost (a burst of link changes): list everything again, and at
        // the end of the list report what is gone.
        Log()->warn("rtnetlink notifications overflowed; listing interfaces again");
        resyncing_ = true;
        seen_in_resync_.clear();
        return RequestDump();
      }
      return Error{"reading rtnetlink link notifications", errno};
    }
    for (const LinkMessage& message : ParseLinkDatagram(std::span<const uint8_t>(
             reinterpret_cast<const uint8_t*>(buffer.data()), static_cast<size_t>(n)))) {
      switch (message.kind) {
        case LinkMessage::Kind::kDumpDone:
          *dump_done = true;
          if (resyncing_) {
            for (auto it = known_.begin(); it != known_.end();) {
              if (seen_in_resync_.count(it->first) == 0) {
                vanished_(it->first, it->second);
                it = known_.erase(it);
              } else {
                ++it;
              }
            }
            resyncing_ = false;
          }
          break;
        case LinkMessage::Kind::kError:
          return Error{"rtnetlink link dump refused", message.error};
        case LinkMessage::Kind::kNewLink:
          known_[message.link.ifindex] = message.link.name;
          if (resyncing_) seen_in_resync_.insert(message.link.ifindex);
          appeared_(message.link);
          break;
        case LinkMessage::Kind::kDelLink:
          known_.erase(message.link.ifindex);
          seen_in_resync_.erase(message.link.ifindex);
          vanished_(message.link.ifindex, message.link.name);
          break;
      }
    }
  }
}

void InterfaceWatcher::Run() {
  while (true) {
    std::array<pollfd, 2> fds{{{netlink_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}}};
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      Log()->error("interface watcher stopped: poll: {}", strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    bool unused = false;
    if (Status read = ReadMessages(&unused); !read.ok()) {
      Log()->error("interface watcher: {}", read.error().ToString());
    }
  }
}

}  // namespace regionpulse
