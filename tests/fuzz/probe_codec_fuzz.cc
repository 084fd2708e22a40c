// libFuzzer: any bytes as a STAMP Session-Sender and Session-Reflector packet, in both modes.
// Decoding must never crash, read out of bounds or hit undefined behaviour; a packet that
// decodes must encode again to a packet that decodes to the same fields. The reflector's
// lenient path (a malformed TLV kept as a tail and returned flagged M) must return a reply
// exactly as long as the probe when the probe has such a tail.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "agent/probe_codec.h"
#include "agent/reflector.h"

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
    (void)FindKeyId(bytes, mode);
    auto to_reflect = DecodeSenderToReflect(bytes, mode, Key());
    if (to_reflect.ok()) {
      ReflectorSessions sessions(std::chrono::seconds(1), 4);
      const auto reply = sessions.Reflect(SenderKey{}, *to_reflect.packet, {}, {}, {}, 64);
      const auto out = EncodeReflector(reply, mode, Key(), size);
      if (!to_reflect.packet->malformed_tail.empty() && out.size() != size) std::abort();
    }
    auto reflector = DecodeReflector(bytes, mode, Key());
    if (reflector.ok()) {
      const auto again = EncodeReflector(*reflector.packet, mode, Key());
      if (!DecodeReflector(again, mode, Key()).ok()) std::abort();
    }
  }
  return 0;
}
