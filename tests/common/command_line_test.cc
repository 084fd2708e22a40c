// The shared flag loop: both spellings of a value, flags that take none, and every problem
// reported with the flag it concerns.
#include "common/command_line.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace regionpulse {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;

const std::vector<FlagSpec> kFlags = {{"--config"}, {"--set"}, {"--plaintext", false}, {"-h", false}};

auto Flag(const std::string& name, const std::string& value) {
  return AllOf(Field(&ParsedFlag::name, name), Field(&ParsedFlag::value, value));
}

TEST(ParseFlags, ValueAfterTheFlagOrAfterAnEqualsSign) {
  auto parsed =
      ParseFlags({"--config", "/etc/a.yaml", "--config=/etc/b.yaml", "--set", "x=1=2", "--set=y="}, kFlags);
  EXPECT_TRUE(parsed.problems.empty()) << parsed.ProblemText();
  EXPECT_THAT(parsed.flags, ElementsAre(Flag("--config", "/etc/a.yaml"), Flag("--config", "/etc/b.yaml"),
                                        Flag("--set", "x=1=2"), Flag("--set", "y=")));
}

TEST(ParseFlags, TheNextArgumentIsAValueWhateverItLooksLike) {
  auto parsed = ParseFlags({"--set", "--plaintext", "--config", "-h"}, kFlags);
  EXPECT_TRUE(parsed.problems.empty()) << parsed.ProblemText();
  EXPECT_THAT(parsed.flags, ElementsAre(Flag("--set", "--plaintext"), Flag("--config", "-h")));
}

TEST(ParseFlags, FlagsWithoutValuesRefuseOne) {
  auto parsed = ParseFlags({"--plaintext", "-h", "--plaintext=true"}, kFlags);
  EXPECT_THAT(parsed.flags, ElementsAre(Flag("--plaintext", ""), Flag("-h", "")));
  ASSERT_EQ(parsed.problems.size(), 1u);
  EXPECT_EQ(parsed.problems[0].ToString(), "--plaintext: takes no value");
}

TEST(ParseFlags, EveryUnknownFlagAndMissingValueIsReported) {
  auto parsed = ParseFlags({"--verbose", "-x", "--colour=red", "--config"}, kFlags);
  EXPECT_TRUE(parsed.flags.empty());
  EXPECT_EQ(parsed.ProblemText(),
            "--verbose: unknown flag\n-x: unknown flag\n--colour: unknown flag\n--config: needs a value");
}

TEST(ParseFlags, PositionalArgumentsAreKeptOrRefused) {
  auto parsed = ParseFlags({"status", "--plaintext", "extra", "-"}, kFlags);
  EXPECT_THAT(parsed.positional, ElementsAre("status", "extra", "-"));
  EXPECT_TRUE(parsed.problems.empty());
  parsed.RefusePositional();
  EXPECT_TRUE(parsed.positional.empty());
  EXPECT_EQ(parsed.ProblemText(),
            "status: unexpected argument\nextra: unexpected argument\n-: unexpected argument");
}

}  // namespace
}  // namespace regionpulse
