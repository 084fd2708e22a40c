// ReportBuffer: bounded, ordered buffer of unacknowledged reports (see report_buffer.h).
#include "agent/report_buffer.h"

#include <algorithm>
#include <utility>

namespace regionpulse {

ReportBuffer::ReportBuffer(size_t capacity, uint64_t instance_id)
    : capacity_(std::max<size_t>(capacity, 1)), instance_id_(instance_id) {}

bool ReportBuffer::Push(v1::HealthReport report) {
  if (report.sequence() <= newest_sequence_) return false;
  while (reports_.size() >= capacity_) {
    reports_.pop_front();
    ++dropped_total_;
  }
  report.mutable_status()->set_reports_dropped(dropped_total_);
  newest_sequence_ = report.sequence();
  reports_.push_back(std::move(report));
  return true;
}

size_t ReportBuffer::Ack(uint64_t instance_id, uint64_t highest_sequence) {
  if (instance_id != instance_id_) return 0;
  // An Ack beyond what was pushed would be a confused aggregator; trust only what we sent.
  highest_sequence = std::min(highest_sequence, newest_sequence_);
  acked_sequence_ = std::max(acked_sequence_, highest_sequence);
  size_t released = 0;
  while (!reports_.empty() && reports_.front().sequence() <= acked_sequence_) {
    reports_.pop_front();
    ++released;
  }
  return released;
}

uint64_t ReportBuffer::DropOldest() {
  if (reports_.empty()) return 0;
  uint64_t sequence = reports_.front().sequence();
  reports_.pop_front();
  ++dropped_total_;
  return sequence;
}

const v1::HealthReport* ReportBuffer::NextAfter(uint64_t after_sequence) const {
  auto it = std::upper_bound(
      reports_.begin(), reports_.end(), after_sequence,
      [](uint64_t sequence, const v1::HealthReport& report) { return sequence < report.sequence(); });
  return it == reports_.end() ? nullptr : &*it;
}

uint64_t ReportBuffer::OldestSequence() const {
  return reports_.empty() ? 0 : reports_.front().sequence();
}

}  // namespace regionpulse
