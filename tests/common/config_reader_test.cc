// The shared YAML reader: typed reads that name the full key, every problem collected, and
// hostile documents turned into problems rather than exceptions. Also the shared regions list.
#include "common/config_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/region_list.h"

namespace regionpulse {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Parses `yaml` and runs `read` on its top-level section; returns the problems.
template <typename Read>
std::vector<std::string> ProblemsOf(const std::string& yaml, const std::vector<std::string>& known,
                                    Read read) {
  auto document = LoadConfigDocument(yaml);
  EXPECT_TRUE(document.ok()) << document.error().message;
  if (!document) return {document.error().message};
  ConfigProblems problems;
  const ConfigSection top(*document, "", problems, known);
  read(top);
  return problems.list();
}

TEST(ConfigProblems, OneLinePerProblemUnderOneHeading) {
  ConfigProblems problems;
  EXPECT_TRUE(problems.empty());
  problems.Add("thresholds.degraded_loss", "1.5 is outside 0..1");
  problems.Add("hold", "\"2\" is not a duration");
  EXPECT_EQ(problems.ToError().message,
            "invalid configuration:\n  thresholds.degraded_loss: 1.5 is outside 0..1\n  hold: \"2\" is not a "
            "duration");
}

TEST(LoadConfigDocument, SyntaxErrorsGiveLineAndColumn) {
  auto bad = LoadConfigDocument("a: 1\nb: [unclosed\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("config: line "));
  EXPECT_THAT(bad.error().message, HasSubstr("not valid YAML"));
  auto empty = LoadConfigDocument("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->IsMap());
}

TEST(LoadConfigDocument, DeepNestingIsAnErrorNotAStackOverflow) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto parsed = LoadConfigDocument("a: " + deep);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.error().message, HasSubstr("not valid YAML"));
}

TEST(ConfigSection, SectionsKeysAndLists) {
  std::string name;
  std::vector<std::string> list;
  auto problems =
      ProblemsOf("probe: {name: x}\nlist: [a, b]\n", {"probe", "list"}, [&](const ConfigSection& top) {
        const ConfigSection probe = top.Section("probe", {"name"});
        EXPECT_EQ(probe.Key("name"), "probe.name");
        EXPECT_TRUE(probe.String("name", &name));
        EXPECT_FALSE(probe.String("absent", &name)) << "absent keys keep their default";
        EXPECT_TRUE(top.StringList("list", &list));
      });
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(name, "x");
  EXPECT_THAT(list, ElementsAre("a", "b"));
}

TEST(ConfigSection, AnAbsentKeyIsAnUndefinedNodeThatAnswersEveryQuery) {
  ProblemsOf("probe: 1\n", {"probe"}, [](const ConfigSection& top) {
    for (const YAML::Node& absent :
         {top.Get("missing"), top.Section("probe", {}).Get("port"), top.Section("none", {}).Get("port")}) {
      EXPECT_FALSE(absent.IsDefined());
      EXPECT_FALSE(absent.IsSequence());
      EXPECT_FALSE(absent.IsMap());
      EXPECT_FALSE(absent.IsScalar());
    }
  });
}

TEST(ConfigSection, UnknownKeysListTheKnownOnesAndEveryProblemIsKept) {
  auto problems = ProblemsOf("hodl: 1\nprobe: {intervall: 1s, port: 2}\n", {"probe", "hold"},
                             [](const ConfigSection& top) {
                               top.Section("probe", {"port", "interval"});
                             });
  EXPECT_THAT(problems, ElementsAre("hodl: unknown key (known here: hold, probe)",
                                    "probe.intervall: unknown key (known here: interval, port)"));
}

TEST(ConfigSection, ASectionThatIsNotAMappingIsOneProblem) {
  auto problems = ProblemsOf("probe: [1]\n", {"probe"}, [](const ConfigSection& top) {
    uint64_t port = 0;
    EXPECT_FALSE(top.Section("probe", {"port"}).Unsigned("port", &port, 1, 2));
  });
  EXPECT_THAT(problems, ElementsAre("probe: must be a mapping, not a list"));
  EXPECT_THAT(ProblemsOf("[1, 2]", {}, [](const ConfigSection&) {}),
              ElementsAre("config: must be a mapping, not a list"));
}

TEST(ConfigSection, KeysThatAreNotPlainNamesAreProblemsNotExceptions) {
  auto problems = ProblemsOf("{[a, b]: 1, {c: d}: 2, probe: {[x]: 1}}", {"probe"},
                             [](const ConfigSection& top) { top.Section("probe", {"port"}); });
  EXPECT_THAT(problems, ElementsAre("config: has a key that is a list; keys are plain names",
                                    "config: has a key that is a mapping; keys are plain names",
                                    "probe: has a key that is a list; keys are plain names"));
}

TEST(ConfigSection, BooleansFollowYaml12) {
  bool a = false, b = true, c = false, d = true;
  auto problems = ProblemsOf("a: true\nb: FALSE\nc: yes\nd: off\ne: maybe\nf: [true]\n",
                             {"a", "b", "c", "d", "e", "f"}, [&](const ConfigSection& top) {
                               EXPECT_TRUE(top.Bool("a", &a));
                               EXPECT_TRUE(top.Bool("b", &b));
                               EXPECT_FALSE(top.Bool("c", &c));
                               EXPECT_FALSE(top.Bool("d", &d));
                               top.Bool("e", &c);
                               top.Bool("f", &c);
                             });
  EXPECT_TRUE(a);
  EXPECT_FALSE(b);
  EXPECT_FALSE(c) << "a refused value leaves the default";
  EXPECT_TRUE(d);
  ASSERT_EQ(problems.size(), 4u);
  EXPECT_THAT(problems[0],
              HasSubstr("c: \"yes\" is not true or false (write true or false: YAML 1.2 reads yes, no, "
                        "on and off as strings"));
  EXPECT_THAT(problems[1], HasSubstr("d: \"off\" is not true or false (write true or false"));
  EXPECT_EQ(problems[2], "e: \"maybe\" is not true or false");
  EXPECT_EQ(problems[3], "f: a list is not true or false");
}

TEST(ConfigSection, NumbersNameTheKeyAndTheRange) {
  uint16_t port = 0;
  uint64_t big = 0;
  double ratio = 0;
  auto problems = ProblemsOf(
      "port: 70000\nhttp: http\nhuge: 99999999999999999999999999\nneg: -5\nratio: 1.5\nnan: .nan\nfar: "
      "1e400\n"
      "empty:\n",
      {"port", "http", "huge", "neg", "ratio", "nan", "far", "empty"}, [&](const ConfigSection& top) {
        top.Unsigned("port", &port, 1, 65535);
        top.Unsigned("http", &port, 1, 65535);
        top.Unsigned("huge", &big, 0, UINT64_MAX);
        top.Unsigned("neg", &big, 0, 10);
        top.Number("ratio", &ratio, 0, 1);
        top.Number("nan", &ratio, 0, 1);
        top.Number("far", &ratio, 0, 1);
        top.Unsigned("empty", &big, 0, 10);
      });
  EXPECT_THAT(problems, ElementsAre("port: 70000 is outside 1..65535", "http: \"http\" is not a whole number",
                                    "huge: 99999999999999999999999999 is outside 0..18446744073709551615",
                                    "neg: \"-5\" is not a whole number", "ratio: 1.5 is outside 0..1",
                                    "nan: \".nan\" is not a number", "far: 1e400 is outside 0..1",
                                    "empty: an empty value is not a whole number"));
}

TEST(ConfigSection, UnsignedIsBoundedByItsType) {
  uint16_t port = 0;
  auto problems = ProblemsOf("port: 65536\n", {"port"},
                             [&](const ConfigSection& top) { top.Unsigned("port", &port, 0, UINT64_MAX); });
  EXPECT_THAT(problems, ElementsAre("port: 65536 is outside 0..65535"));
}

TEST(ConfigSection, DurationsInRangeAndInTheUnitKept) {
  std::chrono::nanoseconds interval{};
  std::chrono::seconds hold{};
  auto problems = ProblemsOf("interval: 2m\nfast: fast\nhold: 1500ms\nlong: 99999999999h\nok: 2m\n",
                             {"interval", "fast", "hold", "long", "ok"}, [&](const ConfigSection& top) {
                               top.Duration("interval", &interval, 1ms, 60s);
                               top.Duration("fast", &interval, 1ms, 60s);
                               top.Duration("hold", &hold, 1s, 24h);
                               top.Duration("long", &hold, 1s, 24h);
                               EXPECT_TRUE(top.Duration("ok", &hold, 1s, 24h));
                             });
  EXPECT_EQ(hold, 120s);
  EXPECT_THAT(problems,
              ElementsAre("interval: 2m is outside 1ms..1m",
                          "fast: \"fast\" is not a duration (examples: 250us, 100ms, 1s, 10m)",
                          "hold: 1500ms is not a multiple of 1s", "long: 99999999999h is outside 1s..24h"));
}

TEST(ConfigSection, SizesAndRates) {
  uint64_t bytes = 0, rate = 0;
  auto problems =
      ProblemsOf("a: 4MiB\nb: 999999999999GiB\nc: -4MiB\nd: 100\ne: 10MB/s\nf: 10\ng: 99999999999GB/s\n",
                 {"a", "b", "c", "d", "e", "f", "g"}, [&](const ConfigSection& top) {
                   EXPECT_TRUE(top.ByteSize("a", &bytes, 4096));
                   top.ByteSize("b", &bytes, 4096);
                   top.ByteSize("c", &bytes, 4096);
                   top.ByteSize("d", &bytes, 4096);
                   EXPECT_TRUE(top.Rate("e", &rate));
                   top.Rate("f", &rate);
                   top.Rate("g", &rate);
                 });
  EXPECT_EQ(bytes, 4u << 20);
  EXPECT_EQ(rate, 10'000'000u);
  EXPECT_THAT(problems, ElementsAre("b: \"999999999999GiB\" is too large",
                                    "c: \"-4MiB\" is not a size (examples: 4096, 64KiB, 4MiB, 1GiB)",
                                    "d: 100 is below the smallest allowed, 4096 bytes",
                                    "f: \"10\" is not a rate (examples: 500kB/s, 10MB/s, 100Mbit/s)",
                                    "g: \"99999999999GB/s\" is too high (at most 1e15 B/s)"));
}

TEST(ConfigSection, ListsOfSectionsNameTheirIndex) {
  std::vector<std::string> names;
  auto problems = ProblemsOf("flows: [{name: a}, 5, {name: b, colour: red}]\nscalar: x\n",
                             {"flows", "scalar"}, [&](const ConfigSection& top) {
                               top.ForEachSection("flows", {"name"}, [&](const ConfigSection& flow) {
                                 std::string name;
                                 flow.String("name", &name);
                                 names.push_back(name);
                               });
                               top.ForEachSection("scalar", {}, [](const ConfigSection&) { ADD_FAILURE(); });
                             });
  EXPECT_THAT(names, ElementsAre("a", "b"));
  EXPECT_THAT(problems, ElementsAre("flows[1]: must be a mapping, not \"5\"",
                                    "flows[2].colour: unknown key (known here: name)",
                                    "scalar: must be a list, not \"x\""));
}

TEST(ConfigSection, AnAliasIsReadOnceNotExpanded) {
  // A "billion laughs" document: yaml-cpp shares aliased nodes, and the reader never walks
  // into a value it does not expect, so this returns at once.
  std::string yaml = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  std::string previous = "a";
  for (char c = 'b'; c <= 'j'; ++c) {
    yaml += std::string(1, c) + ": &" + c + " [*" + previous + ", *" + previous + ", *" + previous + ", *" +
            previous + ", *" + previous + ", *" + previous + ", *" + previous + ", *" + previous + "]\n";
    previous = std::string(1, c);
  }
  yaml += "list: *j\n";
  std::vector<std::string> list;
  auto problems =
      ProblemsOf(yaml, {"list"}, [&](const ConfigSection& top) { top.StringList("list", &list); });
  EXPECT_EQ(problems.size(), 9u + 1 + 8) << "a..j unknown, and the 8 elements of list are lists";
}

TEST(RegionList, ReadsTheListInOrderWithNormalisedCidrs) {
  std::vector<RegionSpec> regions;
  auto problems = ProblemsOf(
      "regions:\n  - {name: us-east-1, cidrs: [10.1.0.0/16, 'FD00:1::/48']}\n  - {name: eu-west-1, cidrs: "
      "[10.2.0.0/16]}\n",
      {"regions"}, [&](const ConfigSection& top) { regions = ReadRegionList(top, "regions"); });
  EXPECT_TRUE(problems.empty()) << problems[0];
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0].name, "us-east-1");
  EXPECT_THAT(regions[0].cidrs, ElementsAre("10.1.0.0/16", "fd00:1::/48"));
  EXPECT_EQ(regions[1].name, "eu-west-1");
}

TEST(RegionList, EveryProblemWithItsKey) {
  auto problems = ProblemsOf(
      "regions:\n"
      "  - {name: a, cidrs: [10.0.0.0/8, 10.0.0.1/8, 10.0.0.0/33]}\n"
      "  - {name: a, cidrs: [10.1.0.0/16]}\n"
      "  - {name: '', cidrs: []}\n"
      "  - {cidrs: [[1]], weight: 1}\n",
      {"regions"}, [](const ConfigSection& top) { ReadRegionList(top, "regions"); });
  EXPECT_THAT(
      problems,
      ElementsAre("regions[0].cidrs[1]: \"10.0.0.1/8\": host bits set beyond /8 (the network is 10.0.0.0/8)",
                  "regions[0].cidrs[2]: \"10.0.0.0/33\": prefix length 33 exceeds 32",
                  "regions[1].name: \"a\" is listed twice",
                  "regions[1].cidrs[0]: 10.1.0.0/16 overlaps 10.0.0.0/8 (regions[0].cidrs[0])",
                  "regions[2].name: must not be empty",
                  "regions[2].cidrs: must be a non-empty list of CIDRs, not a list",
                  "regions[3].weight: unknown key (known here: cidrs, name)", "regions[3].name: missing",
                  "regions[3].cidrs[0]: a list is not a CIDR"));
}

TEST(RegionList, TheMappingFormIsRefusedWithTheListToWrite) {
  auto problems =
      ProblemsOf("regions: {us-east-1: [10.1.0.0/16]}\n", {"regions"},
                 [](const ConfigSection& top) { EXPECT_TRUE(ReadRegionList(top, "regions").empty()); });
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0],
              HasSubstr("regions: must be a list of {name, cidrs}, not a mapping: write \"- {name: "
                        "us-east-1, cidrs: [...]}\" for each region"));
}

TEST(RegionList, LimitsAreProblemsWithTheirReason) {
  RegionListLimits limits;
  limits.max_regions = 2;
  limits.max_regions_reason = "two ids";
  limits.max_cidrs_per_family = 1;
  limits.max_cidrs_reason = "one slot";
  auto problems = ProblemsOf(
      "regions: [{name: a, cidrs: [10.0.0.0/8, 'fd00::/8']}, {name: b, cidrs: [11.0.0.0/8]}, {name: c, "
      "cidrs: "
      "[12.0.0.0/8]}]\n",
      {"regions"}, [&](const ConfigSection& top) { ReadRegionList(top, "regions", limits); });
  EXPECT_THAT(problems, ElementsAre("regions: 3 regions; at most 2 (two ids)",
                                    "regions: more than 1 IPv4 CIDRs (one slot)"));
}

}  // namespace
}  // namespace regionpulse
