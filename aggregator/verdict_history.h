// VerdictHistory: the durable log of verdict transitions, so an engineer can see afterwards
// why a failover happened. Each record is length-prefixed, checksummed protobuf, fdatasync'd
// before Append returns; files rotate at a size limit and the oldest is deleted. Good records
// are never lost: a failed or short write (or a failed fdatasync) is cut back to the last good
// length before anything else is written, and a current file found damaged when the log is
// opened (a crash mid-write, or worse) is kept aside as PATH.damaged-TIME while its good
// records are copied to a fresh PATH. Beside the log, at
// PATH.engine, it keeps the verdict engine's decision state (replaced atomically), so a
// restarted aggregator neither forgets a latched FAILOVER nor restarts a dwell as STAY.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>
#include <unistd.h>

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

// The system calls that write the log, replaceable so tests can make a write short or an
// fdatasync fail (a full disk, an I/O error) without a full disk.
struct HistoryFileOps {
  std::function<ssize_t(int fd, const void* data, size_t size)> write =
      [](int fd, const void* data, size_t size) { return ::write(fd, data, size); };
  std::function<int(int fd)> fdatasync = [](int fd) { return ::fdatasync(fd); };
  std::function<int(int fd, off_t length)> ftruncate = [](int fd, off_t length) {
    return ::ftruncate(fd, length);
  };
};

class VerdictHistory {
 public:
  // Reads every existing file (oldest rotated first); when the current file has bytes after
  // its last good record, keeps it aside (PATH.damaged-TIME) and continues in a new PATH that
  // holds exactly its good records. Opens PATH for appending; creates the directory when
  // missing.
  static Result<std::unique_ptr<VerdictHistory>> Open(const HistoryConfig& config, HistoryFileOps ops = {});
  ~VerdictHistory();
  VerdictHistory(const VerdictHistory&) = delete;
  VerdictHistory& operator=(const VerdictHistory&) = delete;

  // Appends and makes the record durable (fdatasync) before returning; rotates first when the
  // record would take the current file past its size limit. On failure (a short write, a
  // failed write or fdatasync) the file is cut back to its last good length, so the next record
  // follows good ones; when even that fails, the next Append cuts it back before writing.
  Status Append(const v1::VerdictTransition& transition);

  // Why the history is not durable right now (the last Append or SaveEngineState failed and
  // has not succeeded since), for /readyz; nothing when every write since has succeeded.
  std::optional<std::string> WriteProblem() const;

  // Newest first, at most limit, only transitions computed at or after since.
  std::vector<v1::VerdictTransition> Newest(size_t limit,
                                            std::optional<WallClock::time_point> since = std::nullopt) const;
  // The most recent transition, e.g. to continue the generation count after a restart.
  std::optional<v1::VerdictTransition> Latest() const;
  size_t size() const;
  // Bytes after the last good record of the current file when it was opened (0 after a clean
  // shutdown); the whole file was kept at moved_aside_path().
  uint64_t torn_bytes_dropped() const { return torn_bytes_dropped_; }
  const std::string& moved_aside_path() const { return moved_aside_path_; }

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
  VerdictHistory(HistoryConfig config, HistoryFileOps ops);
  Status LoadAll();
  // Keeps the damaged current file aside and replaces it with its first good_bytes.
  Status MoveAsideDamaged(const std::string& bytes, uint64_t good_bytes);
  void LoadEngineState();
  Status OpenCurrentForAppend();
  Status RotateLocked();
  // Cuts the current file back to current_bytes_ (after a failed write); false when it could
  // not, and then the file is closed and cut back before the next write.
  bool RollBackLocked();
  Status WriteRecordLocked(const std::string& record);

  const HistoryConfig config_;
  const HistoryFileOps ops_;
  mutable std::mutex mutex_;
  int fd_ = -1;
  uint64_t current_bytes_ = 0;
  // The file may hold bytes past current_bytes_ (a failed write whose rollback failed).
  bool needs_rollback_ = false;
  std::optional<std::string> append_problem_;
  std::optional<std::string> engine_state_problem_;
  uint64_t torn_bytes_dropped_ = 0;
  std::string moved_aside_path_;
  std::optional<v1::VerdictEngineState> saved_engine_state_;
  // Every record on disk, oldest first, and how many of them each file holds (oldest file
  // first, the current file last), so deleting the oldest file drops the right ones.
  std::deque<v1::VerdictTransition> records_;
  std::deque<size_t> records_per_file_;
};

}  // namespace regionpulse
