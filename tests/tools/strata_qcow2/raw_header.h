// strata-qcow2: a lenient, byte-level view of a qcow2 header for inspection and editing.
// Unlike the driver's parser it accepts anything with the magic (unknown feature bits,
// odd extensions), because its job is to make and show such images.
#ifndef STRATA_TESTS_TOOLS_STRATA_QCOW2_RAW_HEADER_H_
#define STRATA_TESTS_TOOLS_STRATA_QCOW2_RAW_HEADER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace strata::qcow2tool {

struct RawExtension {
  uint32_t magic = 0;
  std::vector<uint8_t> data;
};

// Header fields in qcow2.py's order; `values` are raw integers.
struct RawHeader {
  std::vector<std::pair<std::string, uint64_t>> fields;
  std::vector<RawExtension> extensions;
  std::string backing_name;

  uint64_t Get(const std::string& name) const;
  bool Set(const std::string& name, uint64_t value);
};

absl::StatusOr<RawHeader> ReadRawHeader(const std::string& path);
// Rewrites the header fields, the extensions (at header_length, with an end marker) and
// the backing file name after them, like qcow2.py's update.
absl::Status WriteRawHeader(const std::string& path, RawHeader& header);

}  // namespace strata::qcow2tool

#endif  // STRATA_TESTS_TOOLS_STRATA_QCOW2_RAW_HEADER_H_
