// strata: permission names (see permissions.h).
#include "block/permissions.h"

namespace strata {

absl::string_view PermissionName(int bit) {
  switch (bit) {
    case 0: return "consistent read";
    case 1: return "write";
    case 2: return "write unchanged";
    case 3: return "resize";
    case 4: return "change children";
    default: return "unknown";
  }
}

}  // namespace strata
