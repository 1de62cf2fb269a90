// ThreadSanitizer annotations for Debian's prebuilt Abseil synchronization library.
//
// Why this exists: `--config=tsan` instruments strata's code, but libabsl_synchronization
// comes from Debian uninstrumented, so TSan cannot see that absl::Mutex and
// absl::Notification order memory: every field guarded by a mutex would be reported as a
// race. (Building Abseil from source with -fsanitize=thread is not possible offline here.)
// Under that configuration this file is linked into every binary (statically, so its
// definitions come first in symbol lookup) and interposes the entry points strata calls:
// each forwards to the real function (dlsym RTLD_NEXT) and tells TSan about the
// happens-before edge with __tsan_release (before a lock is given up or a notification
// sent) and __tsan_acquire (after a lock is taken or a notification seen). Conditions of
// Await run inside Abseil while it holds the lock, so they are wrapped to acquire before
// and release after.
//
// Only compiled under --config=tsan (see BUILD.bazel); the symbol names are those of
// Debian 12's Abseil (inline namespace debian3).
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

// The next definition of `name` after this one (Abseil's), or abort.
void* Real(const char* name) {
  void* f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found\n", name);
    std::abort();
  }
  return f;
}

template <typename Fn>
Fn RealAs(const char* name) {
  return reinterpret_cast<Fn>(Real(name));
}

struct WrappedCondition {
  absl::Mutex* mu;
  const absl::Condition* cond;
};

// Runs with `mu` held (re-taken inside Abseil, which may give it up again unannotated if
// the condition is false): records the acquisition before and a release after.
bool AcquireThenEval(WrappedCondition* w) {
  __tsan_acquire(w->mu);
  bool result = w->cond->Eval();
  __tsan_release(w->mu);
  return result;
}

// Runs `wait(wrapped)`, Abseil's own wait on `mu` with `cond` wrapped, between a release
// (the caller's critical section so far) and an acquire (what others did meanwhile).
template <typename Wait>
auto AnnotatedAwait(absl::Mutex* mu, const absl::Condition& cond, Wait wait) {
  WrappedCondition w{mu, &cond};
  absl::Condition wrapped(&AcquireThenEval, &w);
  __tsan_release(mu);
  auto result = wait(wrapped);
  __tsan_acquire(mu);
  return result;
}

}  // namespace

#define MUTEX_SYM(x) "_ZN4absl7debian35Mutex" x

extern "C" {

void StrataTsanMutexLock(absl::Mutex* mu) __asm__("_ZN4absl7debian35Mutex4LockEv");
void StrataTsanMutexLock(absl::Mutex* mu) {
  static auto real = RealAs<void (*)(absl::Mutex*)>(MUTEX_SYM("4LockEv"));
  real(mu);
  __tsan_acquire(mu);
}

void StrataTsanMutexUnlock(absl::Mutex* mu) __asm__("_ZN4absl7debian35Mutex6UnlockEv");
void StrataTsanMutexUnlock(absl::Mutex* mu) {
  static auto real = RealAs<void (*)(absl::Mutex*)>(MUTEX_SYM("6UnlockEv"));
  __tsan_release(mu);
  real(mu);
}

bool StrataTsanMutexTryLock(absl::Mutex* mu) __asm__("_ZN4absl7debian35Mutex7TryLockEv");
bool StrataTsanMutexTryLock(absl::Mutex* mu) {
  static auto real = RealAs<bool (*)(absl::Mutex*)>(MUTEX_SYM("7TryLockEv"));
  bool locked = real(mu);
  if (locked) __tsan_acquire(mu);
  return locked;
}

void StrataTsanMutexAwait(absl::Mutex* mu, const absl::Condition& cond) __asm__(
    "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
void StrataTsanMutexAwait(absl::Mutex* mu, const absl::Condition& cond) {
  static auto real =
      RealAs<void (*)(absl::Mutex*, const absl::Condition&)>(MUTEX_SYM("5AwaitERKNS0_9ConditionE"));
  AnnotatedAwait(mu, cond, [&](const absl::Condition& c) {
    real(mu, c);
    return true;
  });
}

bool StrataTsanMutexAwaitWithTimeout(absl::Mutex* mu, const absl::Condition& cond,
                                     absl::Duration timeout) __asm__(
    "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
bool StrataTsanMutexAwaitWithTimeout(absl::Mutex* mu, const absl::Condition& cond,
                                     absl::Duration timeout) {
  static auto real = RealAs<bool (*)(absl::Mutex*, const absl::Condition&, absl::Duration)>(
      MUTEX_SYM("16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE"));
  return AnnotatedAwait(mu, cond, [&](const absl::Condition& c) { return real(mu, c, timeout); });
}

bool StrataTsanMutexAwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                      absl::Time deadline) __asm__(
    "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
bool StrataTsanMutexAwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                      absl::Time deadline) {
  static auto real = RealAs<bool (*)(absl::Mutex*, const absl::Condition&, absl::Time)>(
      MUTEX_SYM("17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE"));
  return AnnotatedAwait(mu, cond, [&](const absl::Condition& c) { return real(mu, c, deadline); });
}

void StrataTsanNotify(absl::Notification* n) __asm__("_ZN4absl7debian312Notification6NotifyEv");
void StrataTsanNotify(absl::Notification* n) {
  static auto real =
      RealAs<void (*)(absl::Notification*)>("_ZN4absl7debian312Notification6NotifyEv");
  __tsan_release(n);
  real(n);
}

void StrataTsanWaitForNotification(const absl::Notification* n) __asm__(
    "_ZNK4absl7debian312Notification19WaitForNotificationEv");
void StrataTsanWaitForNotification(const absl::Notification* n) {
  static auto real = RealAs<void (*)(const absl::Notification*)>(
      "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(n);
  __tsan_acquire(const_cast<absl::Notification*>(n));
}

bool StrataTsanWaitForNotificationWithTimeout(const absl::Notification* n,
                                              absl::Duration timeout) __asm__(
    "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
bool StrataTsanWaitForNotificationWithTimeout(const absl::Notification* n,
                                              absl::Duration timeout) {
  static auto real = RealAs<bool (*)(const absl::Notification*, absl::Duration)>(
      "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  bool notified = real(n, timeout);
  if (notified) __tsan_acquire(const_cast<absl::Notification*>(n));
  return notified;
}

}  // extern "C"
