// strata/formats.h (public API): the drivers strata has, creating and measuring images.
//
//   strata::CreateRequest r;
//   r.filename = "new.qcow2";
//   r.size_bytes = 1 << 30;
//   r.options["cluster_size"] = "65536";
//   absl::Status s = strata::CreateImage("qcow2", r);
//
// Thread-safe (the driver set is fixed when the library loads).
#ifndef STRATA_STRATA_FORMATS_H_
#define STRATA_STRATA_FORMATS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "strata/node.h"
#include "strata/types.h"

namespace strata {

// What a driver offers.
struct DriverDescription {
  std::string name;  // "qcow2"
  DriverKind kind = DriverKind::kFormat;
  bool supports_compressed_writes = false;
  // Options of `create -o`, in the order "Formatting ..." prints them; of `amend -o`.
  std::vector<CreateOptionSpec> create_options;
  std::vector<CreateOptionSpec> amend_options;
};

// The driver called `name`, if strata has it.
std::optional<DriverDescription> FindDriver(absl::string_view name);
// Every driver's name, sorted.
std::vector<std::string> DriverNames();

// Creates an image with driver `driver` (a format, or a protocol such as "file"). Errors
// in QEMU's words; a failure may leave a partial file behind, which the caller removes.
absl::Status CreateImage(absl::string_view driver, const CreateRequest& request);

// What `qemu-img measure` asks: the size of a new `driver` image with `options`, for
// `size_bytes` or for the contents of `input` (an open node) when it is set.
struct MeasureSpec {
  uint64_t size_bytes = 0;
  std::map<std::string, std::string> options;
  Node input;
};
absl::StatusOr<MeasureResult> MeasureImage(absl::string_view driver, const MeasureSpec& spec);

}  // namespace strata

#endif  // STRATA_STRATA_FORMATS_H_
