// strata qcow2: the coroutine request path (see Qcow2Instance::CoPreadv).
//
// A loop thread never blocks on mu_ (an aio::CoMutex) while another request or thread
// holds it across I/O: it takes it with a brief try-lock, or parks in its queue until a
// release (CoLockMetadata), and maps in cached-only mode (no table read under the lock).
// Reads, overwrites of owned clusters and allocating writes whose metadata is cached
// (qcow2_async_write.cc) run here. A step the mapping missed runs once while the
// requests needing it park (CoRunMissedStepUnlocking): a missing L2 table is read on the
// loop with mu_ released across the read; a new L2 table (CoEnsureL2Table) and a tail
// extension (CoCover) are made on the loop with mu_ held across their I/O, or on the
// blocking pool when a synchronous step of theirs needs I/O (a refcount block to read or
// make, L1 to grow, guest frees to flush first). The remaining cases that need metadata
// I/O run the synchronous path on the pool, so both paths share one implementation of
// them. The transfers themselves await the children's coroutine hooks, counted as
// transfers (BeginTransfer) as in the synchronous path (no cluster they touch is freed
// meanwhile); ending one (EndTransfer) needs no lock, so a read takes mu_ once, to map.
#include <utility>

#include "absl/strings/str_format.h"
#include "aio/blocking_pool.h"
#include "aio/offload.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {
namespace {

// Takes `mu` if it comes free within a short spin: the holders a loop thread meets are
// mostly other loops mapping (a few hundred nanoseconds), cheaper to wait out than to
// park for; a holder doing metadata I/O keeps it longer, and then the coroutine parks
// instead (CoLockMetadata).
bool TryLockBriefly(aio::CoMutex& mu) ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true, mu) {
  for (int i = 0; i < 64; ++i) {
    if (mu.LooksFree() && mu.TryLock()) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  return false;
}

}  // namespace

// Parks the awaiting coroutine on `waiters` and releases mu_ once it is suspended (so
// the loader, which takes mu_ to wake the waiters, cannot miss it). The awaiting
// coroutine holds mu_; the release happens here, which the analysis cannot follow.
struct ParkUnlocking {
  aio::CoMutex* mu;
  std::vector<Qcow2Instance::TableWaiter>* waiters;
  bool await_ready() noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept ABSL_NO_THREAD_SAFETY_ANALYSIS {
    waiters->push_back({aio::IoContext::Current(), h});
    mu->Unlock();
  }
  void await_resume() noexcept {}
};

// Parks the awaiting coroutine until the in-flight allocation overlapping guest clusters
// [first_gc, last_gc] has finished, releasing mu_ once it is suspended (FinishAllocation
// takes mu_ to wake it, so cannot miss it). As ParkUnlocking, the release is not analysed.
struct ParkForAllocation {
  Qcow2Instance* q;
  uint64_t first_gc, last_gc;
  bool await_ready() noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept ABSL_NO_THREAD_SAFETY_ANALYSIS {
    q->allocation_waiters_.push_back({first_gc, last_gc, {aio::IoContext::Current(), h}});
    q->mu_.Unlock();
  }
  void await_resume() noexcept {}
};

// Not analysed: mu_ is taken through a co_await.
aio::Task<absl::Status> Qcow2Instance::CoLockMetadata() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (aio::IoContext::Current() != nullptr && TryLockBriefly(mu_)) co_return absl::OkStatus();
  co_return co_await mu_.Acquire();
}

// Not analysed: one path releases mu_ inside ParkUnlocking's await_suspend. The contract
// (mu_ held on entry, released on every path) is on the declaration, checked at callers.
aio::Task<absl::Status> Qcow2Instance::CoRunMissedStepUnlocking(CachedOnlyMiss miss)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  const uint64_t key = miss.key();
  auto it = loading_tables_.find(key);
  if (it != loading_tables_.end()) {
    co_await ParkUnlocking{&mu_, &it->second};
    co_return absl::OkStatus();  // done, or failed: the retry finds out
  }
  loading_tables_.emplace(key, std::vector<TableWaiter>{});
  absl::Status s;
  const bool on_loop = aio::IoContext::Current() != nullptr;
  if (on_loop && miss.kind == CachedOnlyMiss::Kind::kCreateL2 &&
      EnsureL2TableCanRunOnLoop(miss.value)) {
    // On the loop with mu_ held across the table and L1 writes and their flushes.
    s = (co_await CoEnsureL2Table(miss.value)).status();
  } else if (on_loop && miss.kind == CachedOnlyMiss::Kind::kExtendTail) {
    s = co_await tail_reserve_->CoCover(miss.value);  // mu_ held across the fallocate
  } else if (on_loop && miss.kind == CachedOnlyMiss::Kind::kLoadL2) {
    // On the loop, with mu_ released across the read: the cache keeps the table only if
    // nothing changed it meanwhile (FinishLoad), else the retry maps it again.
    l2_cache_->BeginLoad(miss.value);
    mu_.Unlock();
    std::vector<uint8_t> table(l2_cache_->table_bytes());
    if (l2_cache_->load_event()) file_->NotifyDebugEvent(*l2_cache_->load_event());
    s = co_await file_->node().CoPreadv(miss.value, table.size(),
                                        IoVector(table.data(), table.size()));
    (void)co_await CoLockMetadata();
    l2_cache_->FinishLoad(miss.value, s.ok() ? &table : nullptr);
  } else {
    mu_.Unlock();
    s = co_await aio::Offload([&]() -> absl::Status {
      aio::CoMutexLock lock(&mu_);
      switch (miss.kind) {
        case CachedOnlyMiss::Kind::kLoadL2:
          return l2_cache_->Get(miss.value).status();
        case CachedOnlyMiss::Kind::kCreateL2:
          return EnsureL2Table(miss.value).status();
        case CachedOnlyMiss::Kind::kExtendTail:
          tail_reserve_->Cover(miss.value);  // best effort, as in AllocateRun
          return absl::OkStatus();
        case CachedOnlyMiss::Kind::kNone:
        case CachedOnlyMiss::Kind::kAllocationInFlight:  // CoMapNatively parks for it
          break;
      }
      return absl::OkStatus();
    });
    (void)co_await CoLockMetadata();
  }
  auto node = loading_tables_.extract(key);
  std::vector<TableWaiter> waiters = std::move(node.mapped());
  mu_.Unlock();
  for (const TableWaiter& w : waiters) w.context->Post(w.handle);
  co_return s;
}

// Not analysed: the lock is taken in each round and released on each exit path or by
// CoRunMissedStepUnlocking, a shape the analysis cannot follow.
aio::Task<absl::StatusOr<bool>> Qcow2Instance::CoMapNatively(absl::FunctionRef<absl::Status()> map)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // A few rounds: each missed step (a table to load or make, the tail to extend) is run
  // (or waited for) and the mapping retried. Waiting for another request's allocation
  // is not a round: it ends when that request does.
  for (int round = 0; round < 4;) {
    (void)co_await CoLockMetadata();
    absl::Status s;
    {
      CachedOnly cached_only(this);
      miss_ = {};
      s = map();
    }
    const CachedOnlyMiss miss = miss_;
    if (s.ok() || !IsNotCached(s) || miss.kind == CachedOnlyMiss::Kind::kNone) {
      mu_.Unlock();
      if (!s.ok() && !IsNotCached(s)) co_return s;
      co_return s.ok();
    }
    if (miss.kind == CachedOnlyMiss::Kind::kAllocationInFlight) {
      co_await ParkForAllocation{this, miss.value, miss.last};
      continue;
    }
    STRATA_CO_RETURN_IF_ERROR(co_await CoRunMissedStepUnlocking(miss));
    ++round;
  }
  co_return false;
}

aio::Task<absl::Status> Qcow2Instance::CoPreadv(uint64_t offset, uint64_t bytes,
                                                const IoVector& qiov, uint32_t flags) {
  // Native only on a loop (inline callers take the synchronous path directly), and not
  // when a breakpoint below may park the request: only the synchronous path waits there.
  const bool may_be_native = aio::IoContext::Current() != nullptr && !file_->delivers_events() &&
                             (backing_ == nullptr || !backing_->delivers_events());
  std::vector<MappedRead> mapped;
  uint64_t epoch = 0;
  bool native = false;
  if (may_be_native) {
    auto map = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      mapped.clear();
      return MapRead(offset, bytes, qiov, /*wait=*/false, &mapped, &epoch);
    };
    STRATA_CO_ASSIGN_OR_RETURN(native, co_await CoMapNatively(map));
  }
  if (!native) {
    co_return co_await aio::Offload([&] { return Preadv(offset, bytes, qiov, flags); });
  }
  if (mapped.empty()) co_return absl::OkStatus();
  absl::Status status;
  for (const MappedRead& m : mapped) {
    switch (TypeOf(m.entry)) {
      case ClusterType::kNormal:
        status = co_await CoReadData((m.entry & kL2OffsetMask) + m.in_cluster,
                                     (m.gc << cluster_bits_) + m.in_cluster, m.len, m.iov);
        break;
      case ClusterType::kUnallocated:
        status = co_await CoReadBacking((m.gc << cluster_bits_) + m.in_cluster, m.len, m.iov);
        break;
      default:  // compressed
        status = co_await CoReadCompressed(m.entry, m.in_cluster, m.len, m.iov);
        break;
    }
    if (!status.ok()) break;
  }
  EndTransfer(epoch);
  co_return status;
}

aio::Task<absl::Status> Qcow2Instance::CoPwritev(uint64_t offset, uint64_t bytes,
                                                 const IoVector& qiov, uint32_t flags) {
  // Natively: writes into clusters the image owns (COPIED) and allocations whose metadata
  // is cached (subcluster allocations with extended L2 entries too), planned from cached
  // tables. With FUA the data goes down plain and CoFlushForFua follows. Compressed
  // writes and whatever needs metadata I/O are the synchronous path's.
  const bool may_be_native = aio::IoContext::Current() != nullptr &&
                             !(flags & kReqWriteCompressed) &&
                             !file_->delivers_events() &&
                             (backing_ == nullptr || !backing_->delivers_events());
  std::vector<DataSegment> segments;
  std::vector<AllocationPlan> plans;
  uint64_t epoch = 0;
  bool native = false;
  auto map = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    segments.clear();
    plans.clear();
    STRATA_RETURN_IF_ERROR(CheckUsable());
    STRATA_RETURN_IF_ERROR(NotCachedIfAllocationInFlight(
        offset >> cluster_bits_, (offset + bytes - 1) >> cluster_bits_));
    STRATA_RETURN_IF_ERROR(PlanWrite(offset, bytes, qiov, &segments, &plans));
    epoch = BeginTransfer();
    return absl::OkStatus();
  };
  if (may_be_native) {
    STRATA_CO_ASSIGN_OR_RETURN(native, co_await CoMapNatively(map));
  }
  if (!native) {  // Pwritev marks the bitmaps itself
    co_return co_await aio::Offload([&] { return Pwritev(offset, bytes, qiov, flags); });
  }
  MarkBitmapsDirty(offset, bytes);
  std::vector<absl::Status> results;
  results.reserve(plans.size());
  for (const AllocationPlan& p : plans) results.push_back(co_await CoWriteAllocation(p));
  absl::Status status;
  for (const DataSegment& d : segments) {
    if (!external_data_) NoteUncountedWrite(d.host + d.len);
    status = co_await CoWriteData(d.host, d.guest, d.len, d.iov);
    if (!status.ok()) break;
  }
  if (plans.empty()) {
    EndTransfer(epoch);
  } else {
    absl::Status finished = co_await CoFinishAllocations(plans, results, epoch);
    if (status.ok()) status = finished;
  }
  if (status.ok() && (flags & kReqFua)) co_return co_await CoFlushForFua();
  co_return status;
}

}  // namespace strata::qcow2
