// The regionpulse-agent binary where it needs no privileges: a configuration error ends it
// with exit code 2 before anything is attached, naming the key. The agent in network
// namespaces is in agent_integration_test.cc (root).
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

#include "tests/support/agent_process.h"

namespace regionpulse {
namespace {

using std::chrono::seconds;
using test::AgentProcess;
using test::ScratchDirectory;

TEST(AgentBinary, InvalidConfigurationExitsWithAnErrorNamingTheKey) {
  ScratchDirectory scratch("daemon");
  std::string config = scratch.Write("bad.yaml",
                                     "node: n\nregion: r\nregions: [{name: r, cidrs: [10.0.0.0/8]}]\n"
                                     "probe:\n  interval: fast\n");
  AgentProcess agent(REGIONPULSE_AGENT_BINARY, "", config, scratch.path(), "bad");
  EXPECT_EQ(agent.Wait(seconds(10)), std::optional<int>(2));
  EXPECT_NE(agent.Output().find("probe.interval"), std::string::npos) << agent.Output();
}

}  // namespace
}  // namespace regionpulse
