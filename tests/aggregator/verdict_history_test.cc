// The durable verdict history: records survive reopening; a failed or short write is cut back
// so no good record is lost; a damaged file is kept aside, never truncated in place; files
// rotate at their size limit and the oldest are deleted; the engine state beside it is
// replaced atomically and a damaged one is not trusted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "aggregator/verdict_history.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;

v1::VerdictTransition Transition(uint64_t generation, v1::Action action, int64_t at_seconds) {
  v1::VerdictTransition t;
  t.mutable_verdict()->set_generation(generation);
  t.mutable_verdict()->set_action(action);
  t.mutable_verdict()->set_active_region("us-east-1");
  *t.mutable_verdict()->mutable_computed_at() =
      ToTimestamp(WallClock::time_point(std::chrono::seconds(at_seconds)));
  t.mutable_verdict()->add_reasons("reason for generation " + std::to_string(generation));
  t.set_previous_action(v1::ACTION_HOLD);
  t.add_changes("action HOLD -> STAY");
  return t;
}

class VerdictHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/rp-history-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    config_.path = dir_ + "/sub/history.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  HistoryConfig config_;
};

TEST_F(VerdictHistoryTest, SurvivesReopening) {
  {
    auto history = VerdictHistory::Open(config_);
    ASSERT_TRUE(history.ok()) << history.error().ToString();
    for (uint64_t g = 1; g <= 3; ++g)
      ASSERT_TRUE((*history)->Append(Transition(g, v1::ACTION_STAY, 100 + g)).ok());
  }
  auto reopened = VerdictHistory::Open(config_);
  ASSERT_TRUE(reopened.ok()) << reopened.error().ToString();
  auto newest = (*reopened)->Newest(10);
  ASSERT_EQ(newest.size(), 3u);
  EXPECT_EQ(newest[0].verdict().generation(), 3u);
  EXPECT_EQ(newest[2].verdict().generation(), 1u);
  EXPECT_EQ(newest[0].verdict().reasons(0), "reason for generation 3");
  EXPECT_EQ((*reopened)->Latest()->verdict().generation(), 3u);
  EXPECT_EQ((*reopened)->torn_bytes_dropped(), 0u);
}

TEST_F(VerdictHistoryTest, LimitAndSinceSelectNewestFirst) {
  auto history = VerdictHistory::Open(config_);
  ASSERT_TRUE(history.ok());
  for (uint64_t g = 1; g <= 5; ++g)
    ASSERT_TRUE((*history)->Append(Transition(g, v1::ACTION_STAY, 100 * g)).ok());
  auto two = (*history)->Newest(2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].verdict().generation(), 5u);
  EXPECT_EQ(two[1].verdict().generation(), 4u);
  auto since = (*history)->Newest(10, WallClock::time_point(300s));
  ASSERT_EQ(since.size(), 3u);
  EXPECT_EQ(since.back().verdict().generation(), 3u);
}

TEST_F(VerdictHistoryTest, TornLastRecordIsDroppedAndAppendingContinues) {
  {
    auto history = VerdictHistory::Open(config_);
    ASSERT_TRUE(history.ok());
    ASSERT_TRUE((*history)->Append(Transition(1, v1::ACTION_STAY, 100)).ok());
    ASSERT_TRUE((*history)->Append(Transition(2, v1::ACTION_FAILOVER, 200)).ok());
  }
  // A crash in the middle of writing record 3: its header and half its payload reached disk.
  const auto intact_size = std::filesystem::file_size(config_.path);
  {
    std::string payload = Transition(3, v1::ACTION_STAY, 300).SerializeAsString();
    std::string header(kHistoryRecordHeaderBytes, '\0');
    header[0] = static_cast<char>(payload.size() & 0xff);
    header[1] = static_cast<char>((payload.size() >> 8) & 0xff);
    std::ofstream out(config_.path, std::ios::app | std::ios::binary);
    out << header << payload.substr(0, payload.size() / 2);
  }
  ASSERT_GT(std::filesystem::file_size(config_.path), intact_size);
  auto history = VerdictHistory::Open(config_);
  ASSERT_TRUE(history.ok()) << history.error().ToString();
  EXPECT_GT((*history)->torn_bytes_dropped(), 0u);
  EXPECT_EQ(std::filesystem::file_size(config_.path), intact_size);
  ASSERT_EQ((*history)->size(), 2u);
  EXPECT_EQ((*history)->Latest()->verdict().generation(), 2u);
  ASSERT_TRUE((*history)->Append(Transition(3, v1::ACTION_STAY, 300)).ok());
  auto reopened = VerdictHistory::Open(config_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->size(), 3u);
  EXPECT_EQ((*reopened)->torn_bytes_dropped(), 0u);
}

// The files in the history's directory whose names start with history.log.damaged-.
std::vector<std::string> DamagedFilesBeside(const std::string& path) {
  std::vector<std::string> found;
  const std::string prefix = std::filesystem::path(path).filename().string() + ".damaged-";
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) found.push_back(entry.path().string());
  }
  return found;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<uint64_t> Generations(const VerdictHistory& history) {
  std::vector<uint64_t> out;
  for (const auto& t : history.Newest(1000)) out.insert(out.begin(), t.verdict().generation());
  return out;
}

// The disk fills in the middle of record 3: half of it reaches the file, then ENOSPC. Before,
// those bytes stayed; record 4 followed them, and the next start stopped reading at the half
// record and cut off record 4 with it.
TEST_F(VerdictHistoryTest, ShortWriteThenRestartKeepsEveryGoodRecord) {
  bool fail_next = false;
  HistoryFileOps ops;
  // write() is called again for the rest after a short write; the second call fails.
  ops.write = [&, half_written = false](int fd, const void* data, size_t size) mutable -> ssize_t {
    if (!fail_next) return ::write(fd, data, size);
    if (!half_written) {
      half_written = true;
      return ::write(fd, data, size / 2);
    }
    fail_next = false;
    half_written = false;
    errno = ENOSPC;
    return -1;
  };
  {
    auto history = VerdictHistory::Open(config_, ops);
    ASSERT_TRUE(history.ok()) << history.error().ToString();
    ASSERT_TRUE((*history)->Append(Transition(1, v1::ACTION_STAY, 100)).ok());
    ASSERT_TRUE((*history)->Append(Transition(2, v1::ACTION_HOLD, 200)).ok());
    const auto good_size = std::filesystem::file_size(config_.path);
    fail_next = true;
    const Status failed = (*history)->Append(Transition(3, v1::ACTION_FAILOVER, 300));
    ASSERT_FALSE(failed.ok());
    EXPECT_THAT(failed.error().ToString(), ::testing::HasSubstr("No space left on device"));
    // Cut back at once: nothing of record 3 stays in the file.
    EXPECT_EQ(std::filesystem::file_size(config_.path), good_size);
    ASSERT_TRUE((*history)->WriteProblem().has_value());
    EXPECT_THAT(*(*history)->WriteProblem(), ::testing::HasSubstr("write"));
    ASSERT_TRUE((*history)->Append(Transition(4, v1::ACTION_STAY, 400)).ok());
    EXPECT_FALSE((*history)->WriteProblem().has_value());
    EXPECT_EQ(Generations(**history), (std::vector<uint64_t>{1, 2, 4}));
  }
  auto reopened = VerdictHistory::Open(config_);
  ASSERT_TRUE(reopened.ok()) << reopened.error().ToString();
  EXPECT_EQ(Generations(**reopened), (std::vector<uint64_t>{1, 2, 4}));
  EXPECT_EQ((*reopened)->torn_bytes_dropped(), 0u);
  EXPECT_THAT(DamagedFilesBeside(config_.path), ::testing::IsEmpty());
}

// The rollback itself fails too (ftruncate refused): the half record stays for now, and the
// next Append cuts the file back before it writes.
TEST_F(VerdictHistoryTest, FailedRollbackIsRetriedBeforeTheNextRecord) {
  bool fail = false;
  HistoryFileOps ops;
  ops.write = [&](int fd, const void* data, size_t size) -> ssize_t {
    if (!fail) return ::write(fd, data, size);
    fail = false;
    (void)!::write(fd, data, size / 2);
    errno = EIO;
    return -1;
  };
  bool truncate_fails = false;
  ops.ftruncate = [&](int fd, off_t length) {
    if (truncate_fails) {
      errno = EIO;
      return -1;
    }
    return ::ftruncate(fd, length);
  };
  {
    auto history = VerdictHistory::Open(config_, ops);
    ASSERT_TRUE(history.ok());
    ASSERT_TRUE((*history)->Append(Transition(1, v1::ACTION_STAY, 100)).ok());
    const auto good_size = std::filesystem::file_size(config_.path);
    fail = true;
    truncate_fails = true;
    EXPECT_FALSE((*history)->Append(Transition(2, v1::ACTION_HOLD, 200)).ok());
    EXPECT_GT(std::filesystem::file_size(config_.path), good_size);
    truncate_fails = false;
    ASSERT_TRUE((*history)->Append(Transition(3, v1::ACTION_STAY, 300)).ok());
  }
  auto reopened = VerdictHistory::Open(config_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(Generations(**reopened), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ((*reopened)->torn_bytes_dropped(), 0u);
}

// After a failed fdatasync nobody knows which bytes reached the disk: the record is not kept,
// the failure is a problem the aggregator's /readyz shows, and it clears once a write succeeds.
TEST_F(VerdictHistoryTest, FailedFdatasyncIsAnErrorAndTheRecordIsNotKept) {
  bool fail_sync = false;
  HistoryFileOps ops;
  ops.fdatasync = [&](int fd) {
    if (!fail_sync) return ::fdatasync(fd);
    errno = EIO;
    return -1;
  };
  auto history = VerdictHistory::Open(config_, ops);
  ASSERT_TRUE(history.ok());
  ASSERT_TRUE((*history)->Append(Transition(1, v1::ACTION_STAY, 100)).ok());
  const auto good_size = std::filesystem::file_size(config_.path);
  fail_sync = true;
  const Status failed = (*history)->Append(Transition(2, v1::ACTION_HOLD, 200));
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.error().ToString(), ::testing::HasSubstr("fdatasync"));
  EXPECT_EQ(std::filesystem::file_size(config_.path), good_size);
  EXPECT_EQ((*history)->size(), 1u);
  ASSERT_TRUE((*history)->WriteProblem().has_value());
  EXPECT_THAT(*(*history)->WriteProblem(), ::testing::HasSubstr("Input/output error"));
  // The engine state's sync fails the same way and is reported the same way.
  EXPECT_FALSE((*history)->SaveEngineState(v1::VerdictEngineState()).ok());
  EXPECT_THAT(*(*history)->WriteProblem(), ::testing::HasSubstr("verdict engine state"));
  fail_sync = false;
  ASSERT_TRUE((*history)->Append(Transition(2, v1::ACTION_HOLD, 200)).ok());
  ASSERT_TRUE((*history)->SaveEngineState(v1::VerdictEngineState()).ok());
  EXPECT_FALSE((*history)->WriteProblem().has_value());
  EXPECT_EQ((*history)->size(), 2u);
}

// Bytes that fail their checksum with good records after them (a disk error, or an older
// version that wrote past a failed write): the file is kept aside as it was, byte for byte,
// and the history continues from its good prefix; nothing is truncated in place.
TEST_F(VerdictHistoryTest, DamagedFileIsMovedAsideNotTruncated) {
  {
    auto history = VerdictHistory::Open(config_);
    ASSERT_TRUE(history.ok());
    ASSERT_TRUE((*history)->Append(Transition(1, v1::ACTION_STAY, 100)).ok());
    ASSERT_TRUE((*history)->Append(Transition(2, v1::ACTION_HOLD, 200)).ok());
  }
  const auto good_size = std::filesystem::file_size(config_.path);
  {
    std::ofstream out(config_.path, std::ios::app | std::ios::binary);
    out << std::string("\x05\x00\x00\x00garbage", 11);
  }
  {
    // A good record after the damage, as the old Append wrote it.
    auto other = config_;
    other.path = dir_ + "/other.log";
    auto writer = VerdictHistory::Open(other);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append(Transition(3, v1::ACTION_STAY, 300)).ok());
    std::ofstream out(config_.path, std::ios::app | std::ios::binary);
    out << ReadFile(other.path);
  }
  const std::string as_found = ReadFile(config_.path);

  auto history = VerdictHistory::Open(config_);
  ASSERT_TRUE(history.ok()) << history.error().ToString();
  EXPECT_EQ(Generations(**history), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ((*history)->torn_bytes_dropped(), as_found.size() - good_size);
  const auto damaged = DamagedFilesBeside(config_.path);
  ASSERT_EQ(damaged.size(), 1u);
  EXPECT_EQ(damaged[0], (*history)->moved_aside_path());
  EXPECT_EQ(ReadFile(damaged[0]), as_found);  // kept whole, record 3 included
  EXPECT_EQ(std::filesystem::file_size(config_.path), good_size);
  ASSERT_TRUE((*history)->Append(Transition(4, v1::ACTION_STAY, 400)).ok());
  history->reset();
  auto reopened = VerdictHistory::Open(config_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(Generations(**reopened), (std::vector<uint64_t>{1, 2, 4}));
  EXPECT_EQ(DamagedFilesBeside(config_.path).size(), 1u);  // nothing new set aside
}

TEST_F(VerdictHistoryTest, CorruptedChecksumEndsTheReadableLog) {
  {
    auto history = VerdictHistory::Open(config_);
    ASSERT_TRUE(history.ok());
    ASSERT_TRUE((*history)->Append(Transition(1, v1::ACTION_STAY, 100)).ok());
    ASSERT_TRUE((*history)->Append(Transition(2, v1::ACTION_STAY, 200)).ok());
  }
  {
    // Flip a byte in the last record's payload.
    std::fstream f(config_.path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');
  }
  auto history = VerdictHistory::Open(config_);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ((*history)->size(), 1u);
  EXPECT_EQ((*history)->Latest()->verdict().generation(), 1u);
}

TEST_F(VerdictHistoryTest, RotatesAtTheSizeLimitAndDeletesTheOldest) {
  config_.max_file_bytes = 4096;
  config_.max_rotated_files = 2;
  const size_t record_bytes = kHistoryRecordHeaderBytes + Transition(1, v1::ACTION_STAY, 100).ByteSizeLong();
  const size_t per_file = config_.max_file_bytes / record_bytes;
  const size_t total = per_file * 5;
  {
    auto history = VerdictHistory::Open(config_);
    ASSERT_TRUE(history.ok());
    for (uint64_t g = 1; g <= total; ++g)
      ASSERT_TRUE((*history)->Append(Transition(g, v1::ACTION_STAY, 100)).ok());
    // At most the current file and two rotated ones remain, in memory as on disk.
    EXPECT_LE((*history)->size(), per_file * 3);
    EXPECT_GT((*history)->size(), per_file * 2);
  }
  EXPECT_TRUE(std::filesystem::exists(config_.path));
  EXPECT_TRUE(std::filesystem::exists(VerdictHistory::RotatedPath(config_.path, 1)));
  EXPECT_TRUE(std::filesystem::exists(VerdictHistory::RotatedPath(config_.path, 2)));
  EXPECT_FALSE(std::filesystem::exists(VerdictHistory::RotatedPath(config_.path, 3)));
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(config_.path).parent_path())) {
    EXPECT_LE(entry.file_size(), config_.max_file_bytes) << entry.path();
  }
  auto reopened = VerdictHistory::Open(config_);
  ASSERT_TRUE(reopened.ok());
  auto all = (*reopened)->Newest(100000);
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front().verdict().generation(), total);
  // What remains is a contiguous run of the newest records.
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_EQ(all[i].verdict().generation() + 1, all[i - 1].verdict().generation());
  }
}

TEST_F(VerdictHistoryTest, UnwritableDirectoryIsAnErrorNamingThePath) {
  config_.path = "/proc/regionpulse-no/history.log";
  auto history = VerdictHistory::Open(config_);
  ASSERT_FALSE(history.ok());
  EXPECT_THAT(history.error().ToString(), ::testing::HasSubstr("/proc/regionpulse-no"));
}

v1::VerdictEngineState LatchedState(uint64_t generation) {
  v1::VerdictEngineState state;
  state.set_generation(generation);
  state.set_active_region("us-east-1");
  state.set_failover_latched(true);
  state.set_failover_target("eu-west-1");
  v1::RegionDecisionState* region = state.add_regions();
  region->set_region("us-east-1");
  region->set_state(v1::REGION_STATE_UNREACHABLE);
  return state;
}

TEST_F(VerdictHistoryTest, EngineStateSurvivesReopeningAndTheLastSaveWins) {
  {
    auto history = VerdictHistory::Open(config_);
    ASSERT_TRUE(history.ok()) << history.error().ToString();
    EXPECT_FALSE((*history)->saved_engine_state());
    ASSERT_TRUE((*history)->SaveEngineState(LatchedState(4)).ok());
    ASSERT_TRUE((*history)->SaveEngineState(LatchedState(5)).ok());
  }
  auto reopened = VerdictHistory::Open(config_);
  ASSERT_TRUE(reopened.ok()) << reopened.error().ToString();
  const auto& saved = (*reopened)->saved_engine_state();
  ASSERT_TRUE(saved);
  EXPECT_EQ(saved->generation(), 5u);
  EXPECT_TRUE(saved->failover_latched());
  EXPECT_EQ(saved->failover_target(), "eu-west-1");
  // Replaced by rename: no temporary file is left beside it.
  EXPECT_FALSE(std::filesystem::exists(VerdictHistory::EngineStatePath(config_.path) + ".tmp"));
}

TEST_F(VerdictHistoryTest, DamagedEngineStateIsIgnoredNotTrusted) {
  {
    auto history = VerdictHistory::Open(config_);
    ASSERT_TRUE(history.ok()) << history.error().ToString();
    ASSERT_TRUE((*history)->SaveEngineState(LatchedState(7)).ok());
  }
  const std::string path = VerdictHistory::EngineStatePath(config_.path);
  const auto size = std::filesystem::file_size(path);
  // A flipped byte in the payload fails the checksum; a latched FAILOVER read from a damaged
  // file would be worse than starting afresh in HOLD.
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(size - 3));
    file.put('\x5a');
  }
  auto reopened = VerdictHistory::Open(config_);
  ASSERT_TRUE(reopened.ok()) << reopened.error().ToString();
  EXPECT_FALSE((*reopened)->saved_engine_state());

  std::filesystem::resize_file(path, 5);
  auto truncated = VerdictHistory::Open(config_);
  ASSERT_TRUE(truncated.ok()) << truncated.error().ToString();
  EXPECT_FALSE((*truncated)->saved_engine_state());
}

}  // namespace
}  // namespace regionpulse
