// libFuzzer: any bytes as a sock_diag (inet_diag) datagram the TCP socket dump reads, as the
// answer to a dump and to a batch of exact lookups. Parsing must never read outside the
// datagram, even when an inet_diag_msg or an INET_DIAG_INFO attribute is cut short, and must
// count no more answers than it was given messages.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "agent/netlink_parse.h"

namespace {

// Sequence numbers the seeds use: requests 1..128 (a lookup batch), 1 alone (a dump).
constexpr uint32_t kFirst = 1;
constexpr uint32_t kLookupBatch = 128;

void Check(const regionpulse::SockDiagDatagram& parsed, size_t size, bool dump) {
  // Each answer is a message of at least a netlink header.
  if (parsed.answered > size / 16) std::abort();
  if (parsed.connections.size() > parsed.answered) std::abort();
  if (parsed.done && (!dump || parsed.refused)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace regionpulse;
  std::vector<uint32_t> aligned((size + 3) / 4);
  if (size > 0) std::memcpy(aligned.data(), data, size);
  const std::span<const uint8_t> datagram(reinterpret_cast<const uint8_t*>(aligned.data()), size);
  Check(ParseSockDiagDatagram(datagram, kFirst, 1, /*dump=*/true), size, true);
  Check(ParseSockDiagDatagram(datagram, kFirst, kLookupBatch, /*dump=*/false), size, false);
  return 0;
}
