// STAMP packet layouts (RFC 8762 figures 3-6, RFC 8972 sections 3-4) and their HMAC.
#include "agent/probe_codec.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "agent/hmac_sha256.h"
#include "bpf/regionpulse_shared.h"

namespace regionpulse {
namespace {

static_assert(kStampBaseUnauthenticated == RP_STAMP_BASE_UNAUTH);
static_assert(kStampBaseAuthenticated == RP_STAMP_BASE_AUTH);
static_assert(kTlvTypeKernelStamps == RP_TLV_TYPE_KERNEL_STAMPS);
static_assert(kKernelStampMagic == RP_KSTAMP_MAGIC);
static_assert(kKernelStampTlvLength == RP_KSTAMP_TLV_LEN);
// The wire layout is the constants' (44 octets, t1 at offset 12), which the tc programs use
// too. struct rp_kstamp_tlv describes the same layout, packed (agent/bpf_datapath.cc asserts
// its size and t's offset); the codec writes the big-endian fields by offset, not through it.
static_assert(kKernelStampTlvLength - kStampTlvHeader == RP_KSTAMP_VALUE_LEN);

// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
constexpr uint64_t kNtpUnixOffset = 2'208'988'800ULL;

// Field offsets in the base packets. Unauthenticated and authenticated layouts differ only
// by the MBZ octets RFC 8762 inserts to align fields for the HMAC. Sender and reflector
// packets start with the same four fields at the same offsets and have the same base length.
struct CommonLayout {
  size_t sequence, timestamp, error_estimate, ssid, base;
};
// The fields only a reflector packet has.
struct ReflectorLayout {
  size_t receive_timestamp, sender_sequence, sender_timestamp, sender_error_estimate, sender_ttl;
};
constexpr CommonLayout kCommonUnauth{0, 4, 12, 14, 44};
constexpr CommonLayout kCommonAuth{0, 16, 24, 26, 112};
constexpr ReflectorLayout kReflectorUnauth{16, 24, 28, 36, 40};
constexpr ReflectorLayout kReflectorAuth{32, 48, 64, 72, 80};
static_assert(kCommonUnauth.base == kStampBaseUnauthenticated && kCommonAuth.base == kStampBaseAuthenticated);

void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}
uint16_t Get16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t Get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | p[i];
  return v;
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

// HMAC-SHA-256 with the padded-key states of the last two keys kept per thread (two: while
// keys rotate, a reflector verifies and signs with the old and the new key in turn). Two MACs
// per reflected probe; preparing a key (two SHA-256 blocks) costs less than one of them.
HmacSha256::Digest Hmac(const MacKey& key, const uint8_t* data, size_t length) {
  struct PreparedKey {
    MacKey key;
    HmacSha256 mac;
  };
  thread_local std::optional<PreparedKey> recent[2];
  if (!recent[0] || recent[0]->key != key) {
    if (recent[1] && recent[1]->key == key) {
      std::swap(recent[0], recent[1]);
    } else {
      recent[1] = std::move(recent[0]);
      recent[0].emplace(PreparedKey{key, HmacSha256(key)});
    }
  }
  return recent[0]->mac.Compute(data, length);
}

void Sign(std::vector<uint8_t>& bytes, const MacKey& key) {
  const auto digest = Hmac(key, bytes.data(), kStampHmacCovered);
  std::memcpy(bytes.data() + kStampHmacCovered, digest.data(), kStampHmacLength);
}

bool Verify(std::span<const uint8_t> bytes, const MacKey& key) {
  if (key.empty()) return false;
  const auto digest = Hmac(key, bytes.data(), kStampHmacCovered);
  return CRYPTO_memcmp(digest.data(), bytes.data() + kStampHmacCovered, kStampHmacLength) == 0;
}

void AppendTlvs(std::vector<uint8_t>& out, const std::optional<KernelStamps>& kernel,
                const std::vector<StampTlv>& tlvs, const std::vector<uint8_t>& malformed_tail,
                size_t padded_length) {
  if (kernel) {
    const size_t at = out.size();
    out.resize(at + kKernelStampTlvLength, 0);
    uint8_t* p = out.data() + at;
    p[0] = kernel->flags;
    p[1] = kTlvTypeKernelStamps;
    Put16(p + 2, static_cast<uint16_t>(kKernelStampTlvLength - kStampTlvHeader));
    Put32(p + 4, kKernelStampMagic);
    // p + 8: reserved, zero.
    for (size_t i = 0; i < kernel->t.size(); ++i) Put64(p + 12 + 8 * i, kernel->t[i]);
  }
  for (const auto& tlv : tlvs) {
    const size_t at = out.size();
    out.resize(at + kStampTlvHeader + tlv.value.size(), 0);
    out[at] = tlv.flags;
    out[at + 1] = tlv.type;
    Put16(out.data() + at + 2, static_cast<uint16_t>(tlv.value.size()));
    std::copy(tlv.value.begin(), tlv.value.end(), out.begin() + static_cast<ptrdiff_t>(at + kStampTlvHeader));
  }
  // A malformed tail goes back as it came; nothing may follow it (it would be read as part of it).
  out.insert(out.end(), malformed_tail.begin(), malformed_tail.end());
  if (malformed_tail.empty() && padded_length > out.size()) {
    // Extra Padding TLV (RFC 8972 4.1): the header itself takes 4 octets, so a shortfall of
    // less than 4 rounds up to an empty padding TLV.
    const size_t shortfall = padded_length - out.size();
    const size_t value = shortfall > kStampTlvHeader ? shortfall - kStampTlvHeader : 0;
    const size_t at = out.size();
    out.resize(at + kStampTlvHeader + value, 0);
    out[at + 1] = kTlvTypeExtraPadding;
    Put16(out.data() + at + 2, static_cast<uint16_t>(value));
  }
}

// Parses the TLVs after the base packet. The kernel-stamp TLV is recognised only first; the
// others are kept in `tlvs` unless it is null (checked all the same). With `malformed_tail`, a TLV that does
// not fit ends the walk instead of failing: it and the rest go there.
std::optional<DecodeFailure> ParseTlvs(std::span<const uint8_t> rest, std::optional<KernelStamps>* kernel,
                                       std::vector<StampTlv>* tlvs,
                                       std::vector<uint8_t>* malformed_tail = nullptr) {
  size_t at = 0;
  bool first = true;
  while (at < rest.size()) {
    const bool fits = rest.size() - at >= kStampTlvHeader &&
                      rest.size() - at - kStampTlvHeader >= Get16(rest.data() + at + 2);
    if (!fits && malformed_tail != nullptr) {
      malformed_tail->assign(rest.begin() + static_cast<ptrdiff_t>(at), rest.end());
      return std::nullopt;
    }
    if (rest.size() - at < kStampTlvHeader) {
      return DecodeFailure{
          DecodeProblem::kBadTlv,
          std::to_string(rest.size() - at) + " trailing octets after the last TLV, too few for a TLV header"};
    }
    const uint8_t flags = rest[at];
    const uint8_t type = rest[at + 1];
    const size_t length = Get16(rest.data() + at + 2);
    if (rest.size() - at - kStampTlvHeader < length) {
      return DecodeFailure{DecodeProblem::kBadTlv,
                           "TLV type " + std::to_string(type) + " at offset " + std::to_string(at) +
                               " claims " + std::to_string(length) + " octets, only " +
                               std::to_string(rest.size() - at - kStampTlvHeader) + " remain"};
    }
    const uint8_t* value = rest.data() + at + kStampTlvHeader;
    if (type == kTlvTypeKernelStamps) {
      if (!first) {
        return DecodeFailure{DecodeProblem::kBadTlv, "kernel-stamp TLV at offset " + std::to_string(at) +
                                                         ", it must be the first TLV"};
      }
      if (length < 4) {
        return DecodeFailure{DecodeProblem::kBadTlv,
                             "kernel-stamp TLV of " + std::to_string(length) + " octets"};
      }
      const uint32_t magic = Get32(value);
      if ((magic & 0xffffff00u) != (kKernelStampMagic & 0xffffff00u)) {
        char text[16];
        std::snprintf(text, sizeof(text), "0x%08x", magic);
        return DecodeFailure{DecodeProblem::kBadMagic, std::string("kernel-stamp TLV magic ") + text};
      }
      if (magic != kKernelStampMagic || length != kKernelStampTlvLength - kStampTlvHeader) {
        return DecodeFailure{DecodeProblem::kBadVersion, "kernel-stamp TLV layout version '" +
                                                             std::string(1, static_cast<char>(magic & 0xff)) +
                                                             "' with " + std::to_string(length) +
                                                             " octets (known: '1' with 40)"};
      }
      KernelStamps stamps;
      stamps.flags = flags;
      for (size_t i = 0; i < stamps.t.size(); ++i) stamps.t[i] = Get64(value + 8 + 8 * i);
      *kernel = stamps;
    } else if (tlvs != nullptr) {
      tlvs->push_back(StampTlv{flags, type, std::vector<uint8_t>(value, value + length)});
    }
    first = false;
    at += kStampTlvHeader + length;
  }
  return std::nullopt;
}

template <typename T>
Decoded<T> Fail(DecodeProblem problem, std::string detail) {
  Decoded<T> d;
  d.failure = DecodeFailure{problem, std::move(detail)};
  return d;
}

// The base packet with the fields sender and reflector share, `write_own_fields(base)` for
// the rest, the HMAC in authenticated mode, then the TLVs.
// Into `out`, whose capacity is reused: a caller encoding into the same vector again allocates
// nothing once it has held a packet as long.
template <typename Packet, typename WriteOwnFields>
void EncodePacket(const Packet& packet, StampMode mode, const MacKey& key, size_t padded_length,
                  WriteOwnFields write_own_fields, std::vector<uint8_t>& out) {
  const CommonLayout& l = mode == StampMode::kAuthenticated ? kCommonAuth : kCommonUnauth;
  size_t length = l.base + (packet.kernel ? kKernelStampTlvLength : 0) + packet.malformed_tail.size();
  for (const auto& tlv : packet.tlvs) length += kStampTlvHeader + tlv.value.size();
  // One allocation at most, not one per TLV appended.
  out.reserve(std::max(length, padded_length) + kStampTlvHeader);
  out.assign(l.base, 0);
  Put32(out.data() + l.sequence, packet.sequence);
  Put64(out.data() + l.timestamp, packet.timestamp);
  Put16(out.data() + l.error_estimate, packet.error_estimate.Encode());
  Put16(out.data() + l.ssid, packet.ssid);
  write_own_fields(out.data());
  if (mode == StampMode::kAuthenticated) Sign(out, key);
  AppendTlvs(out, packet.kernel, packet.tlvs, packet.malformed_tail, padded_length);
}

// Checks length and HMAC, reads the fields sender and reflector share, `read_own_fields(base,
// packet)` for the rest, then walks the TLVs.
template <typename Packet, typename ReadOwnFields>
Decoded<Packet> DecodePacket(std::span<const uint8_t> bytes, StampMode mode, const MacKey& key,
                             ReadOwnFields read_own_fields, bool keep_malformed_tail = false,
                             bool keep_tlvs = true) {
  const CommonLayout& l = mode == StampMode::kAuthenticated ? kCommonAuth : kCommonUnauth;
  if (bytes.size() < l.base) {
    return Fail<Packet>(DecodeProblem::kBadLength,
                        std::to_string(bytes.size()) + " octets, the " +
                            (mode == StampMode::kAuthenticated ? "authenticated" : "unauthenticated") +
                            " base packet has " + std::to_string(l.base));
  }
  if (mode == StampMode::kAuthenticated && !Verify(bytes, key)) {
    return Fail<Packet>(DecodeProblem::kBadMac,
                        key.empty() ? "no key to verify the HMAC" : "HMAC does not match");
  }
  Packet p;
  p.sequence = Get32(bytes.data() + l.sequence);
  p.timestamp = Get64(bytes.data() + l.timestamp);
  p.error_estimate = ErrorEstimate::Decode(Get16(bytes.data() + l.error_estimate));
  p.ssid = Get16(bytes.data() + l.ssid);
  read_own_fields(bytes.data(), p);
  if (auto failure = ParseTlvs(bytes.subspan(l.base), &p.kernel, keep_tlvs ? &p.tlvs : nullptr,
                               keep_malformed_tail ? &p.malformed_tail : nullptr)) {
    return Fail<Packet>(failure->problem, failure->detail);
  }
  Decoded<Packet> d;
  d.packet = std::move(p);
  return d;
}

}  // namespace

size_t StampBaseLength(StampMode mode) {
  return mode == StampMode::kAuthenticated ? kStampBaseAuthenticated : kStampBaseUnauthenticated;
}

size_t MinimumProbeLength(StampMode mode) {
  return StampBaseLength(mode) + kKernelStampTlvLength;
}

uint16_t ErrorEstimate::Encode() const {
  return static_cast<uint16_t>((synchronized ? 0x8000 : 0) | (ptp ? 0x4000 : 0) | ((scale & 0x3f) << 8) |
                               multiplier);
}

ErrorEstimate ErrorEstimate::Decode(uint16_t wire) {
  ErrorEstimate e;
  e.synchronized = (wire & 0x8000) != 0;
  e.ptp = (wire & 0x4000) != 0;
  e.scale = static_cast<uint8_t>((wire >> 8) & 0x3f);
  e.multiplier = static_cast<uint8_t>(wire & 0xff);
  return e;
}

uint64_t EncodeTimestamp(WallTime t, bool ptp) {
  const auto since_epoch = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  const uint64_t ns = since_epoch < 0 ? 0 : static_cast<uint64_t>(since_epoch);
  const uint64_t seconds = ns / 1'000'000'000ULL;
  const uint64_t nanos = ns % 1'000'000'000ULL;
  if (ptp) return (seconds << 32) | nanos;
  // NTP fraction: nanos * 2^32 / 1e9, rounded down.
  const uint64_t fraction = (nanos << 32) / 1'000'000'000ULL;
  return (((seconds + kNtpUnixOffset) & 0xffffffffULL) << 32) | fraction;
}

WallTime DecodeTimestamp(uint64_t wire, bool ptp) {
  const uint64_t high = wire >> 32;
  const uint64_t low = wire & 0xffffffffULL;
  uint64_t ns = 0;
  if (ptp) {
    ns = high * 1'000'000'000ULL + std::min<uint64_t>(low, 999'999'999ULL);
  } else {
    // NTP era 0 (until 2036); earlier than the Unix epoch maps to the epoch.
    const uint64_t seconds = high >= kNtpUnixOffset ? high - kNtpUnixOffset : 0;
    ns = seconds * 1'000'000'000ULL + ((low * 1'000'000'000ULL) >> 32);
  }
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::nanoseconds(ns)));
}

const char* DecodeProblemName(DecodeProblem problem) {
  switch (problem) {
    case DecodeProblem::kBadLength:
      return "bad_length";
    case DecodeProblem::kBadTlv:
      return "bad_tlv";
    case DecodeProblem::kBadMagic:
      return "bad_magic";
    case DecodeProblem::kBadVersion:
      return "bad_version";
    case DecodeProblem::kBadMac:
      return "bad_mac";
  }
  return "unknown";
}

void EncodeSender(const SenderPacket& packet, StampMode mode, const MacKey& key, size_t padded_length,
                  std::vector<uint8_t>& out) {
  EncodePacket(
      packet, mode, key, padded_length, [](uint8_t*) {}, out);
}

std::vector<uint8_t> EncodeSender(const SenderPacket& packet, StampMode mode, const MacKey& key,
                                  size_t padded_length) {
  std::vector<uint8_t> out;
  EncodeSender(packet, mode, key, padded_length, out);
  return out;
}

void EncodeReflector(const ReflectorPacket& packet, StampMode mode, const MacKey& key, size_t padded_length,
                     std::vector<uint8_t>& out) {
  const ReflectorLayout& l = mode == StampMode::kAuthenticated ? kReflectorAuth : kReflectorUnauth;
  EncodePacket(
      packet, mode, key, padded_length,
      [&](uint8_t* base) {
        Put64(base + l.receive_timestamp, packet.receive_timestamp);
        Put32(base + l.sender_sequence, packet.sender_sequence);
        Put64(base + l.sender_timestamp, packet.sender_timestamp);
        Put16(base + l.sender_error_estimate, packet.sender_error_estimate.Encode());
        base[l.sender_ttl] = packet.sender_ttl;
      },
      out);
}

std::vector<uint8_t> EncodeReflector(const ReflectorPacket& packet, StampMode mode, const MacKey& key,
                                     size_t padded_length) {
  std::vector<uint8_t> out;
  EncodeReflector(packet, mode, key, padded_length, out);
  return out;
}

Decoded<SenderPacket> DecodeSender(std::span<const uint8_t> bytes, StampMode mode, const MacKey& key) {
  return DecodePacket<SenderPacket>(bytes, mode, key, [](const uint8_t*, SenderPacket&) {});
}

Decoded<SenderPacket> DecodeSenderToReflect(std::span<const uint8_t> bytes, StampMode mode,
                                            const MacKey& key) {
  return DecodePacket<SenderPacket>(
      bytes, mode, key, [](const uint8_t*, SenderPacket&) {}, true);
}

uint32_t KeyIdOf(const MacKey& key) {
  if (key.empty()) return 0;
  std::array<uint8_t, 32> digest{};
  unsigned int length = 0;
  EVP_Digest(key.data(), key.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return Get32(digest.data());
}

StampTlv KeyIdTlv(const MacKey& key) {
  StampTlv tlv;
  tlv.type = kTlvTypeKeyId;
  tlv.value.resize(kKeyIdTlvLength - kStampTlvHeader);
  Put32(tlv.value.data(), KeyIdOf(key));
  return tlv;
}

std::optional<uint32_t> FindKeyId(std::span<const uint8_t> bytes, StampMode mode) {
  const size_t base = StampBaseLength(mode);
  if (bytes.size() < base) return std::nullopt;
  size_t at = base;
  while (bytes.size() - at >= kStampTlvHeader) {
    const uint8_t type = bytes[at + 1];
    const size_t length = Get16(bytes.data() + at + 2);
    if (bytes.size() - at - kStampTlvHeader < length) return std::nullopt;
    if (type == kTlvTypeKeyId && length == kKeyIdTlvLength - kStampTlvHeader) {
      return Get32(bytes.data() + at + kStampTlvHeader);
    }
    at += kStampTlvHeader + length;
  }
  return std::nullopt;
}

namespace {
Decoded<ReflectorPacket> DecodeReflectorPacket(std::span<const uint8_t> bytes, StampMode mode,
                                               const MacKey& key, bool keep_tlvs) {
  const ReflectorLayout& l = mode == StampMode::kAuthenticated ? kReflectorAuth : kReflectorUnauth;
  return DecodePacket<ReflectorPacket>(
      bytes, mode, key,
      [&](const uint8_t* in, ReflectorPacket& p) {
        p.receive_timestamp = Get64(in + l.receive_timestamp);
        p.sender_sequence = Get32(in + l.sender_sequence);
        p.sender_timestamp = Get64(in + l.sender_timestamp);
        p.sender_error_estimate = ErrorEstimate::Decode(Get16(in + l.sender_error_estimate));
        p.sender_ttl = in[l.sender_ttl];
      },
      false, keep_tlvs);
}
}  // namespace

Decoded<ReflectorPacket> DecodeReflector(std::span<const uint8_t> bytes, StampMode mode, const MacKey& key) {
  return DecodeReflectorPacket(bytes, mode, key, true);
}

Decoded<ReflectorPacket> DecodeReply(std::span<const uint8_t> bytes, StampMode mode, const MacKey& key) {
  return DecodeReflectorPacket(bytes, mode, key, false);
}

bool LooksAuthenticated(std::span<const uint8_t> bytes) {
  if (bytes.size() < kStampBaseAuthenticated) return false;
  return std::all_of(bytes.begin() + 4, bytes.begin() + 16, [](uint8_t b) { return b == 0; });
}

std::optional<uint16_t> PeekSsid(std::span<const uint8_t> bytes, StampMode mode) {
  const CommonLayout& l = mode == StampMode::kAuthenticated ? kCommonAuth : kCommonUnauth;
  if (bytes.size() < l.base) return std::nullopt;
  return Get16(bytes.data() + l.ssid);
}

}  // namespace regionpulse
