// libFuzzer: any bytes as an rtnetlink datagram the interface watcher reads (RTM_NEWLINK,
// RTM_DELLINK, NLMSG_DONE, NLMSG_ERROR). Parsing must never read outside the datagram, even
// when a message, its ifinfomsg or an IFLA_IFNAME (without its NUL) is cut short.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "agent/netlink_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace regionpulse;
  // The kernel's datagrams are 4-byte aligned; libFuzzer's input need not be. Exactly `size`
  // bytes are allocated, so ASan sees any read past them.
  std::vector<uint32_t> aligned((size + 3) / 4);
  if (size > 0) std::memcpy(aligned.data(), data, size);
  const std::span<const uint8_t> datagram(reinterpret_cast<const uint8_t*>(aligned.data()), size);
  const std::vector<LinkMessage> messages = ParseLinkDatagram(datagram);
  // Every message needs at least a netlink header of its own.
  if (messages.size() > size / 16) std::abort();
  for (size_t i = 0; i < messages.size(); ++i) {
    // Nothing follows an error; a name never exceeds the datagram.
    if (messages[i].kind == LinkMessage::Kind::kError && (i + 1 != messages.size() || messages[i].error == 0))
      std::abort();
    if (messages[i].link.name.size() > size) std::abort();
  }
  return 0;
}
