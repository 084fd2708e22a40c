// Parsing of the failover controller's YAML configuration, in the dialect every regionpulse
// program reads (common/config_reader.h, docs/configuration.md).
#include "controller_config.h"

#include <fstream>
#include <sstream>

#include "common/config_reader.h"

namespace regionpulse::controller {

Result<ControllerConfig> ParseControllerConfig(const std::string& yaml_text) {
  auto document = LoadConfigDocument(yaml_text);
  if (!document) return document.error();
  ConfigProblems problems;
  const ConfigSection top(*document, "", problems,
                          {"aggregators", "state_file", "hooks", "hook_timeout", "heartbeat", "tls"});
  ControllerConfig config;
  if (top.StringList("aggregators", &config.aggregators)) {
    for (size_t i = 0; i < config.aggregators.size(); ++i) {
      if (auto ok = ParseHostPort(config.aggregators[i], false); !ok) {
        top.Problem("aggregators[" + std::to_string(i) + "]", ok.error().message);
      }
    }
  }
  if (config.aggregators.empty()) top.Problem("aggregators", "missing: at least one aggregator is needed");
  if (!top.NonEmptyString("state_file", &config.state_file)) {
    top.Problem("state_file", "missing: it is what keeps a failover from running twice");
  }
  // hooks: {REGION: [command, ...]}: the region names are the keys, so each is "known".
  const YAML::Node hooks = top.Get("hooks");
  if (hooks.IsDefined() && !hooks.IsNull()) {
    std::vector<std::string> regions;
    if (hooks.IsMap()) {
      for (const auto& entry : hooks) regions.push_back(entry.first.Scalar());
    }
    const ConfigSection section = top.Section("hooks", regions);
    for (const auto& region : regions) {
      std::vector<std::string> commands;
      if (section.StringList(region, &commands) && commands.empty()) {
        section.Problem(region, "expected a non-empty list of commands");
      }
      if (!commands.empty()) config.hooks[region] = commands;
    }
  }
  top.Duration("hook_timeout", &config.hook_timeout, std::chrono::seconds(1), std::chrono::hours(1));
  top.Duration("heartbeat", &config.heartbeat, std::chrono::milliseconds(100), std::chrono::minutes(1));
  const ConfigSection tls = top.Section("tls", {"ca_file", "cert_file", "key_file"});
  tls.NonEmptyString("ca_file", &config.tls.ca_file);
  tls.NonEmptyString("cert_file", &config.tls.cert_file);
  tls.NonEmptyString("key_file", &config.tls.key_file);
  tls.Together("cert_file", !config.tls.cert_file.empty(), "key_file", !config.tls.key_file.empty());
  // A client certificate travels over TLS only.
  if (!config.tls.cert_file.empty() && config.tls.ca_file.empty()) {
    tls.Problem("cert_file", "needs tls.ca_file");
  }
  if (!problems.empty()) return problems.ToError();
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
