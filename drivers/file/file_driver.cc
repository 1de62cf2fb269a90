// strata: the file protocol driver (see file_driver.h).
#include "drivers/file/file_driver.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "strata/options.h"
#include "aio/file_op.h"
#include "aio/offload.h"
#include "aio/run_sync.h"
#include "block/node.h"
#include "block/registry.h"
#include "block/status.h"
#include "drivers/file/image_lock.h"
#include "drivers/file/known_data_run.h"

namespace strata {
namespace {

// Closes a descriptor on destruction.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::Status PrefixedErrno(absl::string_view what, int err) {
  return ErrnoError(err, absl::StrCat(what, ": ", StrError(err)));
}

// Writes `len` zero bytes at `offset` with ordinary writes (preallocation=full).
absl::Status WriteZeroBytes(int fd, uint64_t offset, uint64_t len) {
  AlignedBuffer zeroes(std::min<uint64_t>(len, 1 << 20));
  while (len > 0) {
    size_t n = std::min<uint64_t>(len, zeroes.size());
    ssize_t r = ::pwrite(fd, zeroes.data(), n, offset);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno);
    }
    offset += r;
    len -= r;
  }
  return absl::OkStatus();
}

absl::Status ResizeFd(int fd, uint64_t old_len, uint64_t length, PreallocMode prealloc) {
  if (length > old_len && prealloc == PreallocMode::kFalloc) {
    int r = posix_fallocate(fd, old_len, length - old_len);
    if (r != 0) return PrefixedErrno("Could not preallocate new data", r);
    return absl::OkStatus();
  }
  if (length > old_len && prealloc == PreallocMode::kFull) {
    if (::ftruncate(fd, length) != 0) return PrefixedErrno("Could not resize file", errno);
    return WriteZeroBytes(fd, old_len, length - old_len);
  }
  if (::ftruncate(fd, length) != 0) return PrefixedErrno("Could not resize file", errno);
  return absl::OkStatus();
}

// One open file. All methods are thread-safe: they only use positional syscalls on fd_.
class FileInstance : public DriverInstance {
 public:
  FileInstance(UniqueFd fd, std::string filename, bool direct, bool is_block_device,
               uint32_t alignment)
      : fd_(std::move(fd)),
        filename_(std::move(filename)),
        direct_(direct),
        is_block_device_(is_block_device),
        alignment_(alignment),
        inline_policy_(aio::InlinePolicyFor(fd_.get(), direct)) {}

  ~FileInstance() override { ReleaseImageLocks(fd_.get()); }

  uint32_t request_alignment() const override { return alignment_; }

  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                      uint32_t flags) override {
    if (direct_ && !qiov.IsAligned(alignment_, alignment_)) {
      AlignedBuffer bounce(bytes, std::max<uint32_t>(alignment_, 4096),
                           AlignedBuffer::kUninitialized);
      STRATA_RETURN_IF_ERROR(ReadFully(offset, bounce.AsIoVector()));
      qiov.CopyFrom(0, bounce.data(), bytes);
      return absl::OkStatus();
    }
    return ReadFully(offset, qiov);
  }

  absl::Status Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                       uint32_t flags) override {
    if (direct_ && !qiov.IsAligned(alignment_, alignment_)) {
      AlignedBuffer bounce(bytes, std::max<uint32_t>(alignment_, 4096),
                           AlignedBuffer::kUninitialized);
      qiov.CopyTo(0, bounce.data(), bytes);
      STRATA_RETURN_IF_ERROR(WriteFully(offset, bounce.AsIoVector()));
    } else if (!direct_ && !is_block_device_) {
      // Buffered writes to a regular file serialise on the inode lock in the kernel
      // anyway; taking turns here lets waiting threads sleep instead of spinning on it
      // (with more writer threads than cores the spinning costs more than the writes).
      absl::MutexLock lock(&buffered_write_mu_);
      STRATA_RETURN_IF_ERROR(WriteFully(offset, qiov));
    } else {
      STRATA_RETURN_IF_ERROR(WriteFully(offset, qiov));
    }
    if (flags & kReqFua) return FlushToDisk();
    return absl::OkStatus();
  }

  // The coroutine path: the same transfers as aio file operations (io_uring or the
  // blocking pool when a loop is current, inline syscalls otherwise).
  aio::Task<absl::Status> CoPreadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                   uint32_t flags) override {
    if (direct_ && !qiov.IsAligned(alignment_, alignment_)) {
      AlignedBuffer bounce(bytes, std::max<uint32_t>(alignment_, 4096),
                           AlignedBuffer::kUninitialized);
      STRATA_CO_RETURN_IF_ERROR(co_await CoTransferFully(false, offset, bounce.AsIoVector()));
      qiov.CopyFrom(0, bounce.data(), bytes);
      co_return absl::OkStatus();
    }
    co_return co_await CoTransferFully(false, offset, qiov);
  }

  aio::Task<absl::Status> CoPwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                    uint32_t flags) override {
    if (direct_ && !qiov.IsAligned(alignment_, alignment_)) {
      AlignedBuffer bounce(bytes, std::max<uint32_t>(alignment_, 4096),
                           AlignedBuffer::kUninitialized);
      qiov.CopyTo(0, bounce.data(), bytes);
      absl::Status s = co_await CoTransferFully(true, offset, bounce.AsIoVector());
      NoteWrite(offset + bytes, s.ok());
      STRATA_CO_RETURN_IF_ERROR(s);
    } else {
      absl::Status s = co_await CoTransferFully(true, offset, qiov);
      NoteWrite(offset + bytes, s.ok());
      STRATA_CO_RETURN_IF_ERROR(s);
    }
    if (flags & kReqFua) co_return co_await CoFlushToDisk();
    co_return absl::OkStatus();
  }

  aio::Task<absl::Status> CoFlushToDisk() override {
    int64_t r = co_await aio::Fdatasync(fd_.get());
    if (r < 0) co_return ErrnoError(static_cast<int>(-r));
    co_return absl::OkStatus();
  }

  // Zero writes and discards are fallocate calls (aio::Fallocate: through the ring on a
  // loop, inline otherwise), the same calls on both paths; block devices' BLKDISCARD is
  // an ioctl, offloaded on the coroutine path.
  absl::Status PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override {
    return aio::RunSync(CoPwriteZeroes(offset, bytes, flags));
  }
  aio::Task<absl::Status> CoPwriteZeroes(uint64_t offset, uint64_t bytes,
                                         uint32_t flags) override {
    if (is_block_device_) co_return ErrnoError(ENOTSUP);
    data_run_.Forget();  // it may punch a hole
    absl::Status s = co_await CoZeroRange(offset, bytes, flags);
    ForgetLength();  // a zeroing fallocate past the end extends the file
    // fallocate has no FUA of its own: the range is stable once the file is synced.
    if (s.ok() && (flags & kReqFua)) co_return co_await CoFlushToDisk();
    co_return s;
  }

  aio::Task<absl::Status> CoZeroRange(uint64_t offset, uint64_t bytes, uint32_t flags) {
    if (flags & kReqMayUnmap) {
      // Punching a hole inside the file reads back as zeroes; past EOF it would not grow.
      struct stat st;
      if (::fstat(fd_.get(), &st) == 0 && offset + bytes <= static_cast<uint64_t>(st.st_size) &&
          co_await aio::Fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset,
                                  bytes) == 0) {
        co_return absl::OkStatus();
      }
    }
    const int64_t r = co_await aio::Fallocate(fd_.get(), FALLOC_FL_ZERO_RANGE, offset, bytes);
    if (r == 0) co_return absl::OkStatus();
    const int err = static_cast<int>(-r);
    if (err == EOPNOTSUPP || err == ENOSYS || err == EINVAL) co_return ErrnoError(ENOTSUP);
    co_return ErrnoError(err);
  }

  absl::Status Pdiscard(uint64_t offset, uint64_t bytes) override {
    if (is_block_device_) {
      data_run_.Forget();
      uint64_t range[2] = {offset, bytes};
      if (::ioctl(fd_.get(), BLKDISCARD, range) == 0) return absl::OkStatus();
      return ErrnoError(errno == EOPNOTSUPP ? ENOTSUP : errno);
    }
    return aio::RunSync(CoPdiscard(offset, bytes));
  }
  aio::Task<absl::Status> CoPdiscard(uint64_t offset, uint64_t bytes) override {
    if (is_block_device_) co_return co_await aio::Offload([&] { return Pdiscard(offset, bytes); });
    data_run_.Forget();
    const int64_t r = co_await aio::Fallocate(
        fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, bytes);
    if (r == 0) co_return absl::OkStatus();
    co_return ErrnoError(r == -EOPNOTSUPP ? ENOTSUP : static_cast<int>(-r));
  }

  // No cache of its own to write back.
  aio::Task<absl::Status> CoFlushToOs() override { co_return absl::OkStatus(); }

  absl::Status FlushToDisk() override {
    if (::fdatasync(fd_.get()) != 0) return ErrnoError(errno);
    return absl::OkStatus();
  }

  absl::Status Truncate(uint64_t length, bool exact, PreallocMode prealloc) override {
    STRATA_ASSIGN_OR_RETURN(uint64_t old_len, GetLength());
    if (is_block_device_) {
      if (length > old_len) {
        return ErrnoError(EINVAL, "Cannot grow device files");
      }
      return absl::OkStatus();
    }
    // Regular files take the exact length either way (QEMU: `exact` only matters for
    // devices, which cannot change size).
    data_run_.Forget();
    absl::Status s = ResizeFd(fd_.get(), old_len, length, prealloc);
    ForgetLength();
    return s;
  }

  // The length is asked for on every request (the backend's bounds check), so it is
  // cached: grown by our own writes past the end, forgotten after anything else that may
  // change it (truncate, write-zeroes, a failed write). As in QEMU, a change made by
  // another process is not seen until then. The slow path and every change hold
  // length_mu_, so a length read before a write extended the file is corrected by that
  // write's NoteWrite, which waits for it.
  absl::StatusOr<uint64_t> GetLength() override {
    const int64_t fast = fast_length_.load(std::memory_order_acquire);
    if (fast >= 0) return static_cast<uint64_t>(fast);
    absl::MutexLock lock(&length_mu_);
    if (cached_length_ >= 0) return static_cast<uint64_t>(cached_length_);
    uint64_t length;
    if (is_block_device_) {
      off_t end = ::lseek(fd_.get(), 0, SEEK_END);
      if (end < 0) return ErrnoError(errno);
      length = static_cast<uint64_t>(end);
    } else {
      struct stat st;
      if (::fstat(fd_.get(), &st) != 0) return ErrnoError(errno);
      length = static_cast<uint64_t>(st.st_size);
    }
    cached_length_ = static_cast<int64_t>(length);
    fast_length_.store(cached_length_, std::memory_order_release);
    return length;
  }

  absl::StatusOr<BlockStatus> GetBlockStatus(uint64_t offset, uint64_t bytes) override {
    BlockStatus s = ProtocolDataStatus(node_, offset, bytes);
    if (is_block_device_) return s;
    if (const uint64_t end = data_run_.EndIfData(offset)) {
      s.bytes = std::min<uint64_t>(bytes, end - offset);
      return s;
    }
    off_t data = ::lseek(fd_.get(), offset, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) {  // No data from here to EOF: a trailing hole.
        s.data = false;
        s.zero = true;
      }
      return s;  // Other errors (EINVAL: unsupported): report data, as QEMU does.
    }
    if (static_cast<uint64_t>(data) > offset) {
      s.data = false;
      s.zero = true;
      s.bytes = std::min<uint64_t>(bytes, data - offset);
      return s;
    }
    off_t hole = ::lseek(fd_.get(), offset, SEEK_HOLE);
    if (hole > static_cast<off_t>(offset)) {
      s.bytes = std::min<uint64_t>(bytes, hole - offset);
      data_run_.Remember(offset, static_cast<uint64_t>(hole));
    }
    return s;
  }

  absl::StatusOr<uint64_t> AllocatedFileSize() override {
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0) return ErrnoError(errno);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  }

  void set_node(BlockDriverState* node) { node_ = node; }

 private:
  // Reads all of qiov; bytes past EOF read as zeroes (QEMU file-posix semantics).
  absl::Status ReadFully(uint64_t offset, const IoVector& qiov) {
    uint64_t done = 0;
    while (done < qiov.size()) {
      IoVector rest = qiov.Slice(done, qiov.size() - done);
      int cnt = std::min<size_t>(rest.iovecs().size(), IOV_MAX);
      ssize_t r = ::preadv(fd_.get(), rest.iovecs().data(), cnt, offset + done);
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoError(errno);
      }
      if (r == 0) {
        qiov.Memset(done, 0, qiov.size() - done);
        return absl::OkStatus();
      }
      done += r;
    }
    return absl::OkStatus();
  }

  // ReadFully / WriteFully as coroutines: short transfers continue where they stopped;
  // reads past EOF give zeroes, writes that make no progress fail with ENOSPC.
  aio::Task<absl::Status> CoTransferFully(bool write, uint64_t offset, const IoVector& qiov) {
    uint64_t done = 0;
    while (done < qiov.size()) {
      const IoVector rest = done == 0 ? IoVector() : qiov.Slice(done, qiov.size() - done);
      const IoVector& part = done == 0 ? qiov : rest;
      const int cnt = static_cast<int>(std::min<size_t>(part.iovecs().size(), IOV_MAX));
      int64_t r = write ? co_await aio::Pwritev(fd_.get(), part.iovecs().data(), cnt,
                                                offset + done, inline_policy_)
                        : co_await aio::Preadv(fd_.get(), part.iovecs().data(), cnt,
                                               offset + done, inline_policy_);
      if (r < 0) {
        if (r == -EINTR || r == -EAGAIN) continue;
        co_return ErrnoError(static_cast<int>(-r));
      }
      if (r == 0) {
        if (write) co_return ErrnoError(ENOSPC);
        qiov.Memset(done, 0, qiov.size() - done);
        co_return absl::OkStatus();
      }
      done += r;
    }
    co_return absl::OkStatus();
  }

  absl::Status WriteFully(uint64_t offset, const IoVector& qiov) {
    absl::Status s = WriteFullyUncounted(offset, qiov);
    NoteWrite(offset + qiov.size(), s.ok());
    return s;
  }

  absl::Status WriteFullyUncounted(uint64_t offset, const IoVector& qiov) {
    uint64_t done = 0;
    while (done < qiov.size()) {
      IoVector rest = qiov.Slice(done, qiov.size() - done);
      int cnt = std::min<size_t>(rest.iovecs().size(), IOV_MAX);
      ssize_t r = ::pwritev(fd_.get(), rest.iovecs().data(), cnt, offset + done);
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoError(errno);
      }
      if (r == 0) return ErrnoError(ENOSPC);
      done += r;
    }
    return absl::OkStatus();
  }

  UniqueFd fd_;
  absl::Mutex buffered_write_mu_;
  const std::string filename_;
  const bool direct_;
  const bool is_block_device_;
  const uint32_t alignment_;
  // Whether the loop may transfer inline (page-cache hits, tmpfs): see aio/file_op.h.
  const aio::InlinePolicy inline_policy_;
  // GetLength's cache (-1: unknown), and its lock-free mirror.
  absl::Mutex length_mu_;
  int64_t cached_length_ ABSL_GUARDED_BY(length_mu_) = -1;
  std::atomic<int64_t> fast_length_{-1};
  // After a write that ended at `end`: the file is at least that long (or, if the write
  // failed, of unknown length). Writes inside the cached length change nothing.
  void NoteWrite(uint64_t end, bool ok) {
    const int64_t fast = fast_length_.load(std::memory_order_acquire);
    if (ok && fast >= 0 && static_cast<int64_t>(end) <= fast) return;
    absl::MutexLock lock(&length_mu_);
    if (!ok) {
      cached_length_ = -1;
    } else if (cached_length_ >= 0 && static_cast<int64_t>(end) > cached_length_) {
      cached_length_ = static_cast<int64_t>(end);
    }
    fast_length_.store(cached_length_, std::memory_order_release);
  }
  // After an operation that may have changed the length in any way.
  void ForgetLength() {
    absl::MutexLock lock(&length_mu_);
    cached_length_ = -1;
    fast_length_.store(-1, std::memory_order_release);
  }
  BlockDriverState* node_ = nullptr;
  KnownDataRun data_run_;
};

// The smallest alignment O_DIRECT reads accept on `fd` (512 or 4096).
uint32_t ProbeDirectAlignment(int fd) {
  AlignedBuffer buf(4096, 4096);
  for (uint32_t align : {512u, 4096u}) {
    ssize_t r = ::pread(fd, buf.data(), align, 0);
    if (r >= 0) return align;
    if (errno != EINVAL) return align;
  }
  return 4096;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DriverInstance>> FileDriver::Open(OpenContext& ctx) const {
  const proto::FileOptions& opts =
      ctx.options().has_host_device() ? ctx.options().host_device() : ctx.options().file();
  const std::string& filename = opts.filename();
  if (filename.empty()) return ErrnoError(EINVAL, "Parameter 'filename' is missing");
  const std::string& locking_value = opts.locking();
  if (!locking_value.empty() && locking_value != "on" && locking_value != "off" &&
      locking_value != "auto") {
    return ErrnoError(EINVAL, absl::StrCat("invalid parameter value: ", locking_value));
  }
  const OpenFlags& flags = ctx.flags();
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  int oflags = (flags.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK;
  if (flags.cache.direct) oflags |= O_DIRECT;
  UniqueFd fd(::open(filename.c_str(), oflags));
  if (fd.get() < 0) {
    int err = errno;
    if (err == EINVAL && flags.cache.direct) {
      return ErrnoError(EINVAL, absl::StrCat("Could not open '", filename,
                                             "': filesystem does not support O_DIRECT"));
    }
    return PrefixedErrno(absl::StrCat("Could not open '", filename, "'"), err);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno);
  const std::string& aio_mode = opts.aio().empty() ? flags.aio : opts.aio();
  if (!aio_mode.empty() && aio_mode != "threads" && aio_mode != "native" &&
      aio_mode != "io_uring") {
    return ErrnoError(EINVAL, absl::StrCat("invalid parameter value: ", aio_mode));
  }
  if (aio_mode == "native" && !flags.cache.direct) {
    return ErrnoError(EINVAL, "aio=native was specified, but it requires cache.direct=on, "
                              "which was not specified.");
  }
  bool is_block_device = S_ISBLK(st.st_mode);
  const bool host_device = ctx.options().has_host_device();
  if (!host_device && !S_ISREG(st.st_mode) && !is_block_device) {
    return ErrnoError(EINVAL, absl::StrCat("'file' driver requires '", filename,
                                           "' to be a regular file"));
  }
  if (host_device && !is_block_device && !S_ISCHR(st.st_mode)) {
    return ErrnoError(EINVAL, absl::StrCat("'host_device' driver requires '", filename,
                                           "' to be either a character or block device"));
  }
  if (::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK) != 0) {
    return ErrnoError(errno);
  }
  bool locking = opts.locking() != "off";
  if (locking) {
    PermissionSet perms = ctx.permissions();
    if (flags.force_share) perms.shared = kPermAll;
    STRATA_RETURN_IF_ERROR(ApplyImageLocks(fd.get(), perms, filename));
  }
  uint32_t alignment = flags.cache.direct ? ProbeDirectAlignment(fd.get()) : 1;
  auto instance = std::make_unique<FileInstance>(std::move(fd), filename, flags.cache.direct,
                                                 is_block_device, alignment);
  instance->set_node(&ctx.node());
  return instance;
}

std::vector<CreateOptionSpec> FileDriver::create_options() const {
  return {{"size", "size", "Virtual disk size", ""},
          {"nocow", "bool", "Turn off copy-on-write (valid only on btrfs)", ""},
          {"preallocation", "str", "Preallocation mode (allowed values: off, falloc, full)",
           ""},
          {"extent_size_hint", "size", "Extent size hint for the image file, 0 to disable",
           ""}};
}

namespace {

// Hints for the new file's layout; a file system without them ignores them, as QEMU
// does: FS_NOCOW_FL (btrfs) and an extent size hint (XFS; QEMU's default is 1 MiB).
void ApplyLayoutHints(int fd, bool nocow, uint64_t extent_size_hint) {
  if (nocow) {
    int flags = 0;
    if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
      flags |= FS_NOCOW_FL;
      (void)::ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
  }
  if (extent_size_hint > 0) {
    struct fsxattr attr = {};
    if (::ioctl(fd, FS_IOC_FSGETXATTR, &attr) == 0) {
      attr.fsx_xflags |= FS_XFLAG_EXTSIZE;
      attr.fsx_extsize = static_cast<uint32_t>(extent_size_hint);
      (void)::ioctl(fd, FS_IOC_FSSETXATTR, &attr);
    }
  }
}

}  // namespace

absl::Status FileDriver::Create(const CreateRequest& request) const {
  PreallocMode prealloc = PreallocMode::kOff;
  if (auto it = request.options.find("preallocation"); it != request.options.end()) {
    if (it->second == "off") prealloc = PreallocMode::kOff;
    else if (it->second == "falloc") prealloc = PreallocMode::kFalloc;
    else if (it->second == "full") prealloc = PreallocMode::kFull;
    else return ErrnoError(EINVAL, absl::StrCat("invalid parameter value: ", it->second));
  }
  bool nocow = false;
  if (auto it = request.options.find("nocow"); it != request.options.end()) {
    const std::string& v = it->second;
    nocow = v == "on" || v == "yes" || v == "true" || v == "y";
  }
  uint64_t extent_size_hint = 1 << 20;
  if (auto it = request.options.find("extent_size_hint"); it != request.options.end()) {
    STRATA_ASSIGN_OR_RETURN(extent_size_hint, ParseSize(it->second));
    if (extent_size_hint > UINT32_MAX) {
      return ErrnoError(EINVAL, "Extent size hint is too large");
    }
  }
  UniqueFd fd(::open(request.filename.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0) {
    return PrefixedErrno(absl::StrCat("Could not create '", request.filename, "'"), errno);
  }
  // QEMU refuses to truncate an image another process is using.
  STRATA_RETURN_IF_ERROR(ApplyImageLocks(
      fd.get(), PermissionSet{kPermConsistentRead | kPermWrite | kPermResize, 0},
      request.filename));
  // Whole 512-byte sectors, as QEMU makes them ("create -f raw x 1" makes 512 bytes).
  if (request.size_bytes > UINT64_MAX - 511) return ErrnoError(EFBIG, "Image size too large");
  const uint64_t size = (request.size_bytes + 511) / 512 * 512;
  absl::Status s = ResizeFd(fd.get(), 0, 0, PreallocMode::kOff);
  if (s.ok()) ApplyLayoutHints(fd.get(), nocow, extent_size_hint);
  if (s.ok()) s = ResizeFd(fd.get(), 0, size, prealloc);
  if (s.ok() && prealloc == PreallocMode::kOff && size > 0) {
    // Like QEMU, allocate the first block so that O_DIRECT alignment probing (a read at
    // offset 0) sees real data rather than a hole; it also makes `map` output match.
    s = WriteZeroBytes(fd.get(), 0, std::min<uint64_t>(size, 4096));
  }
  ReleaseImageLocks(fd.get());
  return s;
}

namespace {
// host_device shares the implementation; QEMU picks it for block devices by name.
class HostDeviceDriver : public FileDriver {
 public:
  HostDeviceDriver() : FileDriver("host_device") {}
};
}  // namespace

STRATA_REGISTER_DRIVER(FileDriver);
STRATA_REGISTER_DRIVER(HostDeviceDriver);

}  // namespace strata
