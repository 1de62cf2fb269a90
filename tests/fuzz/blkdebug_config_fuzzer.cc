// Fuzz target: blkdebug's configuration file grammar (QEMU's config-file syntax with
// [inject-error] and [set-state] sections) and the rule engine fed with what it parsed.
#include <cstdint>
#include <string>

#include "blkdebug/blkdebug_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  strata::proto::BlkdebugOptions options;
  if (!strata::blkdebug::ParseConfigText(text, &options).ok()) return 0;
  strata::blkdebug::RuleEngine engine;
  (void)strata::blkdebug::AddRules(options, &engine);
  return 0;
}
