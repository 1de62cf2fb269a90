// strata-img: snapshot table printing (see snapshot_list.h).
#include "tools/strata_img/snapshot_list.h"

#include <cstdio>
#include <ctime>
#include <string>

#include "absl/strings/str_format.h"
#include "tools/common/human_size.h"

namespace strata::img {

void PrintSnapshotTable(const std::vector<SnapshotInfo>& snapshots) {
  std::printf("Snapshot list:\n");
  std::printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK",
              "ICOUNT");
  for (const SnapshotInfo& s : snapshots) {
    const time_t t = s.date_sec;
    struct tm tm;
    localtime_r(&t, &tm);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
    const uint64_t ms_total = s.vm_clock_nsec / 1000000;
    const std::string clock = absl::StrFormat("%02u:%02u:%02u.%03u",
                                              static_cast<unsigned>(ms_total / 3600000),
                                              static_cast<unsigned>(ms_total / 60000 % 60),
                                              static_cast<unsigned>(ms_total / 1000 % 60),
                                              static_cast<unsigned>(ms_total % 1000));
    const std::string icount = s.icount == -1 ? "" : std::to_string(s.icount);
    std::printf("%-9s %-16s %8s%20s%13s%11s\n", s.id.c_str(), s.name.c_str(),
                tools::QemuImgSizeString(s.vm_state_size).c_str(), date, clock.c_str(),
                icount.c_str());
  }
}

tools::JsonValue SnapshotJson(const SnapshotInfo& s) {
  using tools::JsonValue;
  JsonValue v = JsonValue::Object();
  if (s.icount != -1) v.Set("icount", JsonValue::Int(s.icount));
  v.Set("vm-clock-nsec", JsonValue::Int(static_cast<int64_t>(s.vm_clock_nsec % 1000000000)));
  v.Set("name", JsonValue::String(s.name));
  v.Set("date-sec", JsonValue::Int(s.date_sec));
  v.Set("date-nsec", JsonValue::Int(s.date_nsec));
  v.Set("vm-clock-sec", JsonValue::Int(static_cast<int64_t>(s.vm_clock_nsec / 1000000000)));
  v.Set("id", JsonValue::String(s.id));
  v.Set("vm-state-size", JsonValue::Int(static_cast<int64_t>(s.vm_state_size)));
  return v;
}

}  // namespace strata::img
