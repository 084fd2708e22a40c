// AggregatorStream against an in-process Ingest stand-in: Hello first, reports in order,
// nothing lost or stored twice across an aggregator outage, overflow accounting, and a dead
// aggregator that delays neither Push nor another aggregator's stream.
#include "agent/aggregator_stream.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "tests/support/ingest_stand_in.h"
#include "tests/support/poll_until.h"
#include "tests/support/silent_listener.h"

namespace regionpulse {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test::IngestStandIn;
using test::PollUntil;
using test::SilentListener;

constexpr uint64_t kInstance = 0x5eed;

v1::Hello TestHello() {
  v1::Hello hello;
  hello.set_node("node-a");
  hello.set_region("us-east-1");
  hello.set_zone("us-east-1a");
  hello.set_agent_version("test");
  return hello;
}

AggregatorStreamOptions FastOptions(const std::string& target, size_t capacity = 600) {
  AggregatorStreamOptions options;
  options.endpoint = target;
  options.buffer_capacity = capacity;
  // Short backoff so the test sees the reconnect within a second of the restart.
  options.backoff.initial = milliseconds(100);
  options.backoff.max = milliseconds(1000);
  return options;
}

v1::HealthReport Report(uint64_t sequence) {
  v1::HealthReport report;
  report.set_sequence(sequence);
  return report;
}

std::vector<uint64_t> StoredSequences(const IngestStandIn& stand_in) {
  std::vector<uint64_t> sequences;
  for (const auto& stored : stand_in.StoredReports()) sequences.push_back(stored.report.sequence());
  return sequences;
}

std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> out;
  for (uint64_t s = first; s <= last; ++s) out.push_back(s);
  return out;
}

TEST(ReconnectBackoffTest, GrowsExponentiallyAndStaysWithinJitterAndCap) {
  ReconnectBackoff backoff;
  backoff.initial = milliseconds(100);
  backoff.max = milliseconds(1000);
  backoff.multiplier = 2.0;
  backoff.jitter = 0.2;
  EXPECT_EQ(backoff.Delay(1, 0.5), milliseconds(100));
  EXPECT_EQ(backoff.Delay(2, 0.5), milliseconds(200));
  EXPECT_EQ(backoff.Delay(3, 0.5), milliseconds(400));
  EXPECT_EQ(backoff.Delay(5, 0.5), milliseconds(1000));   // 1600 capped
  EXPECT_EQ(backoff.Delay(60, 0.5), milliseconds(1000));  // no overflow on long outages
  EXPECT_EQ(backoff.Delay(1, 0.0), milliseconds(80));
  EXPECT_EQ(backoff.Delay(1, 0.999999), milliseconds(120));
  EXPECT_EQ(backoff.Delay(4, 0.0), milliseconds(640));
  EXPECT_LE(backoff.Delay(5, 0.999999), milliseconds(1000));
}

TEST(AggregatorStreamTest, SendsHelloThenReportsInOrderAndHandsOverTheProbePlan) {
  IngestStandIn stand_in;
  v1::ProbePlan plan;
  plan.set_plan_version(7);
  plan.add_targets()->set_node("node-b");
  stand_in.SetProbePlan(plan);
  stand_in.Start();

  std::atomic<uint64_t> plan_version{0};
  AggregatorStream stream(
      FastOptions(stand_in.target()), TestHello(), kInstance,
      [&](const std::string&, const v1::ProbePlan& p) { plan_version = p.plan_version(); });
  for (uint64_t s = 1; s <= 3; ++s) stream.Push(Report(s));  // before Start: held, then sent
  stream.Start();
  for (uint64_t s = 4; s <= 6; ++s) stream.Push(Report(s));

  ASSERT_TRUE(stream.WaitAcked(6, milliseconds(5000)));
  EXPECT_EQ(StoredSequences(stand_in), Range(1, 6));
  ASSERT_EQ(stand_in.Hellos().size(), 1u);
  EXPECT_EQ(stand_in.Hellos()[0].node(), "node-a");
  EXPECT_EQ(stand_in.Hellos()[0].instance_id(), kInstance);
  EXPECT_EQ(stand_in.Hellos()[0].oldest_unacked_sequence(), 1u);
  EXPECT_TRUE(PollUntil([&] { return plan_version.load() == 7; }, milliseconds(2000)));
  auto stats = stream.Stats();
  EXPECT_TRUE(stats.up);
  EXPECT_EQ(stats.connects, 1u);
  EXPECT_EQ(stats.buffered, 0u);
  EXPECT_EQ(stats.acked_sequence, 6u);
}

// The scenario: the aggregator is gone for 10 s while windows keep coming; after it
// is back on the same port it has every window exactly once, in order. Windows come every
// 100 ms here (not 1 s) so the outage spans ~100 of them.
TEST(AggregatorStreamTest, AggregatorStoppedForTenSecondsReceivesEveryWindowExactlyOnceInOrder) {
  IngestStandIn stand_in;
  uint16_t port = stand_in.Start();
  AggregatorStream stream(FastOptions(stand_in.target()), TestHello(), kInstance, nullptr);
  stream.Start();

  std::atomic<uint64_t> produced{0};
  std::atomic<bool> producing{true};
  std::thread producer([&] {
    auto next = std::chrono::steady_clock::now();
    while (producing) {
      stream.Push(Report(produced + 1));
      ++produced;
      next += milliseconds(100);
      std::this_thread::sleep_until(next);  // the window clock, not synchronisation
    }
  });

  ASSERT_TRUE(stand_in.WaitUntil([](const IngestStandIn& s) { return s.StoredReports().size() >= 10; },
                                 milliseconds(10000)));
  stand_in.Stop();
  uint64_t stored_before_outage = stand_in.StoredReports().size();
  uint64_t produced_at_stop = produced;
  EXPECT_TRUE(PollUntil([&] { return !stream.Stats().up; }, milliseconds(5000)));

  std::this_thread::sleep_for(seconds(10));  // the outage itself
  uint64_t produced_during_outage = produced - produced_at_stop;
  EXPECT_GE(produced_during_outage, 90u);
  // Nothing was acknowledged during the outage, so all of it is still buffered.
  EXPECT_GE(stream.Stats().buffered, produced_during_outage);

  ASSERT_EQ(stand_in.Start("127.0.0.1", port), port);
  ASSERT_TRUE(PollUntil([&] { return stream.Stats().up; }, milliseconds(5000)));
  // Keep producing a little after the reconnect, so replay and live reports interleave.
  uint64_t target = produced + 10;
  ASSERT_TRUE(PollUntil([&] { return produced >= target; }, milliseconds(5000)));
  producing = false;
  producer.join();
  uint64_t last = produced;

  ASSERT_TRUE(stream.WaitAcked(last, milliseconds(10000)));
  EXPECT_EQ(StoredSequences(stand_in), Range(1, last));
  EXPECT_GT(last, stored_before_outage + produced_during_outage);
  // On the wire a report can repeat only if it was in flight when the server died (stored,
  // its Ack lost); the aggregator's (node, instance, sequence) key makes that harmless.
  EXPECT_LE(stand_in.ReplaysDiscarded(), 1u);
  auto hellos = stand_in.Hellos();
  ASSERT_EQ(hellos.size(), 2u);
  EXPECT_EQ(hellos[1].instance_id(), kInstance);
  EXPECT_GE(hellos[1].oldest_unacked_sequence(), stored_before_outage);
  EXPECT_LE(hellos[1].oldest_unacked_sequence(), stored_before_outage + 1);
  auto stats = stream.Stats();
  EXPECT_EQ(stats.connects, 2u);
  EXPECT_EQ(stats.reports_dropped, 0u);
}

TEST(AggregatorStreamTest, OverflowWhileDownDropsTheOldestAndTheNextReportSaysSo) {
  IngestStandIn stand_in;
  uint16_t port = stand_in.Start();
  stand_in.Stop();  // a known port with nobody listening

  AggregatorStream stream(FastOptions("127.0.0.1:" + std::to_string(port), 5), TestHello(), kInstance,
                          nullptr);
  stream.Start();
  for (uint64_t s = 1; s <= 12; ++s) stream.Push(Report(s));
  EXPECT_EQ(stream.Stats().reports_dropped, 7u);
  EXPECT_EQ(stream.Stats().buffered, 5u);

  stand_in.Start("127.0.0.1", port);
  ASSERT_TRUE(stream.WaitAcked(12, milliseconds(10000)));
  EXPECT_EQ(StoredSequences(stand_in), Range(8, 12));
  auto stored = stand_in.StoredReports();
  EXPECT_EQ(stored.front().report.status().reports_dropped(), 3u);  // 1..3 gone when 8 came
  EXPECT_EQ(stored.back().report.status().reports_dropped(), 7u);
  EXPECT_EQ(stand_in.Hellos().at(0).oldest_unacked_sequence(), 8u);
}

// One report the aggregator refuses (INVALID_ARGUMENT) must not hold up every later window.
TEST(AggregatorStreamTest, RefusedReportIsDroppedAndLaterReportsStillArrive) {
  IngestStandIn stand_in;
  stand_in.RefuseSequence(3);
  stand_in.Start();
  AggregatorStream stream(FastOptions(stand_in.target()), TestHello(), kInstance, nullptr);
  stream.Start();
  for (uint64_t s = 1; s <= 6; ++s) stream.Push(Report(s));
  ASSERT_TRUE(stream.WaitAcked(6, milliseconds(10000)));
  EXPECT_EQ(StoredSequences(stand_in), (std::vector<uint64_t>{1, 2, 4, 5, 6}));
  EXPECT_EQ(stream.Stats().reports_dropped, 1u);
  // The first refusal ends the stream with several reports in flight; the second call
  // sends one at a time and pins the refusal on report 3, so only it is dropped.
  EXPECT_EQ(stand_in.Hellos().size(), 3u);
}

TEST(AggregatorStreamTest, DeadOrHangingAggregatorDelaysNeitherPushNorAnotherStream) {
  IngestStandIn dead;
  uint16_t dead_port = dead.Start();
  dead.Stop();  // connection refused from now on
  SilentListener hanging;
  IngestStandIn live;
  live.Start();

  AggregatorStream to_dead(FastOptions("127.0.0.1:" + std::to_string(dead_port)), TestHello(), kInstance,
                           nullptr);
  AggregatorStream to_hanging(FastOptions(hanging.target()), TestHello(), kInstance, nullptr);
  AggregatorStream to_live(FastOptions(live.target()), TestHello(), kInstance, nullptr);
  to_dead.Start();
  to_hanging.Start();
  to_live.Start();

  auto slowest = std::chrono::steady_clock::duration::zero();
  for (uint64_t s = 1; s <= 50; ++s) {
    auto begin = std::chrono::steady_clock::now();
    to_dead.Push(Report(s));
    to_hanging.Push(Report(s));
    to_live.Push(Report(s));
    slowest = std::max(slowest, std::chrono::steady_clock::now() - begin);
    std::this_thread::sleep_for(milliseconds(20));  // the window clock
  }
  ASSERT_TRUE(to_live.WaitAcked(50, milliseconds(5000)));
  EXPECT_EQ(StoredSequences(live), Range(1, 50));
  // A Push that waited for the hanging aggregator would wait for gRPC's 20 s connect
  // timeout; Push only copies into a buffer and starts an asynchronous write. 100 ms leaves
  // room for a descheduled thread on a loaded 2-core machine.
  EXPECT_LT(slowest, milliseconds(100));
  EXPECT_FALSE(to_dead.Stats().up);
  EXPECT_GE(to_dead.Stats().disconnects, 2u);  // it kept retrying
  EXPECT_EQ(to_dead.Stats().buffered, 50u);
  EXPECT_FALSE(to_hanging.Stats().up);
  EXPECT_EQ(to_hanging.Stats().buffered, 50u);
  // Stopping a stream whose call hangs in the handshake must not hang either.
  auto begin = std::chrono::steady_clock::now();
  to_hanging.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, milliseconds(1000));
}

TEST(AggregatorStreamTest, StopEndsPromptlyWhileUpAndWhileBackingOff) {
  IngestStandIn stand_in;
  stand_in.Start();
  auto options = FastOptions(stand_in.target());
  {
    AggregatorStream stream(options, TestHello(), kInstance, nullptr);
    stream.Start();
    ASSERT_TRUE(PollUntil([&] { return stream.Stats().up; }, milliseconds(5000)));
    auto begin = std::chrono::steady_clock::now();
    stream.Stop();
    EXPECT_LT(std::chrono::steady_clock::now() - begin, milliseconds(1000));
  }
  EXPECT_TRUE(
      stand_in.WaitUntil([](const IngestStandIn& s) { return s.OpenStreams() == 0; }, milliseconds(5000)));
  stand_in.Stop();
  options.backoff.initial = milliseconds(30'000);  // a long backoff that Stop must cut short
  options.backoff.max = milliseconds(30'000);
  AggregatorStream stream(options, TestHello(), kInstance, nullptr);
  stream.Start();
  ASSERT_TRUE(PollUntil([&] { return stream.Stats().disconnects >= 1; }, milliseconds(5000)));
  auto begin = std::chrono::steady_clock::now();
  stream.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, milliseconds(1000));
}

}  // namespace
}  // namespace regionpulse
