// Interoperation with an implementation nobody here wrote: Scapy's STAMP layers
// (scapy.contrib.stamp, Debian python3-scapy) as Session-Sender against our reflector and
// as Session-Reflector for our prober, unauthenticated mode (the only one Scapy has).
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <thread>
#include <tuple>

#include "agent/prober.h"
#include "agent/reflector.h"
#include "common/report_validation.h"
#include "tests/agent/recording_sink.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

// Debian's interpreter: python3-scapy is installed for it, not for other pythons on PATH.
const std::string kPython = "/usr/bin/python3";
const std::string kScript = SCAPY_STAMP_SCRIPT;

// Runs a command, returning (exit status, everything it printed).
std::pair<int, std::string> RunCommand(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  char line[512];
  while (fgets(line, sizeof(line), pipe)) output += line;
  return {pclose(pipe), output};
}

// Runs scapy_stamp.py with `command` against one of our reflectors (unauthenticated mode) on
// a free port: the script's exit status and output, and the reflector's counters after it.
struct ScapyRun {
  int status = -1;
  std::string output;
  ReflectorCounters counters;
};
ScapyRun RunScapyAgainstOurReflector(const std::string& command, const std::string& extra_args = "") {
  boost::asio::io_context io;
  ReflectorConfig config;
  config.listen_address = "::";
  config.port = 0;
  config.accept_authenticated = false;
  config.accept_unauthenticated = true;
  auto reflector = Reflector::Start(io, config);
  if (!reflector.ok()) return {-1, reflector.error().ToString(), {}};
  auto work = boost::asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  ScapyRun run;
  std::tie(run.status, run.output) = RunCommand(kPython + " " + kScript + " " + command + " 127.0.0.1 " +
                                                std::to_string((*reflector)->port()) + extra_args);
  (*reflector)->Stop();
  work.reset();
  runner.join();
  run.counters = (*reflector)->counters();
  return run;
}

TEST(ScapyInterop, ScapySenderIsAnsweredByOurReflector) {
  const ScapyRun run = RunScapyAgainstOurReflector("send", " 20");
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("OK 20"), std::string::npos) << run.output;
  EXPECT_EQ(run.counters.replied, 20u);
  EXPECT_EQ(run.counters.malformed, 0u);
}

// RFC 8972 4.8: a TLV that does not parse is returned flagged M, with the rest of the packet
// unprocessed; the probe is answered, not dropped.
TEST(ScapyInterop, AMalformedTlvFromScapyIsReflectedFlaggedM) {
  const ScapyRun run = RunScapyAgainstOurReflector("send-malformed");
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("OK malformed"), std::string::npos) << run.output;
  EXPECT_EQ(run.counters.malformed_tlv, 1u);
  EXPECT_EQ(run.counters.malformed, 0u);
}

TEST(ScapyInterop, OurProberMeasuresAgainstAScapyReflector) {
  constexpr int kCount = 30;
  FILE* peer = popen((kPython + " " + kScript + " reflect " + std::to_string(kCount) + " 2>&1").c_str(), "r");
  ASSERT_NE(peer, nullptr);
  char line[256] = {};
  ASSERT_NE(fgets(line, sizeof(line), peer), nullptr);
  int port = 0;
  ASSERT_EQ(sscanf(line, "port %d", &port), 1) << line;

  boost::asio::io_context io;
  WindowFolderConfig folder_config;
  folder_config.region_names = {"lab"};
  WindowFolder folder(folder_config, std::chrono::steady_clock::now(), std::chrono::system_clock::now(), {});
  test::RecordingSink sink(&folder);
  ProberConfig config;
  config.interval = 20ms;
  config.mode = StampMode::kUnauthenticated;
  Prober prober(io, config, sink);
  prober.SetTargets({ProbeTarget{"scapy", "lab", "", "127.0.0.1", static_cast<uint16_t>(port)}});
  const bool answered = test::RunUntil(
      io, [&] { return sink.replies().size() >= kCount; }, 20s);
  // Scapy answers exactly kCount probes; stop before more are sent, then fold.
  prober.Stop();
  const auto now = std::chrono::steady_clock::now();
  std::string rest;
  while (fgets(line, sizeof(line), peer)) rest += line;
  EXPECT_EQ(pclose(peer), 0) << rest;
  ASSERT_TRUE(answered) << "replies: " << sink.replies().size();

  for (size_t i = 0; i < sink.replies().size(); ++i) {
    const auto& r = sink.replies()[i];
    EXPECT_EQ(r.sender_sequence, i);
    EXPECT_EQ(r.reflector_sequence, i);
    // Scapy's reflector returned our (unstamped) kernel TLV and stamped in NTP format,
    // which the prober read through the Z bit: a turnaround of well under a second.
    ASSERT_TRUE(r.kernel.has_value());
    ASSERT_TRUE(r.reflector_turnaround.has_value());
    EXPECT_LT(*r.reflector_turnaround, 500ms);
  }
  auto reports = folder.Drain(now, std::chrono::system_clock::now(), {});
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(ReportProblems(reports[0]).empty());
  ASSERT_EQ(reports[0].paths_size(), 1);
  const auto& path = reports[0].paths(0);
  EXPECT_GE(path.probes_sent(), static_cast<uint64_t>(kCount));
  EXPECT_EQ(path.received_reverse(), static_cast<uint64_t>(kCount));
  EXPECT_GT(path.rtt_user().min_ns(), 0u);
}

}  // namespace
}  // namespace regionpulse
