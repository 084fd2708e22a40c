// The failover controller's configuration (YAML), parsed whole; an error names the key.
//
//   aggregators: ["10.2.0.10:7700", "10.3.0.10:7700"]  # in order of preference; the first
//                                                      # reachable outside the active region wins
//   state_file: /var/lib/regionpulse/controller.state   # what was failed over (at most once)
//   hooks:                                             # per target region, run in order by
//     eu-west-1: ["/etc/regionpulse/promote-eu.sh"]    # /bin/sh -c, with REGIONPULSE_* env
//   hook_timeout: 60s                                  # a hook still running is killed
//   heartbeat: 2s                                      # Watch heartbeat asked for; a stream
//                                                      # silent for 3 heartbeats is dropped
//   tls:                                               # absent: plaintext
//     ca_file: /etc/regionpulse/ca.crt                 # trust the aggregators' CA
//     cert_file: /etc/regionpulse/reader.crt           # a client certificate, for aggregators
//     key_file: /etc/regionpulse/reader.key            # with tls.read_client_ca_file
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace regionpulse::controller {

// PEM files; empty ca_file: plaintext.
struct ControllerTls {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

struct ControllerConfig {
  std::vector<std::string> aggregators;
  std::string state_file;
  std::map<std::string, std::vector<std::string>> hooks;
  std::chrono::milliseconds hook_timeout{60'000};
  std::chrono::milliseconds heartbeat{2'000};
  ControllerTls tls;
};

Result<ControllerConfig> ParseControllerConfig(const std::string& yaml_text);
Result<ControllerConfig> LoadControllerConfigFile(const std::string& path);

}  // namespace regionpulse::controller
