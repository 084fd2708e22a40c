// ReportBuffer: the reports one aggregator has not acknowledged yet, so that a stream that
// breaks loses nothing: after a reconnect everything from the oldest unacknowledged report is
// replayed in order. Bounded: when full, the oldest report is dropped and counted, and the
// count travels in status.reports_dropped of every later report. Pure: no I/O, no locking
// (the owner serialises access).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

#include "regionpulse/v1/ingest.pb.h"

namespace regionpulse {

class ReportBuffer {
 public:
  // capacity: how many reports are held at most (>= 1); instance_id: Hello.instance_id of
  // this agent, the only instance whose Acks are honoured.
  ReportBuffer(size_t capacity, uint64_t instance_id);

  // Appends a report whose sequence is higher than every report pushed before (a report
  // that breaks the order is refused: false). When the buffer is full the oldest report is
  // dropped first. The stored copy carries this buffer's cumulative drop count in
  // status.reports_dropped, so the aggregator learns of the gap from the next report.
  bool Push(v1::HealthReport report);

  // The aggregator has stored every report of instance_id up to highest_sequence: forget
  // them. Acks for another instance (a previous run of this agent) are ignored. Returns how
  // many reports were released.
  size_t Ack(uint64_t instance_id, uint64_t highest_sequence);

  // Gives up on the oldest held report (the aggregator refused it) and counts it as dropped.
  // Returns its sequence, 0 when empty.
  uint64_t DropOldest();

  // The first held report with a sequence above after_sequence, or nullptr. Replay starts
  // with after_sequence = 0; the pointer stays valid until the next Push or Ack.
  const v1::HealthReport* NextAfter(uint64_t after_sequence) const;

  // Sequence of the oldest report held, 0 when empty (Hello.oldest_unacked_sequence).
  uint64_t OldestSequence() const;
  // Highest sequence ever pushed, 0 before the first.
  uint64_t NewestSequence() const { return newest_sequence_; }
  // Highest sequence acknowledged so far, 0 before the first Ack.
  uint64_t AckedSequence() const { return acked_sequence_; }
  // Reports dropped on overflow since start.
  uint64_t DroppedTotal() const { return dropped_total_; }
  size_t size() const { return reports_.size(); }
  size_t capacity() const { return capacity_; }
  uint64_t instance_id() const { return instance_id_; }

 private:
  size_t capacity_;
  uint64_t instance_id_;
  std::deque<v1::HealthReport> reports_;  // ascending sequence
  uint64_t newest_sequence_ = 0;
  uint64_t acked_sequence_ = 0;
  uint64_t dropped_total_ = 0;
};

}  // namespace regionpulse
