// A fresh probe key for a test run: 32 hex digits (128 bits), as the agents' key_file holds.
#pragma once

#include <random>
#include <sstream>
#include <string>

namespace regionpulse::test {

inline std::string RandomProbeKeyHex() {
  std::random_device random;
  std::ostringstream key;
  for (int i = 0; i < 32; ++i) key << std::hex << (random() % 16);
  return key.str();
}

}  // namespace regionpulse::test
