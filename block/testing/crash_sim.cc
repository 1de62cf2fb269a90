// strata testing: the crash simulator's disk and its `crash-sim` driver (see crash_sim.h).
#include "block/testing/crash_sim.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "block/node.h"
#include "block/registry.h"
#include "block/status.h"

namespace strata::testing {

SimDisk::SimDisk(std::vector<uint8_t> initial) : current_(initial), durable_(std::move(initial)) {}

void SimDisk::Read(uint64_t offset, uint64_t bytes, uint8_t* out) {
  absl::MutexLock lock(&mu_);
  const uint64_t have = offset < current_.size() ? std::min(bytes, current_.size() - offset) : 0;
  if (have > 0) std::memcpy(out, current_.data() + offset, have);
  if (have < bytes) std::memset(out + have, 0, bytes - have);
}

void SimDisk::Write(uint64_t offset, uint64_t bytes, const uint8_t* data) {
  absl::MutexLock lock(&mu_);
  if (offset + bytes > current_.size()) current_.resize(offset + bytes, 0);
  if (offset + bytes > durable_.size()) durable_.resize(offset + bytes, 0);
  std::memcpy(current_.data() + offset, data, bytes);
  // The disk stores whole sectors: an unaligned write reaches it as the sectors it
  // touches, with the rest of their bytes as the OS's cache holds them (current_).
  const uint64_t begin = offset / 512 * 512;
  const uint64_t end = std::min<uint64_t>((offset + bytes + 511) / 512 * 512, current_.size());
  pending_.push_back({begin, std::vector<uint8_t>(current_.begin() + begin,
                                                  current_.begin() + end)});
}

void SimDisk::SetBeforeFlush(std::function<void()> observer) {
  absl::MutexLock lock(&observer_mu_);
  before_flush_ = std::move(observer);
}

void SimDisk::Flush() {
  {
    absl::MutexLock lock(&observer_mu_);
    if (before_flush_ && PendingWrites() > 0) before_flush_();
  }
  absl::MutexLock lock(&mu_);
  // The pending writes, applied in order, turn durable_ into current_ (every change to
  // current_ is one of them, or a truncate, which changes both): cheaper than a copy of
  // the whole disk unless they cover more than it.
  uint64_t pending_bytes = 0;
  for (const PendingWrite& w : pending_) pending_bytes += w.data.size();
  if (pending_bytes >= current_.size()) {
    durable_ = current_;
  } else {
    for (const PendingWrite& w : pending_) {
      if (!w.data.empty()) std::memcpy(durable_.data() + w.offset, w.data.data(), w.data.size());
    }
  }
  pending_.clear();
}

void SimDisk::Truncate(uint64_t length) {
  absl::MutexLock lock(&mu_);
  current_.resize(length, 0);
  durable_.resize(length, 0);
  for (PendingWrite& w : pending_) {
    if (w.offset >= length) w.data.clear();
    else if (w.offset + w.data.size() > length) w.data.resize(length - w.offset);
  }
}

uint64_t SimDisk::Length() {
  absl::MutexLock lock(&mu_);
  return current_.size();
}

std::vector<uint64_t> SimDisk::PendingWriteSizes() {
  absl::MutexLock lock(&mu_);
  std::vector<uint64_t> sizes;
  for (const PendingWrite& w : pending_) sizes.push_back(w.data.size());
  return sizes;
}

size_t SimDisk::PendingWrites() {
  absl::MutexLock lock(&mu_);
  return pending_.size();
}

std::vector<uint8_t> SimDisk::CrashState(std::mt19937_64& rng) {
  absl::MutexLock lock(&mu_);
  std::vector<uint8_t> state = durable_;
  std::vector<size_t> order(pending_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t i : order) {
    const PendingWrite& w = pending_[i];
    switch (rng() % 3) {
      case 0:  // lost
        break;
      case 1:  // whole
        std::memcpy(state.data() + w.offset, w.data.data(), w.data.size());
        break;
      default: {  // torn: each (absolute) 512-byte disk sector independently
        uint64_t pos = w.offset;
        const uint64_t end = w.offset + w.data.size();
        while (pos < end) {
          uint64_t next = std::min(end, (pos / 512 + 1) * 512);
          if (rng() % 2) {
            std::memcpy(state.data() + pos, w.data.data() + (pos - w.offset), next - pos);
          }
          pos = next;
        }
        break;
      }
    }
  }
  return state;
}

namespace {

absl::Mutex registry_mu;
std::map<std::string, std::shared_ptr<SimDisk>>& Disks() {
  static auto* disks = new std::map<std::string, std::shared_ptr<SimDisk>>();
  return *disks;
}

}  // namespace

void SimDisk::Register(const std::string& name, std::shared_ptr<SimDisk> disk) {
  absl::MutexLock lock(&registry_mu);
  Disks()[name] = std::move(disk);
}

void SimDisk::Unregister(const std::string& name) {
  absl::MutexLock lock(&registry_mu);
  Disks().erase(name);
}

std::shared_ptr<SimDisk> SimDisk::Find(const std::string& name) {
  absl::MutexLock lock(&registry_mu);
  auto it = Disks().find(name);
  return it == Disks().end() ? nullptr : it->second;
}

namespace {

// A protocol node over a SimDisk. Thread-safe (the disk is).
class CrashSimInstance : public DriverInstance {
 public:
  explicit CrashSimInstance(std::shared_ptr<SimDisk> disk) : disk_(std::move(disk)) {}

  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                      uint32_t) override {
    std::vector<uint8_t> buf(bytes);
    disk_->Read(offset, bytes, buf.data());
    qiov.CopyFrom(0, buf.data(), bytes);
    return absl::OkStatus();
  }
  absl::Status Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                       uint32_t flags) override {
    std::vector<uint8_t> buf(bytes);
    qiov.CopyTo(0, buf.data(), bytes);
    disk_->Write(offset, bytes, buf.data());
    if (flags & kReqFua) disk_->Flush();
    return absl::OkStatus();
  }
  absl::Status PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override {
    std::vector<uint8_t> zeroes(bytes, 0);
    disk_->Write(offset, bytes, zeroes.data());
    if (flags & kReqFua) disk_->Flush();
    return absl::OkStatus();
  }
  absl::Status FlushToDisk() override {
    disk_->Flush();
    return absl::OkStatus();
  }
  absl::Status Truncate(uint64_t length, bool, PreallocMode) override {
    disk_->Truncate(length);
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> GetLength() override { return disk_->Length(); }
  absl::StatusOr<uint64_t> AllocatedFileSize() override { return disk_->Length(); }

 private:
  std::shared_ptr<SimDisk> disk_;
};

class CrashSimDriver : public BlockDriver {
 public:
  absl::string_view name() const override { return "crash-sim"; }
  DriverKind kind() const override { return DriverKind::kProtocol; }
  absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext& ctx) const override {
    std::shared_ptr<SimDisk> disk = SimDisk::Find(ctx.options().crash_sim().name());
    if (disk == nullptr) {
      return ErrnoError(ENOENT, "No simulated disk named '" +
                                    ctx.options().crash_sim().name() + "'");
    }
    return std::make_unique<CrashSimInstance>(std::move(disk));
  }
};

STRATA_REGISTER_DRIVER(CrashSimDriver);

}  // namespace
}  // namespace strata::testing
