// strata luks: the `luks` format driver: a LUKS1 volume on its `file` child, as QEMU
// reads and writes it. The guest sees the payload (from the header's payload offset to
// the end of the file), each 512-byte sector encrypted with the master key, the sector
// number (from 0 at the payload) as the IV. Opening unlocks the master key from the
// first key slot the passphrase (--object secret, key-secret=ID) opens; a metadata-only
// open (info) needs no passphrase. LUKS2 volumes (cryptsetup's; QEMU 7.2 refuses them)
// are unlocked through libcryptsetup (luks2_volume.h) and served the same way, with
// their sector size (512 to 4096 bytes) as the unit of encryption and of requests.
//
// Thread safety: immutable after open (the cipher is read-only); requests run in
// parallel, each with its own bounce buffer.
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "block/graph_builder.h"
#include "block/node.h"
#include "block/options_json.h"
#include "block/permissions.h"
#include "block/registry.h"
#include "block/secrets.h"
#include "block/status.h"
#include "drivers/luks/luks2_volume.h"
#include "drivers/luks/luks_crypto.h"
#include "drivers/luks/luks_header.h"
#include "drivers/luks/luks_volume.h"

namespace strata::luks {
namespace {

constexpr uint64_t kSector = kSectorBytes;
// Writes are encrypted through a bounce buffer of at most this many bytes at a time.
constexpr uint64_t kBounceBytes = 1 << 20;

class LuksInstance : public DriverInstance {
 public:
  LuksInstance(BdrvChild* file, LuksHeader header, std::unique_ptr<SectorCipher> cipher,
               std::vector<uint8_t> master_key)
      : file_(file),
        header_(std::move(header)),
        payload_(uint64_t{header_.payload_offset} * kSector),
        unit_(kSector),
        iv_base_(0),
        cipher_(std::move(cipher)),
        master_key_(std::move(master_key)) {}
  // A LUKS2 volume (its key kept only inside the cipher).
  LuksInstance(BdrvChild* file, Luks2Volume volume, std::unique_ptr<SectorCipher> cipher)
      : file_(file),
        payload_(volume.data_offset),
        unit_(volume.sector_size),
        iv_base_(volume.iv_offset),
        cipher_(std::move(cipher)) {
    volume.volume_key.clear();
    luks2_ = std::move(volume);
  }

  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                      uint32_t flags) override {
    if (!cipher_) return ErrnoError(EIO);
    std::vector<uint8_t> buf(bytes);
    STRATA_RETURN_IF_ERROR(file_->node().Pread(payload_ + offset, bytes, buf.data()));
    cipher_->Decrypt(Iv(offset), buf.data(), buf.size());
    qiov.CopyFrom(0, buf.data(), bytes);
    return absl::OkStatus();
  }
  absl::Status Pwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                       uint32_t flags) override {
    if (!cipher_) return ErrnoError(EIO);
    // In pieces through one bounce buffer (the caller's data is never encrypted in place).
    std::vector<uint8_t> buf(std::min(bytes, kBounceBytes));
    for (uint64_t done = 0; done < bytes;) {
      const uint64_t n = std::min<uint64_t>(buf.size(), bytes - done);
      qiov.CopyTo(done, buf.data(), n);
      cipher_->Encrypt(Iv(offset + done), buf.data(), n);
      STRATA_RETURN_IF_ERROR(
          file_->node().Pwrite(payload_ + offset + done, n, buf.data(), flags & kReqFua));
      done += n;
    }
    return absl::OkStatus();
  }
  // The coroutine twins: the transfer awaited on the file child, the cipher run on the
  // awaiting loop (so a LUKS volume takes no pool thread per request).
  aio::Task<absl::Status> CoPreadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                   uint32_t flags) override {
    if (!cipher_) co_return ErrnoError(EIO);
    if (qiov.IsAligned(1, unit_)) {
      // Whole sectors in every piece of the caller's buffer: decrypted in place.
      STRATA_CO_RETURN_IF_ERROR(co_await file_->node().CoPreadv(payload_ + offset, bytes, qiov));
      uint64_t done = 0;
      for (const iovec& piece : qiov.iovecs()) {
        cipher_->Decrypt(Iv(offset + done), static_cast<uint8_t*>(piece.iov_base),
                         piece.iov_len);
        done += piece.iov_len;
      }
      co_return absl::OkStatus();
    }
    std::vector<uint8_t> buf(bytes);
    STRATA_CO_RETURN_IF_ERROR(
        co_await file_->node().CoPreadv(payload_ + offset, bytes, IoVector(buf.data(), bytes)));
    cipher_->Decrypt(Iv(offset), buf.data(), buf.size());
    qiov.CopyFrom(0, buf.data(), bytes);
    co_return absl::OkStatus();
  }
  aio::Task<absl::Status> CoPwritev(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                                    uint32_t flags) override {
    if (!cipher_) co_return ErrnoError(EIO);
    std::vector<uint8_t> buf(std::min(bytes, kBounceBytes));
    for (uint64_t done = 0; done < bytes;) {
      const uint64_t n = std::min<uint64_t>(buf.size(), bytes - done);
      qiov.CopyTo(done, buf.data(), n);
      cipher_->Encrypt(Iv(offset + done), buf.data(), n);
      STRATA_CO_RETURN_IF_ERROR(co_await file_->node().CoPwritev(
          payload_ + offset + done, n, IoVector(buf.data(), n), flags & kReqFua));
      done += n;
    }
    co_return absl::OkStatus();
  }
  // No cache of its own: nothing to write back (FlushToOs is the default no-op).
  aio::Task<absl::Status> CoFlushToOs() override { co_return absl::OkStatus(); }
  // No disk of its own (the file's flush follows): nothing to hand to the pool.
  aio::Task<absl::Status> CoFlushToDisk() override { co_return absl::OkStatus(); }
  // Zeroes must be encrypted like data: the node writes a zero buffer instead.
  absl::Status PwriteZeroes(uint64_t, uint64_t, uint32_t) override { return ErrnoError(ENOTSUP); }
  aio::Task<absl::Status> CoPwriteZeroes(uint64_t, uint64_t, uint32_t) override {
    co_return ErrnoError(ENOTSUP);
  }
  absl::Status Truncate(uint64_t length, bool exact, PreallocMode prealloc) override {
    return file_->node().Truncate(payload_ + length, exact, prealloc);
  }
  absl::StatusOr<uint64_t> GetLength() override {
    STRATA_ASSIGN_OR_RETURN(uint64_t len, file_->node().GetLength());
    return len < payload_ ? 0 : (len - payload_) / unit_ * unit_;
  }
  absl::StatusOr<uint64_t> AllocatedFileSize() override {
    return file_->node().AllocatedFileSize();
  }
  uint32_t request_alignment() const override { return unit_; }

  DriverInfo GetInfo() override {
    DriverInfo info;
    info.encrypted = true;
    return info;
  }
  // In QEMU's order (its QDict's), for human and JSON output alike.
  FormatSpecificInfo GetFormatSpecificInfo() override {
    FormatSpecificInfo fs;
    fs.type = "luks";
    fs.entries = luks2_ ? Luks2VolumeInfo(*luks2_) : VolumeInfo(header_, /*with_format=*/false);
    return fs;
  }

  // qemu-img amend: key-slot management (state, new-secret, old-secret, keyslot,
  // iter-time). The tool runs it with nothing else in flight.
  absl::Status Amend(const std::vector<std::pair<std::string, std::string>>& options,
                     const AmendProgress&) override {
    KeySlotAmend amend;
    for (const auto& [k, v] : options) {
      STRATA_ASSIGN_OR_RETURN(bool taken, SetKeySlotAmendParam(amend, k, v, ""));
      if (!taken) return ErrnoError(EINVAL, absl::StrCat("Invalid parameter '", k, "'"));
    }
    if (luks2_) {
      return ErrnoError(ENOTSUP, "Key slots of LUKS2 volumes are managed by cryptsetup");
    }
    if (!cipher_) return ErrnoError(EIO);
    BlockDriverState& file = file_->node();
    auto read = [&](uint64_t offset, uint64_t len, uint8_t* out) -> absl::Status {
      return file.Pread(offset, len, out);
    };
    auto write = [&](uint64_t offset, const std::vector<uint8_t>& bytes) -> absl::Status {
      if (offset + bytes.size() > payload_) return ErrnoError(EIO);  // never into the data
      STRATA_RETURN_IF_ERROR(file.Pwrite(offset, bytes.size(), bytes.data()));
      return file.Flush();
    };
    return AmendKeySlots(header_, master_key_, amend, read, write);
  }

 private:
  // The IV sector of guest offset `offset`: its 512-byte sector number, plus the volume's
  // IV offset (LUKS2's iv_tweak; 0 for LUKS1).
  uint64_t Iv(uint64_t offset) const { return offset / kSector + iv_base_; }

  BdrvChild* const file_;
  LuksHeader header_;  // LUKS1; changed only by Amend (key slots)
  std::optional<Luks2Volume> luks2_;  // a LUKS2 volume's metadata
  const uint64_t payload_;
  const uint32_t unit_;      // bytes encrypted as one unit; the request alignment
  const uint64_t iv_base_;
  const std::unique_ptr<SectorCipher> cipher_;  // null: opened for metadata only
  const std::vector<uint8_t> master_key_;       // empty: opened for metadata only
};

class LuksDriver : public BlockDriver {
 public:
  absl::string_view name() const override { return "luks"; }
  absl::string_view required_child() const override { return "file"; }
  DriverKind kind() const override { return DriverKind::kFormat; }
  // LUKS1 only, as QEMU probes: a LUKS2 volume probes as raw in both tools, and opens
  // in strata when the format is named (-f luks, driver=luks).
  int Probe(absl::Span<const uint8_t> header, absl::string_view) const override {
    return header.size() >= 8 && std::memcmp(header.data(), kMagic, 6) == 0 &&
                   header[6] == 0 && header[7] == 1
               ? 100
               : 0;
  }

  absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext& ctx) const override {
    const proto::LuksOptions& opts = ctx.options().luks();
    OpenFlags child_flags = ctx.flags();
    child_flags.format_probed = false;
    STRATA_ASSIGN_OR_RETURN(BdrvChild * file,
                            ctx.OpenChild("file", ChildRole::kFile, opts.file(),
                                          FormatChildPermissions(ctx.flags().read_only),
                                          child_flags));
    BlockDriverState& node = file->node();
    STRATA_ASSIGN_OR_RETURN(const uint64_t length, node.GetLength());
    // Reads of the volume: zeroes past the file's end (a short file is "not in LUKS
    // format", as in QEMU).
    auto read = [&](uint64_t offset, uint64_t len, uint8_t* out) -> absl::Status {
      std::memset(out, 0, len);
      if (offset >= length) return absl::OkStatus();
      return node.Pread(offset, std::min(len, length - offset), out);
    };
    uint8_t first[8];
    STRATA_RETURN_IF_ERROR(read(0, sizeof(first), first));
    if (IsLuks2Header(first)) return OpenLuks2(ctx, file, length, read);
    STRATA_ASSIGN_OR_RETURN(LuksHeader h, ReadVolumeHeader(read));
    std::unique_ptr<SectorCipher> cipher;
    std::vector<uint8_t> mk;
    STRATA_ASSIGN_OR_RETURN(std::optional<std::string> passphrase, Passphrase(ctx));
    if (passphrase) {
      STRATA_ASSIGN_OR_RETURN(mk, UnlockVolume(h, *passphrase, read));
      STRATA_ASSIGN_OR_RETURN(cipher, VolumeCipher(h, mk));
    }
    return std::unique_ptr<DriverInstance>(
        std::make_unique<LuksInstance>(file, std::move(h), std::move(cipher), std::move(mk)));
  }

  // The passphrase of `key-secret`; none for a metadata-only open (info). QEMU's
  // refusal when I/O is wanted and no key-secret is given.
  static absl::StatusOr<std::optional<std::string>> Passphrase(OpenContext& ctx) {
    if (ctx.flags().no_io) return std::nullopt;
    const std::string& id = ctx.options().luks().key_secret();
    if (id.empty()) return ErrnoError(EINVAL, "Parameter 'key-secret' is required for cipher");
    STRATA_ASSIGN_OR_RETURN(std::string passphrase, LookupSecret(id));
    return passphrase;
  }

  // A LUKS2 volume: unlocked through libcryptsetup, served by the same instance.
  static absl::StatusOr<std::unique_ptr<DriverInstance>> OpenLuks2(OpenContext& ctx,
                                                                   BdrvChild* file,
                                                                   uint64_t length,
                                                                   VolumeReader read) {
    STRATA_ASSIGN_OR_RETURN(std::optional<std::string> passphrase, Passphrase(ctx));
    STRATA_ASSIGN_OR_RETURN(Luks2Volume volume, OpenLuks2Volume(read, length, passphrase));
    std::unique_ptr<SectorCipher> cipher;
    if (passphrase) {
      LuksHeader spec;  // only for splitting the mode string ("cbc-essiv:sha256")
      spec.cipher_mode = volume.cipher_mode;
      STRATA_ASSIGN_OR_RETURN(cipher,
                              SectorCipher::Create(volume.cipher, spec.mode(), spec.ivgen(),
                                                   spec.ivgen_hash(), volume.volume_key,
                                                   volume.sector_size));
    }
    return std::unique_ptr<DriverInstance>(
        std::make_unique<LuksInstance>(file, std::move(volume), std::move(cipher)));
  }

  // In QEMU's order (the order create's "Formatting" line prints them in).
  std::vector<CreateOptionSpec> create_options() const override {
    return {
        {"size", "size", "Virtual disk size", ""},
        {"key-secret", "str", "ID of the secret that provides the keyslot passphrase", ""},
        {"cipher-alg", "str", "Name of encryption cipher algorithm", ""},
        {"cipher-mode", "str", "Name of encryption cipher mode", ""},
        {"ivgen-alg", "str", "Name of IV generator algorithm", ""},
        {"ivgen-hash-alg", "str", "Name of IV generator hash algorithm", ""},
        {"hash-alg", "str", "Name of encryption hash algorithm", ""},
        {"iter-time", "num", "Time to spend in PBKDF in milliseconds", ""},
    };
  }

  std::vector<CreateOptionSpec> amend_options() const override {
    return KeySlotAmendOptions("");
  }

  absl::Status Create(const CreateRequest& request) const override {
    VolumeParams p;
    for (const auto& [k, v] : request.options) {
      STRATA_RETURN_IF_ERROR(SetVolumeParam(p, k, v, "").status());
    }
    STRATA_ASSIGN_OR_RETURN(const NewVolume volume, FormatVolume(p, ""));
    const BlockDriver* file_driver = DriverRegistry::Global().FindByPrefix(request.filename);
    if (file_driver == nullptr) file_driver = DriverRegistry::Global().Find("file");
    CreateRequest file_request;
    file_request.filename = request.filename;
    STRATA_RETURN_IF_ERROR(file_driver->Create(file_request));
    STRATA_ASSIGN_OR_RETURN(google::protobuf::Struct tree,
                            ProtocolTreeForFilename(request.filename));
    STRATA_ASSIGN_OR_RETURN(proto::BlockdevOptions file_opts, BlockdevOptionsFromTree(tree));
    OpenFlags rw;
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<BlockDriverState> file,
                            OpenGraph(file_opts, rw, FormatChildPermissions(false)));
    STRATA_RETURN_IF_ERROR(
        file->Pwrite(0, volume.header_bytes.size(), volume.header_bytes.data()));
    STRATA_RETURN_IF_ERROR(
        file->Pwrite(volume.material_offset, volume.material.size(), volume.material.data()));
    const uint64_t size = (request.size_bytes + kSector - 1) / kSector * kSector;
    STRATA_RETURN_IF_ERROR(file->Truncate(volume.volume_bytes() + size, false,
                                          PreallocMode::kOff));
    STRATA_RETURN_IF_ERROR(file->Flush());
    return file->Close();
  }
};

}  // namespace

STRATA_REGISTER_DRIVER(LuksDriver);

}  // namespace strata::luks
