// Netlink reply parsing. Every read is inside the message that carries it: the message within
// the datagram (NetlinkMessageFits), the fixed header within the message, each attribute
// within what follows the header (RTA_OK), each attribute's payload copied, never cast.
#include "agent/netlink_parse.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "agent/netlink_message.h"

namespace regionpulse {
namespace {

// include/net/tcp_states.h: every state of a connection past the handshake that still has a
// full socket (TIME_WAIT sockets are mini-sockets without tcp_info).
constexpr uint32_t kConnectedStates = (1U << 1) /* ESTABLISHED */ | (1U << 4) /* FIN_WAIT1 */ |
                                      (1U << 5) /* FIN_WAIT2 */ | (1U << 8) /* CLOSE_WAIT */ |
                                      (1U << 9) /* LAST_ACK */ | (1U << 11) /* CLOSING */;

// The payload after the netlink header when it holds at least a T; copied (the datagram's
// alignment is the kernel's, the struct's may be stricter).
template <typename T>
std::optional<T> FixedHeader(const nlmsghdr* msg) {
  if (msg->nlmsg_len < NLMSG_LENGTH(sizeof(T))) return std::nullopt;
  T value;
  std::memcpy(&value, NLMSG_DATA(msg), sizeof(T));
  return value;
}

// The attributes after a fixed header of `header_size` bytes.
template <typename Visit>
void ForEachAttribute(const nlmsghdr* msg, size_t header_size, Visit visit) {
  const size_t offset = NLMSG_LENGTH(header_size);
  const size_t aligned = NLMSG_ALIGN(offset);
  if (msg->nlmsg_len <= aligned) return;
  int length = static_cast<int>(msg->nlmsg_len - aligned);
  const auto* first = reinterpret_cast<const rtattr*>(reinterpret_cast<const uint8_t*>(msg) + aligned);
  for (const rtattr* a = first; RTA_OK(a, length); a = RTA_NEXT(a, length)) {
    visit(a->rta_type, std::span<const uint8_t>(static_cast<const uint8_t*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
  }
}

// The positive errno of an NLMSG_ERROR message; EBADMSG when it is too short to say.
int ErrorOf(const nlmsghdr* msg) {
  const auto error = FixedHeader<nlmsgerr>(msg);
  if (!error) return EBADMSG;
  // INT_MIN has no positive counterpart; it is no errno anyway.
  if (error->error == std::numeric_limits<int>::min()) return EBADMSG;
  return -error->error;
}

TcpConnectionInfo ConnectionOf(const inet_diag_msg& diag, const nlmsghdr* msg) {
  TcpConnectionInfo info;
  TcpConnectionKey& key = info.key;
  key.cookie = (static_cast<uint64_t>(diag.id.idiag_cookie[1]) << 32) | diag.id.idiag_cookie[0];
  key.family = diag.idiag_family;
  std::memcpy(key.local_address.data(), diag.id.idiag_src, 16);
  std::memcpy(key.remote_address.data(), diag.id.idiag_dst, 16);
  key.local_port = ntohs(diag.id.idiag_sport);
  key.remote_port = ntohs(diag.id.idiag_dport);
  key.bound_ifindex = diag.id.idiag_if;
  info.state = diag.idiag_state;
  info.unacked_bytes = diag.idiag_wqueue;
  ForEachAttribute(msg, sizeof(inet_diag_msg), [&](uint16_t type, std::span<const uint8_t> payload) {
    if (type != INET_DIAG_INFO) return;
    // An older kernel sends a shorter tcp_info: the fields it lacks stay 0.
    tcp_info tcp{};
    std::memcpy(&tcp, payload.data(), std::min(payload.size(), sizeof(tcp)));
    info.bytes_acked = tcp.tcpi_bytes_acked;
    info.unacked_segments = tcp.tcpi_unacked;
    info.notsent_bytes = tcp.tcpi_notsent_bytes;
  });
  return info;
}

}  // namespace

std::vector<LinkMessage> ParseLinkDatagram(std::span<const uint8_t> datagram) {
  std::vector<LinkMessage> out;
  int remaining = static_cast<int>(std::min<size_t>(datagram.size(), std::numeric_limits<int>::max()));
  for (auto* msg = reinterpret_cast<const nlmsghdr*>(datagram.data()); NetlinkMessageFits(msg, remaining);
       msg = NLMSG_NEXT(msg, remaining)) {
    if (msg->nlmsg_type == NLMSG_DONE) {
      out.emplace_back().kind = LinkMessage::Kind::kDumpDone;
      continue;
    }
    if (msg->nlmsg_type == NLMSG_ERROR) {
      const int error = ErrorOf(msg);
      if (error == 0) continue;  // an acknowledgement
      LinkMessage& refused = out.emplace_back();
      refused.kind = LinkMessage::Kind::kError;
      refused.error = error;
      break;
    }
    if (msg->nlmsg_type != RTM_NEWLINK && msg->nlmsg_type != RTM_DELLINK) continue;
    const auto info = FixedHeader<ifinfomsg>(msg);
    if (!info) continue;
    LinkMessage& link = out.emplace_back();
    link.kind = msg->nlmsg_type == RTM_NEWLINK ? LinkMessage::Kind::kNewLink : LinkMessage::Kind::kDelLink;
    link.link.ifindex = static_cast<uint32_t>(info->ifi_index);
    link.link.arphrd_type = info->ifi_type;
    ForEachAttribute(msg, sizeof(ifinfomsg), [&](uint16_t type, std::span<const uint8_t> payload) {
      if (type != IFLA_IFNAME) return;
      const auto* text = reinterpret_cast<const char*>(payload.data());
      link.link.name.assign(text, strnlen(text, payload.size()));
    });
  }
  return out;
}

SockDiagDatagram ParseSockDiagDatagram(std::span<const uint8_t> datagram, uint32_t first, uint32_t count,
                                       bool dump) {
  SockDiagDatagram out;
  int remaining = static_cast<int>(std::min<size_t>(datagram.size(), std::numeric_limits<int>::max()));
  for (auto* msg = reinterpret_cast<const nlmsghdr*>(datagram.data()); NetlinkMessageFits(msg, remaining);
       msg = NLMSG_NEXT(msg, remaining)) {
    if (msg->nlmsg_seq - first >= count) continue;  // a late answer to an abandoned request
    if (msg->nlmsg_type == NLMSG_DONE) {
      if (dump) {
        out.done = true;
        break;
      }
      continue;
    }
    if (msg->nlmsg_type == NLMSG_ERROR) {
      const int error = ErrorOf(msg);
      if (dump || (error != ENOENT && error != ESTALE)) {
        out.refused = error;
        break;
      }
      ++out.answered;  // gone, or the addresses now belong to a newer connection
      continue;
    }
    if (msg->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
    const auto diag = FixedHeader<inet_diag_msg>(msg);
    if (!diag) continue;
    ++out.answered;
    TcpConnectionInfo info = ConnectionOf(*diag, msg);
    // An exact lookup also finds TIME_WAIT and closing mini-sockets: not connections. States
    // past 31 are no state at all.
    if (info.state < 32 && (kConnectedStates & (1U << info.state)) != 0) out.connections.push_back(info);
  }
  return out;
}

}  // namespace regionpulse
