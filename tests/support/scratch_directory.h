// ScratchDirectory: a directory under /tmp for one test's files, removed with its contents on
// destruction.
#pragma once

#include <string>

namespace regionpulse::test {

// Named /tmp/<run prefix>-<purpose>-XXXXXX, so leftovers of a killed run are recognisable.
class ScratchDirectory {
 public:
  explicit ScratchDirectory(const std::string& purpose);
  ~ScratchDirectory();
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  const std::string& path() const { return path_; }
  // Writes a file in the directory and returns its path; throws when it cannot.
  std::string Write(const std::string& name, const std::string& contents) const;

 private:
  std::string path_;
};

}  // namespace regionpulse::test
