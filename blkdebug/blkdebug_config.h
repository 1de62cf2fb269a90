// strata blkdebug: rules from QEMU's blkdebug config file syntax and from blockdev options.
//
// A config file is a list of sections, `[inject-error]` or `[set-state]`, each followed by
// `key = "value"` lines (QEMU's "readconfig" format, with its quirks: a `#` comment must
// start the line, whitespace around `=` is required, a line of only blanks is an error).
// Errors carry QEMU's sentences ("Invalid parameter 'x'", "Missing event name for rule").
#ifndef STRATA_BLKDEBUG_BLKDEBUG_CONFIG_H_
#define STRATA_BLKDEBUG_BLKDEBUG_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "blkdebug/blkdebug_rules.h"
#include "proto/blockdev_options.pb.h"

namespace strata::blkdebug {

// Parses config file text into `options` (appending its inject-error and set-state
// sections, in file order).
absl::Status ParseConfigText(absl::string_view text, proto::BlkdebugOptions* options);

// Reads and parses the config file at `path` ("Could not read blkdebug config file: ...").
absl::Status ParseConfigFile(const std::string& path, proto::BlkdebugOptions* options);

// Adds the rules of `options` to `engine`: every inject-error rule, then every set-state
// rule (QEMU's order). Fails on a missing or unknown event or an unknown iotype.
absl::Status AddRules(const proto::BlkdebugOptions& options, RuleEngine* engine);

}  // namespace strata::blkdebug

#endif  // STRATA_BLKDEBUG_BLKDEBUG_CONFIG_H_
