// strata: the driver conformance suite on rbd stacks (rbd alone, raw over rbd, qcow2 over
// rbd, qcow2 over rbd with a local backing file). A binary, not a test target of its own:
// it needs a cluster, whose ceph.conf STRATA_RBD_CONF names; tests/rbd/
// rbd_conformance_test.py starts one and runs it. Every case gets a fresh image in the
// cluster's `rbd` pool.
#include <atomic>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "block/graph_builder.h"
#include "block/registry.h"
#include "block/testing/driver_conformance.h"

namespace strata::testing {
namespace {

std::string Conf() {
  const char* conf = std::getenv("STRATA_RBD_CONF");
  return conf ? conf : "";
}

// A fresh image name for each case (the suite runs cases one after another).
std::string FreshImageName(const std::string& stack) {
  static std::atomic<int> next{0};
  return absl::StrCat("conf-", stack, "-", next++);
}

std::string PseudoFilename(const std::string& image) {
  return absl::StrCat("rbd:rbd/", image, ":conf=", Conf());
}

// rbd alone, or raw over rbd, opened from --image-opts keys.
ConformanceStack ProtocolStack(std::string name, std::string prefix) {
  ConformanceStack s;
  s.name = name;
  s.open = [=](const std::string&,
               uint64_t size) -> absl::StatusOr<std::unique_ptr<BlockBackend>> {
    std::string image = FreshImageName(name);
    CreateRequest r;
    r.filename = PseudoFilename(image);
    r.size_bytes = size;
    absl::Status st = DriverRegistry::Global().Find("rbd")->Create(r);
    if (!st.ok()) return st;
    ImageOpenRequest o;
    o.image_opts = true;
    o.filename = absl::StrCat(prefix, "driver=rbd,", prefix, "pool=rbd,", prefix,
                              "image=", image, ",", prefix, "conf=", Conf());
    if (!prefix.empty()) o.filename = "driver=raw," + o.filename;
    return OpenBackend(o);
  };
  return s;
}

// qcow2 made by strata on rbd, optionally over a local qcow2 full of zeroes.
ConformanceStack Qcow2Stack(std::string name, std::string cluster_size, bool with_backing) {
  ConformanceStack s;
  s.name = name;
  s.open = [=](const std::string& dir,
               uint64_t size) -> absl::StatusOr<std::unique_ptr<BlockBackend>> {
    ImageOpenRequest o;
    o.filename = PseudoFilename(FreshImageName(name));
    o.format = "qcow2";
    absl::Status st = CreateQcow2(o.filename, size, {{"cluster_size", cluster_size}},
                                  with_backing ? dir + "/base.qcow2" : "");
    if (!st.ok()) return st;
    return OpenBackend(o);
  };
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Rbd, DriverConformanceTest,
    ::testing::Values(ProtocolStack("rbd", ""), ProtocolStack("raw_over_rbd", "file."),
                      Qcow2Stack("qcow2_over_rbd", "65536", false),
                      Qcow2Stack("qcow2_4k_over_rbd", "4096", false),
                      Qcow2Stack("qcow2_over_rbd_local_backing", "65536", true)),
    [](const ::testing::TestParamInfo<ConformanceStack>& info) { return info.param.name; });

}  // namespace
}  // namespace strata::testing
