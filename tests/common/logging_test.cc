// Log set-up: levels by name, and JSON lines a log collector can parse whatever the message.
#include "common/logging.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <string>

namespace regionpulse {
namespace {

TEST(ConfigureLogging, AnUnknownLevelIsAnErrorNamingItAndChangesNothing) {
  spdlog::set_level(spdlog::level::info);
  auto configured = ConfigureLogging("loud", LogFormat::kText);
  ASSERT_FALSE(configured);
  EXPECT_NE(configured.error().ToString().find("'loud'"), std::string::npos) << configured.error().ToString();
  EXPECT_EQ(spdlog::get_level(), spdlog::level::info);
}

TEST(ConfigureLogging, SetsTheLevelByName) {
  ASSERT_TRUE(ConfigureLogging("warn", LogFormat::kText));
  EXPECT_EQ(spdlog::get_level(), spdlog::level::warn);
  ASSERT_TRUE(ConfigureLogging("off", LogFormat::kText));
  EXPECT_EQ(spdlog::get_level(), spdlog::level::off);
}

TEST(ConfigureLogging, JsonLinesEscapeQuotesAndControlCharactersInTheMessage) {
  std::ostringstream out;
  auto logger =
      std::make_shared<spdlog::logger>("prober", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  spdlog::register_logger(logger);
  ASSERT_TRUE(ConfigureLogging("info", LogFormat::kJson));
  logger->warn("peer \"eu-1\"\tunreachable\x01");
  spdlog::drop("prober");

  const std::string line = out.str();
  EXPECT_EQ(line.rfind("{\"time\":\"", 0), 0u) << line;
  EXPECT_NE(line.find("Z\",\"level\":\"warning\",\"logger\":\"prober\","
                      "\"msg\":\"peer \\\"eu-1\\\"\\tunreachable\\u0001\"}\n"),
            std::string::npos)
      << line;
}

}  // namespace
}  // namespace regionpulse
