// libFuzzer: any bytes as the aggregator's YAML configuration. The parser must answer with a
// configuration or a list of problems, never throw or crash (docs/configuration.md).
#include <cstddef>
#include <cstdint>
#include <string>

#include "aggregator/aggregator_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)regionpulse::ParseAggregatorConfig(text);
  return 0;
}
