// strata: the `null-co` and `null-aio` protocol drivers (QEMU's): reads return zeroes
// (with read-zeroes=on) or leave the buffer untouched, writes are dropped, each request
// takes latency-ns. They measure the block layer's own overhead in benchmarks. (QEMU's
// two differ in how their requests complete inside QEMU; strata's are one driver.)
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "aio/offload.h"
#include "block/node.h"
#include "block/node_filename.h"
#include "block/registry.h"
#include "block/status.h"

namespace strata {
namespace {

constexpr uint64_t kDefaultNullSize = 1ull << 30;

// Stateless: thread-safe. With a latency, the synchronous hooks sleep it and the
// coroutine hooks sleep it on the blocking pool (the loop goes on meanwhile).
class NullInstance : public DriverInstance {
 public:
  NullInstance(uint64_t size, bool read_zeroes, absl::Duration latency)
      : size_(size), read_zeroes_(read_zeroes), latency_(latency) {}

  absl::Status Preadv(uint64_t, uint64_t bytes, const IoVector& qiov, uint32_t) override {
    Wait();
    if (read_zeroes_) qiov.Memset(0, 0, bytes);
    return absl::OkStatus();
  }
  absl::Status Pwritev(uint64_t, uint64_t, const IoVector&, uint32_t) override {
    Wait();
    return absl::OkStatus();
  }
  absl::Status PwriteZeroes(uint64_t, uint64_t, uint32_t) override {
    Wait();
    return absl::OkStatus();
  }
  aio::Task<absl::Status> CoPreadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                   uint32_t flags) override {
    co_await CoWait();
    if (read_zeroes_) qiov.Memset(0, 0, bytes);
    co_return absl::OkStatus();
  }
  aio::Task<absl::Status> CoPwritev(uint64_t, uint64_t, const IoVector&, uint32_t) override {
    co_await CoWait();
    co_return absl::OkStatus();
  }
  aio::Task<absl::Status> CoPwriteZeroes(uint64_t, uint64_t, uint32_t) override {
    co_await CoWait();
    co_return absl::OkStatus();
  }
  aio::Task<absl::Status> CoPdiscard(uint64_t, uint64_t) override { co_return absl::OkStatus(); }
  aio::Task<absl::Status> CoFlushToDisk() override { co_return absl::OkStatus(); }
  aio::Task<absl::Status> CoFlushToOs() override { co_return absl::OkStatus(); }
  absl::StatusOr<uint64_t> GetLength() override { return size_; }
  absl::StatusOr<BlockStatus> GetBlockStatus(uint64_t offset, uint64_t bytes) override {
    // QEMU's null nodes hold data only when they read as zeroes: otherwise a read
    // returns whatever the buffer held, so the range is neither data nor zero, and
    // `map` shows it as not present.
    BlockStatus s;
    s.bytes = bytes;
    s.allocated = read_zeroes_;
    s.offset_valid = read_zeroes_;
    s.host_offset = offset;
    s.zero = read_zeroes_;
    return s;
  }
  absl::StatusOr<uint64_t> AllocatedFileSize() override { return 0; }
  DriverInfo GetInfo() override {
    DriverInfo info;
    info.available = false;
    return info;
  }

 private:
  void Wait() const {
    if (latency_ > absl::ZeroDuration()) absl::SleepFor(latency_);
  }
  aio::Task<absl::Status> CoWait() const {
    if (latency_ > absl::ZeroDuration()) {
      co_return co_await aio::Offload([this] {
        Wait();
        return absl::OkStatus();
      });
    }
    co_return absl::OkStatus();
  }

  const uint64_t size_;
  const bool read_zeroes_;
  const absl::Duration latency_;
};

// null-co and null-aio: `name` is also the pseudo-filename's protocol ("null-co://").
class NullDriver : public BlockDriver {
 public:
  absl::string_view name() const override { return "null-co"; }
  DriverKind kind() const override { return DriverKind::kProtocol; }
  absl::string_view protocol_prefix() const override { return name(); }
  std::vector<absl::string_view> strong_options() const override {
    return {"size", "read-zeroes"};
  }
  absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext& ctx) const override {
    const proto::NullOptions& opts = OptionsOf(ctx.options());
    const std::string only = absl::StrCat(name(), "://");
    if (!opts.x_filename().empty() && opts.x_filename() != only) {
      return ErrnoError(EINVAL,
                        absl::StrCat("The only allowed filename for this driver is '", only, "'"));
    }
    if (opts.latency_ns() < 0) return ErrnoError(EINVAL, "latency-ns is invalid");
    // QEMU names a node given no strong option by the pseudo-filename.
    if (!GivenStrongOptions(ctx.options())) ctx.node().set_filename(only);
    return std::make_unique<NullInstance>(opts.has_size() ? opts.size() : kDefaultNullSize,
                                          opts.read_zeroes(),
                                          absl::Nanoseconds(opts.latency_ns()));
  }

 protected:
  virtual const proto::NullOptions& OptionsOf(const proto::BlockdevOptions& o) const {
    return o.null_co();
  }
};

class NullAioDriver : public NullDriver {
 public:
  absl::string_view name() const override { return "null-aio"; }

 protected:
  const proto::NullOptions& OptionsOf(const proto::BlockdevOptions& o) const override {
    return o.null_aio();
  }
};

STRATA_REGISTER_DRIVER(NullDriver);
STRATA_REGISTER_DRIVER(NullAioDriver);

}  // namespace
}  // namespace strata
