// The durable verdict history: records survive reopening, a torn last record is dropped,
// files rotate at their size limit and the oldest are deleted; the engine state beside it is
// replaced atomically and a damaged one is not trusted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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
