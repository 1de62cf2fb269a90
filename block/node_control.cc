// strata: the node's control operations (node.h, "Control operations"): permission check,
// quiesce, the driver's hook, resume.
#include "block/node.h"
#include "block/request_gate.h"
#include "block/status.h"

namespace strata {

template <typename Op>
auto BlockDriverState::Controlled(bool writes, Op op) -> decltype(op()) {
  if (writes) STRATA_RETURN_IF_ERROR(CheckWritable());
  QuiescedScope quiesced(gate_);
  return op();
}

absl::Status BlockDriverState::Amend(
    const std::vector<std::pair<std::string, std::string>>& options,
    const AmendProgress& progress) {
  return Controlled(true, [&] { return instance_->Amend(options, progress); });
}

absl::Status BlockDriverState::CreateSnapshot(const std::string& name) {
  return Controlled(true, [&] { return instance_->CreateSnapshot(name); });
}

absl::Status BlockDriverState::ApplySnapshot(const std::string& name) {
  return Controlled(true, [&] { return instance_->ApplySnapshot(name); });
}

absl::Status BlockDriverState::DeleteSnapshot(const std::string& name) {
  return Controlled(true, [&] { return instance_->DeleteSnapshot(name); });
}

absl::Status BlockDriverState::LoadSnapshotForReading(const std::string& id,
                                                      const std::string& name) {
  return Controlled(false, [&] { return instance_->LoadSnapshotForReading(id, name); });
}

absl::Status BlockDriverState::MakeEmpty() {
  return Controlled(true, [&] { return instance_->MakeEmpty(); });
}

absl::Status BlockDriverState::ChangeBackingFile(const std::string& name,
                                                 const std::string& format) {
  return Controlled(true, [&] { return instance_->ChangeBackingFile(name, format); });
}

absl::StatusOr<CheckResult> BlockDriverState::Check(uint32_t fix) {
  return Controlled(fix != 0, [&] { return instance_->Check(fix); });
}

absl::Status BlockDriverState::AddDirtyBitmap(const std::string& name, uint64_t granularity,
                                              bool enabled, absl::string_view node_label) {
  return Controlled(true, [&] {
    return instance_->AddDirtyBitmap(name, granularity, enabled, node_label);
  });
}

absl::Status BlockDriverState::RemoveDirtyBitmap(const std::string& name) {
  return Controlled(true, [&] { return instance_->RemoveDirtyBitmap(name); });
}

absl::Status BlockDriverState::ClearDirtyBitmap(const std::string& name) {
  return Controlled(true, [&] { return instance_->ClearDirtyBitmap(name); });
}

absl::Status BlockDriverState::SetDirtyBitmapEnabled(const std::string& name, bool enabled) {
  return Controlled(true, [&] { return instance_->SetDirtyBitmapEnabled(name, enabled); });
}

absl::Status BlockDriverState::MergeDirtyBitmap(const std::string& target,
                                                BlockDriverState& source,
                                                const std::string& source_name) {
  // The source's bits are copied first (its driver serialises the copy), so that merging a
  // node's bitmap into itself does not read under its own quiesce.
  absl::StatusOr<DirtyBitmap> bits = source.instance_->GetDirtyBitmap(source_name);
  if (!bits.ok()) return bits.status();
  return Controlled(true, [&] { return instance_->MergeDirtyBitmap(target, *bits); });
}

}  // namespace strata
