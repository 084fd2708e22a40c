// Plain-text tables and unit formatting for pulsectl: aligned columns, numbers right-aligned,
// every figure with its unit (ms, %, s, B/s).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

namespace regionpulse::pulsectl {

class Table {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    std::string header;
    Align align = Align::kLeft;
    // Shown only with --wide: the default view fits 80 columns.
    bool wide_only = false;
  };

  explicit Table(std::vector<Column> columns, bool wide = true) : columns_(std::move(columns)), wide_(wide) {}
  // Missing cells are blank, extra cells are dropped.
  void AddRow(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }
  // Two spaces between columns; no trailing spaces.
  void Print(std::ostream& out) const;

 private:
  std::vector<Column> columns_;
  bool wide_ = true;
  std::vector<std::vector<std::string>> rows_;
};

// "12.34 ms" (sub-millisecond values keep three decimals: "0.087 ms"); "-" when absent.
std::string FormatMillis(std::optional<std::chrono::nanoseconds> value);
std::string FormatMillis(const google::protobuf::Duration& value);
// A ratio in [0, 1] as "1.25 %".
// A ratio in [0, 1] as "0.5%", "6.2%", "100%": short, for the narrow views.
std::string FormatPercentShort(double ratio);
std::string FormatPercent(double ratio);
// Whole or fractional seconds: "124 s", "2.5 s".
std::string FormatSeconds(std::chrono::nanoseconds value);
std::string FormatSeconds(const google::protobuf::Duration& value);
// Bytes per second with a binary prefix: "512 B/s", "1.5 MiB/s".
std::string FormatRate(uint64_t bytes_per_second);
std::string FormatBytes(uint64_t bytes);
// UTC, "2026-11-25 21:16:53Z"; "-" for an unset timestamp.
std::string FormatTime(const google::protobuf::Timestamp& value);
// "12 s ago" relative to now; "-" for an unset timestamp.
std::string FormatAge(const google::protobuf::Timestamp& value, std::chrono::system_clock::time_point now);

}  // namespace regionpulse::pulsectl
