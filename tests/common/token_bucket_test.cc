// The token bucket shared by the reflector's per-source limit and the aggregator's limit on
// queries computed under its core lock, on a scripted clock.
#include "common/token_bucket.h"

#include <gtest/gtest.h>

#include <chrono>

namespace regionpulse {
namespace {

using namespace std::chrono_literals;
using Time = std::chrono::steady_clock::time_point;
const Time kT0 = Time(100s);

TEST(TokenBucket, AdmitsTheBurstAtOnceThenTheRate) {
  TokenBucket<Time> bucket(2.0, 3.0, kT0);
  EXPECT_TRUE(bucket.Take(kT0));
  EXPECT_TRUE(bucket.Take(kT0));
  EXPECT_TRUE(bucket.Take(kT0));
  EXPECT_FALSE(bucket.Take(kT0));
  // Two tokens a second: one after half a second, not before.
  EXPECT_FALSE(bucket.Take(kT0 + 400ms));
  EXPECT_TRUE(bucket.Take(kT0 + 500ms));
  EXPECT_FALSE(bucket.Take(kT0 + 500ms));
}

TEST(TokenBucket, RefillsNoFurtherThanTheBurst) {
  TokenBucket<Time> bucket(10.0, 2.0, kT0);
  EXPECT_TRUE(bucket.Take(kT0));
  EXPECT_TRUE(bucket.Take(kT0));
  // An hour idle still leaves only the burst.
  const Time later = kT0 + 1h;
  EXPECT_TRUE(bucket.Take(later));
  EXPECT_TRUE(bucket.Take(later));
  EXPECT_FALSE(bucket.Take(later));
}

TEST(TokenBucket, TimeGoingBackwardsRefillsNothing) {
  TokenBucket<Time> bucket(1.0, 1.0, kT0);
  EXPECT_TRUE(bucket.Take(kT0));
  EXPECT_FALSE(bucket.Take(kT0 - 10s));
  EXPECT_FALSE(bucket.Take(kT0 + 500ms));
  EXPECT_TRUE(bucket.Take(kT0 + 1s));
}

}  // namespace
}  // namespace regionpulse
