// HMAC-SHA-256 (RFC 2104) with the key's inner and outer SHA-256 states computed once.
#pragma once

#include <openssl/sha.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace regionpulse {

// One key's HMAC-SHA-256. The key is folded into the two padded-key SHA-256 states when it is
// set; each MAC then copies those states by value and hashes only the message and the inner
// digest. OpenSSL 3's EVP_MAC re-init instead duplicates its digest context through the
// provider (an allocation and a free per MAC) and dispatches every update and final through
// EVP, about as much work as the two SHA-256 of a 96-octet STAMP base themselves.
class HmacSha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  explicit HmacSha256(std::span<const uint8_t> key);

  Digest Compute(const uint8_t* data, size_t length) const;

 private:
  // SHA256_CTX and its functions are deprecated in OpenSSL 3 in favour of EVP, whose
  // per-call context copies are the cost this class exists to avoid; they remain in 3.x.
  SHA256_CTX inner_;  // after the key XOR ipad block
  SHA256_CTX outer_;  // after the key XOR opad block
};

}  // namespace regionpulse
