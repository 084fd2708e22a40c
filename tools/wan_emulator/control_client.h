// The client side of the WAN emulator's control protocol: `regionpulse-wan ctl` and the tests
// send one command and read its reply, so the lab needs no socat.
#pragma once

#include <chrono>
#include <string>

#include "common/result.h"
#include "tools/wan_emulator/control_protocol.h"

namespace regionpulse::wan {

// Connects to the control socket, sends `line`, and reads until the reply's closing line.
// An error Result means no reply (cannot connect, timed out, connection closed early); a
// refused command is a ControlReply with ok == false.
Result<ControlReply> SendControlCommand(const std::string& socket_path, const std::string& line,
                                        std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace regionpulse::wan
