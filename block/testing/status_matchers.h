// strata: gtest helpers for absl::Status (absl 20220623 ships none).
#ifndef STRATA_BLOCK_TESTING_STATUS_MATCHERS_H_
#define STRATA_BLOCK_TESTING_STATUS_MATCHERS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "block/status.h"
#include "gtest/gtest.h"

namespace strata::testing_internal {
inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace strata::testing_internal

#define EXPECT_OK(expr) EXPECT_TRUE(::strata::testing_internal::GetStatus(expr).ok()) \
    << ::strata::testing_internal::GetStatus(expr)
#define ASSERT_OK(expr) ASSERT_TRUE(::strata::testing_internal::GetStatus(expr).ok()) \
    << ::strata::testing_internal::GetStatus(expr)

// ASSERT_OK_AND_ASSIGN(auto x, StatusOrExpr);
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(STRATA_STATUS_CONCAT_(statusor_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  ASSERT_TRUE(tmp.ok()) << tmp.status();           \
  lhs = std::move(tmp).value()

#endif  // STRATA_BLOCK_TESTING_STATUS_MATCHERS_H_
