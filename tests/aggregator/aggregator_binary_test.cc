// The regionpulse-aggregator binary: starts from flags and a config file, serves gRPC and
// /metrics, stops cleanly on SIGTERM, and refuses a bad configuration naming the key.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/in_process_aggregator.h"
#include "tests/support/poll_until.h"
#include "tests/support/sanitizer_slowdown.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

using test::SanitizerScaled;
using test::ScratchDirectory;

using ::testing::HasSubstr;

// A port nothing listens on right now (the kernel's pick for port 0, released again).
uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

// The aggregator binary as a child process, killed if a test leaves it running.
class AggregatorProcess {
 public:
  AggregatorProcess(const std::vector<std::string>& args, const std::string& log_path) {
    pid_ = fork();
    if (pid_ == 0) {
      const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(AGGREGATOR_BINARY));
      for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
      argv.push_back(nullptr);
      execv(AGGREGATOR_BINARY, argv.data());
      _exit(127);
    }
  }
  ~AggregatorProcess() {
    if (pid_ > 0 && !exit_status_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  void Signal(int signal_number) { kill(pid_, signal_number); }

  // The exit status once the process ended within the deadline.
  std::optional<int> WaitForExit(std::chrono::milliseconds deadline) {
    int status = 0;
    if (!test::PollUntil([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, deadline)) {
      return std::nullopt;
    }
    exit_status_ = status;
    return status;
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(AggregatorBinary, ServesTheVerdictAndStopsCleanlyOnSigterm) {
  ScratchDirectory dir("aggregator");
  const std::string config_path = dir.path() + "/aggregator.yaml";
  std::ofstream(config_path) << "history:\n  path: " << dir.path() << "/history.log\n";
  const std::string grpc_listen = "127.0.0.1:" + std::to_string(FreePort());
  const std::string metrics_listen = "127.0.0.1:" + std::to_string(FreePort());
  AggregatorProcess process({"--config", config_path, "--grpc-listen", grpc_listen, "--metrics-listen",
                             metrics_listen, "--plaintext"},
                            dir.path() + "/log");

  auto channel = grpc::CreateChannel(grpc_listen, grpc::InsecureChannelCredentials());
  ASSERT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() + 20s))
      << ReadAll(dir.path() + "/log");
  auto stub = v1::Verdicts::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + SanitizerScaled(10s));
  v1::GetVerdictResponse response;
  ASSERT_TRUE(stub->Get(&context, v1::GetVerdictRequest(), &response).ok());
  // No regions configured: nothing to decide, HOLD.
  EXPECT_EQ(response.verdict().action(), v1::ACTION_HOLD);

  process.Signal(SIGTERM);
  auto status = process.WaitForExit(10s);
  ASSERT_TRUE(status) << "no exit within 10 s of SIGTERM";
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  const std::string log = ReadAll(dir.path() + "/log");
  EXPECT_THAT(log, HasSubstr("shutting down"));
  EXPECT_THAT(log, HasSubstr("aggregator stopped"));
}

TEST(AggregatorBinary, BadConfigurationExitsWith1NamingTheKey) {
  ScratchDirectory dir("aggregator");
  const std::string config_path = dir.path() + "/aggregator.yaml";
  std::ofstream(config_path) << "thresholds:\n  degraded_loss: 7\n";
  AggregatorProcess process({"--config", config_path}, dir.path() + "/log");
  auto status = process.WaitForExit(10s);
  ASSERT_TRUE(status);
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 1);
  EXPECT_THAT(ReadAll(dir.path() + "/log"), HasSubstr("thresholds.degraded_loss: "));
}

TEST(AggregatorBinary, UnknownFlagExitsWith1AndPrintsUsage) {
  ScratchDirectory dir("aggregator");
  AggregatorProcess process({"--listen", "x"}, dir.path() + "/log");
  auto status = process.WaitForExit(10s);
  ASSERT_TRUE(status);
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 1);
  const std::string log = ReadAll(dir.path() + "/log");
  EXPECT_THAT(log, HasSubstr("--listen: unknown flag"));
  EXPECT_THAT(log, HasSubstr("usage: regionpulse-aggregator [--config FILE]"));
}

TEST(AggregatorBinary, WithoutACertificateAndWithoutPlaintextRefusesToStartSayingWhy) {
  ScratchDirectory dir("aggregator");
  const std::string config_path = dir.path() + "/aggregator.yaml";
  std::ofstream(config_path) << "history:\n  path: " << dir.path() << "/history.log\n";
  const std::string grpc_listen = "127.0.0.1:" + std::to_string(FreePort());
  AggregatorProcess process({"--config", config_path, "--grpc-listen", grpc_listen, "--metrics-listen",
                             "127.0.0.1:" + std::to_string(FreePort())},
                            dir.path() + "/log");
  auto status = process.WaitForExit(10s);
  ASSERT_TRUE(status) << "still running: it served gRPC without TLS";
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_NE(WEXITSTATUS(*status), 0);
  const std::string log = ReadAll(dir.path() + "/log");
  // Why, and what to do.
  EXPECT_THAT(log, HasSubstr("no TLS certificate configured (tls.cert_file and tls.key_file)"));
  EXPECT_THAT(log, HasSubstr("anyone who can reach the port could report as any agent"));
  EXPECT_THAT(log, HasSubstr("or pass --plaintext"));
  // Nothing was served.
  EXPECT_THAT(log, ::testing::Not(HasSubstr("serving gRPC")));
}

}  // namespace
}  // namespace regionpulse
