// strata-img: the snapshot table as qemu-img prints it (`snapshot -l`, `info`), and as
// JSON objects for `info --output=json`.
#ifndef STRATA_TOOLS_STRATA_IMG_SNAPSHOT_LIST_H_
#define STRATA_TOOLS_STRATA_IMG_SNAPSHOT_LIST_H_

#include <vector>

#include "strata/types.h"
#include "tools/common/qdict_json.h"

namespace strata::img {

// "Snapshot list:", the column header and one row per snapshot (dates in local time).
void PrintSnapshotTable(const std::vector<SnapshotInfo>& snapshots);

// One snapshot as qemu-img's JSON (SnapshotInfo).
tools::JsonValue SnapshotJson(const SnapshotInfo& snapshot);

}  // namespace strata::img

#endif  // STRATA_TOOLS_STRATA_IMG_SNAPSHOT_LIST_H_
