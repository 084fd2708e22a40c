// VerdictHistory: the durable log of verdict transitions, so an engineer can see afterwards
// why a failover happened. Each record is length-prefixed, checksummed protobuf, fdatasync'd
// before Append returns; files rotate at a size limit and the oldest is deleted; a torn last
// record (a crash mid-write) is cut off when the log is reopened. Beside the log, at
// PATH.engine, it keeps the verdict engine's decision state (replaced atomically), so a
// restarted aggregator neither forgets a latched FAILOVER nor restarts a dwell as STAY.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "aggregator/aggregator_config.h"
#include "common/clocks.h"
#include "common/proto_convert.h"
#include "common/result.h"
#include "regionpulse/v1/engine_state.pb.h"
#include "regionpulse/v1/query.pb.h"

namespace regionpulse {

// On-disk record: 4 bytes payload length (little endian), 4 bytes CRC-32 of the payload (little
// endian), then the serialized v1::VerdictTransition.
inline constexpr size_t kHistoryRecordHeaderBytes = 8;
// A single transition is a few KiB; anything near this is corruption, not a record.
inline constexpr uint32_t kHistoryMaxRecordBytes = 16 * 1024 * 1024;

class VerdictHistory {
 public:
  // Reads every existing file (oldest rotated first), truncates a torn tail of the current
  // file, and opens it for appending. Creates the directory when missing.
  static Result<std::unique_ptr<VerdictHistory>> Open(const HistoryConfig& config);
  ~VerdictHistory();
  VerdictHistory(const VerdictHistory&) = delete;
  VerdictHistory& operator=(const VerdictHistory&) = delete;

  // Appends and makes the record durable (fdatasync) before returning; rotates first when the
  // record would take the current file past its size limit.
  Status Append(const v1::VerdictTransition& transition);

  // Newest first, at most limit, only transitions computed at or after since.
  std::vector<v1::VerdictTransition> Newest(size_t limit,
                                            std::optional<WallClock::time_point> since = std::nullopt) const;
  // The most recent transition, e.g. to continue the generation count after a restart.
  std::optional<v1::VerdictTransition> Latest() const;
  size_t size() const;
  // Bytes cut off the end of the current file when it was opened (0 after a clean shutdown).
  uint64_t torn_bytes_dropped() const { return torn_bytes_dropped_; }

  // Replaces the saved engine state: written to a temporary file, fsync'd, renamed over the
  // old one and the directory fsync'd, so a crash leaves either the old state or the new one.
  Status SaveEngineState(const v1::VerdictEngineState& state);
  // The engine state found when the history was opened; nothing when there was none or it was
  // damaged (then the engine starts afresh, in HOLD, and a warning says so).
  const std::optional<v1::VerdictEngineState>& saved_engine_state() const { return saved_engine_state_; }
  static std::string EngineStatePath(const std::string& path) { return path + ".engine"; }

  // The rotated file with the given age: 1 is the newest rotated one.
  static std::string RotatedPath(const std::string& path, uint32_t age);

 private:
  explicit VerdictHistory(HistoryConfig config);
  Status LoadAll();
  void LoadEngineState();
  Status OpenCurrentForAppend();
  Status RotateLocked();

  const HistoryConfig config_;
  mutable std::mutex mutex_;
  int fd_ = -1;
  uint64_t current_bytes_ = 0;
  uint64_t torn_bytes_dropped_ = 0;
  std::optional<v1::VerdictEngineState> saved_engine_state_;
  // Every record on disk, oldest first, and how many of them each file holds (oldest file
  // first, the current file last), so deleting the oldest file drops the right ones.
  std::deque<v1::VerdictTransition> records_;
  std::deque<size_t> records_per_file_;
};

}  // namespace regionpulse
