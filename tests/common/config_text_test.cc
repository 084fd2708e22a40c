// The config text parsers accept exactly the documented forms, name the text they refuse, and
// report values too large for their type as ERANGE rather than wrapping around or throwing.
#include "common/config_text.h"

#include <cerrno>
#include <cstdint>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace regionpulse {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

TEST(ParseDuration, EveryUnitAndDecimals) {
  EXPECT_EQ(*ParseDuration("10ns"), 10ns);
  EXPECT_EQ(*ParseDuration("250us"), 250us);
  EXPECT_EQ(*ParseDuration("250µs"), 250us);
  EXPECT_EQ(*ParseDuration("250ms"), 250ms);
  EXPECT_EQ(*ParseDuration("1.5s"), 1500ms);
  EXPECT_EQ(*ParseDuration(".5s"), 500ms);
  EXPECT_EQ(*ParseDuration("2m"), 120s);
  EXPECT_EQ(*ParseDuration("1h"), 3600s);
  EXPECT_EQ(*ParseDuration("0s"), 0s);
}

TEST(ParseDuration, RefusesBareNumbersNegativesAndJunkNamingTheText) {
  for (const std::string bad : {"10", "5", "ms", "s", "", ".s", "1.2.3s", "-5s", "+5s", "5 parsecs", "5 s",
                                "5sec", "5S", "1e3s", "fast"}) {
    auto parsed = ParseDuration(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_THAT(parsed.error().message, HasSubstr("expected a duration with a unit")) << bad;
    EXPECT_THAT(parsed.error().message, HasSubstr("got '" + bad + "'"));
  }
}

TEST(ParseDuration, RefusesWhatDoesNotFitInt64Nanoseconds) {
  EXPECT_TRUE(ParseDuration("8760h").ok());
  auto huge = ParseDuration("1000000h");
  ASSERT_FALSE(huge.ok());
  EXPECT_THAT(huge.error().message, HasSubstr("'1000000h' is too long"));
}

TEST(ParseDuration, TooManyDigitsIsTooLongNotAnException) {
  auto digits = ParseDuration(std::string(400, '9') + "s");
  ASSERT_FALSE(digits.ok());
  EXPECT_EQ(digits.error().errnum, ERANGE);
  auto hours = ParseDuration("99999999999h");
  ASSERT_FALSE(hours.ok());
  EXPECT_THAT(hours.error().message, HasSubstr("is too long"));
  EXPECT_EQ(*ParseDuration("1.s"), 1s);
}

TEST(FormatSpan, ReadableAtAnySize) {
  using namespace std::chrono_literals;
  EXPECT_EQ(FormatSpan(0s), "0 s");
  EXPECT_EQ(FormatSpan(800ms), "0.8 s");
  EXPECT_EQ(FormatSpan(3s), "3 s");
  EXPECT_EQ(FormatSpan(2150288177ns), "2.2 s");
  EXPECT_EQ(FormatSpan(12400ms), "12 s");
  EXPECT_EQ(FormatSpan(119s), "119 s");
  EXPECT_EQ(FormatSpan(120s), "2 min");
  EXPECT_EQ(FormatSpan(200s), "3 min 20 s");
}

TEST(FormatDuration, ShortestExactUnit) {
  EXPECT_EQ(FormatDuration(2min), "2m");
  EXPECT_EQ(FormatDuration(3h), "3h");
  EXPECT_EQ(FormatDuration(90s), "90s");
  EXPECT_EQ(FormatDuration(1500ms), "1500ms");
  EXPECT_EQ(FormatDuration(250us), "250us");
  EXPECT_EQ(FormatDuration(7ns), "7ns");
  EXPECT_EQ(FormatDuration(0s), "0s");
  for (std::chrono::nanoseconds d : {std::chrono::nanoseconds(2min), std::chrono::nanoseconds(1500ms),
                                     std::chrono::nanoseconds(250us), std::chrono::nanoseconds(7ns)}) {
    EXPECT_EQ(*ParseDuration(FormatDuration(d)), d);
  }
}

TEST(ParseWholeNumber, DigitsOnlyAndTooLargeIsRange) {
  EXPECT_EQ(*ParseWholeNumber("0"), 0u);
  EXPECT_EQ(*ParseWholeNumber("18446744073709551615"), UINT64_MAX);
  for (const std::string bad : {"", "-1", "+1", "1.0", "1e3", " 1", "0x10", "12a"}) {
    auto parsed = ParseWholeNumber(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().errnum, EINVAL) << bad;
  }
  auto huge = ParseWholeNumber("18446744073709551616");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().errnum, ERANGE);
  EXPECT_FALSE(ParseWholeNumber(std::string(1000, '9')).ok());
}

TEST(ParseNumber, FiniteDecimalsOnly) {
  EXPECT_DOUBLE_EQ(*ParseNumber("0.05"), 0.05);
  EXPECT_DOUBLE_EQ(*ParseNumber(".5"), 0.5);
  EXPECT_DOUBLE_EQ(*ParseNumber("+0.5"), 0.5);
  EXPECT_DOUBLE_EQ(*ParseNumber("-1"), -1.0);
  EXPECT_DOUBLE_EQ(*ParseNumber("2e-3"), 0.002);
  for (const std::string bad :
       {"", "inf", "-inf", "nan", ".inf", "0x1p3", "1,5", "1.5 ", " 1", "+-1", "half"}) {
    auto parsed = ParseNumber(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().errnum, EINVAL) << bad;
  }
  auto huge = ParseNumber("1e400");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.error().errnum, ERANGE);
}

TEST(ParseByteSize, BinaryUnitsAndBareBytes) {
  EXPECT_EQ(*ParseByteSize("4MiB"), 4u << 20);
  EXPECT_EQ(*ParseByteSize("64KiB"), 64u << 10);
  EXPECT_EQ(*ParseByteSize("1GiB"), 1u << 30);
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("4096B"), 4096u);
  for (const std::string bad : {"4MB", "-4MiB", "1.5GiB", "4 MiB", "MiB", "", "4mib"}) {
    auto parsed = ParseByteSize(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().errnum, EINVAL) << bad;
    EXPECT_THAT(parsed.error().message, HasSubstr("'" + bad + "'"));
  }
}

TEST(ParseByteSize, OverflowIsRangeNotWrapAround) {
  for (const std::string huge : {"999999999999GiB", "18446744073709551616", "17179869184GiB"}) {
    auto parsed = ParseByteSize(huge);
    ASSERT_FALSE(parsed.ok()) << huge;
    EXPECT_EQ(parsed.error().errnum, ERANGE) << huge;
    EXPECT_THAT(parsed.error().message, HasSubstr("too large"));
  }
  EXPECT_EQ(*ParseByteSize("17179869183GiB"), 17179869183ull << 30);
}

TEST(ParseRate, ByteAndBitUnits) {
  EXPECT_EQ(*ParseRate("10MB/s"), 10'000'000u);
  EXPECT_EQ(*ParseRate("500kB/s"), 500'000u);
  EXPECT_EQ(*ParseRate("1.5MiB/s"), 1'572'864u);
  EXPECT_EQ(*ParseRate("100Mbit/s"), 12'500'000u);
  EXPECT_EQ(*ParseRate("8bit/s"), 1u);
  EXPECT_EQ(*ParseRate("0B/s"), 0u);
  for (const std::string bad : {"10", "10MB", "-1MB/s", "10 MB/s", "1e3MB/s", "MB/s", "10mb/s", ""}) {
    auto parsed = ParseRate(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().errnum, EINVAL) << bad;
  }
  for (const std::string& huge : std::vector<std::string>{"2000000GB/s", std::string(400, '9') + "B/s"}) {
    auto parsed = ParseRate(huge);
    ASSERT_FALSE(parsed.ok()) << huge;
    EXPECT_EQ(parsed.error().errnum, ERANGE) << huge;
  }
}

TEST(ParseCidr, Ipv4NetworkInNetworkOrder) {
  auto v4 = ParseCidr("10.1.0.0/16");
  ASSERT_TRUE(v4.ok()) << v4.error().message;
  EXPECT_FALSE(v4->ipv6);
  EXPECT_EQ(v4->prefix_length, 16u);
  EXPECT_EQ(v4->address[0], 10);
  EXPECT_EQ(v4->address[1], 1);
  EXPECT_EQ(v4->address[2], 0);
  EXPECT_FALSE(v4->host_bits_set);
  EXPECT_EQ(v4->text, "10.1.0.0/16");
}

TEST(ParseCidr, ClearsAndFlagsHostBitsAndNormalisesText) {
  auto v4 = ParseCidr("10.1.77.9/16");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->host_bits_set);
  EXPECT_EQ(v4->address[2], 0);
  EXPECT_EQ(v4->address[3], 0);
  EXPECT_EQ(v4->text, "10.1.0.0/16");

  auto v6 = ParseCidr("FD00:0001:ffff::1/36");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->ipv6);
  EXPECT_TRUE(v6->host_bits_set);
  EXPECT_EQ(v6->address[4], 0xf0) << "bits after /36 cleared";
  EXPECT_EQ(v6->address[15], 0);
  EXPECT_EQ(v6->text, "fd00:1:f000::/36");

  auto all = ParseCidr("0.0.0.0/0");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->prefix_length, 0u);
  EXPECT_FALSE(all->host_bits_set);
  auto host = ParseCidr("::1/128");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->text, "::1/128");
  EXPECT_FALSE(host->host_bits_set);
}

TEST(ParseCidr, RefusesMalformedTextSayingWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"10.1.0.0", "\"10.1.0.0\": missing /prefix-length"},
      {"10.1.0.0/33", "\"10.1.0.0/33\": prefix length 33 exceeds 32"},
      {"fd00::/129", "\"fd00::/129\": prefix length 129 exceeds 128"},
      {"10.1.0.0/99999999999", "prefix length 99999999999 exceeds 32"},
      {"10.1.0/16", "'10.1.0' is not an IPv4 or IPv6 address"},
      {"banana/8", "\"banana/8\": 'banana' is not an IPv4 or IPv6 address"},
      {"/8", "'' is not an IPv4 or IPv6 address"},
      {"fd00::zz/64", "'fd00::zz' is not an IPv4 or IPv6 address"},
      {"10.1.0.0/", "prefix length '' is not a number"},
      {"10.1.0.0/1x", "prefix length '1x' is not a number"},
      {"10.1.0.0/-1", "prefix length '-1' is not a number"},
  };
  for (const auto& [bad, why] : cases) {
    auto parsed = ParseCidr(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_THAT(parsed.error().message, HasSubstr(why));
    EXPECT_THAT(parsed.error().message, HasSubstr(bad));
  }
}

TEST(ParseNetworkCidr, RefusesHostBitsNamingTheNetwork) {
  EXPECT_TRUE(ParseNetworkCidr("10.1.0.0/16").ok());
  auto bad = ParseNetworkCidr("10.1.0.1/16");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "\"10.1.0.1/16\": host bits set beyond /16 (the network is 10.1.0.0/16)");
  EXPECT_FALSE(ParseNetworkCidr("fd00::1/64").ok());
  EXPECT_FALSE(ParseNetworkCidr("10.1.0.0/33").ok());
}

TEST(CidrOverlaps, ContainmentAndFamilies) {
  auto wide = *ParseCidr("10.0.0.0/8");
  auto inside = *ParseCidr("10.1.0.0/16");
  auto beside = *ParseCidr("11.0.0.0/8");
  auto everything = *ParseCidr("0.0.0.0/0");
  auto v6 = *ParseCidr("::/0");
  EXPECT_TRUE(wide.Overlaps(inside));
  EXPECT_TRUE(inside.Overlaps(wide));
  EXPECT_TRUE(wide.Overlaps(wide));
  EXPECT_FALSE(wide.Overlaps(beside));
  EXPECT_TRUE(everything.Overlaps(beside));
  EXPECT_FALSE(everything.Overlaps(v6)) << "IPv4 and IPv6 never overlap";
  EXPECT_TRUE(ParseCidr("fd00:1::/48")->Overlaps(*ParseCidr("fd00:1:0:2::/64")));
  EXPECT_FALSE(ParseCidr("fd00:1::/48")->Overlaps(*ParseCidr("fd00:2::/48")));
}

TEST(ParseHostPort, NamesIpv4AndBracketedIpv6) {
  auto name = ParseHostPort("agg.example:7700", false);
  ASSERT_TRUE(name.ok()) << name.error().message;
  EXPECT_EQ(name->host, "agg.example");
  EXPECT_EQ(name->port, 7700);
  auto v4 = ParseHostPort("127.0.0.1:65535", false);
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 65535);
  auto v6 = ParseHostPort("[fd00::1]:9090", false);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "fd00::1");
  EXPECT_EQ(v6->port, 9090);
}

TEST(ParseHostPort, PortZeroOnlyWhenAllowed) {
  auto any = ParseHostPort("0.0.0.0:0", true);
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->port, 0);
  auto refused = ParseHostPort("0.0.0.0:0", false);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message, HasSubstr("port '0' is not in 1..65535 in '0.0.0.0:0'"));
}

TEST(ParseHostPort, RefusesMalformedTextSayingWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"agg.example", "expected HOST:PORT"},
      {"", "expected HOST:PORT"},
      {"fd00::1:9090", "IPv6 addresses need brackets"},
      {"[fd00::1]9090", "expected HOST:PORT or [IPv6]:PORT"},
      {"[fd00::1:9090", "expected HOST:PORT or [IPv6]:PORT"},
      {"[fd00::1]:", "port '' is not in 0..65535"},
      {":9090", "host is empty"},
      {"[]:9090", "host is empty"},
      {"localhost:70000", "port '70000' is not in 0..65535"},
      {"localhost:99999999999", "port '99999999999' is not in 0..65535"},
      {"localhost:http", "port 'http' is not in 0..65535"},
      {"localhost:-1", "port '-1' is not in 0..65535"},
  };
  for (const auto& [bad, why] : cases) {
    auto parsed = ParseHostPort(bad, true);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_THAT(parsed.error().message, HasSubstr(why));
    EXPECT_THAT(parsed.error().message, HasSubstr("'" + bad + "'"));
  }
}

}  // namespace
}  // namespace regionpulse
