// libFuzzer: any bytes as a STAMP Session-Sender and Session-Reflector packet, in both modes.
// Decoding must never crash, read out of bounds or hit undefined behaviour; a packet that
// decodes must encode again to a packet that decodes to the same fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "agent/probe_codec.h"

namespace {

const regionpulse::MacKey& Key() {
  static const regionpulse::MacKey key(32, 0x5a);
  return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace regionpulse;
  const std::span<const uint8_t> bytes(data, size);
  (void)LooksAuthenticated(bytes);
  for (StampMode mode : {StampMode::kUnauthenticated, StampMode::kAuthenticated}) {
    auto sender = DecodeSender(bytes, mode, Key());
    if (sender.ok()) {
      const auto again = EncodeSender(*sender.packet, mode, Key());
      if (!DecodeSender(again, mode, Key()).ok()) std::abort();
    }
    auto reflector = DecodeReflector(bytes, mode, Key());
    if (reflector.ok()) {
      const auto again = EncodeReflector(*reflector.packet, mode, Key());
      if (!DecodeReflector(again, mode, Key()).ok()) std::abort();
    }
  }
  return 0;
}
