// A plain HTTP/1.1 GET against a local status server (/metrics, /healthz, /readyz), without
// an HTTP library: what a test needs to read one page.
#pragma once

#include <cstdint>
#include <string>

namespace regionpulse::test {

// A TCP connection to 127.0.0.1:port (the descriptor, close-on-exec); -1 when it cannot
// connect.
int ConnectLoopback(uint16_t port);

// The whole reply (status line, headers, body) from 127.0.0.1:port; empty when it cannot
// connect. Gives up reading after 10 s of silence.
std::string HttpGet(uint16_t port, const std::string& path);

}  // namespace regionpulse::test
