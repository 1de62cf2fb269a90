// strata api: strata::Node, forwarding to the node (block/node.h), which does the work.
#include "strata/node.h"

#include "api/access.h"
#include "block/child.h"
#include "block/driver.h"
#include "block/node.h"
#include "block/node_filename.h"

namespace strata {
namespace {

Node ChildNode(BdrvChild* child) {
  return ApiAccess::MakeNode(child == nullptr ? nullptr : &child->node());
}

RangeStatus ToRangeStatus(const BlockStatus& s) {
  RangeStatus r;
  r.bytes = s.bytes;
  r.data = s.data;
  r.zero = s.zero;
  r.allocated = s.allocated;
  r.offset_valid = s.offset_valid;
  r.host_offset = s.host_offset;
  r.file = ApiAccess::MakeNode(s.file);
  return r;
}

absl::StatusOr<RangeStatus> ToRangeStatus(const absl::StatusOr<BlockStatus>& s) {
  if (!s.ok()) return s.status();
  return ToRangeStatus(*s);
}

}  // namespace

std::string Node::driver_name() const { return std::string(bs_->driver().name()); }
DriverKind Node::driver_kind() const { return bs_->driver().kind(); }
bool Node::has_protocol_prefix() const { return !bs_->driver().protocol_prefix().empty(); }
bool Node::supports_backing() const { return bs_->driver().supports_backing(); }

absl::StatusOr<std::string> Node::FullBackingFilename(const std::string& backing) const {
  return strata::FullBackingFilename(*bs_, backing);
}
const std::string& Node::filename() const { return bs_->filename(); }
bool Node::CanChangeAtReopen(absl::string_view key) const {
  return bs_->driver().CanChangeAtReopen(key);
}
bool Node::read_only() const { return bs_->read_only(); }
uint32_t Node::request_alignment() const { return bs_->request_alignment(); }
bool Node::supports_compressed_writes() const {
  return bs_->driver().supports_compressed_writes();
}

Node Node::backing() const { return ChildNode(bs_->backing()); }
Node Node::file() const { return ChildNode(bs_->file()); }
Node Node::primary_child() const { return ChildNode(bs_->primary_child()); }
Node Node::child(absl::string_view name) const { return ChildNode(bs_->child(name)); }

absl::Status Node::Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                          uint32_t flags) const {
  return bs_->Preadv(offset, bytes, qiov, flags);
}
absl::Status Node::Pread(uint64_t offset, uint64_t bytes, void* buf) const {
  return bs_->Pread(offset, bytes, buf);
}
absl::Status Node::Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                           uint32_t flags) const {
  return bs_->Pwritev(offset, bytes, qiov, flags);
}
absl::Status Node::Pwrite(uint64_t offset, uint64_t bytes, const void* buf,
                          uint32_t flags) const {
  return bs_->Pwrite(offset, bytes, buf, flags);
}
absl::Status Node::PwriteZeroes(uint64_t offset, uint64_t bytes, uint32_t flags) const {
  return bs_->PwriteZeroes(offset, bytes, flags);
}
absl::Status Node::Pdiscard(uint64_t offset, uint64_t bytes) const {
  return bs_->Pdiscard(offset, bytes);
}
absl::Status Node::Flush() const { return bs_->Flush(); }
absl::Status Node::Truncate(uint64_t length, bool exact, PreallocMode prealloc) const {
  return bs_->Truncate(length, exact, prealloc);
}
absl::StatusOr<uint64_t> Node::GetLength() const { return bs_->GetLength(); }
absl::StatusOr<uint64_t> Node::AllocatedFileSize() const { return bs_->AllocatedFileSize(); }

absl::StatusOr<RangeStatus> Node::GetBlockStatus(uint64_t offset, uint64_t bytes,
                                                 bool want_zero) const {
  return ToRangeStatus(bs_->GetBlockStatus(offset, bytes, want_zero));
}
absl::StatusOr<RangeStatus> Node::GetBlockStatusAbove(uint64_t offset, uint64_t bytes) const {
  return ToRangeStatus(bs_->GetBlockStatusAbove(offset, bytes));
}
absl::Status Node::ReadVmState(uint64_t pos, uint64_t bytes, void* buf) const {
  return bs_->ReadVmState(pos, bytes, buf);
}
absl::Status Node::WriteVmState(uint64_t pos, uint64_t bytes, const void* buf) const {
  return bs_->WriteVmState(pos, bytes, buf);
}
absl::StatusOr<uint64_t> Node::IsAllocated(uint64_t offset, uint64_t bytes,
                                           bool* allocated) const {
  return bs_->IsAllocated(offset, bytes, allocated);
}

DriverInfo Node::GetInfo() const { return bs_->GetInfo(); }
FormatSpecificInfo Node::GetFormatSpecificInfo() const { return bs_->GetFormatSpecificInfo(); }
absl::StatusOr<std::vector<SnapshotInfo>> Node::ListSnapshots() const {
  return bs_->ListSnapshots();
}
bool Node::SupportsDirtyBitmaps() const { return bs_->SupportsDirtyBitmaps(); }
std::vector<DirtyBitmapInfo> Node::ListDirtyBitmaps() const { return bs_->ListDirtyBitmaps(); }
absl::StatusOr<std::vector<DirtyRun>> Node::GetDirtyRuns(const std::string& name,
                                                         uint64_t offset, uint64_t length,
                                                         size_t max_runs) const {
  return bs_->GetDirtyRuns(name, offset, length, max_runs);
}
DebugBreakpoints* Node::FindDebugBreakpoints() const { return bs_->FindDebugBreakpoints(); }

absl::Status Node::Amend(const std::vector<std::pair<std::string, std::string>>& options,
                         const AmendProgress& progress) const {
  return bs_->Amend(options, progress);
}
absl::Status Node::CreateSnapshot(const std::string& name) const {
  return bs_->CreateSnapshot(name);
}
absl::Status Node::ApplySnapshot(const std::string& name) const {
  return bs_->ApplySnapshot(name);
}
absl::Status Node::DeleteSnapshot(const std::string& name) const {
  return bs_->DeleteSnapshot(name);
}
absl::Status Node::LoadSnapshotForReading(const std::string& id,
                                          const std::string& name) const {
  return bs_->LoadSnapshotForReading(id, name);
}
absl::Status Node::MakeEmpty() const { return bs_->MakeEmpty(); }
absl::Status Node::ChangeBackingFile(const std::string& name, const std::string& format) const {
  return bs_->ChangeBackingFile(name, format);
}
absl::StatusOr<CheckResult> Node::Check(uint32_t fix) const { return bs_->Check(fix); }
absl::Status Node::AddDirtyBitmap(const std::string& name, uint64_t granularity, bool enabled,
                                  absl::string_view node_label) const {
  return bs_->AddDirtyBitmap(name, granularity, enabled, node_label);
}
absl::Status Node::RemoveDirtyBitmap(const std::string& name) const {
  return bs_->RemoveDirtyBitmap(name);
}
absl::Status Node::ClearDirtyBitmap(const std::string& name) const {
  return bs_->ClearDirtyBitmap(name);
}
absl::Status Node::SetDirtyBitmapEnabled(const std::string& name, bool enabled) const {
  return bs_->SetDirtyBitmapEnabled(name, enabled);
}
absl::Status Node::MergeDirtyBitmap(const std::string& target, const Node& source,
                                    const std::string& source_name) const {
  return bs_->MergeDirtyBitmap(target, *source.bs_, source_name);
}

}  // namespace strata
