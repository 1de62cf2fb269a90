// strata-img snapshot: list (-l), create (-c), apply (-a) and delete (-d) internal
// snapshots, silently on success, with qemu-img's messages on failure.
#include <getopt.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "strata/errors.h"
#include "tools/common/objects.h"
#include "tools/common/program.h"
#include "tools/strata_img/img_common.h"
#include "tools/strata_img/snapshot_list.h"

namespace strata::img {

int SnapshotMain(const Args& args) {
  enum class Action { kNone, kList, kCreate, kApply, kDelete };
  Action action = Action::kNone;
  std::string name;
  bool image_opts = false, force_share = false;
  GetoptArgs argv(args);
  enum { kObject = 256, kImageOpts };
  static const struct option kLong[] = {{"help", no_argument, nullptr, 'h'},
                                        {"object", required_argument, nullptr, kObject},
                                        {"image-opts", no_argument, nullptr, kImageOpts},
                                        {"force-share", no_argument, nullptr, 'U'},
                                        {nullptr, 0, nullptr, 0}};
  auto set_action = [&](Action a) {
    if (action != Action::kNone) {
      tools::ErrorReport("Cannot mix '-l', '-a', '-c', '-d'");
      return false;
    }
    action = a;
    if (optarg != nullptr) name = optarg;
    return true;
  };
  int c;
  while ((c = getopt_long(argv.argc(), argv.argv(), ":hla:c:d:qU", kLong, nullptr)) != -1) {
    switch (c) {
      case 'l': if (!set_action(Action::kList)) return TryHelp(1); break;
      case 'a': if (!set_action(Action::kApply)) return TryHelp(1); break;
      case 'c': if (!set_action(Action::kCreate)) return TryHelp(1); break;
      case 'd': if (!set_action(Action::kDelete)) return TryHelp(1); break;
      case 'q': break;  // the subcommand prints nothing on success anyway
      case 'U': force_share = true; break;
      case kObject:
        if (!tools::DefineObject(optarg)) return 1;
        break;
      case kImageOpts: image_opts = true; break;
      case 'h': return PrintHelp();
      case ':':
      case '?':
        return GetoptFailure(c, argv);
      default: return TryHelp(1);
    }
  }
  if (!ExpectOneFilename(argv)) return 1;
  const std::string filename = argv[optind];
  if (action == Action::kNone) action = Action::kList;
  const bool writable = action != Action::kList;
  std::unique_ptr<Image> blk =
      OpenForTool(filename, std::nullopt, writable, image_opts, "writeback", force_share);
  if (!blk) return 1;
  Node image = blk->root();
  absl::Status s;
  switch (action) {
    case Action::kList: {
      absl::StatusOr<std::vector<SnapshotInfo>> list = image.ListSnapshots();
      if (list.ok() && !list->empty()) PrintSnapshotTable(*list);
      break;
    }
    case Action::kCreate:
      s = image.CreateSnapshot(name);
      if (!s.ok()) {
        tools::ErrorReport(absl::StrCat("Could not create snapshot '", name, "': -",
                                        ErrnoOf(s), " (", StrError(ErrnoOf(s)), ")"));
      }
      break;
    case Action::kApply:
      s = image.ApplySnapshot(name);
      if (!s.ok()) {
        // QEMU reports why the snapshot could not be loaded on a line of its own first.
        if (s.message() != StrError(ErrnoOf(s))) tools::ErrorReport(s.message());
        tools::ErrorReport(absl::StrCat("Could not apply snapshot '", name,
                                        "': Failed to load snapshot: ", StrError(ErrnoOf(s))));
      }
      break;
    case Action::kDelete:
      s = image.DeleteSnapshot(name);
      if (!s.ok()) {
        tools::ErrorReport(absl::StrCat("Could not delete snapshot '", name, "': ",
                                        s.message()));
      }
      break;
    case Action::kNone:
      break;
  }
  absl::Status closed = blk->Close();
  if (s.ok() && !closed.ok()) {
    tools::ErrorReport(closed.message());
    return 1;
  }
  return s.ok() ? 0 : 1;
}

}  // namespace strata::img
