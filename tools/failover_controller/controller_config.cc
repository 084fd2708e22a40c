// Parsing of the failover controller's YAML configuration.
#include "controller_config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "common/config_text.h"

namespace regionpulse::controller {
namespace {

Error KeyError(const std::string& key, const std::string& problem) {
  return Error{"config key '" + key + "': " + problem};
}

Result<std::chrono::milliseconds> Duration(const YAML::Node& node, const std::string& key) {
  auto parsed = ParseDuration(node.as<std::string>());
  if (!parsed || parsed->count() <= 0) return KeyError(key, "expected a positive duration such as 60s");
  return std::chrono::duration_cast<std::chrono::milliseconds>(*parsed);
}

}  // namespace

Result<ControllerConfig> ParseControllerConfig(const std::string& yaml_text) {
  ControllerConfig config;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Error{std::string("config is not valid YAML: ") + e.what()};
  }
  if (!root.IsMap()) return Error{"config: expected a mapping at the top"};
  try {
    for (const auto& entry : root) {
      const std::string key = entry.first.as<std::string>();
      const YAML::Node& value = entry.second;
      if (key == "aggregators") {
        if (!value.IsSequence()) return KeyError(key, "expected a list of HOST:PORT");
        for (const auto& address : value) {
          auto parsed = ParseHostPort(address.as<std::string>(), false);
          if (!parsed) return KeyError(key, parsed.error().message);
          config.aggregators.push_back(address.as<std::string>());
        }
      } else if (key == "state_file") {
        config.state_file = value.as<std::string>();
      } else if (key == "hooks") {
        if (!value.IsMap()) return KeyError(key, "expected region: [command, ...]");
        for (const auto& hook : value) {
          const std::string region = hook.first.as<std::string>();
          if (!hook.second.IsSequence() || hook.second.size() == 0)
            return KeyError("hooks." + region, "expected a non-empty list of commands");
          for (const auto& command : hook.second) config.hooks[region].push_back(command.as<std::string>());
        }
      } else if (key == "hook_timeout") {
        auto d = Duration(value, key);
        if (!d) return d.error();
        config.hook_timeout = *d;
      } else if (key == "heartbeat") {
        auto d = Duration(value, key);
        if (!d) return d.error();
        config.heartbeat = *d;
      } else {
        return KeyError(key, "unknown key");
      }
    }
  } catch (const YAML::Exception& e) {
    return Error{std::string("config: ") + e.what()};
  }
  if (config.aggregators.empty()) return KeyError("aggregators", "at least one aggregator is needed");
  if (config.state_file.empty())
    return KeyError("state_file", "required: it is what keeps a failover from running twice");
  return config;
}

Result<ControllerConfig> LoadControllerConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{"cannot read config file " + path, errno};
  std::stringstream text;
  text << in.rdbuf();
  auto config = ParseControllerConfig(text.str());
  if (!config) return Error{path + ": " + config.error().message};
  return config;
}

}  // namespace regionpulse::controller
