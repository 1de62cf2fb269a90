// strata: the conformance suite instantiated for every built-in stack, with and without
// O_DIRECT where the stack has a file.
#include <fcntl.h>
#include <unistd.h>

#include "block/graph_builder.h"
#include "block/registry.h"
#include "block/testing/driver_conformance.h"

namespace strata::testing {
namespace {

absl::Status MakeFile(const std::string& path, uint64_t size) {
  const BlockDriver* file = DriverRegistry::Global().Find("file");
  CreateRequest r;
  r.filename = path;
  r.size_bytes = size;
  return file->Create(r);
}

ConformanceStack ImageOptsStack(std::string name, std::string keyval_before_path,
                                uint64_t file_extra, bool direct) {
  ConformanceStack s;
  s.name = name;
  s.open = [=](const std::string& dir,
               uint64_t size) -> absl::StatusOr<std::unique_ptr<BlockBackend>> {
    std::string path = dir + "/image";
    absl::Status st = MakeFile(path, size + file_extra);
    if (!st.ok()) return st;
    ImageOpenRequest r;
    r.image_opts = true;
    r.filename = keyval_before_path + path;
    r.flags.cache.direct = direct;
    return OpenBackend(r);
  };
  return s;
}

// A qcow2 image made by strata's own create (optionally over a backing image full of
// zeroes, so that fresh reads still return zeroes through the chain).
ConformanceStack Qcow2Stack(std::string name, std::string options, bool with_backing) {
  ConformanceStack s;
  s.name = name;
  s.open = [=](const std::string& dir,
               uint64_t size) -> absl::StatusOr<std::unique_ptr<BlockBackend>> {
    std::map<std::string, std::string> opts;
    if (!options.empty()) {
      size_t eq = options.find('=');
      opts[options.substr(0, eq)] = options.substr(eq + 1);
    }
    ImageOpenRequest o;
    o.filename = dir + "/image.qcow2";
    o.format = "qcow2";
    absl::Status st =
        CreateQcow2(o.filename, size, opts, with_backing ? dir + "/base.qcow2" : "");
    if (!st.ok()) return st;
    return OpenBackend(o);
  };
  return s;
}

ConformanceStack NullStack() {
  ConformanceStack s;
  s.name = "null_co";
  s.stores_data = false;
  s.open = [](const std::string&, uint64_t size) -> absl::StatusOr<std::unique_ptr<BlockBackend>> {
    ImageOpenRequest r;
    r.image_opts = true;
    r.filename = "driver=null-co,read-zeroes=on,size=" + std::to_string(size);
    return OpenBackend(r);
  };
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Builtin, DriverConformanceTest,
    ::testing::Values(
        ImageOptsStack("file", "driver=file,filename=", 0, false),
        ImageOptsStack("file_direct", "driver=file,filename=", 0, true),
        ImageOptsStack("raw", "driver=raw,file.driver=file,file.filename=", 0, false),
        ImageOptsStack("raw_direct", "driver=raw,file.driver=file,file.filename=", 0, true),
        ImageOptsStack("raw_offset_size",
                       "driver=raw,offset=65536,size=4194304,file.driver=file,file.filename=",
                       2 * 65536, false),
        NullStack(), Qcow2Stack("qcow2", "", false),
        Qcow2Stack("qcow2_v2", "compat=0.10", false),
        Qcow2Stack("qcow2_512", "cluster_size=512", false),
        Qcow2Stack("qcow2_backing", "", true)),
    [](const ::testing::TestParamInfo<ConformanceStack>& info) { return info.param.name; });

}  // namespace
}  // namespace strata::testing
