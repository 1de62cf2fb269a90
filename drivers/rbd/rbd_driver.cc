// strata: the `rbd` protocol driver (QEMU's rbd): an image in a Ceph RBD pool, through
// librbd's asynchronous C API. A request starts a librbd operation with a completion;
// librbd's own thread runs the completion callback, which resumes the waiting coroutine
// on its loop (or wakes a synchronous caller), so depth costs no thread of ours.
// Formats (raw, qcow2) sit on top as on a file.
#include <rados/librados.h>
#include <rbd/librbd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "aio/io_context.h"
#include "aio/run_sync.h"
#include "block/node.h"
#include "block/options_json.h"
#include "block/registry.h"
#include "block/secrets.h"
#include "block/status.h"
#include "drivers/rbd/rbd_spec.h"

namespace strata {
namespace {

using rbd::RbdSpec;

// A connected cluster, an I/O context on the pool and (optionally) an open image, closed
// in reverse order. librados and librbd handles are C pointers; this owns them.
class RbdConnection {
 public:
  RbdConnection() = default;
  RbdConnection(const RbdConnection&) = delete;
  RbdConnection& operator=(const RbdConnection&) = delete;
  ~RbdConnection() {
    if (image_ != nullptr) rbd_close(image_);
    if (io_ != nullptr) rados_ioctx_destroy(io_);
    if (cluster_ != nullptr) rados_shutdown(cluster_);
  }

  // Connects to the cluster `spec` names and opens its pool (QEMU's error words).
  absl::Status Connect(const RbdSpec& spec) {
    int r = rados_create(&cluster_, spec.user.empty() ? nullptr : spec.user.c_str());
    if (r < 0) {
      cluster_ = nullptr;
      return ErrnoError(-r, "error initializing");
    }
    r = rados_conf_read_file(cluster_, spec.conf.empty() ? nullptr : spec.conf.c_str());
    if (r < 0 && !spec.conf.empty()) {
      return Prefixed(absl::StrCat("error reading conf file ", spec.conf), ErrnoError(-r));
    }
    for (const auto& [key, value] : spec.settings) {
      r = rados_conf_set(cluster_, key.c_str(), value.c_str());
      if (r < 0) {
        return Prefixed(absl::StrCat("invalid conf option ", key), ErrnoError(-r));
      }
    }
    // QEMU's order: monitors and credentials from options override the conf file's.
    if (const std::string mon_host = MonHost(spec); !mon_host.empty()) {
      r = rados_conf_set(cluster_, "mon_host", mon_host.c_str());
      if (r < 0) return Prefixed("invalid conf option mon_host", ErrnoError(-r));
    }
    if (!spec.key_secret.empty()) {
      absl::StatusOr<std::string> key = LookupSecretAsBase64(spec.key_secret);
      if (!key.ok()) return ErrnoError(EIO, std::string(key.status().message()));
      r = rados_conf_set(cluster_, "key", key->c_str());
      if (r < 0) return Prefixed("Could not set 'key'", ErrnoError(-r));
    }
    if (!spec.auth_client_required.empty()) {
      const std::string modes = absl::StrJoin(spec.auth_client_required, ";");
      r = rados_conf_set(cluster_, "auth_client_required", modes.c_str());
      if (r < 0) return Prefixed("Could not set 'auth_client_required'", ErrnoError(-r));
    }
    r = rados_connect(cluster_);
    if (r < 0) return Prefixed("error connecting", ErrnoError(-r));
    r = rados_ioctx_create(cluster_, spec.pool.c_str(), &io_);
    if (r < 0) {
      io_ = nullptr;
      return Prefixed(absl::StrCat("error opening pool ", spec.pool), ErrnoError(-r));
    }
    rados_ioctx_set_namespace(io_, spec.ns.c_str());
    return absl::OkStatus();
  }

  absl::Status OpenImage(const RbdSpec& spec, bool read_only) {
    const char* snap = spec.snapshot.empty() ? nullptr : spec.snapshot.c_str();
    int r = read_only ? rbd_open_read_only(io_, spec.image.c_str(), &image_, snap)
                      : rbd_open(io_, spec.image.c_str(), &image_, snap);
    if (r < 0) {
      image_ = nullptr;
      return Prefixed(absl::StrCat("error reading header from ", spec.image), ErrnoError(-r));
    }
    return absl::OkStatus();
  }

  rados_ioctx_t io() const { return io_; }
  rbd_image_t image() const { return image_; }

 private:
  rados_t cluster_ = nullptr;
  rados_ioctx_t io_ = nullptr;
  rbd_image_t image_ = nullptr;
};

// Awaits one librbd asynchronous operation. `start(completion)` starts it; its result
// (bytes or a negative errno) is what the await returns. On a loop the coroutine parks and
// resumes on its loop; without one the thread blocks until librbd is done.
class RbdCall {
 public:
  template <typename Start>
  explicit RbdCall(Start start) : start_(std::move(start)) {}

  bool await_ready() {
    context_ = aio::IoContext::Current();
    if (context_ != nullptr) return false;
    absl::Notification done;
    done_ = &done;
    if (Begin()) done.WaitForNotification();
    return true;
  }
  bool await_suspend(std::coroutine_handle<> h) {
    handle_ = h;
    return Begin();  // false: it failed to start, resume now
  }
  ssize_t await_resume() const { return result_; }

 private:
  // Starts the operation; false (with result_ set) if librbd refused it.
  bool Begin() {
    rbd_completion_t c;
    int r = rbd_aio_create_completion(this, &RbdCall::Done, &c);
    if (r < 0) {
      result_ = r;
      return false;
    }
    r = start_(c);
    if (r < 0) {
      rbd_aio_release(c);
      result_ = r;
      return false;
    }
    return true;
  }
  // librbd's thread. After the wake-up `self` may be gone: nothing touches it after.
  static void Done(rbd_completion_t c, void* arg) {
    auto* self = static_cast<RbdCall*>(arg);
    self->result_ = rbd_aio_get_return_value(c);
    rbd_aio_release(c);
    if (self->context_ != nullptr) {
      self->context_->Post(self->handle_);
    } else {
      self->done_->Notify();
    }
  }

  std::function<int(rbd_completion_t)> start_;
  aio::IoContext* context_ = nullptr;
  std::coroutine_handle<> handle_;
  absl::Notification* done_ = nullptr;
  ssize_t result_ = 0;
};

absl::Status FromResult(ssize_t r) {
  return r < 0 ? ErrnoError(static_cast<int>(-r)) : absl::OkStatus();
}

// Thread-safe: librbd takes concurrent operations on one image.
class RbdInstance : public DriverInstance {
 public:
  RbdInstance(BlockDriverState* node, std::unique_ptr<RbdConnection> conn)
      : node_(node), conn_(std::move(conn)) {}

  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                      uint32_t flags) override {
    return aio::RunSync(CoPreadv(offset, bytes, qiov, flags));
  }
  absl::Status Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                       uint32_t flags) override {
    return aio::RunSync(CoPwritev(offset, bytes, qiov, flags));
  }

  aio::Task<absl::Status> CoPreadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                   uint32_t) override {
    const std::vector<struct iovec>& iov = qiov.iovecs();
    ssize_t r = co_await RbdCall([&](rbd_completion_t c) {
      return rbd_aio_readv(conn_->image(), iov.data(), static_cast<int>(iov.size()), offset, c);
    });
    if (r < 0) co_return FromResult(r);
    // librbd reads past the image end as short: the rest reads as zeroes.
    if (static_cast<uint64_t>(r) < bytes) qiov.Memset(r, 0, bytes - r);
    co_return absl::OkStatus();
  }

  aio::Task<absl::Status> CoPwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                    uint32_t flags) override {
    if (flags & kReqWriteCompressed) co_return ErrnoError(ENOTSUP);
    // A write past the end grows the image first (librbd refuses it otherwise): how a
    // format on top extends its file, as with QEMU's rbd driver.
    STRATA_CO_RETURN_IF_ERROR(GrowTo(offset + bytes));
    const std::vector<struct iovec>& iov = qiov.iovecs();
    ssize_t r = co_await RbdCall([&](rbd_completion_t c) {
      return rbd_aio_writev(conn_->image(), iov.data(), static_cast<int>(iov.size()), offset,
                            c);
    });
    if (r < 0) co_return FromResult(r);
    // No FUA in librbd: a flush makes the write stable (QEMU does the same).
    if (flags & kReqFua) co_return co_await CoFlushToDisk();
    co_return absl::OkStatus();
  }

  aio::Task<absl::Status> CoFlushToDisk() override {
    ssize_t r = co_await RbdCall(
        [&](rbd_completion_t c) { return rbd_aio_flush(conn_->image(), c); });
    co_return FromResult(r);
  }
  absl::Status FlushToDisk() override { return aio::RunSync(CoFlushToDisk()); }

  absl::Status PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override {
    // No thick provisioning even without MAY_UNMAP: QEMU 7.2 as Debian builds it lets
    // librbd deallocate whole objects either way (checked on the test cluster), and
    // images must end up alike.
    const int zero_flags = 0;
    ssize_t r = aio::RunSync([&]() -> aio::Task<ssize_t> {
      co_return co_await RbdCall([&](rbd_completion_t c) {
        return rbd_aio_write_zeroes(conn_->image(), offset, bytes, c, zero_flags, 0);
      });
    }());
    if (r == -EOPNOTSUPP || r == -ENOTSUP) return ErrnoError(ENOTSUP);
    STRATA_RETURN_IF_ERROR(FromResult(r));
    if (flags & kReqFua) return FlushToDisk();
    return absl::OkStatus();
  }

  absl::Status Pdiscard(uint64_t offset, uint64_t bytes) override {
    ssize_t r = aio::RunSync([&]() -> aio::Task<ssize_t> {
      co_return co_await RbdCall([&](rbd_completion_t c) {
        return rbd_aio_discard(conn_->image(), offset, bytes, c);
      });
    }());
    return FromResult(r);
  }

  absl::Status Truncate(uint64_t length, bool, PreallocMode prealloc) override {
    if (prealloc != PreallocMode::kOff) {
      return ErrnoError(ENOTSUP, "Unsupported preallocation mode");
    }
    int r = rbd_resize(conn_->image(), length);
    if (r < 0) return Prefixed("failed to resize rbd image", ErrnoError(-r));
    return absl::OkStatus();
  }

  // Makes the image at least `end` bytes long. Blocking (rare: only growth).
  absl::Status GrowTo(uint64_t end) {
    absl::MutexLock lock(&resize_mu_);
    uint64_t size = 0;
    int r = rbd_get_size(conn_->image(), &size);
    if (r < 0) return ErrnoError(-r);
    if (end <= size) return absl::OkStatus();
    r = rbd_resize(conn_->image(), end);
    return r < 0 ? ErrnoError(-r) : absl::OkStatus();
  }

  absl::StatusOr<uint64_t> GetLength() override {
    uint64_t size = 0;
    int r = rbd_get_size(conn_->image(), &size);
    if (r < 0) return ErrnoError(-r);
    return size;
  }

  absl::StatusOr<BlockStatus> GetBlockStatus(uint64_t offset, uint64_t bytes) override {
    BlockStatus s = ProtocolDataStatus(node_, offset, bytes);
    // Only an object map that can be trusted tells holes apart (QEMU's rule).
    uint64_t features = 0, image_flags = 0;
    if (rbd_get_features(conn_->image(), &features) < 0 ||
        !(features & RBD_FEATURE_FAST_DIFF) || rbd_get_flags(conn_->image(), &image_flags) < 0 ||
        (image_flags & RBD_FLAG_FAST_DIFF_INVALID)) {
      return s;
    }
    struct FirstExtent {
      uint64_t offset = 0, length = 0;
      bool found = false;
    } first;
    constexpr int kStop = -9000;  // ends the walk at the first extent
    int r = rbd_diff_iterate2(
        conn_->image(), nullptr, offset, bytes, /*include_parent=*/1, /*whole_object=*/1,
        [](uint64_t off, size_t len, int exists, void* arg) -> int {
          auto* f = static_cast<FirstExtent*>(arg);
          if (!exists) return 0;
          f->offset = off;
          f->length = len;
          f->found = true;
          return kStop;
        },
        &first);
    if (r < 0 && r != kStop) return s;  // unknown: data, as QEMU answers
    // Whole objects: the extent may start before `offset`.
    if (first.found && first.offset <= offset) {
      s.bytes = std::min<uint64_t>(bytes, first.offset + first.length - offset);
      return s;
    }
    s.data = false;
    s.zero = true;
    if (first.found) s.bytes = first.offset - offset;
    return s;
  }

  // RBD snapshots, as QEMU lists them: the name is the ID too, the size is the VM state
  // size, no dates.
  absl::StatusOr<std::vector<SnapshotInfo>> ListSnapshots() override {
    std::vector<rbd_snap_info_t> snaps(16);
    int max = static_cast<int>(snaps.size());
    int r;
    while ((r = rbd_snap_list(conn_->image(), snaps.data(), &max)) == -ERANGE) {
      snaps.resize(max);
    }
    if (r < 0) return ErrnoError(-r);
    std::vector<SnapshotInfo> out;
    for (int i = 0; i < r; ++i) {
      SnapshotInfo info;
      info.id = info.name = snaps[i].name;
      info.vm_state_size = snaps[i].size;
      info.icount = 0;
      out.push_back(info);
    }
    rbd_snap_list_end(snaps.data());
    return out;
  }
  absl::Status CreateSnapshot(const std::string& name) override {
    int r = rbd_snap_create(conn_->image(), name.c_str());
    return r < 0 ? Prefixed("failed to create snap", ErrnoError(-r)) : absl::OkStatus();
  }
  absl::Status DeleteSnapshot(const std::string& name) override {
    int r = rbd_snap_remove(conn_->image(), name.c_str());
    return r < 0 ? Prefixed("Failed to remove the snapshot", ErrnoError(-r)) : absl::OkStatus();
  }
  absl::Status ApplySnapshot(const std::string& name) override {
    int r = rbd_snap_rollback(conn_->image(), name.c_str());
    return r < 0 ? ErrnoError(-r) : absl::OkStatus();
  }

  DriverInfo GetInfo() override {
    DriverInfo info;
    rbd_image_info_t st;
    if (rbd_stat(conn_->image(), &st, sizeof(st)) == 0) info.cluster_size_bytes = st.obj_size;
    return info;
  }

  // QEMU's rbd block: always present (so `info` prints the heading even when empty), with
  // the encryption format when the image starts with librbd's LUKS header.
  FormatSpecificInfo GetFormatSpecificInfo() override {
    FormatSpecificInfo info;
    char head[8] = {};
    if (rbd_read(conn_->image(), 0, sizeof(head), head) < 0) return info;
    info.type = "rbd";
    static constexpr char kLuks1[8] = {'L', 'U', 'K', 'S', '\xba', '\xbe', 0, 1};
    static constexpr char kLuks2[8] = {'L', 'U', 'K', 'S', '\xba', '\xbe', 0, 2};
    if (std::memcmp(head, kLuks1, sizeof(head)) == 0) {
      info.entries.push_back({"encryption-format", std::string("luks")});
    } else if (std::memcmp(head, kLuks2, sizeof(head)) == 0) {
      info.entries.push_back({"encryption-format", std::string("luks2")});
    }
    return info;
  }

 private:
  BlockDriverState* const node_;
  const std::unique_ptr<RbdConnection> conn_;
  absl::Mutex resize_mu_;  // one growth at a time
};

class RbdDriver : public BlockDriver {
 public:
  absl::string_view name() const override { return "rbd"; }
  DriverKind kind() const override { return DriverKind::kProtocol; }
  absl::string_view protocol_prefix() const override { return "rbd"; }

  absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext& ctx) const override {
    STRATA_ASSIGN_OR_RETURN(RbdSpec spec, rbd::RbdSpecFromOptions(ctx.options().rbd()));
    if (!spec.snapshot.empty() && !ctx.flags().read_only) {
      return ErrnoError(EINVAL, "rbd snapshots are read-only");
    }
    auto conn = std::make_unique<RbdConnection>();
    STRATA_RETURN_IF_ERROR(conn->Connect(spec));
    STRATA_RETURN_IF_ERROR(conn->OpenImage(spec, ctx.flags().read_only));
    ctx.node().set_filename(rbd::RbdDisplayName(spec));
    return std::make_unique<RbdInstance>(&ctx.node(), std::move(conn));
  }

  std::vector<CreateOptionSpec> create_options() const override {
    return {{"cluster_size", "size", "RBD object size", ""}};
  }

  absl::Status Create(const CreateRequest& request) const override {
    STRATA_ASSIGN_OR_RETURN(RbdSpec spec, rbd::ParseRbdFilename(request.filename));
    RbdConnection conn;
    STRATA_RETURN_IF_ERROR(conn.Connect(spec));
    rbd_image_options_t opts;
    rbd_image_options_create(&opts);
    auto it = request.options.find("cluster_size");
    if (it != request.options.end()) {
      absl::StatusOr<uint64_t> size = ParseSize(it->second);
      if (!size.ok() || *size == 0 || (*size & (*size - 1)) != 0 || *size < 4096) {
        rbd_image_options_destroy(opts);
        return ErrnoError(EINVAL, "obj size needs to be power of 2 and at least 4096");
      }
      uint64_t order = 0;
      while ((uint64_t{1} << order) < *size) ++order;
      rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_ORDER, order);
    }
    int r = rbd_create4(conn.io(), spec.image.c_str(), request.size_bytes, opts);
    rbd_image_options_destroy(opts);
    if (r < 0) return Prefixed("error rbd create", ErrnoError(-r));
    return absl::OkStatus();
  }
};

STRATA_REGISTER_DRIVER(RbdDriver);

}  // namespace
}  // namespace strata
