// Kernel mounts the datapath needs, the parts that need no privileges: a directory that is not
// a cgroup2 mount is refused by name. Mounting and the capability check are in
// kernel_mounts_privileged_test.cc (root).
#include <gtest/gtest.h>

#include <string>

#include "agent/kernel_mounts.h"

namespace regionpulse {
namespace {

TEST(KernelMounts, OpenCgroup2RejectsADirectoryThatIsNotCgroup2) {
  auto opened = OpenCgroup2("/tmp");
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().message.find("/tmp"), std::string::npos) << opened.error().ToString();
}

}  // namespace
}  // namespace regionpulse
