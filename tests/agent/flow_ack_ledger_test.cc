// FlowAckLedger (pure): bytes acknowledged per flow from the kernel's closed-connection count
// and the live sockets' own counters, never counted twice and never lowered; and the port
// filter bytecode that lists only flow sockets.
#include "agent/flow_ack_ledger.h"

#include <gtest/gtest.h>
#include <linux/inet_diag.h>

#include "agent/tcp_socket_dump.h"

namespace regionpulse {
namespace {

// A socket with data outstanding holds `kQueued` bytes unacknowledged.
constexpr uint64_t kQueued = 1000;

FlowConnectionSample Tracked(uint64_t cookie, uint32_t flow, uint64_t acked, uint64_t baseline,
                             bool outstanding = false) {
  return {cookie, flow, acked, outstanding, baseline, outstanding ? kQueued : 0};
}

FlowConnectionSample Untracked(uint64_t cookie, uint32_t flow, uint64_t acked, bool outstanding = false) {
  return {cookie, flow, acked, outstanding, std::nullopt, outstanding ? kQueued : 0};
}

TEST(FlowAckLedgerTest, CountsALiveSocketFromItsBaselineAndHandsItToTheKernelAtClose) {
  FlowAckLedger ledger(1);
  EXPECT_EQ(ledger.Update({0}, {Tracked(7, 0, 101, 1)})[0].bytes_acked, 100u);
  // The end of a burst that no callback reported: read from the socket itself.
  const auto reading = ledger.Update({0}, {Tracked(7, 0, 1001, 1)})[0];
  EXPECT_EQ(reading.bytes_acked, 1000u);
  EXPECT_TRUE(reading.progressed);
  // Closed: the kernel moved its 1001 - 1 (plus the FIN) into the closed count.
  EXPECT_EQ(ledger.Update({1001}, {})[0].bytes_acked, 1001u);
  EXPECT_EQ(ledger.Update({1001}, {})[0].connections, 0u);
}

TEST(FlowAckLedgerTest, ASocketClosingBetweenTheTwoReadsIsHeldForOneReadingNeverCountedTwice) {
  FlowAckLedger ledger(1);
  EXPECT_EQ(ledger.Update({0}, {Tracked(7, 0, 501, 1)})[0].bytes_acked, 500u);
  // It closed after the closed count was read and before the listing: in neither.
  const auto held = ledger.Update({0}, {})[0];
  EXPECT_EQ(held.bytes_acked, 500u) << "never lower than reported before";
  EXPECT_FALSE(held.progressed);
  EXPECT_EQ(ledger.Update({600}, {})[0].bytes_acked, 600u);
}

TEST(FlowAckLedgerTest, ATrackedSocketThatClosedBeforeItsBaselineWasReadIsNotCountedTwice) {
  FlowAckLedger ledger(1);
  // Listed, but its kernel entry was gone when looked up: it looks untracked, counted from
  // now (zero), while the kernel counts all of it at close.
  EXPECT_EQ(ledger.Update({0}, {Untracked(9, 0, 800)})[0].bytes_acked, 0u);
  EXPECT_EQ(ledger.Update({799}, {})[0].bytes_acked, 799u);
}

TEST(FlowAckLedgerTest, AnUntrackedSocketCountsFromFirstSightAndKeepsItsBytesWhenItGoes) {
  FlowAckLedger ledger(1);
  // Established before the agent started: its history belongs to no window of ours.
  EXPECT_EQ(ledger.Update({0}, {Untracked(3, 0, 1'000'000)})[0].bytes_acked, 0u);
  EXPECT_EQ(ledger.Update({0}, {Untracked(3, 0, 1'000'500)})[0].bytes_acked, 500u);
  EXPECT_EQ(ledger.Update({0}, {})[0].bytes_acked, 500u) << "gone: its last count stays";
  EXPECT_EQ(ledger.Update({0}, {Tracked(4, 0, 51, 1)})[0].bytes_acked, 550u);
}

TEST(FlowAckLedgerTest, OutstandingAndConnectionsArePerFlowAtThisReading) {
  FlowAckLedger ledger(2);
  const auto readings = ledger.Update(
      {0, 0}, {Tracked(1, 0, 10, 0, true), Tracked(2, 0, 10, 0, true), Tracked(3, 1, 10, 0, false),
               Tracked(4, 5, 10, 0, true) /* no such flow: ignored */});
  ASSERT_EQ(readings.size(), 2u);
  EXPECT_TRUE(readings[0].data_outstanding);
  EXPECT_EQ(readings[0].bytes_outstanding, 2 * kQueued) << "summed over the flow's connections";
  EXPECT_EQ(readings[1].bytes_outstanding, 0u);
  EXPECT_EQ(readings[0].connections, 2u);
  EXPECT_EQ(readings[0].bytes_acked, 20u);
  EXPECT_FALSE(readings[1].data_outstanding);
  EXPECT_EQ(readings[1].connections, 1u);
  const auto idle = ledger.Update({0, 0}, {Tracked(1, 0, 10, 0), Tracked(2, 0, 10, 0), Tracked(3, 1, 10, 0)});
  EXPECT_FALSE(idle[0].data_outstanding);
  EXPECT_EQ(idle[0].bytes_outstanding, 0u);
  EXPECT_FALSE(idle[0].progressed);
}

// One port: "local port is P, or remote port is P": the local test's match steps onto the
// jump, which ends the program exactly (accept); its miss skips the jump; the last test's
// miss ends 4 bytes past the end (reject).
TEST(PortFilterBytecodeTest, OnePortIsTwoTestsJoinedByAJumpToTheEnd) {
  const std::vector<uint8_t> code = PortFilterBytecode({5432});
  ASSERT_EQ(code.size(), 20u);
  std::vector<inet_diag_bc_op> ops(5);
  std::memcpy(ops.data(), code.data(), code.size());
  EXPECT_EQ(ops[0].code, INET_DIAG_BC_S_EQ);
  EXPECT_EQ(ops[0].yes, 8);
  EXPECT_EQ(ops[0].no, 12);
  EXPECT_EQ(ops[1].no, 5432);
  EXPECT_EQ(ops[2].code, INET_DIAG_BC_JMP);
  EXPECT_EQ(ops[2].yes, 4);
  EXPECT_EQ(ops[2].no, 12) << "from offset 8 to the end at 20";
  EXPECT_EQ(ops[3].code, INET_DIAG_BC_D_EQ);
  EXPECT_EQ(ops[3].yes, 8);
  EXPECT_EQ(ops[3].no, 12);
  EXPECT_EQ(ops[4].no, 5432);
}

TEST(PortFilterBytecodeTest, RepeatedPortsAreTestedOnce) {
  EXPECT_EQ(PortFilterBytecode({5432, 6379, 5432}).size(), 4 * 8u + 3 * 4u);
}

}  // namespace
}  // namespace regionpulse
