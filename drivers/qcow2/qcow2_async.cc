// strata qcow2: the coroutine request path (see Qcow2Instance::CoPreadv).
//
// The loop thread never waits for mu_ while another thread may hold it across I/O: it
// only try-locks to map, and maps in cached-only mode (no L2 table read under the lock).
// When that is not enough the request runs the synchronous path on the blocking pool, so
// both paths share one implementation of every case that needs metadata I/O. The
// transfers themselves await the children's coroutine hooks, counted as transfers (BeginTransfer)
// as in the synchronous path (no cluster they touch is freed meanwhile).
#include "absl/strings/str_format.h"
#include "aio/offload.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_format.h"
#include "drivers/qcow2/qcow2_instance.h"

namespace strata::qcow2 {
namespace {

// Takes `mu` if it comes free within a short spin: the holders a loop thread meets are
// mostly other loops mapping (a few hundred nanoseconds); a holder doing metadata I/O
// keeps it longer, and then the request goes to the pool instead of waiting.
bool TryLockBriefly(absl::Mutex& mu) ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true, mu) {
  for (int i = 0; i < 64; ++i) {
    if (mu.TryLock()) return true;
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
  absl::Mutex* mu;
  std::vector<Qcow2Instance::TableWaiter>* waiters;
  bool await_ready() noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept ABSL_NO_THREAD_SAFETY_ANALYSIS {
    waiters->push_back({aio::IoContext::Current(), h});
    mu->Unlock();
  }
  void await_resume() noexcept {}
};

// Not analysed: one path releases mu_ inside ParkUnlocking's await_suspend. The contract
// (mu_ held on entry, released on every path) is on the declaration, checked at callers.
aio::Task<absl::Status> Qcow2Instance::CoLoadL2TableUnlocking(uint64_t l2_offset)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  auto it = loading_tables_.find(l2_offset);
  if (it != loading_tables_.end()) {
    co_await ParkUnlocking{&mu_, &it->second};
    co_return absl::OkStatus();  // loaded, or failed: the retry finds out
  }
  loading_tables_.emplace(l2_offset, std::vector<TableWaiter>{});
  mu_.Unlock();
  absl::Status s = co_await aio::Offload([&] {
    absl::MutexLock lock(&mu_);
    return l2_cache_->Get(l2_offset).status();
  });
  std::vector<TableWaiter> waiters;
  {
    absl::MutexLock lock(&mu_);
    auto node = loading_tables_.extract(l2_offset);
    waiters = std::move(node.mapped());
  }
  for (const TableWaiter& w : waiters) w.context->Post(w.handle);
  co_return s;
}

// Not analysed: the lock is taken by a try-lock in the loop condition and released on
// each exit path or by CoLoadL2TableUnlocking, a shape the analysis cannot follow.
aio::Task<absl::StatusOr<bool>> Qcow2Instance::CoMapNatively(absl::FunctionRef<absl::Status()> map)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // A few rounds: each missing L2 table is loaded (or waited for) and the mapping retried.
  for (int round = 0; round < 4 && TryLockBriefly(mu_); ++round) {
    absl::Status s;
    {
      CachedOnly cached_only(this);
      missed_l2_offset_ = 0;
      s = map();
    }
    if (s.ok() || !IsNotCached(s) || missed_l2_offset_ == 0) {
      mu_.Unlock();
      if (!s.ok() && !IsNotCached(s)) co_return s;
      co_return s.ok();
    }
    STRATA_CO_RETURN_IF_ERROR(co_await CoLoadL2TableUnlocking(missed_l2_offset_));
  }
  co_return false;
}

aio::Task<absl::Status> Qcow2Instance::CoPreadv(uint64_t offset, uint64_t bytes,
                                                const IoVector& qiov, uint32_t flags) {
  // Native only on a loop (inline callers take the synchronous path directly), and not
  // when a breakpoint below may park the request: only the synchronous path waits there.
  // Encrypted images take the synchronous path (it decrypts through a bounce buffer).
  const bool may_be_native = aio::IoContext::Current() != nullptr && !file_->delivers_events() &&
                             !crypto_ &&
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
        status = co_await data_file_->node().CoPreadv((m.entry & kL2OffsetMask) + m.in_cluster,
                                                 m.len, m.iov);
        break;
      case ClusterType::kUnallocated: {
        // The backing node's length, then its data; zeroes past its end.
        absl::StatusOr<uint64_t> backing_len = backing_->node().GetLength();
        if (!backing_len.ok()) {
          status = backing_len.status();
          break;
        }
        const uint64_t at = (m.gc << cluster_bits_) + m.in_cluster;
        const uint64_t avail = at >= *backing_len ? 0 : std::min(m.len, *backing_len - at);
        if (avail > 0) status = co_await backing_->node().CoPreadv(at, avail, m.iov.Slice(0, avail));
        if (status.ok() && avail < m.len) m.iov.Memset(avail, 0, m.len - avail);
        break;
      }
      default:  // compressed: a read and inflation, on the pool
        status = co_await aio::Offload(
            [&] { return ReadFromEntry(m.gc, m.entry, m.in_cluster, m.len, m.iov); });
        break;
    }
    if (!status.ok()) break;
  }
  absl::MutexLock lock(&mu_);
  EndTransfer(epoch);
  co_return status;
}

aio::Task<absl::Status> Qcow2Instance::CoPwritev(uint64_t offset, uint64_t bytes,
                                                 const IoVector& qiov, uint32_t flags) {
  // Natively: writes into clusters the image owns (COPIED), mapped from cached tables.
  // Allocations, copy-on-write, compressed writes and FUA's metadata flush are the
  // synchronous path's.
  const bool may_be_native = aio::IoContext::Current() != nullptr &&
                             !(flags & (kReqWriteCompressed | kReqFua)) &&
                             !file_->delivers_events() && !crypto_;
  std::vector<DataSegment> segments;
  uint64_t epoch = 0;
  bool native = false;
  auto map = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    segments.clear();
    STRATA_RETURN_IF_ERROR(CheckUsable());
    if (AllocationInFlight(offset >> cluster_bits_, (offset + bytes - 1) >> cluster_bits_)) {
      return NotCached();
    }
    uint64_t done = 0;
    while (done < bytes) {
      const uint64_t pos = offset + done;
      STRATA_ASSIGN_OR_RETURN(uint64_t entry, GetL2Entry(pos >> cluster_bits_));
      STRATA_ASSIGN_OR_RETURN(bool writable, InPlaceWritable(pos, entry));
      if (!writable) return NotCached();  // needs an allocation
      STRATA_ASSIGN_OR_RETURN(DataSegment segment,
                              PlanInPlace(pos, bytes - done, entry, qiov.Slice(done, bytes - done)));
      done += segment.len;
      segments.push_back(std::move(segment));
    }
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
  absl::Status status;
  for (const DataSegment& d : segments) {
    if (!external_data_) NoteUncountedWrite(d.host + d.len);
    status = co_await data_file_->node().CoPwritev(d.host, d.len, d.iov);
    if (!status.ok()) break;
  }
  absl::MutexLock lock(&mu_);
  EndTransfer(epoch);
  co_return status;
}

}  // namespace strata::qcow2
