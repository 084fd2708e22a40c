#include "agent/hmac_sha256.h"

#include <openssl/crypto.h>

#include <algorithm>

// The low-level SHA-256 functions are deprecated in OpenSSL 3 (see the header for why they
// are used); the deprecation is silenced for this file only.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace regionpulse {
namespace {

constexpr size_t kBlockLength = SHA256_CBLOCK;  // 64

}  // namespace

HmacSha256::HmacSha256(std::span<const uint8_t> key) {
  // RFC 2104: a key longer than the block is replaced by its digest, a shorter one is padded
  // with zeros to the block.
  std::array<uint8_t, kBlockLength> block{};
  if (key.size() > kBlockLength) {
    SHA256(key.data(), key.size(), block.data());
  } else {
    std::copy(key.begin(), key.end(), block.begin());
  }
  std::array<uint8_t, kBlockLength> pad{};
  for (size_t i = 0; i < kBlockLength; ++i) pad[i] = block[i] ^ 0x36;
  SHA256_Init(&inner_);
  SHA256_Update(&inner_, pad.data(), pad.size());
  for (size_t i = 0; i < kBlockLength; ++i) pad[i] = block[i] ^ 0x5c;
  SHA256_Init(&outer_);
  SHA256_Update(&outer_, pad.data(), pad.size());
  OPENSSL_cleanse(block.data(), block.size());
  OPENSSL_cleanse(pad.data(), pad.size());
}

HmacSha256::Digest HmacSha256::Compute(const uint8_t* data, size_t length) const {
  Digest digest{};
  SHA256_CTX context = inner_;
  SHA256_Update(&context, data, length);
  SHA256_Final(digest.data(), &context);
  context = outer_;
  SHA256_Update(&context, digest.data(), digest.size());
  SHA256_Final(digest.data(), &context);
  return digest;
}

}  // namespace regionpulse
