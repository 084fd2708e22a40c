#include "agent/hmac_sha256.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <random>
#include <vector>

namespace regionpulse {
namespace {

HmacSha256::Digest OpenSslHmac(const std::vector<uint8_t>& key, const std::vector<uint8_t>& data) {
  HmacSha256::Digest digest{};
  unsigned int length = 0;
  // OpenSSL wants a non-null key pointer even for an empty key.
  static const uint8_t kNoKey = 0;
  HMAC(EVP_sha256(), key.empty() ? &kNoKey : key.data(), static_cast<int>(key.size()), data.data(),
       data.size(), digest.data(), &length);
  EXPECT_EQ(length, digest.size());
  return digest;
}

std::vector<uint8_t> RandomBytes(std::mt19937& random, size_t length) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> bytes(length);
  for (auto& b : bytes) b = static_cast<uint8_t>(byte(random));
  return bytes;
}

// Key lengths across the 64-octet block (shorter keys are padded, longer ones hashed first)
// and message lengths across the SHA-256 padding boundaries (55/56, 64, 119/120), STAMP's 96
// among them: every digest equals OpenSSL's one-shot HMAC().
TEST(HmacSha256, EqualsOpenSslHmacForManyKeysAndLengths) {
  std::mt19937 random(20261129);
  for (size_t key_length : {0, 1, 16, 31, 32, 55, 63, 64, 65, 100, 128, 200}) {
    const auto key = RandomBytes(random, key_length);
    const HmacSha256 mac(key);
    for (size_t data_length = 0; data_length <= 300; ++data_length) {
      const auto data = RandomBytes(random, data_length);
      ASSERT_EQ(mac.Compute(data.data(), data.size()), OpenSslHmac(key, data))
          << "key length " << key_length << ", data length " << data_length;
    }
  }
}

// The prepared states are copied per MAC, never advanced: the same message twice gives the
// same digest, and a message in between does not change it.
TEST(HmacSha256, ComputeLeavesThePreparedKeyUnchanged) {
  const std::vector<uint8_t> key(32, 0x42);
  const std::vector<uint8_t> message(96, 0x07);
  const std::vector<uint8_t> other(40, 0x09);
  const HmacSha256 mac(key);
  const auto first = mac.Compute(message.data(), message.size());
  mac.Compute(other.data(), other.size());
  EXPECT_EQ(mac.Compute(message.data(), message.size()), first);
  EXPECT_EQ(first, OpenSslHmac(key, message));
}

// RFC 4231 test case 2 ("Jefe"), the published HMAC-SHA-256 vector.
TEST(HmacSha256, MatchesRfc4231TestCase2) {
  const std::string key = "Jefe";
  const std::string data = "what do ya want for nothing?";
  const HmacSha256 mac(std::span(reinterpret_cast<const uint8_t*>(key.data()), key.size()));
  const HmacSha256::Digest expected = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
                                       0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
                                       0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
  EXPECT_EQ(mac.Compute(reinterpret_cast<const uint8_t*>(data.data()), data.size()), expected);
}

}  // namespace
}  // namespace regionpulse
