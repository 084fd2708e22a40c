// Crafted packets for BPF_PROG_TEST_RUN: Ethernet + IPv4/IPv6 + UDP/TCP, with STAMP-shaped
// payloads carrying the kernel-stamp TLV, and an independent UDP checksum to verify the
// programs' checksum fix-ups against. Test-only; byte layouts follow the RFCs, not the code
// under test.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace regionpulse::test {

using Bytes = std::vector<uint8_t>;

constexpr size_t kEthHeader = 14;
constexpr size_t kIpv4Header = 20;
constexpr size_t kIpv6Header = 40;
constexpr size_t kUdpHeader = 8;
constexpr uint16_t kEthIpv4 = 0x0800;
constexpr uint16_t kEthIpv6 = 0x86DD;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;

inline void Put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
inline void Put32(Bytes& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
inline uint16_t Get16(const Bytes& b, size_t at) {
  return static_cast<uint16_t>((b[at] << 8) | b[at + 1]);
}
inline uint64_t Get64(const Bytes& b, size_t at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | b[at + i];
  return v;
}

inline std::vector<uint8_t> Addr(const std::string& text) {
  const bool v6 = text.find(':') != std::string::npos;
  std::vector<uint8_t> out(v6 ? 16 : 4);
  inet_pton(v6 ? AF_INET6 : AF_INET, text.c_str(), out.data());
  return out;
}

inline uint32_t SumWords(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>((p[i] << 8) | p[i + 1]);
  if (n % 2) sum += static_cast<uint32_t>(p[n - 1] << 8);
  return sum;
}
inline uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The UDP checksum (RFC 768 / RFC 8200 8.1) of the datagram at `l4` with the checksum field
// taken as zero; a computed 0 is sent as 0xffff.
inline uint16_t UdpChecksum(const Bytes& packet, size_t l3, size_t l4, bool ipv6) {
  const uint16_t udp_len = Get16(packet, l4 + 4);
  uint32_t sum = 0;
  if (ipv6) {
    sum = SumWords(&packet[l3 + 8], 32);
  } else {
    sum = SumWords(&packet[l3 + 12], 8);
  }
  sum += kProtoUdp;
  sum += udp_len;
  Bytes segment(packet.begin() + static_cast<long>(l4), packet.begin() + static_cast<long>(l4 + udp_len));
  segment[6] = segment[7] = 0;
  sum = SumWords(segment.data(), segment.size(), sum);
  const uint16_t csum = static_cast<uint16_t>(~Fold(sum));
  return csum == 0 ? 0xffff : csum;
}

struct PacketSpec {
  bool ipv6 = false;
  std::string src = "10.9.0.1";
  std::string dst = "10.1.5.9";
  uint8_t l4_proto = kProtoUdp;
  uint16_t sport = 40000;
  uint16_t dport = 862;
  Bytes payload;
  bool zero_udp_checksum = false;  // IPv4 only: "no checksum"
};

// An Ethernet frame; l3 offset kEthHeader. Valid IPv4 header checksum and UDP checksum.
inline Bytes BuildFrame(const PacketSpec& spec) {
  const size_t l3_len = spec.ipv6 ? kIpv6Header : kIpv4Header;
  const size_t l4_len = (spec.l4_proto == kProtoUdp ? kUdpHeader : 20) + spec.payload.size();
  Bytes b(kEthHeader + l3_len + l4_len, 0);
  for (int i = 0; i < 6; ++i) {
    b[i] = 0x02;
    b[6 + i] = 0x04;
  }
  Put16(b, 12, spec.ipv6 ? kEthIpv6 : kEthIpv4);
  const size_t l3 = kEthHeader;
  const auto src = Addr(spec.src);
  const auto dst = Addr(spec.dst);
  if (spec.ipv6) {
    b[l3] = 0x60;
    Put16(b, l3 + 4, static_cast<uint16_t>(l4_len));
    b[l3 + 6] = spec.l4_proto;
    b[l3 + 7] = 64;
    std::memcpy(&b[l3 + 8], src.data(), 16);
    std::memcpy(&b[l3 + 24], dst.data(), 16);
  } else {
    b[l3] = 0x45;
    Put16(b, l3 + 2, static_cast<uint16_t>(l3_len + l4_len));
    Put16(b, l3 + 6, 0x4000);  // DF
    b[l3 + 8] = 64;
    b[l3 + 9] = spec.l4_proto;
    std::memcpy(&b[l3 + 12], src.data(), 4);
    std::memcpy(&b[l3 + 16], dst.data(), 4);
    Put16(b, l3 + 10, static_cast<uint16_t>(~Fold(SumWords(&b[l3], kIpv4Header))));
  }
  const size_t l4 = l3 + l3_len;
  Put16(b, l4, spec.sport);
  Put16(b, l4 + 2, spec.dport);
  if (spec.l4_proto == kProtoUdp) {
    Put16(b, l4 + 4, static_cast<uint16_t>(l4_len));
    std::memcpy(&b[l4 + kUdpHeader], spec.payload.data(), spec.payload.size());
    if (!spec.zero_udp_checksum) Put16(b, l4 + 6, UdpChecksum(b, l3, l4, spec.ipv6));
  } else {
    b[l4 + 12] = 0x50;  // TCP data offset 5
    std::memcpy(&b[l4 + 20], spec.payload.data(), spec.payload.size());
  }
  return b;
}

// A STAMP-shaped payload: `base` bytes of base packet (44 unauthenticated, 112 authenticated)
// filled with a pattern, then the kernel-stamp TLV (type 250, length 40, magic, t[] = stamps).
inline Bytes StampPayload(size_t base, uint8_t tlv_type = 250, uint32_t magic = 0x52504b31,
                          std::vector<uint64_t> stamps = {0, 0, 0, 0}) {
  Bytes p(base + 44, 0);
  for (size_t i = 0; i < base; ++i) p[i] = static_cast<uint8_t>(0xA0 + i);
  p[base] = 0;
  p[base + 1] = tlv_type;
  Put16(p, base + 2, 40);
  Put32(p, base + 4, magic);
  for (size_t i = 0; i < 4; ++i) {
    for (int k = 0; k < 8; ++k) p[base + 12 + 8 * i + k] = static_cast<uint8_t>(stamps[i] >> (56 - 8 * k));
  }
  return p;
}

}  // namespace regionpulse::test
