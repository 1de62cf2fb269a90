// strata tools: the "Format specific information" block of `info` (qemu-img and
// qemu-io), human and JSON, nested lists included (qcow2's bitmaps).
#ifndef STRATA_TOOLS_COMMON_FORMAT_SPECIFIC_H_
#define STRATA_TOOLS_COMMON_FORMAT_SPECIFIC_H_

#include "strata/types.h"
#include "tools/common/qdict_json.h"

namespace strata::tools {

// Prints the entries as qemu-img does under "Format specific information:" (keys with
// spaces for dashes, 4 spaces per level, list elements as "[i]:").
void PrintFormatSpecificHuman(const FormatSpecificInfo& info);
// The "data" object of "format-specific".
JsonValue FormatSpecificJson(const FormatSpecificInfo& info);

}  // namespace strata::tools

#endif  // STRATA_TOOLS_COMMON_FORMAT_SPECIFIC_H_
