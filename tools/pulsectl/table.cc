// Table layout and unit formatting for pulsectl.
#include "tools/pulsectl/table.h"

#include "common/proto_convert.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace regionpulse::pulsectl {
namespace {

std::string Printf(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

}  // namespace

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  rows_.push_back(std::move(cells));
}

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths;
  for (const auto& column : columns_) widths.push_back(column.header.size());
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  auto print_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    bool first = true;
    for (size_t i = 0; i < cells.size(); ++i) {
      if (columns_[i].wide_only && !wide_) continue;
      const std::string padding(widths[i] - cells[i].size(), ' ');
      if (!first) line += "  ";
      first = false;
      line += columns_[i].align == Align::kRight ? padding + cells[i] : cells[i] + padding;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  };
  std::vector<std::string> headers;
  for (const auto& column : columns_) headers.push_back(column.header);
  print_row(headers);
  for (const auto& row : rows_) print_row(row);
}

std::string FormatMillis(std::optional<std::chrono::nanoseconds> value) {
  if (!value) return "-";
  const double ms = static_cast<double>(value->count()) / 1e6;
  return Printf(ms < 1.0 ? "%.3f ms" : "%.2f ms", ms);
}

std::string FormatMillis(const google::protobuf::Duration& value) {
  // Unset percentiles arrive as a zero duration: no samples, not a 0 ms round trip.
  if (value.seconds() == 0 && value.nanos() == 0) return "-";
  return FormatMillis(FromDuration(value));
}

std::string FormatPercent(double ratio) {
  return Printf("%.2f %%", ratio * 100.0);
}

std::string FormatPercentShort(double ratio) {
  const double percent = ratio * 100.0;
  return Printf(percent > 0.0 && percent < 10.0 ? "%.1f%%" : "%.0f%%", percent);
}

std::string FormatSeconds(std::chrono::nanoseconds value) {
  const double s = static_cast<double>(value.count()) / 1e9;
  if (s >= 10.0 || s == static_cast<double>(static_cast<int64_t>(s))) return Printf("%.0f s", s);
  return Printf("%.1f s", s);
}

std::string FormatSeconds(const google::protobuf::Duration& value) {
  return FormatSeconds(FromDuration(value));
}

std::string FormatBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(kUnits)) {
    value /= 1024.0;
    ++unit;
  }
  if (unit == 0) return std::to_string(bytes) + " B";
  return Printf("%.1f", value) + " " + kUnits[unit];
}

std::string FormatRate(uint64_t bytes_per_second) {
  return FormatBytes(bytes_per_second) + "/s";
}

std::string FormatTime(const google::protobuf::Timestamp& value) {
  if (value.seconds() == 0 && value.nanos() == 0) return "-";
  const std::time_t seconds = static_cast<std::time_t>(value.seconds());
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%d %H:%M:%SZ", &utc);
  return buffer;
}

std::string FormatAge(const google::protobuf::Timestamp& value, std::chrono::system_clock::time_point now) {
  if (value.seconds() == 0 && value.nanos() == 0) return "-";
  const auto at =
      std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(value.seconds()) + std::chrono::nanoseconds(value.nanos())));
  const auto age = std::chrono::duration_cast<std::chrono::nanoseconds>(now - at);
  if (age.count() < 0) return "in " + FormatSeconds(-age);
  return FormatSeconds(age) + " ago";
}

}  // namespace regionpulse::pulsectl
