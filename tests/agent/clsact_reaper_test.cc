// The clsact reaper's rtnetlink requests, byte for byte (the same fields libbpf 1.1's
// bpf_tc_detach and bpf_tc_hook_destroy send), and how it reads the kernel's replies.
// Pure: no root, no sockets.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <vector>

#include "agent/clsact_reaper.h"

namespace regionpulse {
namespace {

uint32_t U32At(const NetlinkRequest& request, size_t offset) {
  uint32_t value;
  std::memcpy(&value, request.bytes.data() + offset, sizeof(value));
  return value;
}
uint16_t U16At(const NetlinkRequest& request, size_t offset) {
  uint16_t value;
  std::memcpy(&value, request.bytes.data() + offset, sizeof(value));
  return value;
}

// Offsets in nlmsghdr (16 bytes) + tcmsg (20 bytes) + first attribute.
constexpr size_t kLen = 0, kType = 4, kFlags = 6, kSeq = 8;
constexpr size_t kFamily = 16, kIfindex = 20, kHandle = 24, kParent = 28, kInfo = 32;
constexpr size_t kAttrLen = 36, kAttrType = 38, kAttrData = 40;

TEST(ClsactReaperRequests, DeleteFilterIsWhatLibbpfBpfTcDetachSends) {
  auto request = BuildDeleteFilterRequest(7, kClsactIngress, 0x5250, 1, 11);
  ASSERT_TRUE(request.ok()) << request.error().ToString();
  // 16 + 20 + TCA_KIND "bpf\0" (4 + 4).
  EXPECT_EQ(request->length, 44u);
  EXPECT_EQ(U32At(*request, kLen), 44u);
  EXPECT_EQ(U16At(*request, kType), 45u);           // RTM_DELTFILTER
  EXPECT_EQ(U16At(*request, kFlags), 0x1u | 0x4u);  // NLM_F_REQUEST | NLM_F_ACK
  EXPECT_EQ(U32At(*request, kSeq), 11u);
  EXPECT_EQ(request->sequence, 11u);
  EXPECT_EQ(request->bytes[kFamily], 0u);  // AF_UNSPEC
  EXPECT_EQ(U32At(*request, kIfindex), 7u);
  EXPECT_EQ(U32At(*request, kHandle), 0x5250u);
  EXPECT_EQ(U32At(*request, kParent), 0xFFFFFFF2u);  // TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)
  // TC_H_MAKE(priority << 16, htons(ETH_P_ALL)): priority 1, protocol 0x0003 big-endian.
  EXPECT_EQ(U32At(*request, kInfo), 0x00010000u | htons(0x0003));
  EXPECT_EQ(U16At(*request, kAttrLen), 8u);
  EXPECT_EQ(U16At(*request, kAttrType), 1u);  // TCA_KIND
  EXPECT_EQ(std::memcmp(request->bytes.data() + kAttrData, "bpf\0", 4), 0);
}

TEST(ClsactReaperRequests, EgressFilterHangsOffTheEgressClass) {
  auto request = BuildDeleteFilterRequest(3, kClsactEgress, 0x5250, 9, 2);
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(U32At(*request, kParent), 0xFFFFFFF3u);  // TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS)
  EXPECT_EQ(U32At(*request, kInfo) >> 16, 9u);
}

TEST(ClsactReaperRequests, RefusesAPriorityOrHandleThatWouldDeleteForeignFilters) {
  // Priority 0 asks the kernel to flush the whole chain, handle 0 every filter at the priority.
  EXPECT_FALSE(BuildDeleteFilterRequest(3, kClsactIngress, 0x5250, 0, 1).ok());
  EXPECT_FALSE(BuildDeleteFilterRequest(3, kClsactIngress, 0x5250, 0x10000, 1).ok());
  EXPECT_FALSE(BuildDeleteFilterRequest(3, kClsactIngress, 0, 1, 1).ok());
  EXPECT_FALSE(MakeClsactCleanupPlan(3, 0x5250, 0, true).ok());
  EXPECT_TRUE(BuildDeleteFilterRequest(3, kClsactIngress, 0x5250, 0xFFFF, 1).ok());
}

TEST(ClsactReaperRequests, DumpAsksForEveryFilterOnOneSide) {
  const NetlinkRequest request = BuildDumpFiltersRequest(5, kClsactEgress, 4);
  EXPECT_EQ(request.length, 36u);
  EXPECT_EQ(U16At(request, kType), 46u);             // RTM_GETTFILTER
  EXPECT_EQ(U16At(request, kFlags), 0x1u | 0x300u);  // NLM_F_REQUEST | NLM_F_DUMP
  EXPECT_EQ(U32At(request, kIfindex), 5u);
  EXPECT_EQ(U32At(request, kParent), 0xFFFFFFF3u);
  // No handle, priority or protocol: any filter of anybody's counts.
  EXPECT_EQ(U32At(request, kHandle), 0u);
  EXPECT_EQ(U32At(request, kInfo), 0u);
}

TEST(ClsactReaperRequests, DeleteQdiscIsWhatLibbpfBpfTcHookDestroySends) {
  const NetlinkRequest request = BuildDeleteClsactRequest(5, 5);
  // 16 + 20 + TCA_KIND "clsact\0" (4 + 7, padded to 12).
  EXPECT_EQ(request.length, 48u);
  EXPECT_EQ(U32At(request, kLen), 48u);
  EXPECT_EQ(U16At(request, kType), 37u);  // RTM_DELQDISC
  EXPECT_EQ(U16At(request, kFlags), 0x1u | 0x4u);
  EXPECT_EQ(U32At(request, kIfindex), 5u);
  EXPECT_EQ(U32At(request, kParent), 0xFFFFFFF1u);  // TC_H_CLSACT
  EXPECT_EQ(U32At(request, kHandle), 0xFFFF0000u);  // TC_H_MAKE(TC_H_CLSACT, 0)
  EXPECT_EQ(U16At(request, kAttrLen), 11u);
  EXPECT_EQ(U16At(request, kAttrType), 1u);
  EXPECT_EQ(std::memcmp(request.bytes.data() + kAttrData, "clsact\0", 7), 0);
}

TEST(ClsactReaperRequests, PlanCarriesEveryRequestWithItsOwnSequence) {
  auto plan = MakeClsactCleanupPlan(12, 0x5250, 1, true);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->ifindex, 12u);
  EXPECT_TRUE(plan->remove_qdisc_if_unused);
  std::set<uint32_t> sequences;
  for (const NetlinkRequest* request :
       {&plan->delete_filter[kClsactIngress], &plan->delete_filter[kClsactEgress],
        &plan->dump_filters[kClsactIngress], &plan->dump_filters[kClsactEgress], &plan->delete_qdisc}) {
    EXPECT_EQ(U32At(*request, kIfindex), 12u);
    EXPECT_GT(request->length, 0u);
    sequences.insert(request->sequence);
  }
  EXPECT_EQ(sequences.size(), 5u);
  EXPECT_EQ(U32At(plan->delete_filter[kClsactIngress], kParent), 0xFFFFFFF2u);
  EXPECT_EQ(U32At(plan->delete_filter[kClsactEgress], kParent), 0xFFFFFFF3u);
  EXPECT_FALSE(MakeClsactCleanupPlan(12, 0x5250, 1, false)->remove_qdisc_if_unused);
}

// A reply datagram: one message of `type` with `payload`.
std::vector<uint8_t> Reply(uint16_t type, uint32_t sequence, const std::vector<uint8_t>& payload) {
  nlmsghdr header{};
  header.nlmsg_len = static_cast<uint32_t>(NLMSG_HDRLEN + payload.size());
  header.nlmsg_type = type;
  header.nlmsg_seq = sequence;
  // Sized once and filled with memcpy: GCC 12 at -O2 warns (wrongly) on vector::insert here.
  std::vector<uint8_t> bytes(sizeof(header) + payload.size());
  std::memcpy(bytes.data(), &header, sizeof(header));
  if (!payload.empty()) std::memcpy(bytes.data() + sizeof(header), payload.data(), payload.size());
  return bytes;
}
std::vector<uint8_t> IntPayload(int value, size_t extra = 0) {
  std::vector<uint8_t> payload(sizeof(value) + extra, 0);
  std::memcpy(payload.data(), &value, sizeof(value));
  return payload;
}

TEST(ClsactReaperReplies, ReadsAcksErrorsDumpEndsAndFilters) {
  auto ack = Reply(NLMSG_ERROR, 3, IntPayload(0, sizeof(nlmsghdr)));
  EXPECT_EQ(ClassifyReply(ack.data(), ack.size(), 3).kind, NetlinkReplyKind::kAck);

  auto no_such = Reply(NLMSG_ERROR, 3, IntPayload(-ENOENT, sizeof(nlmsghdr)));
  const NetlinkReply error = ClassifyReply(no_such.data(), no_such.size(), 3);
  EXPECT_EQ(error.kind, NetlinkReplyKind::kError);
  EXPECT_EQ(error.errnum, ENOENT);

  auto done = Reply(NLMSG_DONE, 4, IntPayload(0));
  EXPECT_EQ(ClassifyReply(done.data(), done.size(), 4).kind, NetlinkReplyKind::kDumpDone);
  auto bare_done = Reply(NLMSG_DONE, 4, {});
  EXPECT_EQ(ClassifyReply(bare_done.data(), bare_done.size(), 4).kind, NetlinkReplyKind::kDumpDone);
  auto failed_dump = Reply(NLMSG_DONE, 4, IntPayload(-EINVAL));
  const NetlinkReply dump_error = ClassifyReply(failed_dump.data(), failed_dump.size(), 4);
  EXPECT_EQ(dump_error.kind, NetlinkReplyKind::kError);
  EXPECT_EQ(dump_error.errnum, EINVAL);

  auto filter = Reply(RTM_NEWTFILTER, 4, std::vector<uint8_t>(20, 0));
  // Followed by more of the dump: the first message decides.
  auto more = Reply(NLMSG_DONE, 4, IntPayload(0));
  filter.insert(filter.end(), more.begin(), more.end());
  EXPECT_EQ(ClassifyReply(filter.data(), filter.size(), 4).kind, NetlinkReplyKind::kFilter);
}

TEST(ClsactReaperReplies, RefusesShortTruncatedOrForeignReplies) {
  auto ack = Reply(NLMSG_ERROR, 3, IntPayload(0, sizeof(nlmsghdr)));
  EXPECT_EQ(ClassifyReply(ack.data(), ack.size(), 9).kind, NetlinkReplyKind::kMalformed) << "other sequence";
  EXPECT_EQ(ClassifyReply(ack.data(), 10, 3).kind, NetlinkReplyKind::kMalformed) << "shorter than a header";
  EXPECT_EQ(ClassifyReply(ack.data(), 18, 3).kind, NetlinkReplyKind::kMalformed)
      << "message longer than data";
  auto empty_error = Reply(NLMSG_ERROR, 3, {});
  EXPECT_EQ(ClassifyReply(empty_error.data(), empty_error.size(), 3).kind, NetlinkReplyKind::kMalformed);
  auto link = Reply(RTM_NEWLINK, 3, std::vector<uint8_t>(16, 0));
  EXPECT_EQ(ClassifyReply(link.data(), link.size(), 3).kind, NetlinkReplyKind::kMalformed);
}

}  // namespace
}  // namespace regionpulse
