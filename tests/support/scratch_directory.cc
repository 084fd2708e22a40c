// ScratchDirectory (see scratch_directory.h).
#include "tests/support/scratch_directory.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "tests/support/test_network.h"

namespace regionpulse::test {

ScratchDirectory::ScratchDirectory(const std::string& purpose) {
  std::string pattern = "/tmp/" + RunPrefix() + "-" + purpose + "-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
  }
  path_ = buffer.data();
}

ScratchDirectory::~ScratchDirectory() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string ScratchDirectory::Write(const std::string& name, const std::string& contents) const {
  std::string file = path_ + "/" + name;
  std::ofstream out(file, std::ios::trunc);
  out << contents;
  if (!out) throw std::runtime_error("write " + file);
  return file;
}

}  // namespace regionpulse::test
