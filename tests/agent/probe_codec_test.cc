// STAMP codec: layouts, round trips in both modes, and every rejection reason.
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "agent/probe_codec.h"
#include "bpf/regionpulse_shared.h"

namespace regionpulse {
namespace {

const MacKey kKey(32, 0x5a);

SenderPacket SampleSender() {
  SenderPacket p;
  p.sequence = 0x01020304;
  p.timestamp =
      EncodeTimestamp(WallTime(std::chrono::seconds(1'700'000'000) + std::chrono::microseconds(123)), true);
  p.ssid = 0xbeef;
  p.kernel = KernelStamps{0, {11, 22, 33, 44}};
  p.tlvs.push_back(StampTlv{0, 7, {1, 2, 3}});
  return p;
}

ReflectorPacket SampleReflector() {
  ReflectorPacket p;
  p.sequence = 9;
  p.timestamp = 0x1111222233334444ULL;
  p.ssid = 0xbeef;
  p.receive_timestamp = 0x5555666677778888ULL;
  p.sender_sequence = 0x01020304;
  p.sender_timestamp = 0x99990000aaaabbbbULL;
  p.sender_error_estimate = ErrorEstimate{true, false, 3, 7};
  p.sender_ttl = 63;
  p.kernel = KernelStamps{0, {1, 2, 3, 4}};
  return p;
}

TEST(ProbeCodec, SenderRoundTripsInBothModes) {
  for (auto mode : {StampMode::kUnauthenticated, StampMode::kAuthenticated}) {
    const auto bytes = EncodeSender(SampleSender(), mode, kKey);
    EXPECT_EQ(bytes.size(), StampBaseLength(mode) + kKernelStampTlvLength + 4 + 3);
    const auto decoded = DecodeSender(bytes, mode, kKey);
    ASSERT_TRUE(decoded.ok()) << decoded.failure.detail;
    EXPECT_EQ(*decoded.packet, SampleSender());
  }
}

TEST(ProbeCodec, ReflectorRoundTripsInBothModes) {
  for (auto mode : {StampMode::kUnauthenticated, StampMode::kAuthenticated}) {
    const auto bytes = EncodeReflector(SampleReflector(), mode, kKey);
    const auto decoded = DecodeReflector(bytes, mode, kKey);
    ASSERT_TRUE(decoded.ok()) << decoded.failure.detail;
    EXPECT_EQ(*decoded.packet, SampleReflector());
  }
}

TEST(ProbeCodec, UnauthenticatedSenderLayoutFollowsRfc8762) {
  const auto bytes = EncodeSender(SampleSender(), StampMode::kUnauthenticated, {});
  EXPECT_EQ(bytes[0], 0x01);
  EXPECT_EQ(bytes[3], 0x04);
  // Error estimate at 12: Z set (PTPv2), multiplier 1; SSID at 14.
  EXPECT_EQ(bytes[12], 0x40);
  EXPECT_EQ(bytes[13], 0x01);
  EXPECT_EQ(bytes[14], 0xbe);
  EXPECT_EQ(bytes[15], 0xef);
  for (size_t i = 16; i < 44; ++i) EXPECT_EQ(bytes[i], 0) << "MBZ octet " << i;
}

// Round trips cannot catch an offset that encoder and decoder share; this pins the reflector
// fields (the sender's common fields at the same offsets) to RFC 8762 figures 4 and 6.
TEST(ProbeCodec, ReflectorLayoutsFollowRfc8762InBothModes) {
  struct Field {
    size_t unauthenticated_offset, authenticated_offset, length;
    uint64_t value;
  };
  const ReflectorPacket packet = SampleReflector();
  const Field fields[] = {
      {0, 0, 4, packet.sequence},
      {4, 16, 8, packet.timestamp},
      {12, 24, 2, packet.error_estimate.Encode()},
      {14, 26, 2, packet.ssid},
      {16, 32, 8, packet.receive_timestamp},
      {24, 48, 4, packet.sender_sequence},
      {28, 64, 8, packet.sender_timestamp},
      {36, 72, 2, packet.sender_error_estimate.Encode()},
      {40, 80, 1, packet.sender_ttl},
  };
  for (auto mode : {StampMode::kUnauthenticated, StampMode::kAuthenticated}) {
    const bool authenticated = mode == StampMode::kAuthenticated;
    SCOPED_TRACE(authenticated ? "authenticated" : "unauthenticated");
    const auto bytes = EncodeReflector(packet, mode, kKey);
    const size_t base = StampBaseLength(mode);
    ASSERT_GE(bytes.size(), base);
    // Octets outside every field must be zero, except the HMAC (checked elsewhere).
    std::vector<bool> in_field(base, false);
    if (authenticated) std::fill(in_field.begin() + kStampHmacCovered, in_field.end(), true);
    for (const Field& field : fields) {
      const size_t offset = authenticated ? field.authenticated_offset : field.unauthenticated_offset;
      uint64_t value = 0;
      for (size_t i = 0; i < field.length; ++i) {
        value = (value << 8) | bytes[offset + i];
        in_field[offset + i] = true;
      }
      EXPECT_EQ(value, field.value) << "field at offset " << offset;
    }
    for (size_t i = 0; i < base; ++i) {
      if (in_field[i]) continue;
      EXPECT_EQ(bytes[i], 0) << "MBZ octet " << i;
    }
  }
}

TEST(ProbeCodec, KernelTlvIsFirstAtTheOffsetsTheTcProgramsUse) {
  for (auto mode : {StampMode::kUnauthenticated, StampMode::kAuthenticated}) {
    const auto bytes = EncodeSender(SampleSender(), mode, kKey);
    const size_t at = mode == StampMode::kAuthenticated ? RP_STAMP_BASE_AUTH : RP_STAMP_BASE_UNAUTH;
    EXPECT_EQ(bytes[at + 1], RP_TLV_TYPE_KERNEL_STAMPS);
    EXPECT_EQ((bytes[at + 2] << 8) | bytes[at + 3], RP_KSTAMP_VALUE_LEN);
    EXPECT_EQ(std::string(bytes.begin() + at + 4, bytes.begin() + at + 8), "RPK1");
    // t1 at TLV offset 12, big-endian, then t2..t4 every 8 octets.
    EXPECT_EQ(bytes[at + 12 + 7], 11);
    EXPECT_EQ(bytes[at + 20 + 7], 22);
    EXPECT_EQ(bytes[at + 36 + 7], 44);
  }
}

TEST(ProbeCodec, AuthenticatedHmacCoversTheBaseButNotTheKernelTlv) {
  auto bytes = EncodeSender(SampleSender(), StampMode::kAuthenticated, kKey);
  // The kernel writes t1..t4 after signing: still valid.
  bytes[RP_STAMP_BASE_AUTH + 12 + 7] = 0x77;
  EXPECT_TRUE(DecodeSender(bytes, StampMode::kAuthenticated, kKey).ok());
  // Any change to the signed octets is caught.
  bytes[20] ^= 1;
  const auto decoded = DecodeSender(bytes, StampMode::kAuthenticated, kKey);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.failure.problem, DecodeProblem::kBadMac);
}

// What the prober decodes replies with: the reflector packet's fields and kernel stamps, the
// same failures, but no copy of the other TLVs.
TEST(ProbeCodec, DecodeReplyReadsWhatDecodeReflectorReadsButKeepsNoOtherTlvs) {
  ReflectorPacket packet = SampleReflector();
  packet.tlvs.push_back(StampTlv{0, 200, {1, 2, 3, 4}});
  for (auto mode : {StampMode::kUnauthenticated, StampMode::kAuthenticated}) {
    const auto bytes = EncodeReflector(packet, mode, kKey, 300);
    const auto full = DecodeReflector(bytes, mode, kKey);
    const auto reply = DecodeReply(bytes, mode, kKey);
    ASSERT_TRUE(full.ok() && reply.ok());
    EXPECT_FALSE(full.packet->tlvs.empty());
    EXPECT_TRUE(reply.packet->tlvs.empty());
    ReflectorPacket without_tlvs = *full.packet;
    without_tlvs.tlvs.clear();
    EXPECT_EQ(*reply.packet, without_tlvs);
  }
  auto bytes = EncodeReflector(packet, StampMode::kAuthenticated, kKey);
  bytes[20] ^= 1;
  EXPECT_EQ(DecodeReply(bytes, StampMode::kAuthenticated, kKey).failure.problem, DecodeProblem::kBadMac);
}

// The batch encoders reuse one buffer per probe: what they write is what the returning ones do,
// whatever the buffer held before.
TEST(ProbeCodec, EncodingIntoAReusedBufferGivesTheSameBytes) {
  std::vector<uint8_t> buffer(500, 0xee);
  for (auto mode : {StampMode::kUnauthenticated, StampMode::kAuthenticated}) {
    EncodeReflector(SampleReflector(), mode, kKey, 200, buffer);
    EXPECT_EQ(buffer, EncodeReflector(SampleReflector(), mode, kKey, 200));
    EncodeSender(SampleSender(), mode, kKey, 0, buffer);
    EXPECT_EQ(buffer, EncodeSender(SampleSender(), mode, kKey));
  }
}

TEST(ProbeCodec, WrongKeyIsABadMac) {
  const auto bytes = EncodeReflector(SampleReflector(), StampMode::kAuthenticated, kKey);
  const auto decoded = DecodeReflector(bytes, StampMode::kAuthenticated, MacKey(32, 0x11));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.failure.problem, DecodeProblem::kBadMac);
  EXPECT_EQ(DecodeReflector(bytes, StampMode::kAuthenticated, {}).failure.problem, DecodeProblem::kBadMac);
}

// The codec keeps the prepared HMAC states of the last two keys per thread: switching among
// three keys (each one evicting another) must sign each packet with its own key, as OpenSSL's
// one-shot HMAC does.
TEST(ProbeCodec, HmacIsHmacSha256OfTheBaseWithEachPacketsKey) {
  const MacKey other(16, 0x33);
  const MacKey third(80, 0x5a);  // longer than SHA-256's block: hashed first
  for (const MacKey* key : {&kKey, &other, &kKey, &other, &third, &kKey, &third, &other, &other, &kKey}) {
    const auto bytes = EncodeSender(SampleSender(), StampMode::kAuthenticated, *key);
    std::array<uint8_t, 32> expected{};
    unsigned int length = 0;
    HMAC(EVP_sha256(), key->data(), static_cast<int>(key->size()), bytes.data(), kStampHmacCovered,
         expected.data(), &length);
    ASSERT_EQ(length, 32u);
    EXPECT_TRUE(
        std::equal(expected.begin(), expected.begin() + kStampHmacLength, bytes.begin() + kStampHmacCovered));
    EXPECT_TRUE(DecodeSender(bytes, StampMode::kAuthenticated, *key).ok());
  }
}

TEST(ProbeCodec, ShortPacketIsBadLength) {
  auto bytes = EncodeSender(SampleSender(), StampMode::kUnauthenticated, {});
  bytes.resize(43);
  const auto decoded = DecodeSender(bytes, StampMode::kUnauthenticated, {});
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.failure.problem, DecodeProblem::kBadLength);
  // A packet long enough for unauthenticated mode is still too short for authenticated mode.
  auto unauth = EncodeSender(SampleSender(), StampMode::kUnauthenticated, {});
  unauth.resize(100);
  EXPECT_EQ(DecodeSender(unauth, StampMode::kAuthenticated, kKey).failure.problem, DecodeProblem::kBadLength);
}

TEST(ProbeCodec, BadKernelTlvMagicIsRejected) {
  auto bytes = EncodeSender(SampleSender(), StampMode::kUnauthenticated, {});
  bytes[44 + 4] = 'X';
  const auto decoded = DecodeSender(bytes, StampMode::kUnauthenticated, {});
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.failure.problem, DecodeProblem::kBadMagic);
}

TEST(ProbeCodec, UnknownKernelTlvVersionIsRejected) {
  auto bytes = EncodeSender(SampleSender(), StampMode::kUnauthenticated, {});
  bytes[44 + 7] = '2';  // "RPK2"
  const auto decoded = DecodeSender(bytes, StampMode::kUnauthenticated, {});
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.failure.problem, DecodeProblem::kBadVersion);
}

TEST(ProbeCodec, TlvLongerThanThePacketIsBadTlv) {
  auto bytes = EncodeSender(SampleSender(), StampMode::kUnauthenticated, {});
  // The last TLV (type 7, 3 octets) claims 200 octets.
  const size_t at = 44 + kKernelStampTlvLength;
  bytes[at + 2] = 0;
  bytes[at + 3] = 200;
  EXPECT_EQ(DecodeSender(bytes, StampMode::kUnauthenticated, {}).failure.problem, DecodeProblem::kBadTlv);
}

TEST(ProbeCodec, TrailingOctetsShorterThanATlvHeaderAreBadTlv) {
  auto bytes = EncodeSender(SampleSender(), StampMode::kUnauthenticated, {});
  bytes.push_back(0);
  bytes.push_back(0);
  EXPECT_EQ(DecodeSender(bytes, StampMode::kUnauthenticated, {}).failure.problem, DecodeProblem::kBadTlv);
}

TEST(ProbeCodec, KernelTlvAnywhereButFirstIsBadTlv) {
  SenderPacket p = SampleSender();
  p.kernel.reset();
  p.tlvs.push_back(StampTlv{0, kTlvTypeKernelStamps, std::vector<uint8_t>(40, 0)});
  const auto bytes = EncodeSender(p, StampMode::kUnauthenticated, {});
  EXPECT_EQ(DecodeSender(bytes, StampMode::kUnauthenticated, {}).failure.problem, DecodeProblem::kBadTlv);
}

TEST(ProbeCodec, PaddingReachesTheRequestedLength) {
  const auto bytes = EncodeSender(SampleSender(), StampMode::kAuthenticated, kKey, 400);
  EXPECT_EQ(bytes.size(), 400u);
  const auto decoded = DecodeSender(bytes, StampMode::kAuthenticated, kKey);
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ(decoded.packet->tlvs.size(), 2u);
  EXPECT_EQ(decoded.packet->tlvs[1].type, kTlvTypeExtraPadding);
}

TEST(ProbeCodec, PtpAndNtpTimestampsRoundTrip) {
  const WallTime t(std::chrono::seconds(1'764'000'000) + std::chrono::nanoseconds(123'456'789));
  EXPECT_EQ(DecodeTimestamp(EncodeTimestamp(t, true), true), t);
  const auto ntp = DecodeTimestamp(EncodeTimestamp(t, false), false);
  EXPECT_LE(std::chrono::abs(ntp - t), std::chrono::nanoseconds(1));
  // PTPv2 truncated: seconds since 1970 in the high 32 bits, nanoseconds in the low 32.
  EXPECT_EQ(EncodeTimestamp(t, true) >> 32, 1'764'000'000ULL);
  EXPECT_EQ(EncodeTimestamp(t, true) & 0xffffffffULL, 123'456'789ULL);
  // NTP: seconds since 1900.
  EXPECT_EQ(EncodeTimestamp(t, false) >> 32, 1'764'000'000ULL + 2'208'988'800ULL);
}

TEST(ProbeCodec, ErrorEstimateBits) {
  const ErrorEstimate e{true, true, 5, 200};
  EXPECT_EQ(e.Encode(), 0xc5c8);
  EXPECT_EQ(ErrorEstimate::Decode(0xc5c8), e);
}

TEST(ProbeCodec, AuthenticatedAndUnauthenticatedPacketsAreToldApartByShape) {
  EXPECT_TRUE(LooksAuthenticated(EncodeSender(SampleSender(), StampMode::kAuthenticated, kKey)));
  EXPECT_FALSE(LooksAuthenticated(EncodeSender(SampleSender(), StampMode::kUnauthenticated, {}, 200)));
}

}  // namespace
}  // namespace regionpulse
