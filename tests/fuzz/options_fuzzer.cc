// Fuzz target: the option parsers a user or an image can reach: QEMU's key=value syntax
// (--image-opts, -o), json:{...} file names, sizes, and the conversion of the option
// tree into typed block options. The first byte picks the parser, the rest is the text.
#include <cstdint>
#include <string>

#include "block/keyval.h"
#include "block/options_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      absl::StatusOr<google::protobuf::Struct> tree = strata::ParseKeyval(text);
      if (tree.ok()) (void)strata::BlockdevOptionsFromTree(*tree);
      break;
    }
    case 1: {
      absl::StatusOr<google::protobuf::Struct> tree = strata::ParseJsonObject(text);
      if (tree.ok()) {
        google::protobuf::Struct merged;
        strata::MergeTree(*tree, &merged);
        (void)strata::BlockdevOptionsFromTree(merged);
      }
      break;
    }
    case 2:
      (void)strata::BlockdevOptionsFromJson(text);
      break;
    case 3:
      (void)strata::BlockdevOptionsFromKeyval(text);
      break;
    case 4:
      (void)strata::ParseSize(text);
      break;
  }
  return 0;
}
