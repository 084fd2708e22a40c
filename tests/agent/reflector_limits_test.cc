// The reflector's abuse limits as pure logic: a token bucket per source address in a bounded
// table, the replay window per (sender address, SSID), and the codec's key id and lenient
// decoding of malformed TLVs.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include "agent/probe_codec.h"
#include "agent/reflector.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

SenderAddress Address(const char* text) {
  return SenderAddress::Parse(text).value();
}

SenderKey Session(const char* address, uint16_t port, uint16_t ssid) {
  return SenderKey{Address(address), port, ssid};
}

TEST(SourceRateLimiter, AFloodFromOneSourceIsCutToTheRateWhileAnotherSourceIsServed) {
  SourceRateLimiter limiter(10, 5, 100);
  const MonoTime start{};
  int flood_allowed = 0;
  // 1000 packets within one second from one source: the burst, then 10 per second.
  for (int i = 0; i < 1000; ++i)
    flood_allowed += limiter.Allow(Address("10.0.0.66"), start + i * 1ms) ? 1 : 0;
  EXPECT_GE(flood_allowed, 5 + 9);
  EXPECT_LE(flood_allowed, 5 + 11);
  // Another source has its own bucket.
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.Allow(Address("10.0.0.7"), start + 1s + i * 100ms)) << i;
  // The flooder is refilled by time, not by trying.
  EXPECT_TRUE(limiter.Allow(Address("10.0.0.66"), start + 10s));
}

TEST(SourceRateLimiter, TheTableIsBoundedAndForgetsTheLeastRecentlySeen) {
  SourceRateLimiter limiter(1, 1, 3);
  const MonoTime t{};
  EXPECT_TRUE(limiter.Allow(Address("10.0.0.10"), t));
  EXPECT_FALSE(limiter.Allow(Address("10.0.0.10"), t));
  for (const char* other : {"10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14"})
    limiter.Allow(Address(other), t);
  EXPECT_EQ(limiter.size(), 3u);
  // The first was forgotten: it starts again with a full bucket.
  EXPECT_TRUE(limiter.Allow(Address("10.0.0.10"), t));
}

TEST(ReplayGuard, TheSameProbeIsAdmittedOnce) {
  ReplayGuard guard(100);
  const WallTime t = std::chrono::system_clock::now();
  EXPECT_TRUE(guard.Admit(Session("10.0.0.1", 5000, 7), 0, t));
  EXPECT_TRUE(guard.Admit(Session("10.0.0.1", 5000, 7), 1, t + 100ms));
  EXPECT_FALSE(guard.Admit(Session("10.0.0.1", 5000, 7), 1, t + 100ms));
  EXPECT_FALSE(guard.Admit(Session("10.0.0.1", 5000, 7), 0, t));
  // Reordered but not repeated: admitted.
  EXPECT_TRUE(guard.Admit(Session("10.0.0.1", 5000, 7), 5, t + 500ms));
  EXPECT_TRUE(guard.Admit(Session("10.0.0.1", 5000, 7), 3, t + 300ms));
  EXPECT_FALSE(guard.Admit(Session("10.0.0.1", 5000, 7), 3, t + 300ms));
  // Another SSID or sender is another window.
  EXPECT_TRUE(guard.Admit(Session("10.0.0.1", 5000, 8), 1, t));
  EXPECT_TRUE(guard.Admit(Session("10.0.0.2", 5000, 7), 1, t));
}

TEST(ReplayGuard, ProbesBelowTheWindowAreRefusedUnlessTheSenderRestarted) {
  ReplayGuard guard(100);
  const WallTime t = std::chrono::system_clock::now();
  for (uint32_t s = 0; s < 200; ++s) ASSERT_TRUE(guard.Admit(Session("10.0.0.1", 5000, 7), s, t + s * 10ms));
  // A replay of an old probe: old timestamp, below the window.
  EXPECT_FALSE(guard.Admit(Session("10.0.0.1", 5000, 7), 10, t + 100ms));
  // A restarted sender that drew the same SSID numbers from 0 with a newer timestamp.
  EXPECT_TRUE(guard.Admit(Session("10.0.0.1", 5000, 7), 0, t + 10s));
  EXPECT_TRUE(guard.Admit(Session("10.0.0.1", 5000, 7), 1, t + 10s + 10ms));
  EXPECT_FALSE(guard.Admit(Session("10.0.0.1", 5000, 7), 0, t + 10s));
}

TEST(SenderKey, AnIpv4SenderOnEitherSocketIsOneKeyAndReadsAsPlainIpv4) {
  sockaddr_storage v4{};
  auto* sin = reinterpret_cast<sockaddr_in*>(&v4);
  sin->sin_family = AF_INET;
  inet_pton(AF_INET, "10.0.0.7", &sin->sin_addr);
  sockaddr_storage mapped{};
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&mapped);
  sin6->sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:10.0.0.7", &sin6->sin6_addr);
  EXPECT_EQ(SenderAddress::Of(v4), SenderAddress::Of(mapped));
  EXPECT_EQ(SenderAddress::Of(v4), Address("10.0.0.7"));
  EXPECT_EQ(SenderAddress::Of(mapped).ToText(), "10.0.0.7");
  EXPECT_EQ(Address("fd00::7").ToText(), "fd00::7");
  EXPECT_NE(Address("fd00::7"), Address("10.0.0.7"));
  EXPECT_FALSE(SenderAddress::Parse("not-an-address"));
  // Keys differing in one field hash apart (a constant hash would still be correct, only slow;
  // this guards the mix against dropping a field).
  SenderKeyHash hash;
  const SenderKey key = Session("10.0.0.7", 5000, 7);
  EXPECT_NE(hash(key), hash(Session("10.0.0.8", 5000, 7)));
  EXPECT_NE(hash(key), hash(Session("10.0.0.7", 5001, 7)));
  EXPECT_NE(hash(key), hash(Session("10.0.0.7", 5000, 8)));
}

TEST(ReplayGuard, TheTableIsBoundedAndForgetsTheLeastRecentlyUsedSession) {
  ReplayGuard guard(2);
  const WallTime t = std::chrono::system_clock::now();
  EXPECT_TRUE(guard.Admit(Session("10.0.0.1", 5000, 7), 5, t));
  EXPECT_TRUE(guard.Admit(Session("10.0.0.2", 5000, 7), 5, t));
  // The first session is used again, so the second is the least recently used when a third
  // arrives: the second's window is forgotten, the first's is kept.
  EXPECT_FALSE(guard.Admit(Session("10.0.0.1", 5000, 7), 5, t));
  EXPECT_TRUE(guard.Admit(Session("10.0.0.3", 5000, 7), 5, t));
  EXPECT_FALSE(guard.Admit(Session("10.0.0.1", 5000, 7), 5, t));
  EXPECT_TRUE(guard.Admit(Session("10.0.0.2", 5000, 7), 5, t));
}

TEST(LruTable, AFullTableForgetsItsLeastRecentlyUsedSixteenthAtOnce) {
  LruTable<int, int, std::hash<int>> table(32);
  for (int key = 0; key < 32; ++key) table.Touch(key, key);
  // Used again, in this order: 2..31, then 0. Key 1 and key 2 are now the least recently used.
  for (int key = 2; key < 32; ++key) EXPECT_EQ(table.Touch(key, -1), key);
  EXPECT_EQ(table.Touch(0, -1), 0);
  table.Touch(100, 100);  // full: 32 / 16 = 2 forgotten, then 100 added
  EXPECT_EQ(table.size(), 31u);
  EXPECT_EQ(table.Touch(1, -1), -1) << "key 1 was the least recently used";
  EXPECT_EQ(table.Touch(0, -1), 0);
  EXPECT_EQ(table.Touch(100, -1), 100);
  for (int key = 3; key < 32; ++key) EXPECT_EQ(table.Touch(key, -1), key) << key;
  EXPECT_EQ(table.size(), 32u);
  // Key 2 was forgotten with key 1 (an exact one-at-a-time LRU would have kept it).
  EXPECT_EQ(table.Touch(2, -1), -1);
}

TEST(KeyId, NamesTheKeyAndTravelsInAKeyIdTlv) {
  const MacKey old_key(32, 0x11), new_key(32, 0x22);
  EXPECT_NE(KeyIdOf(old_key), KeyIdOf(new_key));
  EXPECT_EQ(KeyIdOf(old_key), KeyIdOf(MacKey(32, 0x11)));
  SenderPacket packet;
  packet.sequence = 3;
  packet.kernel = KernelStamps{};
  packet.tlvs.push_back(KeyIdTlv(new_key));
  const auto bytes = EncodeSender(packet, StampMode::kAuthenticated, new_key, 300);
  EXPECT_EQ(FindKeyId(bytes, StampMode::kAuthenticated), KeyIdOf(new_key));
  SenderPacket bare;
  EXPECT_EQ(FindKeyId(EncodeSender(bare, StampMode::kAuthenticated, new_key), StampMode::kAuthenticated),
            std::nullopt);
}

TEST(DecodeSenderToReflect, AMalformedTlvAndTheRestAreKeptUnparsed) {
  SenderPacket packet;
  packet.sequence = 9;
  packet.tlvs.push_back(StampTlv{0, 200, {1, 2, 3}});
  auto bytes = EncodeSender(packet, StampMode::kUnauthenticated, {});
  // A TLV claiming 100 octets with 6 left.
  const std::vector<uint8_t> broken = {0x00, 201, 0x00, 100, 9, 9, 9, 9, 9, 9};
  bytes.insert(bytes.end(), broken.begin(), broken.end());
  EXPECT_FALSE(DecodeSender(bytes, StampMode::kUnauthenticated, {}).ok());
  const auto decoded = DecodeSenderToReflect(bytes, StampMode::kUnauthenticated, {});
  ASSERT_TRUE(decoded.ok()) << decoded.failure.detail;
  ASSERT_EQ(decoded.packet->tlvs.size(), 1u);
  EXPECT_EQ(decoded.packet->tlvs[0].type, 200);
  EXPECT_EQ(decoded.packet->malformed_tail, broken);

  ReflectorSessions sessions(60s, 10);
  const auto reply =
      sessions.Reflect(Session("10.0.0.1", 5000, 0), *decoded.packet, MonoTime{}, WallTime{}, WallTime{}, 64);
  EXPECT_EQ(reply.tlvs[0].flags & kTlvFlagUnrecognized, kTlvFlagUnrecognized);
  ASSERT_EQ(reply.malformed_tail.size(), broken.size());
  EXPECT_EQ(reply.malformed_tail[0], kTlvFlagMalformed);
  EXPECT_TRUE(std::equal(broken.begin() + 1, broken.end(), reply.malformed_tail.begin() + 1));
  // Encoded as it came: same length, the tail last.
  const auto out = EncodeReflector(reply, StampMode::kUnauthenticated, {}, bytes.size());
  EXPECT_EQ(out.size(), bytes.size());
}

}  // namespace
}  // namespace regionpulse
