// strata: one conformance suite for every driver stack (SPDK bdevio's idea). A stack is a
// factory that makes a fresh image of a given size and opens it; the suite checks the
// contract of block/node.h through a BlockBackend. Instantiate it with
// INSTANTIATE_TEST_SUITE_P(Name, DriverConformanceTest, ::testing::Values(stacks...)).
#ifndef STRATA_BLOCK_TESTING_DRIVER_CONFORMANCE_H_
#define STRATA_BLOCK_TESTING_DRIVER_CONFORMANCE_H_

#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "block/block_backend.h"
#include "block/graph_builder.h"
#include "gtest/gtest.h"

namespace strata::testing {

// A driver stack under test.
struct ConformanceStack {
  std::string name;
  // Creates an image of `size_bytes` in `dir` and opens it read-write.
  std::function<absl::StatusOr<std::unique_ptr<BlockBackend>>(const std::string& dir,
                                                              uint64_t size_bytes)>
      open;
  // False for stacks that drop writes (null-co): data round trips are not checked.
  bool stores_data = true;
};

// Opens the graph `request` describes, as a backend for a stack's `open`.
absl::StatusOr<std::unique_ptr<BlockBackend>> OpenBackend(const ImageOpenRequest& request);

// Creates a qcow2 image at `filename` with `options` (-o keys); with `backing_path`, first
// creates an empty qcow2 there and names it as the backing file.
absl::Status CreateQcow2(const std::string& filename, uint64_t size_bytes,
                         std::map<std::string, std::string> options,
                         const std::string& backing_path = "");

inline std::ostream& operator<<(std::ostream& os, const ConformanceStack& s) {
  return os << s.name;
}

class DriverConformanceTest : public ::testing::TestWithParam<ConformanceStack> {
 protected:
  void SetUp() override;
  std::string dir_;
  std::unique_ptr<BlockBackend> blk_;
  static constexpr uint64_t kImageBytes = 4 << 20;
};

}  // namespace strata::testing

#endif  // STRATA_BLOCK_TESTING_DRIVER_CONFORMANCE_H_
