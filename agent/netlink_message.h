// Walking the messages of a netlink datagram. NLMSG_OK compares an int with a __u32, which
// clang reports as an error under -Wsign-compare; this is the same test with the signs
// made explicit. Used by every reader of netlink replies in the agent.
#pragma once

#include <linux/netlink.h>

#include <cstdint>

namespace regionpulse {

// Whether a whole message starts at `msg` within the `remaining` bytes of the datagram.
inline bool NetlinkMessageFits(const nlmsghdr* msg, int remaining) {
  return remaining >= static_cast<int>(sizeof(nlmsghdr)) && msg->nlmsg_len >= sizeof(nlmsghdr) &&
         msg->nlmsg_len <= static_cast<uint32_t>(remaining);
}

}  // namespace regionpulse
