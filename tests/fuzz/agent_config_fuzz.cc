// libFuzzer: any bytes as the agent's YAML configuration. The parser must answer with a
// configuration or a list of problems, never throw or crash (docs/configuration.md).
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/agent_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // No environment: what the file says is all there is. Files it names (probe.key_file, TLS)
  // are looked up like any other; the seeds name none.
  (void)regionpulse::ParseAgentConfig(text, regionpulse::Environment{});
  return 0;
}
