// strata-img check: runs the format driver's consistency check (formats without one exit
// with 63, like qemu-img).
#include <cstdio>

#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"

namespace strata::img {

int CheckMain(const Args& args) {
  std::string fmt;
  std::string filename;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "-f" && i + 1 < args.size()) {
      fmt = args[++i];
    } else if ((args[i] == "-r" || args[i] == "-T") && i + 1 < args.size()) {
      ++i;
    } else if (args[i].rfind("--output", 0) == 0 || args[i] == "-q" || args[i] == "-U") {
      if (args[i] == "--output" && i + 1 < args.size()) ++i;
    } else {
      filename = args[i];
    }
  }
  if (filename.empty()) {
    tools::ErrorReport("Expecting one image file name");
    return 1;
  }
  std::unique_ptr<BlockBackend> blk = OpenForTool(filename, fmt, false, false);
  if (!blk) return 1;
  // No driver implements a check yet (qcow2 will).
  tools::ErrorReport("This image format does not support checks");
  return 63;
}

}  // namespace strata::img
