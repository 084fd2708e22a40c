// The netlink reply parsers over crafted datagrams: what the kernel sends, and what it never
// should (messages, headers and names cut short), which must be skipped without reading past
// the datagram.
#include "agent/netlink_parse.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace regionpulse {
namespace {

// A datagram under construction, 4-byte aligned like the kernel's.
class Datagram {
 public:
  // Appends a message whose nlmsg_len says `claimed_length` (0: its real length).
  void Add(uint16_t type, uint32_t seq, const std::vector<uint8_t>& payload, uint32_t claimed_length = 0) {
    nlmsghdr header{};
    header.nlmsg_len =
        claimed_length != 0 ? claimed_length : static_cast<uint32_t>(NLMSG_LENGTH(payload.size()));
    header.nlmsg_type = type;
    header.nlmsg_seq = seq;
    Append(&header, sizeof(header));
    Append(payload.data(), payload.size());
    bytes_.resize(NLMSG_ALIGN(bytes_.size()));
  }
  std::span<const uint8_t> span() const { return {bytes_.data(), bytes_.size()}; }

 private:
  void Append(const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), p, p + size);
  }
  std::vector<uint8_t> bytes_;
};

template <typename T>
std::vector<uint8_t> Bytes(const T& value) {
  std::vector<uint8_t> out(sizeof(T));
  std::memcpy(out.data(), &value, sizeof(T));
  return out;
}

std::vector<uint8_t> Attribute(uint16_t type, const std::string& payload) {
  std::vector<uint8_t> out(RTA_SPACE(payload.size()), 0);
  rtattr header{static_cast<unsigned short>(RTA_LENGTH(payload.size())), type};
  std::memcpy(out.data(), &header, sizeof(header));
  std::memcpy(out.data() + RTA_LENGTH(0), payload.data(), payload.size());
  return out;
}

std::vector<uint8_t> Link(int index, uint16_t arphrd, const std::string& name_attribute) {
  ifinfomsg info{};
  info.ifi_index = index;
  info.ifi_type = arphrd;
  std::vector<uint8_t> payload = Bytes(info);
  const auto attribute = Attribute(IFLA_IFNAME, name_attribute);
  payload.insert(payload.end(), attribute.begin(), attribute.end());
  return payload;
}

TEST(ParseLinkDatagram, ReadsADumpInOrder) {
  Datagram datagram;
  datagram.Add(RTM_NEWLINK, 1, Link(2, 1, std::string("eth0", 5)));
  datagram.Add(RTM_DELLINK, 1, Link(7, 65534, std::string("wg0", 4)));
  datagram.Add(NLMSG_DONE, 1, Bytes(0));
  const auto messages = ParseLinkDatagram(datagram.span());
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].kind, LinkMessage::Kind::kNewLink);
  EXPECT_EQ(messages[0].link.name, "eth0");
  EXPECT_EQ(messages[0].link.ifindex, 2u);
  EXPECT_EQ(messages[1].kind, LinkMessage::Kind::kDelLink);
  EXPECT_EQ(messages[1].link.name, "wg0");
  EXPECT_EQ(messages[1].link.arphrd_type, 65534);
  EXPECT_EQ(messages[2].kind, LinkMessage::Kind::kDumpDone);
}

TEST(ParseLinkDatagram, ANameWithoutItsNulEndsWithItsAttribute) {
  Datagram datagram;
  // "veth1234" fills its attribute exactly: no NUL, and bytes of the next message follow.
  datagram.Add(RTM_NEWLINK, 1, Link(3, 1, "veth1234"));
  datagram.Add(RTM_NEWLINK, 1, Link(4, 1, std::string("eth1", 5)));
  const auto messages = ParseLinkDatagram(datagram.span());
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].link.name, "veth1234");
}

TEST(ParseLinkDatagram, SkipsAMessageTooShortForItsHeaderAndStopsAtAnError) {
  Datagram datagram;
  datagram.Add(RTM_NEWLINK, 1, std::vector<uint8_t>(4, 0));  // no room for ifinfomsg
  nlmsgerr error{};
  error.error = -EPERM;
  datagram.Add(NLMSG_ERROR, 1, Bytes(error));
  datagram.Add(RTM_NEWLINK, 1, Link(2, 1, std::string("eth0", 5)));
  const auto messages = ParseLinkDatagram(datagram.span());
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].kind, LinkMessage::Kind::kError);
  EXPECT_EQ(messages[0].error, EPERM);
}

inet_diag_msg Diag(uint8_t state, uint16_t sport) {
  inet_diag_msg diag{};
  diag.idiag_family = AF_INET;
  diag.idiag_state = state;
  diag.id.idiag_sport = htons(sport);
  diag.idiag_wqueue = 4096;
  return diag;
}

TEST(ParseSockDiagDatagram, CountsAnswersAndKeepsConnectedSockets) {
  Datagram datagram;
  datagram.Add(SOCK_DIAG_BY_FAMILY, 1, Bytes(Diag(1 /* ESTABLISHED */, 5432)));
  datagram.Add(SOCK_DIAG_BY_FAMILY, 2, Bytes(Diag(6 /* TIME_WAIT */, 5433)));
  nlmsgerr gone{};
  gone.error = -ENOENT;
  datagram.Add(NLMSG_ERROR, 3, Bytes(gone));
  datagram.Add(SOCK_DIAG_BY_FAMILY, 99, Bytes(Diag(1, 5434)));  // not one of ours
  const auto parsed = ParseSockDiagDatagram(datagram.span(), 1, 3, /*dump=*/false);
  EXPECT_EQ(parsed.answered, 3u);
  ASSERT_EQ(parsed.connections.size(), 1u);
  EXPECT_EQ(parsed.connections[0].key.local_port, 5432);
  EXPECT_EQ(parsed.connections[0].unacked_bytes, 4096u);
  EXPECT_FALSE(parsed.refused);
}

TEST(ParseSockDiagDatagram, SkipsAReplyTooShortForInetDiagAndAStateBeyondAnyBit) {
  Datagram datagram;
  // nlmsg_len claims only half an inet_diag_msg: reading the rest would be past the message.
  datagram.Add(SOCK_DIAG_BY_FAMILY, 1, std::vector<uint8_t>(sizeof(inet_diag_msg) / 2, 0xff));
  datagram.Add(SOCK_DIAG_BY_FAMILY, 1, Bytes(Diag(200, 5432)));
  datagram.Add(NLMSG_DONE, 1, Bytes(0));
  const auto parsed = ParseSockDiagDatagram(datagram.span(), 1, 1, /*dump=*/true);
  EXPECT_EQ(parsed.answered, 1u);
  EXPECT_TRUE(parsed.connections.empty());
  EXPECT_TRUE(parsed.done);
}

TEST(ParseSockDiagDatagram, ADumpErrorIsARefusal) {
  Datagram datagram;
  nlmsgerr refused{};
  refused.error = -EINVAL;
  datagram.Add(NLMSG_ERROR, 1, Bytes(refused));
  const auto parsed = ParseSockDiagDatagram(datagram.span(), 1, 1, /*dump=*/true);
  ASSERT_TRUE(parsed.refused);
  EXPECT_EQ(*parsed.refused, EINVAL);
}

}  // namespace
}  // namespace regionpulse
