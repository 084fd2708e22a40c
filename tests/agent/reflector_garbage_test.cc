// "Garbage on every port", the agent's share: the STAMP reflector port takes random datagrams
// of every size (empty, a header's worth, jumbo, the largest UDP payload) and STAMP-shaped
// packets under the wrong key, and still answers a good probe afterwards.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <random>

#include "agent/prober.h"
#include "agent/reflector.h"
#include "tests/agent/recording_sink.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;
using test::RecordingSink;
using test::RunUntil;

const MacKey kKey(32, 0x42);

TEST(ReflectorGarbage, RandomDatagramsAreCountedAndAGoodProbeIsStillAnswered) {
  boost::asio::io_context io;
  ReflectorConfig config;
  config.listen_address = "::";
  config.key = kKey;
  auto reflector = Reflector::Start(io, config);
  ASSERT_TRUE(reflector.ok()) << reflector.error().ToString();
  const boost::asio::ip::udp::endpoint target(boost::asio::ip::make_address("127.0.0.1"),
                                              (*reflector)->port());

  boost::asio::ip::udp::socket garbage(io, boost::asio::ip::udp::endpoint(boost::asio::ip::udp::v4(), 0));
  std::mt19937 random(20261129);
  std::vector<uint8_t> bytes(65507);
  std::vector<size_t> sizes = {0, 1, 43, 44, 47, 48, 111, 112, 1472, 9000, 65507};
  for (int i = 0; i < 1000; ++i) sizes.push_back(random() % 1500);
  size_t sent = 0;
  for (size_t size : sizes) {
    for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(random());
    boost::system::error_code ec;
    garbage.send_to(boost::asio::buffer(bytes.data(), size), target, 0, ec);
    if (!ec) ++sent;
    // Let the reflector keep up, so the socket buffer drops none (each is counted).
    if (sent % 50 == 0) io.poll();
  }
  // STAMP-shaped, under another key: refused as a bad MAC, never answered.
  SenderPacket forged;
  forged.sequence = 1;
  const auto forged_bytes = EncodeSender(forged, StampMode::kAuthenticated, MacKey(32, 0x01));
  for (int i = 0; i < 20; ++i) garbage.send_to(boost::asio::buffer(forged_bytes), target);
  sent += 20;
  ASSERT_TRUE(RunUntil(io, [&] { return (*reflector)->counters().received >= sent; }))
      << "received " << (*reflector)->counters().received << " of " << sent;
  const ReflectorCounters after_garbage = (*reflector)->counters();
  EXPECT_EQ(after_garbage.replied, 0u);
  // Each refused by its reason; beyond the per-source bucket, as rate limited before parsing.
  EXPECT_GE(after_garbage.bad_mac + after_garbage.malformed + after_garbage.unauthenticated_refused +
                after_garbage.rate_limited,
            sent - 1);
  EXPECT_GT(after_garbage.rate_limited, 0u);

  WindowFolderConfig folder_config;
  folder_config.region_names = {"lab"};
  WindowFolder folder(folder_config, std::chrono::steady_clock::now(), std::chrono::system_clock::now(), {});
  RecordingSink sink(&folder);
  ProberConfig prober_config;
  prober_config.interval = 10ms;
  prober_config.mode = StampMode::kAuthenticated;
  prober_config.key = kKey;
  prober_config.seed = 7;
  Prober prober(io, prober_config, sink);
  prober.SetTargets({ProbeTarget{"reflector", "lab", "z1", "127.0.0.1", (*reflector)->port()}});
  ASSERT_TRUE(RunUntil(io, [&] { return sink.RepliesFrom("reflector") >= 5; }));
  EXPECT_GE((*reflector)->counters().replied, 5u);
}

}  // namespace
}  // namespace regionpulse
