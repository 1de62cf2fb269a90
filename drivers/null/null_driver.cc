// strata: the `null-co` protocol driver (QEMU's null-co): reads return zeroes (with
// read-zeroes=on) or leave the buffer untouched, writes are dropped. It measures the block
// layer's own overhead in benchmarks.
#include "block/node.h"
#include "block/registry.h"
#include "block/status.h"

namespace strata {
namespace {

constexpr uint64_t kDefaultNullSize = 1ull << 30;

// Stateless: thread-safe.
class NullInstance : public DriverInstance {
 public:
  NullInstance(uint64_t size, bool read_zeroes) : size_(size), read_zeroes_(read_zeroes) {}

  absl::Status Preadv(uint64_t, uint64_t bytes, const IoVector& qiov, uint32_t) override {
    if (read_zeroes_) qiov.Memset(0, 0, bytes);
    return absl::OkStatus();
  }
  absl::Status Pwritev(uint64_t, uint64_t, const IoVector&, uint32_t) override {
    return absl::OkStatus();
  }
  absl::Status PwriteZeroes(uint64_t, uint64_t, uint32_t) override {
    return absl::OkStatus();
  }
  // Nothing blocks: the coroutine hooks complete at once.
  aio::Task<absl::Status> CoPreadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                   uint32_t flags) override {
    co_return Preadv(offset, bytes, qiov, flags);
  }
  aio::Task<absl::Status> CoPwritev(uint64_t, uint64_t, const IoVector&, uint32_t) override {
    co_return absl::OkStatus();
  }
  aio::Task<absl::Status> CoPwriteZeroes(uint64_t, uint64_t, uint32_t) override {
    co_return absl::OkStatus();
  }
  aio::Task<absl::Status> CoPdiscard(uint64_t, uint64_t) override { co_return absl::OkStatus(); }
  aio::Task<absl::Status> CoFlushToDisk() override { co_return absl::OkStatus(); }
  aio::Task<absl::Status> CoFlushToOs() override { co_return absl::OkStatus(); }
  absl::StatusOr<uint64_t> GetLength() override { return size_; }
  absl::StatusOr<BlockStatus> GetBlockStatus(uint64_t offset, uint64_t bytes) override {
    BlockStatus s;
    s.bytes = bytes;
    s.allocated = true;
    s.offset_valid = true;
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
  const uint64_t size_;
  const bool read_zeroes_;
};

class NullDriver : public BlockDriver {
 public:
  absl::string_view name() const override { return "null-co"; }
  DriverKind kind() const override { return DriverKind::kProtocol; }
  absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext& ctx) const override {
    const proto::NullOptions& opts = ctx.options().null_co();
    return std::make_unique<NullInstance>(opts.has_size() ? opts.size() : kDefaultNullSize,
                                          opts.read_zeroes());
  }
};

STRATA_REGISTER_DRIVER(NullDriver);

}  // namespace
}  // namespace strata
