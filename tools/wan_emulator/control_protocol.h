// The WAN emulator's control protocol: one command per line over a Unix stream socket, and
// a reply of zero or more body lines closed by a line "ok" or "error: WHAT". Commands:
//   set FROM TO KEY=VALUE...       one region direction (FROM/TO a region or *)
//   set-both A B KEY=VALUE...      A->B and B->A
//   node NAME blackhole=on|off     every datagram from or to that node
//   show                           impairments, counters and added error, as tables
//   stats                          the same as one line of JSON
//   ports                          "FROM TO PORT" per link direction (FROM's endpoint for TO)
//   reset                          configured impairments, no node blackholed, counters zero
//   help
// Pure: parsing and execution against a WanModel; the socket lives in the relay.
#pragma once

#include <string>
#include <vector>

#include "tools/wan_emulator/wan_model.h"

namespace regionpulse::wan {

// Longer lines are refused and the connection closed: a bound on what a client can make the
// emulator buffer.
inline constexpr size_t kMaxControlLineBytes = 4096;

struct ControlReply {
  bool ok = true;
  std::string body;   // zero or more lines, each ending in '\n'
  std::string error;  // when !ok

  // The bytes sent back: the body, then "ok\n" or "error: ...\n".
  std::string Framed() const;
};

// Executes one line (without its '\n'; a trailing '\r' is ignored). Never throws.
ControlReply ExecuteControlLine(WanModel& model, const std::string& line);

// The text of `help`.
std::string ControlHelp();

// Client side: whether `line` (without '\n') closes a reply, and if so whether it is an error.
enum class ReplyEnd { kNotEnd, kOk, kError };
ReplyEnd ClassifyReplyLine(const std::string& line);

// Splits on spaces and tabs.
std::vector<std::string> SplitWords(const std::string& line);

}  // namespace regionpulse::wan
