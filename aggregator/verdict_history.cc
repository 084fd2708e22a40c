// The verdict history log: append with fdatasync and rollback, rotation by size, damaged files
// kept aside.
#include "aggregator/verdict_history.h"

#include "common/component_logger.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <spdlog/spdlog.h>

namespace regionpulse {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  return ComponentLogger("aggregator");
}

uint32_t Crc32(const std::string& bytes) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

void PutLe32(uint32_t value, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
}

uint32_t GetLe32(const char* in) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  return value;
}

Result<std::string> ReadWholeFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{"open " + path, errno};
  std::string bytes;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Error{"read " + path, err};
    }
    if (n == 0) break;
    bytes.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return bytes;
}

struct ParsedFile {
  std::vector<v1::VerdictTransition> records;
  // Offset just past the last intact record.
  uint64_t good_bytes = 0;
};

// One framed record: length, CRC-32, payload. The framing is shared by the log and the engine
// state file so both detect a torn or damaged write the same way.
std::string FrameRecord(const std::string& payload) {
  std::string record(kHistoryRecordHeaderBytes, '\0');
  PutLe32(static_cast<uint32_t>(payload.size()), record.data());
  PutLe32(Crc32(payload), record.data() + 4);
  return record + payload;
}

// The payload of the record at offset, or nothing when it is incomplete or fails its checksum.
std::optional<std::string> UnframeRecord(const std::string& bytes, size_t offset) {
  if (bytes.size() - offset < kHistoryRecordHeaderBytes) return std::nullopt;
  const uint32_t length = GetLe32(bytes.data() + offset);
  const uint32_t crc = GetLe32(bytes.data() + offset + 4);
  if (length > kHistoryMaxRecordBytes || bytes.size() - offset - kHistoryRecordHeaderBytes < length)
    return std::nullopt;
  std::string payload = bytes.substr(offset + kHistoryRecordHeaderBytes, length);
  if (Crc32(payload) != crc) return std::nullopt;
  return payload;
}

// Reads records until the end or the first record that is incomplete or fails its checksum:
// after a crash only the tail can be damaged, and nothing after a damaged record is trusted.
ParsedFile ParseRecords(const std::string& bytes) {
  ParsedFile parsed;
  size_t offset = 0;
  while (offset < bytes.size()) {
    std::optional<std::string> payload = UnframeRecord(bytes, offset);
    if (!payload) break;
    v1::VerdictTransition transition;
    if (!transition.ParseFromString(*payload)) break;
    parsed.records.push_back(std::move(transition));
    offset += kHistoryRecordHeaderBytes + payload->size();
  }
  parsed.good_bytes = offset;
  return parsed;
}

Status WriteAll(const HistoryFileOps& ops, int fd, const std::string& bytes, const std::string& path) {
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ops.write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Error{"write " + path + " (" + std::to_string(written) + " of " + std::to_string(bytes.size()) +
                       " bytes written)",
                   errno};
    }
    if (n == 0) return Error{"write " + path + ": no progress", EIO};
    written += static_cast<size_t>(n);
  }
  return OkStatus();
}

Status WriteAll(int fd, const std::string& bytes, const std::string& path) {
  return WriteAll(HistoryFileOps{}, fd, bytes, path);
}

// "20240131T235959Z": when a damaged file was set aside, readable in a directory listing.
std::string UtcStamp() {
  const std::time_t now = WallClock::to_time_t(WallClock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y%m%dT%H%M%SZ", &utc);
  return text;
}

// A rename or a new file is durable only once its directory entry is.
Status SyncDirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error{"open directory " + dir, errno};
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Error{"fsync directory " + dir, err};
  return OkStatus();
}

}  // namespace

std::string VerdictHistory::RotatedPath(const std::string& path, uint32_t age) {
  return path + "." + std::to_string(age);
}

VerdictHistory::VerdictHistory(HistoryConfig config, HistoryFileOps ops)
    : config_(std::move(config)), ops_(std::move(ops)) {}

VerdictHistory::~VerdictHistory() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<VerdictHistory>> VerdictHistory::Open(const HistoryConfig& config,
                                                             HistoryFileOps ops) {
  if (config.path.empty()) return Error{"verdict history: no path configured"};
  const auto dir = std::filesystem::path(config.path).parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return Error{"verdict history: create directory " + dir.string() + ": " + ec.message(), ec.value()};
  }
  std::unique_ptr<VerdictHistory> history(new VerdictHistory(config, std::move(ops)));
  if (auto ok = history->LoadAll(); !ok) return ok.error();
  history->LoadEngineState();
  if (auto ok = history->OpenCurrentForAppend(); !ok) return ok.error();
  return history;
}

Status VerdictHistory::LoadAll() {
  // Oldest first: PATH.N .. PATH.1, then PATH. Files beyond the configured count (the limit
  // was lowered) are read too and dropped at the next rotation.
  std::vector<std::string> paths;
  for (uint32_t age = std::max<uint32_t>(config_.max_rotated_files, 1) + 8; age >= 1; --age) {
    const std::string rotated = RotatedPath(config_.path, age);
    if (std::filesystem::exists(rotated)) paths.push_back(rotated);
  }
  paths.push_back(config_.path);
  for (const auto& path : paths) {
    if (!std::filesystem::exists(path)) {
      records_per_file_.push_back(0);
      continue;
    }
    auto bytes = ReadWholeFile(path);
    if (!bytes) return Error{"verdict history: " + bytes.error().message, bytes.error().errnum};
    ParsedFile parsed = ParseRecords(*bytes);
    const uint64_t damaged = bytes->size() - parsed.good_bytes;
    if (damaged > 0) {
      if (path == config_.path) {
        // A crash during Append leaves a partial last record, but bytes that fail their
        // checksum may also be followed by good records (a disk error, an older writer): keep
        // the whole file for a person to look at, and let new records follow intact ones.
        if (auto ok = MoveAsideDamaged(*bytes, parsed.good_bytes); !ok) return ok;
        torn_bytes_dropped_ = damaged;
      } else {
        Log()->warn("verdict history {}: ignoring {} damaged bytes at its end", path, damaged);
      }
    }
    if (path == config_.path) current_bytes_ = parsed.good_bytes;
    records_per_file_.push_back(parsed.records.size());
    for (auto& record : parsed.records) records_.push_back(std::move(record));
  }
  return OkStatus();
}

Status VerdictHistory::MoveAsideDamaged(const std::string& bytes, uint64_t good_bytes) {
  std::string aside = config_.path + ".damaged-" + UtcStamp();
  for (int n = 2; std::filesystem::exists(aside); ++n) {
    aside = config_.path + ".damaged-" + UtcStamp() + "-" + std::to_string(n);
  }
  // The good prefix first, durable, in a temporary file; then the damaged file gets its second
  // name (a hard link) and the new file is renamed over the old name. A crash at any point
  // leaves PATH either the damaged file (handled again at the next start) or the good prefix.
  const std::string temporary = config_.path + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return Error{"verdict history: open " + temporary, errno};
  Status written = WriteAll(fd, bytes.substr(0, good_bytes), temporary);
  if (written && ::fsync(fd) != 0) written = Error{"verdict history: fsync " + temporary, errno};
  ::close(fd);
  if (!written) return Error{"verdict history: " + written.error().message, written.error().errnum};
  if (::link(config_.path.c_str(), aside.c_str()) != 0) {
    return Error{"verdict history: keep damaged " + config_.path + " as " + aside, errno};
  }
  if (::rename(temporary.c_str(), config_.path.c_str()) != 0) {
    return Error{"verdict history: rename " + temporary + " to " + config_.path, errno};
  }
  if (auto ok = SyncDirectoryOf(config_.path); !ok) return ok;
  Log()->warn(
      "verdict history {}: {} bytes after its last good record (a torn write or damage); the file is kept as "
      "{} "
      "and its first {} bytes of good records continue in {}",
      config_.path, bytes.size() - good_bytes, aside, good_bytes, config_.path);
  moved_aside_path_ = aside;
  return OkStatus();
}

void VerdictHistory::LoadEngineState() {
  const std::string path = EngineStatePath(config_.path);
  if (!std::filesystem::exists(path)) return;
  auto bytes = ReadWholeFile(path);
  if (!bytes) {
    Log()->warn("verdict engine state {}: {}; starting afresh in HOLD", path, bytes.error().ToString());
    return;
  }
  std::optional<std::string> payload = UnframeRecord(*bytes, 0);
  v1::VerdictEngineState state;
  if (!payload || !state.ParseFromString(*payload)) {
    Log()->warn("verdict engine state {}: damaged ({} bytes); starting afresh in HOLD", path, bytes->size());
    return;
  }
  saved_engine_state_ = std::move(state);
}

Status VerdictHistory::SaveEngineState(const v1::VerdictEngineState& state) {
  std::string payload;
  if (!state.SerializeToString(&payload)) return Error{"verdict engine state: cannot serialize"};
  const std::string path = EngineStatePath(config_.path);
  const std::string temporary = path + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  Status written = fd < 0 ? Status(Error{"verdict engine state: open " + temporary, errno})
                          : WriteAll(ops_, fd, FrameRecord(payload), temporary);
  if (fd >= 0 && written && ops_.fdatasync(fd) != 0) {
    written = Error{"verdict engine state: fsync " + temporary, errno};
  }
  if (fd >= 0) ::close(fd);
  if (written && ::rename(temporary.c_str(), path.c_str()) != 0) {
    written = Error{"verdict engine state: rename " + temporary + " to " + path, errno};
  }
  if (written) written = SyncDirectoryOf(path);
  std::lock_guard lock(mutex_);
  if (!written) {
    engine_state_problem_ = written.error().ToString();
  } else {
    engine_state_problem_.reset();
  }
  return written;
}

Status VerdictHistory::OpenCurrentForAppend() {
  const bool existed = std::filesystem::exists(config_.path);
  fd_ = ::open(config_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd_ < 0) return Error{"verdict history: open " + config_.path + " for append", errno};
  if (!existed) return SyncDirectoryOf(config_.path);
  return OkStatus();
}

Status VerdictHistory::RotateLocked() {
  ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  const uint32_t keep = config_.max_rotated_files;
  // Delete the oldest kept age (it would be shifted out) and anything older, left over from a
  // larger limit, then shift each file one age older.
  for (uint32_t age = std::max<uint32_t>(keep, 1); age <= keep + 8; ++age) {
    std::filesystem::remove(RotatedPath(config_.path, age), ec);
  }
  for (uint32_t age = keep; age >= 2; --age) {
    if (std::filesystem::exists(RotatedPath(config_.path, age - 1))) {
      std::filesystem::rename(RotatedPath(config_.path, age - 1), RotatedPath(config_.path, age), ec);
      if (ec)
        return Error{"verdict history: rotate " + RotatedPath(config_.path, age - 1) + ": " + ec.message()};
    }
  }
  if (keep >= 1) {
    std::filesystem::rename(config_.path, RotatedPath(config_.path, 1), ec);
  } else {
    std::filesystem::remove(config_.path, ec);
  }
  if (ec) return Error{"verdict history: rotate " + config_.path + ": " + ec.message()};
  // Forget the records of files that no longer exist: the current one becomes rotated file 1,
  // so keep + 1 files' worth remain before the new current file is added.
  while (records_per_file_.size() > keep) {
    const size_t drop = records_per_file_.front();
    records_per_file_.pop_front();
    records_.erase(records_.begin(), records_.begin() + static_cast<std::ptrdiff_t>(drop));
  }
  records_per_file_.push_back(0);
  current_bytes_ = 0;
  if (auto ok = SyncDirectoryOf(config_.path); !ok) return ok;
  return OpenCurrentForAppend();
}

bool VerdictHistory::RollBackLocked() {
  if (fd_ >= 0 && ops_.ftruncate(fd_, static_cast<off_t>(current_bytes_)) == 0) {
    needs_rollback_ = false;
    return true;
  }
  Log()->error(
      "verdict history {}: cannot cut a failed write back to {} bytes ({}); trying again before the "
      "next record",
      config_.path, current_bytes_, std::strerror(errno));
  needs_rollback_ = true;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  return false;
}

Status VerdictHistory::WriteRecordLocked(const std::string& record) {
  if (fd_ < 0) {
    // A failed rotation or rollback closed the file; try again so one bad moment does not end
    // the history.
    if (auto ok = OpenCurrentForAppend(); !ok) return ok;
  }
  if (needs_rollback_ && !RollBackLocked()) {
    return Error{"verdict history: " + config_.path +
                 " still holds a failed write past its last good record"};
  }
  if (current_bytes_ > 0 && current_bytes_ + record.size() > config_.max_file_bytes) {
    if (auto ok = RotateLocked(); !ok) return ok;
  }
  Status written = WriteAll(ops_, fd_, record, config_.path);
  if (written && ops_.fdatasync(fd_) != 0) {
    // After a failed fdatasync nothing says which of the written bytes reached the disk:
    // the record is not durable, so it is not kept.
    written = Error{"fdatasync " + config_.path, errno};
  }
  if (!written) {
    // A short or failed write leaves part of a record at the end; the next record must not
    // follow it, or a restart would stop reading there and lose every good record after it.
    RollBackLocked();
    return Error{"verdict history: " + written.error().message, written.error().errnum};
  }
  return OkStatus();
}

Status VerdictHistory::Append(const v1::VerdictTransition& transition) {
  std::string payload;
  if (!transition.SerializeToString(&payload)) return Error{"verdict history: cannot serialize transition"};
  const std::string record = FrameRecord(payload);

  std::lock_guard lock(mutex_);
  if (Status written = WriteRecordLocked(record); !written) {
    append_problem_ = written.error().ToString();
    return written;
  }
  append_problem_.reset();
  current_bytes_ += record.size();
  records_.push_back(transition);
  records_per_file_.back() += 1;
  return OkStatus();
}

std::optional<std::string> VerdictHistory::WriteProblem() const {
  std::lock_guard lock(mutex_);
  if (append_problem_ && engine_state_problem_) return *append_problem_ + "; " + *engine_state_problem_;
  if (append_problem_) return append_problem_;
  return engine_state_problem_;
}

std::vector<v1::VerdictTransition> VerdictHistory::Newest(size_t limit,
                                                          std::optional<WallClock::time_point> since) const {
  std::lock_guard lock(mutex_);
  std::vector<v1::VerdictTransition> out;
  for (auto it = records_.rbegin(); it != records_.rend() && out.size() < limit; ++it) {
    if (since && FromTimestamp(it->verdict().computed_at()) < *since) continue;
    out.push_back(*it);
  }
  return out;
}

std::optional<v1::VerdictTransition> VerdictHistory::Latest() const {
  std::lock_guard lock(mutex_);
  if (records_.empty()) return std::nullopt;
  return records_.back();
}

size_t VerdictHistory::size() const {
  std::lock_guard lock(mutex_);
  return records_.size();
}

}  // namespace regionpulse
