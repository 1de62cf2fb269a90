// strata api: strata::Commit over the internal commit job (block/commit_job.h).
#include "strata/commit.h"

#include "api/access.h"
#include "block/commit_job.h"

namespace strata {

absl::Status Commit(const CommitSpec& spec) {
  CommitRequest request;
  for (const Node& n : spec.above) request.above.push_back(ApiAccess::NodeOf(n));
  request.base = ApiAccess::NodeOf(spec.base);
  request.rate_limit = spec.rate_limit;
  request.progress = spec.progress;
  request.cancel = spec.cancel;
  return RunCommit(request);
}

}  // namespace strata
