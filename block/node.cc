// strata: the generic node (see node.h).
#include "block/node.h"
#include "block/request_gate.h"

#include <cerrno>
#include <cstring>

#include "aio/offload.h"
#include "absl/strings/str_cat.h"
#include "block/align.h"
#include "block/node_names.h"
#include "block/status.h"

namespace strata {

absl::Status DriverInstance::PwriteZeroes(uint64_t, uint64_t, uint32_t) {
  return ErrnoError(ENOTSUP);
}
absl::Status DriverInstance::Pdiscard(uint64_t, uint64_t) { return absl::OkStatus(); }
absl::Status DriverInstance::FlushToOs() { return absl::OkStatus(); }
absl::Status DriverInstance::FlushToDisk() { return absl::OkStatus(); }

aio::Task<absl::Status> DriverInstance::CoPreadv(uint64_t offset, uint64_t bytes,
                                                 const IoVector& qiov, uint32_t flags) {
  co_return co_await aio::Offload([&] { return Preadv(offset, bytes, qiov, flags); });
}

aio::Task<absl::Status> DriverInstance::CoPwritev(uint64_t offset, uint64_t bytes,
                                                  const IoVector& qiov, uint32_t flags) {
  co_return co_await aio::Offload([&] { return Pwritev(offset, bytes, qiov, flags); });
}

aio::Task<absl::Status> DriverInstance::CoFlushToDisk() {
  co_return co_await aio::Offload([&] { return FlushToDisk(); });
}
aio::Task<absl::Status> DriverInstance::CoPwriteZeroes(uint64_t offset, uint64_t bytes,
                                                       uint32_t flags) {
  co_return co_await aio::Offload([&] { return PwriteZeroes(offset, bytes, flags); });
}
aio::Task<absl::Status> DriverInstance::CoPdiscard(uint64_t offset, uint64_t bytes) {
  co_return co_await aio::Offload([&] { return Pdiscard(offset, bytes); });
}
aio::Task<absl::Status> DriverInstance::CoFlushToOs() {
  co_return co_await aio::Offload([&] { return FlushToOs(); });
}
absl::Status DriverInstance::ReadVmState(uint64_t, uint64_t, void*) {
  return ErrnoError(ENOTSUP);
}

absl::Status DriverInstance::WriteVmState(uint64_t, uint64_t, const void*) {
  return ErrnoError(ENOTSUP);
}

absl::Status DriverInstance::Truncate(uint64_t, bool, PreallocMode) {
  return ErrnoError(ENOTSUP, "Image format driver does not support resize");
}
absl::StatusOr<BlockStatus> DriverInstance::GetBlockStatus(uint64_t offset, uint64_t bytes) {
  BlockStatus s;
  s.bytes = bytes;
  s.data = true;
  s.allocated = true;
  return s;
}
absl::Status DriverInstance::ChangeBackingFile(const std::string&, const std::string&) {
  return ErrnoError(ENOTSUP);
}
absl::Status DriverInstance::MakeEmpty() { return ErrnoError(ENOTSUP); }
absl::Status DriverInstance::AddDirtyBitmap(const std::string&, uint64_t, bool,
                                            absl::string_view node_label) {
  return ErrnoError(ENOTSUP, absl::StrCat("Can't store persistent bitmaps to ", node_label));
}
namespace {
absl::Status NoSuchBitmap(const std::string& name) {
  return ErrnoError(ENOENT, absl::StrCat("Dirty bitmap '", name, "' not found"));
}
}  // namespace
absl::Status DriverInstance::RemoveDirtyBitmap(const std::string& name) {
  return NoSuchBitmap(name);
}
absl::Status DriverInstance::ClearDirtyBitmap(const std::string& name) {
  return NoSuchBitmap(name);
}
absl::Status DriverInstance::SetDirtyBitmapEnabled(const std::string& name, bool) {
  return NoSuchBitmap(name);
}
absl::Status DriverInstance::MergeDirtyBitmap(const std::string& target, const DirtyBitmap&) {
  return NoSuchBitmap(target);
}
absl::StatusOr<DirtyBitmap> DriverInstance::GetDirtyBitmap(const std::string& name) {
  return NoSuchBitmap(name);
}
absl::StatusOr<std::vector<DriverInstance::DirtyRun>> DriverInstance::GetDirtyRuns(
    const std::string& name, uint64_t, uint64_t, size_t) {
  return NoSuchBitmap(name);
}
absl::Status DriverInstance::Amend(const std::vector<std::pair<std::string, std::string>>&,
                                   const AmendProgress&) {
  return ErrnoError(ENOTSUP);
}
absl::Status DriverInstance::CreateSnapshot(const std::string&) { return ErrnoError(ENOTSUP); }
absl::Status DriverInstance::ApplySnapshot(const std::string&) { return ErrnoError(ENOTSUP); }
absl::Status DriverInstance::DeleteSnapshot(const std::string&) { return ErrnoError(ENOTSUP); }
absl::Status DriverInstance::LoadSnapshotForReading(const std::string&, const std::string&) {
  return ErrnoError(ENOTSUP);
}

absl::StatusOr<CheckResult> DriverInstance::Check(uint32_t) {
  return ErrnoError(ENOTSUP, "This image format does not support checks");
}
absl::StatusOr<uint64_t> DriverInstance::AllocatedFileSize() {
  return ErrnoError(ENOTSUP);
}

BlockDriverState::BlockDriverState(const BlockDriver& driver, std::string filename,
                                   OpenFlags flags)
    : driver_(driver), filename_(std::move(filename)), flags_(flags) {}

void BlockDriverState::AssignAutomaticName() {
  if (auto_name_.empty()) auto_name_ = NextAutomaticNodeName();
}

BlockDriverState::~BlockDriverState() {
  (void)Close();
  instance_.reset();
  // Children go in reverse order of creation (backing after file).
  while (!children_.empty()) children_.pop_back();
}

void BlockDriverState::SetInstance(std::unique_ptr<DriverInstance> instance) {
  instance_ = std::move(instance);
  alignment_ = instance_->request_alignment();
  if (alignment_ == 0) alignment_ = 1;
  wants_events_ = instance_->WantsDebugEvents();
}

DebugBreakpoints* BlockDriverState::FindDebugBreakpoints() {
  for (BlockDriverState* node = this; node != nullptr;) {
    if (node->instance_) {
      if (DebugBreakpoints* b = node->instance_->debug_breakpoints()) return b;
    }
    BdrvChild* primary = node->primary_child();
    node = primary != nullptr ? &primary->node() : nullptr;
  }
  return nullptr;
}

absl::Status BlockDriverState::Close() {
  if (closed_ || !instance_) return absl::OkStatus();
  closed_ = true;
  absl::Status status = instance_->Close();
  for (auto& c : children_) {
    absl::Status s = c->node().Close();
    if (status.ok()) status = s;
  }
  return status;
}

absl::Status BlockDriverState::CheckWritable() const {
  if (flags_.read_only) return ErrnoError(EPERM, "Operation not permitted");
  return absl::OkStatus();
}

absl::Status BlockDriverState::Pread(uint64_t offset, uint64_t bytes, void* buf) {
  return Preadv(offset, bytes, IoVector(buf, bytes));
}

absl::Status BlockDriverState::Pwrite(uint64_t offset, uint64_t bytes, const void* buf,
                                      uint32_t flags) {
  return Pwritev(offset, bytes, IoVector(const_cast<void*>(buf), bytes), flags);
}

absl::Status BlockDriverState::Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                      uint32_t flags) {
  GateRequest request(gate_);
  return DoPreadv(offset, bytes, qiov, flags);
}

absl::Status BlockDriverState::DoPreadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                        uint32_t flags) {
  if (bytes == 0) return absl::OkStatus();
  if (offset % alignment_ == 0 && bytes % alignment_ == 0) {
    return instance_->Preadv(offset, bytes, qiov.size() == bytes ? qiov : qiov.Slice(0, bytes),
                             flags);
  }
  return PaddedPreadv(offset, bytes, qiov);
}

absl::Status BlockDriverState::PaddedPreadv(uint64_t offset, uint64_t bytes,
                                            const IoVector& qiov) {
  uint64_t begin = AlignDown(offset, alignment_);
  uint64_t end = AlignUp(offset + bytes, alignment_);
  AlignedBuffer bounce(end - begin, std::max<uint32_t>(alignment_, 4096));
  STRATA_RETURN_IF_ERROR(instance_->Preadv(begin, end - begin, bounce.AsIoVector(), 0));
  qiov.CopyFrom(0, bounce.data() + (offset - begin), bytes);
  return absl::OkStatus();
}

void BlockDriverState::BeginSerialised(uint64_t offset, uint64_t bytes) {
  serialised_.Begin(AlignDown(offset, alignment_), AlignUp(offset + bytes, alignment_));
}

void BlockDriverState::EndSerialised(uint64_t offset, uint64_t bytes) {
  serialised_.End(AlignDown(offset, alignment_), AlignUp(offset + bytes, alignment_));
}

absl::Status BlockDriverState::AlignedPwritev(uint64_t offset, uint64_t bytes,
                                              const IoVector& qiov, uint32_t flags) {
  NotifySelf(DebugEvent::kPwritev);
  absl::Status s = instance_->Pwritev(offset, bytes, qiov, flags);
  NoteWriteCompleted();
  NotifySelf(DebugEvent::kPwritevDone);
  return s;
}

absl::Status BlockDriverState::Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                       uint32_t flags) {
  GateRequest request(gate_);
  return DoPwritev(offset, bytes, qiov, flags);
}

absl::Status BlockDriverState::DoPwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                         uint32_t flags) {
  STRATA_RETURN_IF_ERROR(CheckWritable());
  if ((flags & kReqWriteCompressed) && !driver_.supports_compressed_writes()) {
    return ErrnoError(ENOTSUP);
  }
  // An empty compressed write means something to the driver (see kReqWriteCompressed).
  if (bytes == 0 && !(flags & kReqWriteCompressed)) return absl::OkStatus();
  const IoVector data = qiov.size() == bytes ? qiov : qiov.Slice(0, bytes);
  if (alignment_ == 1 || (flags & kReqWriteCompressed)) {
    return AlignedPwritev(offset, bytes, data, flags);
  }
  BeginSerialised(offset, bytes);
  absl::Status status = (offset % alignment_ == 0 && bytes % alignment_ == 0)
                            ? AlignedPwritev(offset, bytes, data, flags)
                            : PaddedPwritev(offset, bytes, data, flags);
  EndSerialised(offset, bytes);
  return status;
}

absl::Status BlockDriverState::PaddedPwritev(uint64_t offset, uint64_t bytes,
                                             const IoVector& qiov, uint32_t flags) {
  // Read-modify-write of the head and tail blocks; the caller holds the serialised range.
  uint64_t begin = AlignDown(offset, alignment_);
  uint64_t end = AlignUp(offset + bytes, alignment_);
  AlignedBuffer head(alignment_, std::max<uint32_t>(alignment_, 4096));
  AlignedBuffer tail(alignment_, std::max<uint32_t>(alignment_, 4096));
  uint64_t head_len = offset - begin;
  uint64_t tail_len = end - (offset + bytes);
  bool same_block = end - begin == alignment_;
  // QEMU's events: the head pair when there is a head, the tail pair when there is a
  // tail. A write within one block reads that block once (into `head`).
  if (head_len > 0) {
    NotifySelf(DebugEvent::kPwritevRmwHead);
    STRATA_RETURN_IF_ERROR(instance_->Preadv(begin, alignment_, head.AsIoVector(), 0));
    NotifySelf(DebugEvent::kPwritevRmwAfterHead);
  }
  if (tail_len > 0) {
    NotifySelf(DebugEvent::kPwritevRmwTail);
    if (!same_block) {
      STRATA_RETURN_IF_ERROR(
          instance_->Preadv(end - alignment_, alignment_, tail.AsIoVector(), 0));
    } else if (head_len == 0) {
      STRATA_RETURN_IF_ERROR(instance_->Preadv(begin, alignment_, head.AsIoVector(), 0));
    }
    NotifySelf(DebugEvent::kPwritevRmwAfterTail);
  }
  // O_DIRECT wants aligned memory too; the file driver bounces if the pieces are not.
  return AlignedPwritev(begin, end - begin, PaddedVector(offset, bytes, qiov, head, tail),
                        flags);
}

IoVector BlockDriverState::PaddedVector(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                        AlignedBuffer& head, AlignedBuffer& tail) const {
  const uint64_t begin = AlignDown(offset, alignment_);
  const uint64_t end = AlignUp(offset + bytes, alignment_);
  const uint64_t head_len = offset - begin;
  const uint64_t tail_len = end - (offset + bytes);
  IoVector padded;
  if (end - begin == alignment_) {  // one block: the request's bytes laid over it
    qiov.CopyTo(0, head.data() + head_len, bytes);
    padded.Append(head.data(), alignment_);
  } else {
    if (head_len > 0) padded.Append(head.data(), head_len);
    padded.Concat(qiov);
    if (tail_len > 0) padded.Append(tail.data() + (alignment_ - tail_len), tail_len);
  }
  return padded;
}

absl::Status BlockDriverState::PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) {
  GateRequest request(gate_);
  return DoPwriteZeroes(offset, bytes, flags);
}

absl::Status BlockDriverState::DoPwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) {
  STRATA_RETURN_IF_ERROR(CheckWritable());
  if (bytes == 0) return absl::OkStatus();
  if (offset % alignment_ == 0 && bytes % alignment_ == 0) {
    NotifySelf(DebugEvent::kPwritevZero);
    absl::Status s = instance_->PwriteZeroes(offset, bytes, flags);
    NoteWriteCompleted();
    NotifySelf(DebugEvent::kPwritevDone);
    if (ErrnoOf(s) != ENOTSUP) return s;
    if (flags & kReqNoFallback) return s;
  } else if (flags & kReqNoFallback) {
    return ErrnoError(ENOTSUP);
  } else {
    // Unaligned (QEMU's way): the partial blocks at either end as read-modify-write data
    // writes, the aligned middle as a zero write of its own (which may then need no data
    // at all, such as a qcow2 zero cluster).
    const uint64_t end = offset + bytes;
    const uint64_t middle_start = AlignUp(offset, alignment_);
    const uint64_t middle_end = AlignDown(end, alignment_);
    if (middle_start < middle_end) {
      if (middle_start > offset) {
        STRATA_RETURN_IF_ERROR(DoZeroesByBuffer(offset, middle_start - offset, flags));
      }
      STRATA_RETURN_IF_ERROR(DoPwriteZeroes(middle_start, middle_end - middle_start, flags));
      if (end > middle_end) STRATA_RETURN_IF_ERROR(DoZeroesByBuffer(middle_end, end - middle_end, flags));
      return absl::OkStatus();
    }
  }
  return DoZeroesByBuffer(offset, bytes, flags);
}

absl::Status BlockDriverState::ZeroesByBuffer(uint64_t offset, uint64_t bytes,
                                              uint32_t flags) {
  GateRequest request(gate_);
  return DoZeroesByBuffer(offset, bytes, flags);
}

absl::Status BlockDriverState::DoZeroesByBuffer(uint64_t offset, uint64_t bytes,
                                                uint32_t flags) {
  AlignedBuffer zeroes(std::min<uint64_t>(bytes + 2 * alignment_, kZeroBufferBytes));
  uint64_t chunk_limit = AlignDown(zeroes.size(), std::max<uint32_t>(alignment_, 1));
  while (bytes > 0) {
    uint64_t n = std::min(bytes, chunk_limit);
    STRATA_RETURN_IF_ERROR(
        DoPwritev(offset, n, IoVector(zeroes.data(), n), flags & kReqFua));
    offset += n;
    bytes -= n;
  }
  return absl::OkStatus();
}

absl::Status BlockDriverState::Pdiscard(uint64_t offset, uint64_t bytes) {
  GateRequest request(gate_);
  return DoPdiscard(offset, bytes);
}

absl::Status BlockDriverState::DoPdiscard(uint64_t offset, uint64_t bytes) {
  STRATA_RETURN_IF_ERROR(CheckWritable());
  if (bytes == 0 || !flags_.discard_unmap) return absl::OkStatus();
  absl::Status s = instance_->Pdiscard(offset, bytes);
  NoteWriteCompleted();
  // Discard is advisory: a driver that cannot do it is not an error (QEMU ignores ENOTSUP).
  if (ErrnoOf(s) == ENOTSUP) return absl::OkStatus();
  return s;
}

absl::Status BlockDriverState::Flush() {
  GateRequest request(gate_);
  return DoFlush();
}

absl::Status BlockDriverState::DoFlush() {
  if (BdrvChild* primary = primary_child()) primary->NotifyDebugEvent(DebugEvent::kFlushToOs);
  STRATA_RETURN_IF_ERROR(instance_->FlushToOs());
  uint64_t gen = write_generation_.load(std::memory_order_acquire);
  if (!flags_.cache.no_flush && gen != flushed_generation_.load(std::memory_order_acquire)) {
    if (BdrvChild* primary = primary_child()) {
      primary->NotifyDebugEvent(DebugEvent::kFlushToDisk);
    }
    STRATA_RETURN_IF_ERROR(instance_->FlushToDisk());
    MarkFlushed(gen);
  }
  for (auto& c : children_) STRATA_RETURN_IF_ERROR(c->node().Flush());
  return absl::OkStatus();
}

namespace {
// The block layer's largest length (QEMU's BDRV_MAX_LENGTH).
constexpr uint64_t kMaxLength = AlignDown(INT64_MAX, uint64_t{1} << 30);
}  // namespace

absl::Status BlockDriverState::VmStateRequest(
    uint64_t pos, uint64_t bytes, bool write,
    absl::FunctionRef<absl::Status(DriverInstance&)> at_owner) {
  if (write && read_only()) return ErrnoError(EPERM, "Block node is read-only");
  if (pos > kMaxLength || bytes > kMaxLength - pos) return ErrnoError(EIO);
  GateRequest request(gate_);
  if (instance_->HasVmState()) return at_owner(*instance_);
  BdrvChild* child = primary_child();
  if (child == nullptr) return ErrnoError(ENOTSUP);
  return child->node().VmStateRequest(pos, bytes, write, at_owner);
}

absl::Status BlockDriverState::ReadVmState(uint64_t pos, uint64_t bytes, void* buf) {
  return VmStateRequest(pos, bytes, /*write=*/false, [&](DriverInstance& owner) {
    return owner.ReadVmState(pos, bytes, buf);
  });
}

absl::Status BlockDriverState::WriteVmState(uint64_t pos, uint64_t bytes, const void* buf) {
  return VmStateRequest(pos, bytes, /*write=*/true, [&](DriverInstance& owner) {
    return owner.WriteVmState(pos, bytes, buf);
  });
}

absl::Status BlockDriverState::CheckNewLength(uint64_t length) {
  if (length > static_cast<uint64_t>(INT64_MAX)) {
    return ErrnoError(EINVAL, "Image size cannot be negative");
  }
  if (length > kMaxLength) {
    return ErrnoError(EINVAL, absl::StrCat("offset(", length, ") exceeds maximum(", kMaxLength,
                                           ")"));
  }
  return absl::OkStatus();
}

absl::Status BlockDriverState::Truncate(uint64_t length, bool exact, PreallocMode prealloc) {
  GateRequest request(gate_);
  STRATA_RETURN_IF_ERROR(CheckNewLength(length));
  STRATA_RETURN_IF_ERROR(CheckWritable());
  absl::Status s = instance_->Truncate(length, exact, prealloc);
  NoteWriteCompleted();
  return s;
}

absl::StatusOr<uint64_t> BlockDriverState::GetLength() {
  // QEMU counts lengths in 512-byte sectors at every node; a file of 1000 bytes is a
  // 1024-byte device whose tail reads as zeroes.
  STRATA_ASSIGN_OR_RETURN(uint64_t length, instance_->GetLength());
  return AlignUp(length, 512);
}

absl::StatusOr<uint64_t> BlockDriverState::AllocatedFileSize() {
  absl::StatusOr<uint64_t> own = instance_->AllocatedFileSize();
  if (own.ok() || ErrnoOf(own.status()) != ENOTSUP) return own;
  if (children_.empty()) return own;
  uint64_t total = 0;
  for (auto& c : children_) {
    if (c->role() == ChildRole::kBacking) continue;
    // A child that cannot tell (an NBD export) makes the sum unknown, as in QEMU.
    absl::StatusOr<uint64_t> n = c->node().AllocatedFileSize();
    if (!n.ok()) return n.status();
    total += *n;
  }
  return total;
}

absl::StatusOr<BlockStatus> BlockDriverState::GetBlockStatus(uint64_t offset, uint64_t bytes,
                                                             bool want_zero) {
  GateRequest request(gate_);
  return DoGetBlockStatus(offset, bytes, want_zero);
}

absl::StatusOr<BlockStatus> BlockDriverState::DoGetBlockStatus(uint64_t offset,
                                                               uint64_t bytes,
                                                               bool want_zero) {
  STRATA_ASSIGN_OR_RETURN(uint64_t length, GetLength());
  if (offset >= length) {
    BlockStatus eof;
    return eof;
  }
  bytes = std::min(bytes, length - offset);
  STRATA_ASSIGN_OR_RETURN(BlockStatus s, instance_->GetBlockStatus(offset, bytes));
  if (s.bytes == 0 || s.bytes > bytes) s.bytes = std::min<uint64_t>(s.bytes, bytes);
  if (s.recurse && s.file != nullptr) {
    STRATA_ASSIGN_OR_RETURN(BlockStatus inner,
                            s.file->GetBlockStatus(s.host_offset, s.bytes, want_zero));
    if (inner.bytes == 0) {  // Past the end of the file: reads as zeroes.
      inner.bytes = s.bytes;
      inner.zero = true;
      inner.data = false;
      inner.allocated = true;
    }
    // Allocated iff the status below has data or zero (QEMU's rule): a file always has
    // one of them, a null node not reading zeroes neither; a format node below a filter
    // or a raw node decides itself.
    if (s.file->driver().kind() == DriverKind::kProtocol) {
      inner.allocated = inner.data || inner.zero;
    }
    return inner;
  }
  if (want_zero && s.recurse_for_zero && s.data && !s.zero && s.offset_valid &&
      s.file != nullptr && s.file != this) {
    // Allocated data that the file below stores as a hole reads as zeroes.
    absl::StatusOr<BlockStatus> below = s.file->GetBlockStatus(s.host_offset, s.bytes, true);
    if (below.ok() && below->bytes > 0) {
      // The answer holds only as far as the file's does (data, then a hole, ...).
      s.bytes = std::min(s.bytes, below->bytes);
      if (below->zero && !below->data) s.zero = true;
    }
  }
  return s;
}

absl::StatusOr<BlockStatus> BlockDriverState::GetBlockStatusAbove(uint64_t offset,
                                                                  uint64_t bytes) {
  BlockDriverState* node = this;
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(BlockStatus s, node->GetBlockStatus(offset, bytes));
    if (s.bytes == 0) {  // past this node's end: zeroes
      BlockStatus zero;
      zero.bytes = bytes;
      zero.zero = true;
      return zero;
    }
    const bool last = node->backing() == nullptr;
    if (s.allocated || s.zero || s.data || last) {
      if (!s.allocated && last && !s.data && node->driver().supports_backing()) s.zero = true;
      return s;
    }
    bytes = s.bytes;
    node = &node->backing()->node();
  }
}

absl::StatusOr<uint64_t> BlockDriverState::IsAllocated(uint64_t offset, uint64_t bytes,
                                                       bool* allocated) {
  STRATA_ASSIGN_OR_RETURN(BlockStatus s, GetBlockStatus(offset, bytes, false));
  *allocated = s.allocated;
  return s.bytes;
}

BdrvChild* BlockDriverState::AddChild(std::string name, ChildRole role,
                                      std::unique_ptr<BlockDriverState> node) {
  children_.push_back(std::make_unique<BdrvChild>(std::move(name), role, std::move(node)));
  return children_.back().get();
}

void BlockDriverState::RemoveChild(absl::string_view name) {
  for (auto it = children_.begin(); it != children_.end(); ++it) {
    if ((*it)->name() == name) {
      (void)(*it)->node().Close();
      children_.erase(it);
      return;
    }
  }
}

BdrvChild* BlockDriverState::child(absl::string_view name) const {
  for (const auto& c : children_) {
    if (c->name() == name) return c.get();
  }
  return nullptr;
}

BlockDriverState* BlockDriverState::FindNodeNamed(absl::string_view name) {
  if (!name.empty() && node_name_ == name) return this;
  for (const auto& c : children_) {
    if (BlockDriverState* found = c->node().FindNodeNamed(name)) return found;
  }
  return nullptr;
}

BdrvChild* BlockDriverState::primary_child() const {
  if (BdrvChild* f = file()) return f;
  return child("image");
}

}  // namespace strata
