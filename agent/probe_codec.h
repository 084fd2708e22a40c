// STAMP test packets (RFC 8762) with RFC 8972 SSID and TLVs, in unauthenticated (44-byte
// base) and authenticated (112-byte base, HMAC-SHA-256 truncated to 16 bytes) mode, plus
// regionpulse's kernel-stamp TLV (bpf/regionpulse_shared.h), always the first TLV so the tc
// programs find it at a fixed offset. Pure: bytes in, values out.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/clocks.h"

namespace regionpulse {

enum class StampMode { kUnauthenticated, kAuthenticated };

// Sizes from RFC 8762 sections 4.2 and 4.3 (the same for sender and reflector packets).
inline constexpr size_t kStampBaseUnauthenticated = 44;
inline constexpr size_t kStampBaseAuthenticated = 112;
// HMAC-SHA-256 truncated to 128 bits, over the 96 octets before the HMAC field.
inline constexpr size_t kStampHmacLength = 16;
inline constexpr size_t kStampHmacCovered = 96;
inline constexpr size_t kStampTlvHeader = 4;
// RFC 8972 TLV types and flags.
inline constexpr uint8_t kTlvTypeExtraPadding = 1;
inline constexpr uint8_t kTlvTypeKernelStamps = 250;   // RP_TLV_TYPE_KERNEL_STAMPS
inline constexpr uint8_t kTlvTypeKeyId = 251;          // regionpulse: which HMAC key signed it
inline constexpr uint8_t kTlvFlagUnrecognized = 0x80;  // U
inline constexpr uint8_t kTlvFlagMalformed = 0x40;     // M
// Key-id TLV: 4-octet value, KeyIdOf the signing key. Not covered by the HMAC (RFC 8762's
// covers the base packet only), and it need not be: it only picks which key to verify with,
// and a forged one fails that verification.
inline constexpr size_t kKeyIdTlvLength = 8;
// Kernel-stamp TLV: "RPK" + layout version '1'.
inline constexpr uint32_t kKernelStampMagic = 0x52504b31;
inline constexpr size_t kKernelStampTlvLength = 44;  // header + 40-byte value

size_t StampBaseLength(StampMode mode);
// Smallest packet regionpulse sends: base + kernel-stamp TLV.
size_t MinimumProbeLength(StampMode mode);

// RFC 4656 4.1.2 error estimate with the RFC 8186 Z bit: S(1) Z(1) Scale(6) Multiplier(8).
struct ErrorEstimate {
  bool synchronized = false;  // S: clock synchronised to UTC by an external source
  bool ptp = true;            // Z: timestamps in PTPv2 truncated format (else NTP)
  uint8_t scale = 0;          // error = multiplier * 2^(scale - 32) s
  uint8_t multiplier = 1;     // RFC 4656: must not be 0

  uint16_t Encode() const;
  static ErrorEstimate Decode(uint16_t wire);
  bool operator==(const ErrorEstimate&) const = default;
};

// Wall-clock time as the two STAMP timestamp formats carry it (64 bits each).
// PTPv2 truncated: 32-bit seconds since 1970 + 32-bit nanoseconds.
// NTP: 32-bit seconds since 1900 + 32-bit binary fraction.
uint64_t EncodeTimestamp(WallTime t, bool ptp);
WallTime DecodeTimestamp(uint64_t wire, bool ptp);

// t1..t4 from bpf_ktime_get_ns() (CLOCK_MONOTONIC of the host that wrote each); 0 = not
// stamped. t1 sender egress, t2 reflector ingress, t3 reflector egress, t4 sender ingress.
struct KernelStamps {
  uint8_t flags = 0;  // RFC 8972 TLV flags as received
  std::array<uint64_t, 4> t{};
  bool operator==(const KernelStamps&) const = default;
};

// Any other RFC 8972 TLV, kept so the reflector can return it.
struct StampTlv {
  uint8_t flags = 0;
  uint8_t type = 0;
  std::vector<uint8_t> value;
  bool operator==(const StampTlv&) const = default;
};

struct SenderPacket {
  uint32_t sequence = 0;
  uint64_t timestamp = 0;  // wire format given by error_estimate.ptp
  ErrorEstimate error_estimate;
  uint16_t ssid = 0;
  // Present when the packet carries the kernel-stamp TLV (always first).
  std::optional<KernelStamps> kernel;
  std::vector<StampTlv> tlvs;  // the TLVs after the kernel one, in order
  // From the first malformed TLV (one whose length runs past the packet, or a header cut
  // short) to the end, unparsed. Only DecodeSenderToReflect keeps it; a reflector returns it
  // as received with the M flag set on that TLV (RFC 8972 4.8).
  std::vector<uint8_t> malformed_tail;
  bool operator==(const SenderPacket&) const = default;
};

struct ReflectorPacket {
  uint32_t sequence = 0;   // the reflector's own per-session numbering (stateful mode)
  uint64_t timestamp = 0;  // transmit time at the reflector
  ErrorEstimate error_estimate;
  uint16_t ssid = 0;
  uint64_t receive_timestamp = 0;
  uint32_t sender_sequence = 0;
  uint64_t sender_timestamp = 0;
  ErrorEstimate sender_error_estimate;
  uint8_t sender_ttl = 255;
  std::optional<KernelStamps> kernel;
  std::vector<StampTlv> tlvs;
  std::vector<uint8_t> malformed_tail;  // encoded as is, after the TLVs; the M flag is the caller's
  bool operator==(const ReflectorPacket&) const = default;
};

// Why a packet was rejected; counted per reason by the prober and reflector.
enum class DecodeProblem {
  kBadLength,   // shorter than the base packet for the mode
  kBadTlv,      // a TLV header or length that does not fit, or a misplaced kernel TLV
  kBadMagic,    // kernel-stamp TLV whose magic does not start with "RPK"
  kBadVersion,  // kernel-stamp TLV of a layout version other than '1', or value length != 40
  kBadMac,      // authenticated mode: HMAC does not match (or no key)
};
const char* DecodeProblemName(DecodeProblem problem);

struct DecodeFailure {
  DecodeProblem problem;
  std::string detail;  // plain words for logs
};

template <typename T>
struct Decoded {
  std::optional<T> packet;
  DecodeFailure failure{DecodeProblem::kBadLength, {}};
  bool ok() const { return packet.has_value(); }
};

// HMAC key for authenticated mode.
using MacKey = std::vector<uint8_t>;

// A key's public name: the first 4 octets of SHA-256(key), big-endian. Says which key signed a
// packet without saying anything usable about the key; 0 for no key.
uint32_t KeyIdOf(const MacKey& key);
// The key-id TLV a sender adds to name its signing key.
StampTlv KeyIdTlv(const MacKey& key);
// The key id a packet names (its key-id TLV), without verifying anything; empty when it has
// none or its TLVs cannot be walked to it.
std::optional<uint32_t> FindKeyId(std::span<const uint8_t> bytes, StampMode mode);

// Encoders append TLVs in order: kernel TLV (if present) first, then `tlvs`; then pad with an
// Extra Padding TLV up to `padded_length` when that is larger. In authenticated mode the HMAC
// is computed with `key` over the first 96 octets.
std::vector<uint8_t> EncodeSender(const SenderPacket& packet, StampMode mode, const MacKey& key,
                                  size_t padded_length = 0);
std::vector<uint8_t> EncodeReflector(const ReflectorPacket& packet, StampMode mode, const MacKey& key,
                                     size_t padded_length = 0);
// The same into `out` (replaced), reusing its capacity: the prober and reflector encode every
// packet of a batch into buffers kept from batch to batch, with no allocation per packet.
void EncodeSender(const SenderPacket& packet, StampMode mode, const MacKey& key, size_t padded_length,
                  std::vector<uint8_t>& out);
void EncodeReflector(const ReflectorPacket& packet, StampMode mode, const MacKey& key, size_t padded_length,
                     std::vector<uint8_t>& out);

Decoded<SenderPacket> DecodeSender(std::span<const uint8_t> bytes, StampMode mode, const MacKey& key);
Decoded<ReflectorPacket> DecodeReflector(std::span<const uint8_t> bytes, StampMode mode, const MacKey& key);
// DecodeReflector as a sender needs it: the same checks (length, HMAC, every TLV's shape), the
// base fields and the kernel-stamp TLV, but the other TLVs are not copied out (`tlvs` stays
// empty): no allocation per reply.
Decoded<ReflectorPacket> DecodeReply(std::span<const uint8_t> bytes, StampMode mode, const MacKey& key);
// DecodeSender as a reflector needs it (RFC 8972 4.8): a malformed TLV does not fail the
// packet; it and everything after it end up in malformed_tail, to be returned unprocessed.
// The kernel-stamp TLV's own checks (place, magic, version) still fail it.
Decoded<SenderPacket> DecodeSenderToReflect(std::span<const uint8_t> bytes, StampMode mode,
                                            const MacKey& key);

// A reflector receiving both modes tells them apart by shape: authenticated packets have 12
// MBZ octets after the sequence number where unauthenticated ones carry the (non-zero)
// timestamp and error estimate.
bool LooksAuthenticated(std::span<const uint8_t> bytes);

// The SSID field of a Session-Sender packet in `mode`, read without verifying anything (a
// refused probe's claimed session); empty when the packet is shorter than the base packet.
std::optional<uint16_t> PeekSsid(std::span<const uint8_t> bytes, StampMode mode);

}  // namespace regionpulse
