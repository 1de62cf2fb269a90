// strata qcow2: one open qcow2 image (the per-node driver instance).
//
// Guest I/O is split at cluster boundaries and mapped through L1/L2. Allocating writes
// get contiguous host clusters and copy the untouched head and tail of their clusters from
// wherever the old data lives (backing file, zero cluster, compressed or shared cluster)
// in the same write as the guest data. Metadata goes through write-back caches; a flush
// writes refcount blocks, then (after a disk flush) L2 tables, then the L1 table, and only
// then applies deferred refcount decrements, so that after a crash at any point every
// cluster reads old or new data and check finds at worst leaks.
//
// Thread safety: every entry point takes `mu_` (an aio::CoMutex: the coroutine path parks
// for it, the synchronous path on pool and tool threads blocks) for mapping and
// metadata. Data transfers
// run after releasing it: reads, writes into clusters the image already owns, and
// allocating writes, whose new clusters are registered in flight between planning and
// linking (a second request touching them waits instead of allocating again). Deferred
// cluster frees wait until no unlocked transfer is in flight, so a cluster is never
// reused under a running request.
#ifndef STRATA_DRIVERS_QCOW2_QCOW2_INSTANCE_H_
#define STRATA_DRIVERS_QCOW2_QCOW2_INSTANCE_H_

#include <array>
#include <map>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "aio/co_mutex.h"
#include "aio/io_context.h"
#include "aio/task.h"
#include "block/driver.h"
#include "block/node.h"
#include "block/dirty_bitmap.h"
#include "block/status.h"
#include "drivers/qcow2/qcow2_bitmap_format.h"
#include "drivers/qcow2/qcow2_cache.h"
#include "drivers/qcow2/qcow2_cache_cleaner.h"
#include "drivers/qcow2/qcow2_cache_sizing.h"
#include "drivers/qcow2/qcow2_crypto.h"
#include "drivers/qcow2/qcow2_file_reserve.h"
#include "drivers/qcow2/qcow2_header.h"
#include "drivers/qcow2/qcow2_overlap.h"
#include "drivers/qcow2/qcow2_refcount.h"
#include "drivers/qcow2/qcow2_snapshot.h"
#include "drivers/qcow2/qcow2_transfer_epochs.h"

namespace strata::qcow2 {

class Qcow2Instance : public DriverInstance {
 public:
  // Opens the image on `file` (already opened) with header `header`.
  static absl::StatusOr<std::unique_ptr<Qcow2Instance>> Open(OpenContext& ctx, BdrvChild* file);

  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                      uint32_t flags) override;
  absl::Status Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                       uint32_t flags) override;
  absl::Status PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override;
  absl::Status Pdiscard(uint64_t offset, uint64_t bytes) override;
  absl::Status FlushToOs() override;
  // qcow2_async.cc: reads, and writes into clusters the image owns, whose L2 tables are
  // cached, map under a brief try-lock and transfer as coroutines; everything else (a
  // cache miss, an allocation, a busy lock, a breakpoint below) is the synchronous path
  // on the blocking pool.
  aio::Task<absl::Status> CoPreadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                   uint32_t flags) override;
  aio::Task<absl::Status> CoPwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                    uint32_t flags) override;
  // qcow2_async_zero.cc: zero writes and discards of whole clusters whose L2 tables are
  // cached change the cached tables on the loop; a flush with no dirty metadata returns
  // there. The rest is the synchronous path on the pool.
  aio::Task<absl::Status> CoPwriteZeroes(uint64_t offset, uint64_t bytes,
                                         uint32_t flags) override;
  aio::Task<absl::Status> CoPdiscard(uint64_t offset, uint64_t bytes) override;
  aio::Task<absl::Status> CoFlushToOs() override;
  // No disk of its own (the file's and data file's flushes follow): nothing to hand to
  // the pool.
  aio::Task<absl::Status> CoFlushToDisk() override { co_return absl::OkStatus(); }
  // What a request with kReqFua owes once its own I/O is done (the data went down
  // without FUA): the metadata it changed written back, then the files it wrote (the
  // image file, and an external data file) made stable. FlushForFua takes mu_ itself.
  absl::Status FlushForFua() ABSL_LOCKS_EXCLUDED(mu_);
  aio::Task<absl::Status> CoFlushForFua() ABSL_LOCKS_EXCLUDED(mu_);
  // CoPwriteZeroes of a range with a partial cluster at either end (standard L2 entries,
  // on a loop): PwriteZeroes's pieces in its order, each partial one through
  // CoZeroPartialCluster (which falls back to the synchronous path for that piece only).
  aio::Task<absl::Status> CoPwriteZeroesPartial(uint64_t offset, uint64_t bytes,
                                                uint32_t flags) ABSL_LOCKS_EXCLUDED(mu_);
  aio::Task<absl::Status> CoZeroPartialCluster(uint64_t offset, uint64_t bytes, uint32_t flags)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Truncate(uint64_t length, bool exact, PreallocMode prealloc) override;
  absl::StatusOr<uint64_t> GetLength() override;
  absl::StatusOr<BlockStatus> GetBlockStatus(uint64_t offset, uint64_t bytes) override;
  absl::Status Close() override;
  absl::Status ChangeBackingFile(const std::string& name, const std::string& format) override;
  absl::StatusOr<CheckResult> Check(uint32_t fix) override;  // qcow2_check.cc
  // Opening read-write: if the image is dirty (lazy refcounts, interrupted operation),
  // checks and repairs it and clears the bit. Per-cluster findings go to stderr.
  absl::Status RepairIfDirty();
  absl::Status MakeEmpty() override;  // qcow2_make_empty.cc
  // qcow2_amend.cc: compat (upgrade, downgrade), refcount_bits, lazy_refcounts, size.
  absl::Status Amend(const std::vector<std::pair<std::string, std::string>>& options,
                     const AmendProgress& progress) override;
  // qcow2_snapshot.cc
  absl::StatusOr<std::vector<SnapshotInfo>> ListSnapshots() override;
  absl::Status CreateSnapshot(const std::string& name) override;
  absl::Status ApplySnapshot(const std::string& name) override;
  absl::Status DeleteSnapshot(const std::string& name) override;
  absl::Status LoadSnapshotForReading(const std::string& id, const std::string& name) override;
  DriverInfo GetInfo() override;
  // The VM state lives past the guest's data, from the first L1 entry beyond the virtual
  // size (QEMU's layout: savevm images read back in either), written as guest data is.
  bool HasVmState() const override { return true; }
  absl::Status ReadVmState(uint64_t pos, uint64_t bytes, void* buf) override;
  absl::Status WriteVmState(uint64_t pos, uint64_t bytes, const void* buf) override;
  // Where the VM state area begins in guest terms: past the virtual size, at the first
  // whole L2 table's span (QEMU's layout).
  uint64_t VmStateOffset() ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t VmStateOffsetLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  FormatSpecificInfo GetFormatSpecificInfo() override;
  // qcow2_bitmaps.cc: persistent dirty bitmaps (see there for their lifecycle).
  bool SupportsDirtyBitmaps() override { return version_ >= 3; }
  std::vector<DirtyBitmapInfo> ListDirtyBitmaps() override;
  absl::Status AddDirtyBitmap(const std::string& name, uint64_t granularity, bool enabled,
                              absl::string_view node_label) override;
  absl::Status RemoveDirtyBitmap(const std::string& name) override;
  absl::Status ClearDirtyBitmap(const std::string& name) override;
  absl::Status SetDirtyBitmapEnabled(const std::string& name, bool enabled) override;
  absl::Status MergeDirtyBitmap(const std::string& target, const DirtyBitmap& source) override;
  absl::StatusOr<DirtyBitmap> GetDirtyBitmap(const std::string& name) override;
  absl::StatusOr<std::vector<DirtyRun>> GetDirtyRuns(const std::string& name, uint64_t offset,
                                                     uint64_t length, size_t max_runs) override;

  // Encrypted images need whole sectors (the cipher's unit).
  uint32_t request_alignment() const override { return crypto_ ? luks::kSectorBytes : 1; }
  // qcow2_encryption.cc. Image creation: makes the new, empty image (open read-write,
  // nothing else using it) encrypted as `params` says. LUKS: allocates and writes the
  // volume's clusters, then one header rewrite sets crypt_method and the extension, so a
  // failure before it leaves an unencrypted image with leaked clusters.
  absl::Status SetUpEncryption(const EncryptCreateParams& params);

  const Qcow2Header& header() const { return header_; }
  ~Qcow2Instance() override;

  // Cache occupancy, for tests of the sizing and cleaning rules.
  size_t cached_l2_tables() {
    aio::CoMutexLock lock(&mu_);
    return l2_cache_->size();
  }
  size_t cached_refcount_blocks() {
    aio::CoMutexLock lock(&mu_);
    return refcounts_->cached_blocks();
  }
  const CacheSizes& cache_sizes() const { return cache_sizes_; }
  // Clusters counted ahead of use (the refcount pool), for tests.
  size_t refcount_pool_size() {
    aio::CoMutexLock lock(&mu_);
    return refcounts_->pool_size();
  }

 private:
  // The cache-clean-interval thread: every `interval`, drops the clean cache entries
  // nothing used since the previous round. Stopped (and joined) by Close or destruction.
  // Drops cache entries unused for an interval (called on the shared cleaner thread).
  void CleanCaches() ABSL_LOCKS_EXCLUDED(mu_);
  void StopCacheCleaner() ABSL_LOCKS_EXCLUDED(mu_);
  Qcow2Instance(BdrvChild* file, Qcow2Header header, bool read_only);

  enum class ClusterType { kUnallocated, kZeroPlain, kZeroAlloc, kNormal, kCompressed };

  ClusterType TypeOf(uint64_t l2_entry) const;
  // Whether a (raw or effective) standard entry names a host cluster: a non-zero offset,
  // or, with an external data file, COPIED (offset 0 is guest cluster 0's place there).
  bool HasHost(uint64_t entry) const {
    if (entry & kOflagCompressed) return false;
    return (entry & kL2OffsetMask) != 0 || (external_data_ && (entry & kOflagCopied)) ||
           (extended_l2_ && (entry & kUnallocatedWithHost));
  }
  // A raw L2 entry as the rest of the driver reads it: with extended L2 entries, a
  // standard entry's reserved bits that TypeOf would misread (bit 0, which is not a zero
  // flag there, and kUnallocatedWithHost) cleared, as QEMU ignores them.
  uint64_t NormalizeEntry(uint64_t raw) const {
    if (!extended_l2_ || (raw & kOflagCompressed)) return raw;
    return raw & ~(kOflagZero | kUnallocatedWithHost);
  }

  // The L2 entry of a guest cluster. In cached-only mode (see CachedOnly) an L2 table
  // that is not cached is not read: NotCached() instead.
  absl::StatusOr<uint64_t> GetL2Entry(uint64_t guest_cluster) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // While alive (mu_ held throughout), GetL2Entry does no I/O. Used by the coroutine path
  // to map without blocking its loop.
  class CachedOnly {
   public:
    explicit CachedOnly(Qcow2Instance* q) : q_(q) { q_->cached_only_ = true; }
    ~CachedOnly() { q_->cached_only_ = false; }

   private:
    Qcow2Instance* q_;
  };
  static absl::Status NotCached() { return absl::UnavailableError("qcow2: table not cached"); }
  // Coroutine path, mu_ held on entry and released before it returns: runs the step a
  // cached-only mapping missed (see CachedOnlyMiss: load an L2 table, create one, extend
  // the reserved tail). The first request to miss it runs it: an L2 table is read on
  // the loop with mu_ released (the cache's BeginLoad/FinishLoad drop a read that raced
  // a change); the other steps run on the blocking pool under mu_. Requests that miss it
  // meanwhile park (no thread) until it ends; then all retry their mapping (an error
  // here fails only the request that ran the step).
  struct CachedOnlyMiss;
  aio::Task<absl::Status> CoRunMissedStepUnlocking(CachedOnlyMiss miss)
      ABSL_UNLOCK_FUNCTION(mu_);
  // Coroutine path: runs `map` (a cached-only mapping) under mu_, taken with a brief
  // try-lock; a missing L2 table is loaded (or the file's reserved tail extended) and the
  // mapping retried. true: mapped (mu_
  // released); false: take the synchronous path (lock busy, allocation needed, tables
  // keep missing); an error: the request fails with it.
  aio::Task<absl::StatusOr<bool>> CoMapNatively(absl::FunctionRef<absl::Status()> map);
  struct TableWaiter {
    aio::IoContext* context;
    std::coroutine_handle<> handle;
  };
  // Coroutine path: takes mu_ without stalling the loop while another request or thread
  // holds it across I/O: a brief try-lock, else the coroutine parks in mu_'s queue and
  // is resumed on its loop holding it. Off a loop it blocks.
  aio::Task<absl::Status> CoLockMetadata() ABSL_EXCLUSIVE_LOCK_FUNCTION(mu_);
  friend struct ParkUnlocking;  // qcow2_async.cc: parks a coroutine on a table load
  friend struct ParkForAllocation;  // qcow2_async.cc: parks one on an in-flight allocation
  static bool IsNotCached(const absl::Status& s) {
    return s.code() == absl::StatusCode::kUnavailable;
  }
  // A read mapped under mu_: one run of clusters alike (see MappingRunBytes) whose bytes
  // need I/O after the lock is released (ReadFromEntry).
  struct MappedRead {
    uint64_t gc, entry, in_cluster, len;
    IoVector iov;
  };
  // Maps a read under mu_: zero runs are filled at once, the rest appended to `out`; if
  // `out` is not empty afterwards, a transfer was begun (*epoch; the caller ends it after
  // the transfers). `wait`: wait for overlapping in-flight allocations; otherwise
  // NotCached() if there is one.
  absl::Status MapRead(uint64_t offset, uint64_t bytes, const IoVector& qiov, bool wait,
                       std::vector<MappedRead>* out, uint64_t* epoch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Data transfers outside mu_ on clusters mapped under it. BeginTransfer (at the end of
  // the mapping, under mu_) returns the transfer's epoch, EndTransfer(epoch) (any thread,
  // mu_ not needed) ends it. A cluster freed by an L2 change is handed back only once no
  // transfer of the epoch current when that change reached the disk, or older, is in
  // flight (ApplyStableFrees): such a transfer may still use it. Nothing waits for
  // transfers to drain (under steady load they never would); frees just stay pending
  // until a later flush or Close. See TransferEpochs.
  uint64_t BeginTransfer() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return transfers_.Begin(); }
  void EndTransfer(uint64_t epoch) { transfers_.End(epoch); }
  // A fatal corruption ("Cluster allocation offset ... unaligned") if the (effective)
  // entry of cluster `gc` has a host offset that is not cluster aligned; with an external
  // data file, also for a compressed entry or a host offset other than the guest's.
  absl::Status CheckHostOffset(uint64_t gc, uint64_t entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees the stable frees no transfer may still use; returns whether it freed any.
  absl::StatusOr<bool> ApplyStableFrees() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True if an in-flight allocation overlaps guest clusters [first_gc, last_gc].
  bool AllocationInFlight(uint64_t first_gc, uint64_t last_gc) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bytes from `offset` (at most `bytes`) over which the mapping continues like `entry`,
  // the L2 entry of offset's cluster: same cluster type and, for clusters with a host
  // offset, host-contiguous. A compressed cluster is a run of its own.
  absl::StatusOr<uint64_t> MappingRunBytes(uint64_t offset, uint64_t bytes, uint64_t entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The L2 table for `l1_index`, allocating it (or a private copy of a shared one) if
  // needed; grows the L1 table if `l1_index` is past its end. After a failure the L1
  // entry is unchanged and the new table's cluster given back (qcow2_l2_table_alloc.cc).
  absl::StatusOr<uint64_t> EnsureL2Table(uint64_t l1_index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // EnsureL2Table itself: its table writes, L1 write and disk flushes awaited (the caller
  // keeps mu_ held across them), its other steps synchronous: on a loop only when
  // EnsureL2TableCanRunOnLoop says they do no I/O (no L1 growth, no guest frees to
  // flush first, a shared table already cached, the new cluster found in cached
  // refcount blocks). That check changes nothing but cache LRU order.
  aio::Task<absl::StatusOr<uint64_t>> CoEnsureL2Table(uint64_t l1_index)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool EnsureL2TableCanRunOnLoop(uint64_t l1_index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets the L2 entry (and, with extended L2 entries, its subcluster bitmap: 0 means
  // every subcluster unallocated), allocating (or copying a shared) L2 table first if
  // needed.
  absl::Status SetL2Entry(uint64_t guest_cluster, uint64_t entry, uint64_t bitmap = 0)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The cached L2 slot of `gc` (its entry, then its bitmap with extended L2 entries);
  // nullptr if no L2 table covers it. Valid until the next cache operation.
  absl::StatusOr<const uint8_t*> FindL2Slot(uint64_t gc) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The subcluster bitmap of `gc` (0 for standard L2 entries or without a table).
  absl::StatusOr<uint64_t> GetL2Bitmap(uint64_t gc) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // GetL2Entry and GetL2Bitmap together, with one table lookup (the mapping paths of
  // extended images need both for every cluster).
  struct L2EntryAndBitmap {
    uint64_t entry, bitmap;
  };
  absl::StatusOr<L2EntryAndBitmap> GetL2EntryAndBitmap(uint64_t gc)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // qcow2_subclusters.cc. How guest byte `pos` maps, as a standard-format L2 entry: the
  // raw entry for standard images; with extended L2 entries, the entry of pos's
  // subcluster ("effective entry"): the cluster's entry if the subcluster is allocated,
  // kOflagZero (with the host offset and COPIED flag, if any) if it reads as zeroes, 0 if
  // it is unallocated, the entry itself for a compressed cluster. Everything that maps
  // reads (ReadFromEntry, MappingRunBytes, block status) works on effective entries.
  absl::StatusOr<uint64_t> GetMapping(uint64_t pos) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Subcluster `sc` of cluster `gc` (raw `entry`, `bitmap`) as an effective entry; a
  // bitmap QEMU calls invalid (allocated and zero, or allocated without a host cluster)
  // is a fatal corruption, as in QEMU.
  absl::StatusOr<uint64_t> EffectiveEntry(uint64_t gc, uint64_t entry, uint64_t bitmap,
                                          uint32_t sc) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // MappingRunBytes for extended L2 entries: the run is counted in subclusters.
  absl::StatusOr<uint64_t> SubclusterRunBytes(uint64_t offset, uint64_t bytes, uint64_t entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a write at `pos` into the cluster whose raw L2 entry is `entry` can go in
  // place: a normal cluster with COPIED and, with extended L2 entries, pos's subcluster
  // allocated.
  absl::StatusOr<bool> InPlaceWritable(uint64_t pos, uint64_t entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A run of [in_cluster, in_cluster + len) of a cluster as it mapped before a write
  // that reads from one source: `entry` is its effective entry (see GetMapping).
  struct OldClusterPiece {
    uint64_t at, len, entry;
  };
  // The runs of [in_cluster, in_cluster + len) of a cluster whose raw entry and bitmap
  // were `entry` and `bitmap`, in order: one without extended L2 entries or for a
  // compressed cluster, one per run of subclusters alike otherwise. EIO for a bitmap the
  // format forbids. Pure: no lock, no I/O.
  absl::StatusOr<std::vector<OldClusterPiece>> OldClusterPieces(uint64_t entry, uint64_t bitmap,
                                                                uint64_t in_cluster,
                                                                uint64_t len) const;
  // Reads [in_cluster, in_cluster + len) of cluster `gc` as it mapped before a write
  // (raw `entry` and `bitmap`), subcluster runs each from their own source. No lock.
  absl::Status ReadOldCluster(uint64_t gc, uint64_t entry, uint64_t bitmap,
                              uint64_t in_cluster, uint64_t len, const IoVector& out);
  // Reads [offset, offset+len) of guest cluster `gc` whose L2 entry is `entry` into buf.
  // Needs no lock: touches only the file and backing children.
  absl::Status ReadFromEntry(uint64_t gc, uint64_t entry, uint64_t in_cluster, uint64_t len,
                             const IoVector& out);
  absl::Status ReadBacking(uint64_t offset, uint64_t len, const IoVector& out);
  // Encrypted data passes through a bounce buffer of at most this many bytes at a time.
  static constexpr uint64_t kCryptBounceBytes = 1 << 20;
  // Guest data of a normal cluster: `len` bytes at host offset `host` of the data file,
  // guest offset `guest`; decrypted or encrypted (through a bounce buffer, the caller's
  // buffer untouched) when the image is encrypted. No lock.
  absl::Status ReadData(uint64_t host, uint64_t guest, uint64_t len, const IoVector& out);
  absl::Status WriteData(uint64_t host, uint64_t guest, uint64_t len, const IoVector& in,
                         uint32_t flags);
  // ReadData and WriteData awaited on the coroutine path (qcow2_async_data.cc): the same
  // bytes, the cipher run on the awaiting loop. CoWriteData leaves NoteUncountedWrite to
  // its caller (the native paths note the extent before they write).
  aio::Task<absl::Status> CoReadData(uint64_t host, uint64_t guest, uint64_t len,
                                     const IoVector& out) ABSL_LOCKS_EXCLUDED(mu_);
  aio::Task<absl::Status> CoWriteData(uint64_t host, uint64_t guest, uint64_t len,
                                      const IoVector& in) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status ReadCompressed(uint64_t entry, uint64_t in_cluster, uint64_t len,
                              const IoVector& out);
  // ReadCompressed on the coroutine path (qcow2_async_data.cc): the bytes read on the
  // ring, inflated on the awaiting loop. Only where the file delivers no debug events
  // (the synchronous twin raises read_compressed). No lock.
  aio::Task<absl::Status> CoReadCompressed(uint64_t entry, uint64_t in_cluster, uint64_t len,
                                           const IoVector& out) ABSL_LOCKS_EXCLUDED(mu_);
  // Schedules the release of the host cluster(s) an old L2 entry referenced; applied after
  // the L2 change is on disk. `discard`: the freed clusters are discarded in the file too.
  void ReleaseLater(uint64_t old_entry, bool discard = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Discards (in the file) the clusters freed with a discard since the last call, each
  // awaited with mu_ held. Errors are ignored, as QEMU ignores them: a discard is advice.
  // Always OK.
  aio::Task<absl::Status> CoDiscardFreedClusters() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes metadata in crash-safe order (see the class comment). While the image is
  // dirty with lazy refcounts, refcount blocks stay in the cache unless
  // `with_refcounts` (a repair or a clean close needs them on disk).
  absl::Status FlushMetadata(bool with_refcounts = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // FlushMetadata itself, which runs it with RunSync (off a loop every write completes
  // inline). On a loop its table writes, L1 write and disk flushes suspend the coroutine
  // with mu_ held: the other requests park on mu_, the loop runs on; so are the discards
  // of freed clusters. Its other steps (filling the refcount pool, freeing clusters)
  // stay synchronous: on a loop only when FlushMetadataCanRunOnLoop says they do no I/O.
  aio::Task<absl::Status> CoFlushMetadata(bool with_refcounts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether CoFlushMetadata(false) would do no synchronous I/O: the refcount blocks of
  // the clusters to free are cached, and so are those of the clusters a due refcount
  // pool fill would take. Changes nothing but cache LRU order.
  bool FlushMetadataCanRunOnLoop() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Snapshot helpers (qcow2_snapshot.cc). LoadSnapshots reads the table at open.
  absl::Status LoadSnapshots() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int FindSnapshot(const std::string& name) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads a snapshot's L1 table, validated first as QEMU validates it (alignment, QEMU's
  // size limit, inside the file): "Snapshot L1 table offset invalid" / "... too large".
  absl::StatusOr<std::vector<uint64_t>> ReadL1Table(uint64_t offset, uint32_t size);
  // Adds `delta` to the refcount of every L2 table and data cluster `l1` reaches.
  absl::Status UpdateTreeRefcounts(const std::vector<uint64_t>& l1, int64_t delta,
                                   bool discard = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets COPIED on the active L1/L2 entries whose cluster has refcount 1, clears it on
  // the others (in the caches; the next flush writes them).
  absl::Status FixCopiedFlags() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `table` to new clusters, switches the header to it, frees the old one.
  absl::Status WriteSnapshotTable(std::vector<Qcow2Snapshot> table)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // make_empty's steps 3-7 (see qcow2_make_empty.cc), and its slow path.
  absl::Status MakeEmptyFast(uint64_t l1_clusters) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DiscardEverything() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fails once the image was disabled: EIO after an interrupted make_empty left the
  // caches out of step with the file, ENOMEDIUM after a fatal corruption (as QEMU).
  absl::Status CheckUsable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return unusable_; }
  // qcow2_corruption.cc. Reports metadata found corrupt, QEMU's way: the first time (or
  // a fatal one after non-fatal ones) prints "qcow2: Marking image as corrupt: <message>;
  // further corruption events will be suppressed" (fatal, image writable: sets the
  // corrupt bit and disables the image) or "qcow2: Image is corrupt: ...". Returns the
  // EIO the request that found it fails with.
  absl::Status SignalCorruption(bool fatal, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A fatal corruption if host bytes [offset, offset + bytes) hold metadata of a kind
  // not in `ignore` (MetadataOverlapIndex::Kind bits); OK otherwise.
  absl::Status CheckMetadataOverlap(uint64_t offset, uint64_t bytes, uint32_t ignore)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True if host bytes [offset, offset + bytes) hold metadata of a kind not in `ignore`.
  // Only asks: reports nothing and marks nothing.
  bool OverlapsMetadata(uint64_t offset, uint64_t bytes, uint32_t ignore)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Rebuilds overlap_index_ if the tables it was built from may have changed.
  void RefreshOverlapIndex() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Cuts the reserved file tail back to the last cluster in use (clean close).
  absl::Status TrimFileTail() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes everything and clears the dirty bit (clean close, end of a repair).
  absl::Status MarkClean() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // qcow2_rebuild.cc: replaces the refcount structure by one built from `refs` (the
  // check's reference counts, extended with the new structure's own clusters).
  absl::Status RebuildRefcountStructure(std::vector<uint64_t>& refs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes a complete refcount structure in `layout`'s entry width describing `refs`
  // (extended with the structure's own clusters, placed where `refs` is 0) and makes it
  // stable; returns the table's offset and clusters. Switching to it is the caller's.
  absl::StatusOr<std::pair<uint64_t, uint32_t>> WriteRefcountStructure(
      const Qcow2Refcounts& layout, std::vector<uint64_t>& refs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the refblocks for the used clusters in [first_cluster, end_cluster), allocating
  // missing ones; returns whether `reftable` had to grow.
  absl::StatusOr<bool> WriteRebuiltRefblocks(const Qcow2Refcounts& layout,
                                             std::vector<uint64_t>& refs,
                                             uint64_t first_cluster, uint64_t end_cluster,
                                             std::vector<uint64_t>& reftable)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A refcount accessor for this file in `refcount_order`'s width (not loaded).
  std::unique_ptr<Qcow2Refcounts> NewRefcounts(uint32_t refcount_order);
  // Writes header_ (with its extensions) as the whole first cluster, synchronously.
  absl::Status RewriteHeader() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // qcow2_amend.cc: the steps of Amend, each leaving a consistent image.
  // `progress` (may be empty) gets qemu-img's steps: three passes of one step per
  // reftable entry (QEMU walks its reftable three times: to allocate the new refcount
  // blocks, to check none more are needed, to write them).
  absl::Status ChangeRefcountOrder(uint32_t refcount_order, const AmendProgress& progress)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SetLazyRefcounts(bool on) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `progress` hears (entries walked, all L1 entries) after each L1 entry.
  absl::Status Downgrade(const AmendProgress& progress) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The active L1 table and every snapshot's, as read now.
  absl::StatusOr<std::vector<std::vector<uint64_t>>> AllL1Tables()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Turns every zero cluster reachable from `l1` into an unallocated one (no backing
  // file) or a data cluster of zeroes (with one), for a v2 image.
  absl::Status ExpandZeroClusters(const std::vector<uint64_t>& l1)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteL1() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  aio::Task<absl::Status> CoWriteL1() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the sector of the L1 table holding entry `l1_index` and flushes.
  aio::Task<absl::Status> CoWriteL1Entry(uint64_t l1_index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status GrowL1(uint64_t min_size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteHeaderBytes(uint64_t offset, uint64_t len) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An allocating write planned under mu_: `count` new host clusters at `host` for the
  // guest clusters from `first_gc`, linked into L2 only after their data is written.
  struct AllocationPlan {
    uint64_t first_gc = 0;
    uint64_t count = 0;
    uint64_t host = 0;
    bool reads_as_zero = false;  // the host clusters were never written since open
    // The run is zero clusters that keep their host clusters (ZERO_ALLOC with COPIED):
    // the data goes into those clusters, as QEMU does, and nothing is allocated or freed.
    bool reuses_host_clusters = false;
    std::vector<uint64_t> old_entries;  // what the clusters mapped to before
    // Extended L2 entries: the old bitmaps, and the bitmaps FinishAllocation links.
    std::vector<uint64_t> old_bitmaps, new_bitmaps;
    // The guest bytes written: the request's data plus copy-on-write before and after
    // it. The whole run of clusters, except with extended L2 entries, where it can be
    // just the subclusters the data touches.
    uint64_t write_start = 0, write_end = 0;
    uint64_t offset = 0;                // guest offset where the request's data starts
    uint64_t data_end = 0;              // guest offset where it ends within this run
    IoVector data;                      // the request's data for [offset, data_end)
  };
  // Guest clusters some request is allocating right now (between plan and finish).
  struct InflightAllocation {
    uint64_t first_gc;
    uint64_t count;
  };
  // Blocks (releasing mu_) until no in-flight allocation overlaps [first_gc, last_gc].
  void WaitForAllocations(uint64_t first_gc, uint64_t last_gc)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Allocates host clusters for the allocating run starting at `offset` (at most `bytes`,
  // within one L2 table) and registers it in-flight.
  absl::StatusOr<AllocationPlan> PlanAllocation(uint64_t offset, uint64_t bytes,
                                                const IoVector& qiov)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // qcow2_subclusters.cc: PlanAllocation with extended L2 entries. A cluster the image
  // owns (host offset, COPIED) keeps its host cluster and gets the subclusters the data
  // touches written; clusters without a host offset get new host clusters and only the
  // touched subclusters written; shared and compressed clusters are copied whole.
  absl::StatusOr<AllocationPlan> PlanSubclusterAllocation(uint64_t offset, uint64_t bytes,
                                                          const IoVector& qiov)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Extended L2 entries: makes subclusters [first_sc, end_sc) of cluster `gc` read as
  // zeroes (bitmap only). false if the cluster is compressed (the caller writes zeroes).
  absl::StatusOr<bool> ZeroSubclusters(uint64_t gc, uint32_t first_sc, uint32_t end_sc)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Host clusters for `count` guest clusters from `first_gc` that get data: new clusters
  // of the image file (refcounted), or, with an external data file, the guest offset.
  absl::StatusOr<uint64_t> AllocateDataClusters(uint64_t first_gc, uint64_t count)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Before an allocation of guest data (clusters or compressed bytes): clusters a guest
  // discard (or write-zeroes with unmap) gave back are reused by the next allocation, as
  // in QEMU. Their frees are made stable first (one ordered metadata flush), so a crash
  // never leaves an old L2 entry naming a reused cluster.
  absl::Status MakeGuestFreesReusable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Zeroes host bytes of a raw external data file (what the guest reads as zeroes must
  // read so there too), never past the data file's end (that would grow it).
  absl::Status ZeroDataFile(uint64_t host, uint64_t bytes, uint32_t flags)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives back what AllocateDataClusters returned, when nothing references it.
  void FreeDataClusters(uint64_t host, uint64_t count) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // qcow2_data_file.cc: opens the external data file named by the data-file option or the
  // header (relative names are the caller's working directory's, as in QEMU).
  absl::Status OpenDataFile(OpenContext& ctx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The second half of planning: with plan.first_gc, offset, count and old_entries set,
  // makes sure the L2 table exists, allocates `count` host clusters and registers the run
  // in flight; sets data, data_end, write_start and write_end (the whole run).
  absl::Status AllocateRun(AllocationPlan& plan, uint64_t bytes, const IoVector& qiov)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // How an allocation's write is laid out (WriteAllocation and CoWriteAllocation).
  struct CowLayout {
    uint64_t run_start = 0, run_end = 0;     // the guest bytes of the run's clusters
    uint64_t head_bytes = 0, tail_bytes = 0;  // copy-on-write before and after the data
    uint64_t tail_gc = 0;                     // the cluster the tail lies in
    // The run was unallocated throughout the chain: the head and tail are zeroes, written
    // by zeroing the run (or not at all when it reads as zero), not by copying.
    bool zero_cow = false;
  };
  CowLayout LayOutCow(const AllocationPlan& plan) const;
  // Cached-only mode (the coroutine path, see CachedOnly): OK if AllocateRun for `count`
  // clusters under L1 index `l1_index` will do no I/O: the L2 table is the image's own
  // (COPIED) and present, no guest frees wait for their ordering flush, the refcounts
  // find the run in cached blocks, and the file's reserved tail already covers it.
  // NotCached() otherwise: with miss_ set when the L2 table must be made or the tail
  // extended first (CoMapNatively runs that step once and retries), else with nothing to
  // run (the request takes the pool). Changes nothing else. A corrupt refcount structure found while allocating may still mark the
  // image corrupt, a header write on the loop thread: rare, and correct.
  absl::Status CheckAllocationCached(uint64_t l1_index, uint64_t count)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True if FinishAllocation(plan, OK) will do no I/O: the dirty bit of lazy refcounts is
  // set already, the L2 table is the image's own and cached, and no old cluster of an
  // external data file needs discarding.
  bool FinishIsCached(const AllocationPlan& plan) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // qcow2_async_write.cc, the coroutine path of an allocating write, mu_ not held:
  // WriteAllocation with its transfers awaited (compressed copy-on-write sources and a
  // zeroing of reused clusters go to the blocking pool), then FinishAllocation for every
  // plan and EndTransfer(epoch): inline under a briefly try-locked mu_ when that does no
  // I/O (FinishIsCached), else on the pool.
  aio::Task<absl::Status> CoWriteAllocation(const AllocationPlan& plan) ABSL_LOCKS_EXCLUDED(mu_);
  aio::Task<absl::Status> CoFinishAllocations(const std::vector<AllocationPlan>& plans,
                                              const std::vector<absl::Status>& results,
                                              uint64_t epoch) ABSL_LOCKS_EXCLUDED(mu_);
  // ReadOldCluster (the copy-on-write source bytes, run by run), and a backing read
  // (zeroes past the backing node's end, or without one), awaited natively.
  aio::Task<absl::Status> CoReadOldCluster(uint64_t gc, uint64_t entry, uint64_t bitmap,
                                           uint64_t in_cluster, uint64_t len,
                                           const IoVector& out) ABSL_LOCKS_EXCLUDED(mu_);
  aio::Task<absl::Status> CoReadBacking(uint64_t offset, uint64_t len, const IoVector& out)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Without mu_: reads the copy-on-write head and tail and writes them with the data.
  absl::Status WriteAllocation(const AllocationPlan& plan) ABSL_LOCKS_EXCLUDED(mu_);
  // Links the clusters into L2 if `written` is OK, else frees them; ends the in-flight
  // registration either way. Returns the first error.
  absl::Status FinishAllocation(const AllocationPlan& plan, absl::Status written)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A data transfer planned under the lock and done after it is released.
  struct DataSegment {
    uint64_t host;
    uint64_t guest;
    uint64_t len;
    IoVector iov;
  };
  // Maps a write under mu_: writes into clusters the image owns become `in_place`
  // segments, the rest allocation `plans` (PlanAllocation: host clusters taken, registered
  // in flight). The caller has waited for (or checked against) overlapping in-flight
  // allocations. On failure every plan made is given back (FinishAllocation with the
  // error) and both lists are empty. In cached-only mode, NotCached() where a table or
  // an allocation needs I/O.
  absl::Status PlanWrite(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                         std::vector<DataSegment>* in_place, std::vector<AllocationPlan>* plans)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The in-place write at `pos` (at most `bytes` of `data`) into the cluster run whose
  // first L2 entry `entry` is normal with COPIED set: checked against metadata.
  absl::StatusOr<DataSegment> PlanInPlace(uint64_t pos, uint64_t bytes, uint64_t entry,
                                          const IoVector& data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bytes from `pos` (at most `bytes`) writable in place: clusters with COPIED set and
  // host-contiguous with the first (whose L2 entry is `entry`).
  absl::StatusOr<uint64_t> WritableRunBytes(uint64_t pos, uint64_t bytes, uint64_t entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Called at each ordering flush (refcount blocks written and synced before L2 tables):
  // if such flushes keep coming every few allocations, refills the refcount pool
  // (Qcow2Refcounts::FillPool) so that the allocations after it need no ordering flush.
  absl::Status GrowRefcountPoolIfFlushingOften() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the next GrowRefcountPoolIfFlushingOften would fill the pool (allocate).
  bool RefcountPoolFillDue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The pool size that fill would aim for.
  uint64_t NextRefcountPoolTarget() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // With lazy refcounts: sets the dirty bit on disk (once) before the first L2 update
  // that links new clusters. Otherwise nothing.
  absl::Status MarkDirtyForLazyRefcounts() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // qcow2_compressed_write.cc: a kReqWriteCompressed write: whole clusters (the image's
  // last may be partial), each stored compressed in bytes packed after the previous
  // compressed cluster, or as a normal cluster if it does not compress. Clusters that
  // already have a host offset are refused with EIO (QEMU's rule).
  absl::Status PwriteCompressed(uint64_t offset, uint64_t bytes, const IoVector& qiov)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status WriteCompressedCluster(uint64_t gc, const std::vector<uint8_t>& data)
      ABSL_LOCKS_EXCLUDED(mu_);
  // qcow2_preallocate.cc: gives every unallocated guest cluster in [first_gc, end_gc) a
  // host cluster reading as zeroes (see there for `mode` and the ordering); `guest_end`
  // is the disk's new size.
  absl::Status Preallocate(uint64_t first_gc, uint64_t end_gc, PreallocMode mode,
                           uint64_t guest_end)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Write-zeroes of [offset, offset + bytes), which lies inside one cluster and does not
  // cover it: true when done without a data cluster (the cluster already reads as
  // zeroes, or it is unallocated and the rest of it reads as zeroes: it becomes a zero
  // cluster; with kReqMayUnmap a zero cluster keeping a host cluster gives it back), false
  // when the caller must write a zero buffer. Takes mu_.
  absl::StatusOr<bool> ZeroPartialCluster(uint64_t offset, uint64_t bytes, uint32_t flags);
  absl::Status ZeroClusters(uint64_t first_gc, uint64_t count, bool unmap)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pdiscard's work (mu_ held, no allocation in flight over the range): whole clusters
  // in [offset, offset + bytes) read as zeroes (the zero flag) or, in version 2, become
  // unallocated; their clusters are freed; L2 tables are allocated on the way (QEMU's).
  absl::Status DiscardClusters(uint64_t offset, uint64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Cached-only mode: OK if every L2 table of guest clusters [first_gc, last_gc] is one
  // the image owns and is cached, so that ZeroClusters and DiscardClusters do no I/O;
  // otherwise NotCached() with miss_ naming the table to load or make.
  absl::Status CheckL2TablesCached(uint64_t first_gc, uint64_t last_gc)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True if FlushMetadata would write nothing: no dirty table, no frees waiting.
  bool MetadataClean() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- Persistent dirty bitmaps (qcow2_bitmaps.cc) ---
  // One bitmap: its directory entry as last written (or to be written), and its bits;
  // no bits: inconsistent (found in use at open, or not loaded for a metadata-only
  // open), kept on disk unchanged.
  struct PersistentBitmap {
    BitmapDirectoryEntry entry;
    std::unique_ptr<DirtyBitmap> bits;
    bool enabled = false;
    bool on_disk = false;  // in the directory now (false: added since, stored at close)
  };
  // At open, after the refcounts: reads the directory (and, if `load_data`, every
  // consistent bitmap's bits); a writable open then marks them in use on disk. Fails
  // the open for a malformed extension, directory or table, with QEMU's message.
  absl::Status LoadBitmaps(bool load_data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<uint64_t>> ReadBitmapTable(const BitmapDirectoryEntry& e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::unique_ptr<DirtyBitmap>> ReadBitmapData(const BitmapDirectoryEntry& e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads file bytes, zeroes past the file's end (as QEMU's reads of the file see them).
  absl::Status ReadZeroPadded(uint64_t offset, uint64_t bytes, uint8_t* out);
  // Recomputes tracking_ from the list.
  void UpdateTracking() ABSL_EXCLUSIVE_LOCKS_REQUIRED(bitmaps_mu_);
  // Marks [offset, offset + bytes) in every enabled bitmap. Any thread, any lock state
  // except bitmaps_mu_ held; cheap when nothing tracks.
  void MarkBitmapsDirty(uint64_t offset, uint64_t bytes) ABSL_LOCKS_EXCLUDED(bitmaps_mu_);
  // The disk was resized: the bitmaps follow (new granules clean, as QEMU).
  void ResizeBitmaps(uint64_t size) ABSL_LOCKS_EXCLUDED(bitmaps_mu_);
  // Frees bitmap clusters nothing references any more, and discards them in the file.
  absl::Status FreeBitmapMetadata(uint64_t offset, uint64_t count)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A stored bitmap's directory entry and its table as read from disk.
  struct BitmapTable {
    BitmapDirectoryEntry entry;
    std::vector<uint64_t> entries;
  };
  // Reads the tables of `entries` (a table that does not read as one is left out: its
  // clusters leak rather than risk freeing another structure's). Every table is read
  // before any cluster is freed: freed clusters are discarded, and in a damaged image
  // one bitmap's data cluster may be another's table, or the old directory.
  std::vector<BitmapTable> ReadBitmapTables(const std::vector<BitmapDirectoryEntry>& entries)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees those bitmaps' data clusters and tables (nothing references them any more).
  absl::Status FreeBitmapClusters(const std::vector<BitmapTable>& tables)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `entries` as a new directory in new clusters (made stable with the refcounts
  // counting everything it names), switches the header to it in one write, then frees the
  // old directory. No entries: the extension and the autoclear bit go.
  absl::Status WriteBitmapDirectory(const std::vector<BitmapDirectoryEntry>& entries)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Clean close: stores every consistent bitmap (not in use), see qcow2_bitmaps.cc.
  absl::Status StoreBitmaps() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Check: the host ranges the bitmaps reference, and the corruptions found.
  struct BitmapReferences {
    std::vector<std::pair<uint64_t, uint64_t>> ranges;  // offset, bytes
    int64_t corruptions = 0;
  };
  absl::StatusOr<BitmapReferences> CollectBitmapReferences() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  PersistentBitmap* FindBitmap(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(bitmaps_mu_);
  absl::Mutex bitmaps_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::vector<PersistentBitmap> bitmaps_ ABSL_GUARDED_BY(bitmaps_mu_);
  std::atomic<bool> tracking_{false};  // some consistent bitmap is enabled
  BitmapsExtension bitmaps_ext_ ABSL_GUARDED_BY(mu_);  // nb_bitmaps 0: none on disk

  BdrvChild* const file_;
  // This instance's own node (set at Open; the instance never outlives it): for messages
  // that name it.
  const BlockDriverState* node_ = nullptr;
  // The encryption of data clusters; null for an unencrypted image. Set at open (or by
  // SetUpEncryption on a new image) before any request.
  std::unique_ptr<Qcow2Crypto> crypto_;
  // Where guest data lives: file_, or the external data file (incompatible bit 2). With
  // an external data file every data cluster sits at its guest offset, is not
  // refcounted (the image's refcounts cover its metadata only) and is never shared
  // (snapshots and compression are refused), so offset 0 is a valid host offset there:
  // COPIED tells an allocated cluster from an unallocated one (QEMU's rule).
  BdrvChild* data_file_;
  bool external_data_ = false;
  // data_file_raw (autoclear bit 1): the data file stays a valid raw image of the guest
  // disk: every cluster is allocated at its guest offset and zeroes are written to it.
  bool data_file_raw_ = false;
  BdrvChild* backing_ = nullptr;
  const bool read_only_;
  const uint32_t cluster_bits_;
  const uint64_t cluster_size_;
  const bool extended_l2_;
  const uint32_t l2_entry_bytes_;  // 8, or 16 with extended L2 entries
  const uint64_t l2_entries_;
  // The unit of allocation state: the subcluster (cluster / 32) with extended L2
  // entries, else the cluster itself.
  const uint32_t subcluster_bits_;
  const uint64_t subcluster_size_;
  uint32_t version_;  // changes only in Amend, with no request in flight
  const uint8_t compression_type_;  // header_.compression_type, fixed for the image's life

  aio::CoMutex mu_;
  // header_.size, readable without mu_ (GetLength runs on every request; a loop thread
  // must not wait for mu_). Written only with mu_ held, by PublishSizeOnExit.
  std::atomic<uint64_t> size_{0};
  // Declared right after the MutexLock of every entry point that may change header_.size:
  // on scope exit, with mu_ still held, publishes it to size_.
  class PublishSizeOnExit {
   public:
    explicit PublishSizeOnExit(Qcow2Instance* q) : q_(q) {}
    ~PublishSizeOnExit() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      q_->size_.store(q_->header_.size, std::memory_order_release);
    }

   private:
    Qcow2Instance* q_;
  };
  bool cached_only_ ABSL_GUARDED_BY(mu_) = false;
  // What a cached-only mapping last found missing, if it is a step the coroutine path can
  // run once on the pool and then retry (CoMapNatively): an L2 table to load (its
  // offset), an L2 table to create or copy (its L1 index), the reserved tail to extend
  // (the file end needed).
  struct CachedOnlyMiss {
    // kAllocationInFlight: another request is allocating guest clusters [value, last];
    // the coroutine parks until it has finished (ParkForAllocation), then maps again.
    enum class Kind { kNone, kLoadL2, kCreateL2, kExtendTail, kAllocationInFlight };
    Kind kind = Kind::kNone;
    uint64_t value = 0;
    uint64_t last = 0;
    // The key loading_tables_ knows the step by. L2 table offsets are multiples of the
    // cluster size, so the odd keys of the other steps never clash with them.
    uint64_t key() const {
      switch (kind) {
        case Kind::kCreateL2: return (value << 2) | 3;
        case Kind::kExtendTail: return 1;
        default: return value;
      }
    }
  };
  CachedOnlyMiss miss_ ABSL_GUARDED_BY(mu_);
  // The steps the coroutine path is running (by CachedOnlyMiss::key()), with the
  // coroutines parked on each.
  std::map<uint64_t, std::vector<TableWaiter>> loading_tables_ ABSL_GUARDED_BY(mu_);
  Qcow2Header header_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> l1_ ABSL_GUARDED_BY(mu_);
  bool l1_dirty_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<Qcow2TableCache> l2_cache_;
  std::unique_ptr<Qcow2Refcounts> refcounts_;
  // The file's tail extended ahead of allocations (writable images only).
  std::unique_ptr<FileTailReservation> tail_reserve_;
  // Clusters to free once the L2 change that dropped them is on disk; `discard`: then
  // also discard them in the file (QEMU's pass-discard-request/-snapshot/-other).
  struct PendingFree {
    uint64_t offset, count;
    bool discard = false;
  };
  std::vector<PendingFree> pending_frees_ ABSL_GUARDED_BY(mu_);
  // Some pending free came from a guest discard or write-zeroes with unmap (the next
  // allocation makes the frees stable first, to reuse those clusters as QEMU does).
  bool guest_frees_pending_ ABSL_GUARDED_BY(mu_) = false;
  // Which frees are passed down as discards (QEMU's options and defaults).
  bool pass_discard_request_ = true;
  bool pass_discard_snapshot_ = true;
  bool pass_discard_other_ = false;
  // Transfers in flight by epoch (see BeginTransfer), and the frees waiting for them.
  // Begin, Advance and OldestInFlight under mu_; End anywhere.
  TransferEpochs transfers_;
  struct StableFree {
    uint64_t epoch, offset, count;
    bool discard;
  };
  std::vector<StableFree> stable_frees_ ABSL_GUARDED_BY(mu_);
  std::vector<InflightAllocation> inflight_allocs_ ABSL_GUARDED_BY(mu_);
  // Coroutines parked until no in-flight allocation overlaps their guest clusters
  // [first_gc, last_gc]; FinishAllocation posts those its allocation overlapped.
  struct AllocationWaiter {
    uint64_t first_gc, last_gc;
    TableWaiter waiter;
  };
  std::vector<AllocationWaiter> allocation_waiters_ ABSL_GUARDED_BY(mu_);
  // Cached-only mode: OK unless an allocation overlapping [first_gc, last_gc] is in
  // flight; then notes the miss (the coroutine path parks for it) and returns NotCached().
  absl::Status NotCachedIfAllocationInFlight(uint64_t first_gc, uint64_t last_gc)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Posts the parked coroutines whose clusters overlap [first_gc, last_gc] (they map
  // again; one whose clusters are still in flight parks again).
  void WakeAllocationWaiters(uint64_t first_gc, uint64_t last_gc)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool closed_ = false;
  // Whether the image looks like preallocation=metadata (checked once, under mu_): its
  // data clusters may be holes of the file, so block status asks the file about zeroes.
  bool MetadataPreallocated() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool metadata_preallocation_checked_ ABSL_GUARDED_BY(mu_) = false;
  bool metadata_preallocated_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status unusable_ ABSL_GUARDED_BY(mu_);
  bool corruption_signaled_ ABSL_GUARDED_BY(mu_) = false;
  // A check in this open repaired every refcount (no leak or corruption left), and every
  // change since kept them exact: a cluster's refcount is the number of structures
  // naming it, so a structure dropping its reference may decrement even a cluster that
  // other metadata shares (FreeBitmapClusters).
  bool refcounts_verified_ ABSL_GUARDED_BY(mu_) = false;
  // Bumped whenever an L1 entry's table offset or the L1 table itself may change.
  uint64_t l1_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  MetadataOverlapIndex overlap_index_ ABSL_GUARDED_BY(mu_);
  bool overlap_index_built_ ABSL_GUARDED_BY(mu_) = false;
  // Overlap kinds not checked (the overlap-check option: none, constant, cached/all).
  uint32_t overlap_ignore_ = 0;
  // What the index was built from (epochs, table offsets and sizes).
  std::array<uint64_t, 12> overlap_key_ ABSL_GUARDED_BY(mu_) = {};
  std::vector<Qcow2Snapshot> snapshots_ ABSL_GUARDED_BY(mu_);
  // Lazy refcounts in effect (header bit, or the lazy-refcounts option).
  bool lazy_refcounts_ = false;
  CacheSizes cache_sizes_;
  // The refcount pool's heuristic (GrowRefcountPoolIfFlushingOften).
  uint64_t allocations_since_ordering_flush_ ABSL_GUARDED_BY(mu_) = 0;
  // An L2 entry changed since the last flush of the data's file now points at data
  // written since then: the data must be stable before that L2 table is written
  // (FlushDataBeforeL2). Allocations that take new clusters get this from the refcount
  // ordering flush; reused host clusters (preallocated, zero-allocated) and external
  // data files change no refcount, so they need it on their own.
  bool l2_awaits_data_flush_ ABSL_GUARDED_BY(mu_) = false;
  // Flushes the data's file if an L2 change waits for it (see above). `file_flushed`:
  // file_ was just flushed (enough unless the data lives in an external data file).
  absl::Status FlushDataBeforeL2(bool file_flushed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  aio::Task<absl::Status> CoFlushDataBeforeL2(bool file_flushed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int flushing_often_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t pool_target_ ABSL_GUARDED_BY(mu_) = 0;
  // One past the last compressed byte written since open (the file may end there).
  uint64_t compressed_end_ ABSL_GUARDED_BY(mu_) = 0;
  // One past the highest byte written where the refcounts may not account for it (data
  // written in place, L2 table write-backs: hostile tables can point past every counted
  // cluster; data clusters freed again before close). The tail trim never cuts below it,
  // so no write reported done is cut off, and the file keeps QEMU's length.
  std::atomic<uint64_t> uncounted_write_end_{0};
  void NoteUncountedWrite(uint64_t end) {
    uint64_t seen = uncounted_write_end_.load(std::memory_order_relaxed);
    while (end > seen && !uncounted_write_end_.compare_exchange_weak(seen, end)) {
    }
  }
  CacheCleaner::Registration cleaner_;  // reset by Close or the destructor, before the caches go
};

}  // namespace strata::qcow2

#endif  // STRATA_DRIVERS_QCOW2_QCOW2_INSTANCE_H_
