// strata-img info: image facts in qemu-img's human and JSON formats.
#include <getopt.h>

#include <algorithm>
#include <cstdio>
#include <type_traits>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "strata/image.h"
#include "strata/formats.h"
#include "tools/common/format_specific.h"
#include "tools/common/human_size.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"
#include "tools/common/qdict_json.h"
#include "tools/strata_img/img_common.h"
#include "tools/strata_img/snapshot_list.h"

namespace strata::img {
namespace {

using tools::JsonValue;

struct ImageFacts {
  std::string filename;
  std::string format;
  uint64_t virtual_size = 0;
  std::optional<uint64_t> actual_size;
  DriverInfo info;
  FormatSpecificInfo specific;
  std::string backing_filename;
  // The backing file name as it is opened (QEMU's full backing filename); unset when it
  // cannot be resolved (a relative name in an image served over NBD).
  std::optional<std::string> full_backing_filename;
  std::vector<SnapshotInfo> snapshots;
};

ImageFacts Collect(Image& blk, const std::string& filename) {
  ImageFacts f;
  Node root = blk.root();
  f.filename = filename;
  f.format = std::string(root.driver_name());
  f.virtual_size = blk.GetLength().value_or(0);
  absl::StatusOr<uint64_t> actual = root.AllocatedFileSize();
  if (actual.ok()) f.actual_size = *actual;
  f.info = root.GetInfo();
  f.specific = root.GetFormatSpecificInfo();
  f.snapshots = root.ListSnapshots().value_or(std::vector<SnapshotInfo>{});
  if (!f.info.backing_filename.empty()) {
    absl::StatusOr<std::string> full = root.FullBackingFilename(f.info.backing_filename);
    if (full.ok()) f.full_backing_filename = *full;
  }
  return f;
}

void PrintHuman(const ImageFacts& f) {
  std::printf("image: %s\n", f.filename.c_str());
  std::printf("file format: %s\n", f.format.c_str());
  std::printf("virtual size: %s (%llu bytes)\n", tools::QemuImgSizeString(f.virtual_size).c_str(),
              static_cast<unsigned long long>(f.virtual_size));
  std::printf("disk size: %s\n",
              f.actual_size ? tools::QemuImgSizeString(*f.actual_size).c_str() : "unavailable");
  if (f.info.encrypted) std::printf("encrypted: yes\n");
  if (f.info.cluster_size_bytes != 0) {
    std::printf("cluster_size: %llu\n", static_cast<unsigned long long>(f.info.cluster_size_bytes));
  }
  if (f.info.is_dirty) std::printf("cleanly shut down: no\n");
  if (!f.info.backing_filename.empty()) {
    if (!f.full_backing_filename) {
      std::printf("backing file: %s (cannot determine actual path)\n",
                  f.info.backing_filename.c_str());
    } else if (*f.full_backing_filename != f.info.backing_filename) {
      std::printf("backing file: %s (actual path: %s)\n", f.info.backing_filename.c_str(),
                  f.full_backing_filename->c_str());
    } else {
      std::printf("backing file: %s\n", f.info.backing_filename.c_str());
    }
    if (!f.info.backing_format.empty()) {
      std::printf("backing file format: %s\n", f.info.backing_format.c_str());
    }
  }
  if (!f.snapshots.empty()) PrintSnapshotTable(f.snapshots);
  if (!f.specific.type.empty()) {
    std::printf("Format specific information:\n");
    tools::PrintFormatSpecificHuman(f.specific);
  }
}

JsonValue ToJson(const ImageFacts& f) {
  JsonValue v = JsonValue::Object();
  v.Set("virtual-size", JsonValue::Int(f.virtual_size));
  v.Set("filename", JsonValue::String(f.filename));
  if (f.info.cluster_size_bytes != 0) {
    v.Set("cluster-size", JsonValue::Int(f.info.cluster_size_bytes));
  }
  v.Set("format", JsonValue::String(f.format));
  if (f.actual_size) v.Set("actual-size", JsonValue::Int(*f.actual_size));
  if (!f.specific.type.empty()) {
    JsonValue data = tools::FormatSpecificJson(f.specific);
    JsonValue specific = JsonValue::Object();
    specific.Set("type", JsonValue::String(f.specific.type));
    specific.Set("data", std::move(data));
    v.Set("format-specific", std::move(specific));
  }
  if (!f.info.backing_filename.empty()) {
    if (f.full_backing_filename) {
      v.Set("full-backing-filename", JsonValue::String(*f.full_backing_filename));
    }
    v.Set("backing-filename", JsonValue::String(f.info.backing_filename));
    if (!f.info.backing_format.empty()) {
      v.Set("backing-filename-format", JsonValue::String(f.info.backing_format));
    }
  }
  if (!f.snapshots.empty()) {
    JsonValue list = JsonValue::Array();
    for (const SnapshotInfo& sn : f.snapshots) list.Append(SnapshotJson(sn));
    v.Set("snapshots", std::move(list));
  }
  if (f.info.encrypted) v.Set("encrypted", JsonValue::Bool(true));
  if (f.info.available) v.Set("dirty-flag", JsonValue::Bool(f.info.is_dirty));
  return v;
}

}  // namespace

int InfoMain(const Args& args) {
  FormatArg fmt;
  std::string output = "human";
  bool image_opts = false, force_share = false, backing_chain = false;
  GetoptArgs argv(args);
  enum { kOutput = 256, kImageOpts, kBackingChain, kObject };
  static const struct option kLong[] = {{"help", no_argument, nullptr, 'h'},
                                        {"format", required_argument, nullptr, 'f'},
                                        {"output", required_argument, nullptr, kOutput},
                                        {"backing-chain", no_argument, nullptr, kBackingChain},
                                        {"object", required_argument, nullptr, kObject},
                                        {"image-opts", no_argument, nullptr, kImageOpts},
                                        {"force-share", no_argument, nullptr, 'U'},
                                        {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), ":f:hU", kLong, nullptr)) != -1) {
    switch (c) {
      case 'f': fmt = optarg; break;
      case 'U': force_share = true; break;
      case kOutput: output = optarg; break;
      case kImageOpts: image_opts = true; break;
      case kBackingChain: backing_chain = true; break;
      case kObject:
        if (!tools::DefineObject(optarg)) return 1;
        break;
      case 'h': return PrintHelp();
      case ':':
      case '?':
        return GetoptFailure(c, argv);
      default:
        return TryHelp(1);
    }
  }
  if (!CheckOutputFormat(output)) return 1;
  if (!ExpectOneFilename(argv)) return 1;
  const std::string& filename = argv[optind];
  // Each image is opened on its own (qemu-img info does not open backing files); with
  // --backing-chain the chain is followed by name, refusing a loop.
  std::vector<ImageFacts> chain;
  std::vector<std::string> seen;
  std::string name = filename;
  FormatArg format = fmt;
  for (;;) {
    const std::string canonical = CanonicalPath(name);
    if (std::find(seen.begin(), seen.end(), canonical) != seen.end()) {
      tools::ErrorReport(absl::StrCat("Backing file '", name, "' creates an infinite loop."));
      return 1;
    }
    seen.push_back(canonical);
    std::unique_ptr<Image> blk =
        OpenForTool(name, format, false, chain.empty() && image_opts, "writeback", force_share,
                    /*no_backing=*/true, /*no_io=*/true);
    if (!blk) return 1;
    // QEMU shows the name the graph gives itself for pseudo-filenames ("nbd:unix:S" is
    // shown as "nbd+unix://?socket=S", json: as the file it names, "file:a:b" as "./a:b").
    const bool pseudo = (chain.empty() && image_opts) || absl::StartsWith(name, "json:") ||
                        absl::StartsWith(name, "file:") ||
                        absl::StartsWith(ProtocolOf(name), "nbd") ||
                        ProtocolOf(name) == "rbd";
    chain.push_back(Collect(*blk, pseudo ? blk->root().filename() : name));
    const DriverInfo& info = chain.back().info;
    if (!backing_chain || info.backing_filename.empty()) break;
    const std::optional<std::string>& full = chain.back().full_backing_filename;
    if (!full) {
      tools::ErrorReport(absl::StrCat("Could not determine absolute backing filename, but "
                                      "backing filename '", info.backing_filename,
                                      "' present"));
      return 1;
    }
    name = *full;
    format = ProbeIfEmpty(info.backing_format);
  }
  if (output == "json") {
    if (!backing_chain) {
      std::printf("%s\n", ToJson(chain.front()).Pretty().c_str());
    } else {
      JsonValue list = JsonValue::Array();
      for (const ImageFacts& f : chain) list.Append(ToJson(f));
      std::printf("%s\n", list.Pretty().c_str());
    }
  } else {
    for (size_t i = 0; i < chain.size(); ++i) {
      if (i > 0) std::printf("\n");
      PrintHuman(chain[i]);
    }
  }
  return 0;
}

}  // namespace strata::img
