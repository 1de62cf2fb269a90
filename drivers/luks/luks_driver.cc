// strata luks: the `luks` format driver: a LUKS1 volume on its `file` child, as QEMU
// reads and writes it. The guest sees the payload (from the header's payload offset to
// the end of the file), each 512-byte sector encrypted with the master key, the sector
// number (from 0 at the payload) as the IV. Opening unlocks the master key from the
// first key slot the passphrase (--object secret, key-secret=ID) opens; a metadata-only
// open (info) needs no passphrase.
//
// Thread safety: immutable after open (the cipher is read-only); requests run in
// parallel, each with its own bounce buffer.
#include <cerrno>
#include <cinttypes>
#include <cstring>

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
#include "drivers/luks/luks_crypto.h"
#include "drivers/luks/luks_header.h"

namespace strata::luks {
namespace {

constexpr uint64_t kSector = 512;
constexpr uint32_t kStripes = 4000;
// Writes are encrypted through a bounce buffer of at most this many bytes at a time.
constexpr uint64_t kBounceBytes = 1 << 20;
// QEMU's layout: key material from 4 KiB on, each slot's area rounded up to 4 KiB, the
// payload after the eight slots.
constexpr uint64_t kSlotAlign = 4096;

uint64_t SlotSectors(uint32_t key_bytes) {
  return (uint64_t{key_bytes} * kStripes + kSlotAlign - 1) / kSlotAlign * kSlotAlign / kSector;
}

// "aes-256" and the mode: the key length.
absl::StatusOr<uint32_t> KeyBytes(const std::string& alg, const std::string& mode) {
  uint32_t bits = 0;
  if (alg == "aes-128") bits = 128;
  else if (alg == "aes-192") bits = 192;
  else if (alg == "aes-256") bits = 256;
  else return ErrnoError(EINVAL, absl::StrCat("Invalid parameter '", alg, "'"));
  return bits / 8 * (mode == "xts" ? 2 : 1);
}

std::string AlgName(const LuksHeader& h) {
  const uint32_t bits = h.key_bytes * 8 / (h.mode() == "xts" ? 2 : 1);
  return absl::StrCat(h.cipher_name, "-", bits);
}

// The key-material sectors of a slot (the split key, rounded up to sectors).
uint64_t MaterialBytes(const LuksHeader& h, const KeySlot& s) {
  return (uint64_t{h.key_bytes} * s.stripes + kSector - 1) / kSector * kSector;
}

absl::StatusOr<std::unique_ptr<SectorCipher>> CipherFor(const LuksHeader& h,
                                                       const std::vector<uint8_t>& key) {
  return SectorCipher::Create(h.cipher_name, h.mode(), h.ivgen(), h.ivgen_hash(), key);
}

// The master key the passphrase unlocks, or EPERM.
absl::StatusOr<std::vector<uint8_t>> Unlock(BlockDriverState& file, const LuksHeader& h,
                                            const std::string& passphrase) {
  if (HashLength(h.hash_spec) == 0) {
    return ErrnoError(ENOTSUP, absl::StrCat("Unsupported hash algorithm ", h.hash_spec));
  }
  for (const KeySlot& s : h.slots) {
    if (s.active != kSlotActive || s.stripes == 0 || s.stripes > 100000) continue;
    STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> slot_key,
                            Pbkdf2(h.hash_spec, passphrase, s.salt.data(), s.salt.size(),
                                   s.iterations, h.key_bytes));
    std::vector<uint8_t> material(MaterialBytes(h, s));
    STRATA_RETURN_IF_ERROR(file.Pread(uint64_t{s.key_offset} * kSector, material.size(),
                                      material.data()));
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<SectorCipher> c, CipherFor(h, slot_key));
    c->Decrypt(0, material.data(), material.size());
    std::vector<uint8_t> mk = AfMerge(h.hash_spec, material.data(), h.key_bytes, s.stripes);
    STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> digest,
                            Pbkdf2(h.hash_spec, std::string(mk.begin(), mk.end()),
                                   h.mk_digest_salt.data(), h.mk_digest_salt.size(),
                                   h.mk_digest_iterations, h.mk_digest.size()));
    if (std::memcmp(digest.data(), h.mk_digest.data(), digest.size()) == 0) return mk;
  }
  return ErrnoError(EPERM, "Invalid password, cannot unlock any keyslot");
}

class LuksInstance : public DriverInstance {
 public:
  LuksInstance(BdrvChild* file, LuksHeader header, std::unique_ptr<SectorCipher> cipher)
      : file_(file),
        header_(std::move(header)),
        payload_(uint64_t{header_.payload_offset} * kSector),
        cipher_(std::move(cipher)) {}

  absl::Status Preadv(uint64_t offset, uint64_t bytes, const IoVector& qiov,
                      uint32_t flags) override {
    if (!cipher_) return ErrnoError(EIO);
    std::vector<uint8_t> buf(bytes);
    STRATA_RETURN_IF_ERROR(file_->node().Pread(payload_ + offset, bytes, buf.data()));
    cipher_->Decrypt(offset / kSector, buf.data(), buf.size());
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
      cipher_->Encrypt((offset + done) / kSector, buf.data(), n);
      STRATA_RETURN_IF_ERROR(
          file_->node().Pwrite(payload_ + offset + done, n, buf.data(), flags & kReqFua));
      done += n;
    }
    return absl::OkStatus();
  }
  // Zeroes must be encrypted like data: the node writes a zero buffer instead.
  absl::Status PwriteZeroes(uint64_t, uint64_t, uint32_t) override { return ErrnoError(ENOTSUP); }
  absl::Status Truncate(uint64_t length, bool exact, PreallocMode prealloc) override {
    return file_->node().Truncate(payload_ + length, exact, prealloc);
  }
  absl::StatusOr<uint64_t> GetLength() override {
    STRATA_ASSIGN_OR_RETURN(uint64_t len, file_->node().GetLength());
    return len < payload_ ? 0 : (len - payload_) / kSector * kSector;
  }
  absl::StatusOr<uint64_t> AllocatedFileSize() override {
    return file_->node().AllocatedFileSize();
  }
  uint32_t request_alignment() const override { return kSector; }

  DriverInfo GetInfo() override {
    DriverInfo info;
    info.encrypted = true;
    return info;
  }
  // In QEMU's order (its QDict's), for human and JSON output alike.
  FormatSpecificInfo GetFormatSpecificInfo() override {
    FormatSpecificInfo fs;
    fs.type = "luks";
    auto add = [&](FormatSpecificDict& d, const char* key, auto value) {
      FormatSpecificEntry e;
      e.key = key;
      e.value = std::move(value);
      d.push_back(std::move(e));
    };
    add(fs.entries, "ivgen-alg", header_.ivgen());
    add(fs.entries, "hash-alg", header_.hash_spec);
    add(fs.entries, "cipher-alg", AlgName(header_));
    add(fs.entries, "uuid", header_.uuid);
    if (!header_.ivgen_hash().empty()) add(fs.entries, "ivgen-hash-alg", header_.ivgen_hash());
    add(fs.entries, "cipher-mode", header_.mode());
    std::vector<FormatSpecificDict> slots;
    for (const KeySlot& s : header_.slots) {
      FormatSpecificDict d;
      const bool active = s.active == kSlotActive;
      add(d, "active", active);
      if (active) add(d, "iters", static_cast<int64_t>(s.iterations));
      add(d, "key-offset", static_cast<int64_t>(uint64_t{s.key_offset} * kSector));
      if (active) add(d, "stripes", static_cast<int64_t>(s.stripes));
      slots.push_back(std::move(d));
    }
    add(fs.entries, "slots", std::move(slots));
    add(fs.entries, "payload-offset", static_cast<int64_t>(payload_));
    add(fs.entries, "master-key-iters", static_cast<int64_t>(header_.mk_digest_iterations));
    return fs;
  }

 private:
  BdrvChild* const file_;
  const LuksHeader header_;
  const uint64_t payload_;
  const std::unique_ptr<SectorCipher> cipher_;  // null: opened for metadata only
};

// The create options QEMU's luks driver takes, with its defaults.
struct CreateParams {
  std::string key_secret;
  std::string cipher_alg = "aes-256";
  std::string cipher_mode = "xts";
  std::string ivgen_alg = "plain64";
  std::string ivgen_hash_alg = "sha256";
  std::string hash_alg = "sha256";
  uint64_t iter_time = 2000;
};

class LuksDriver : public BlockDriver {
 public:
  absl::string_view name() const override { return "luks"; }
  DriverKind kind() const override { return DriverKind::kFormat; }
  int Probe(absl::Span<const uint8_t> header, absl::string_view) const override {
    return header.size() >= 6 && std::memcmp(header.data(), kMagic, 6) == 0 ? 100 : 0;
  }

  absl::StatusOr<std::unique_ptr<DriverInstance>> Open(OpenContext& ctx) const override {
    const proto::LuksOptions& opts = ctx.options().luks();
    OpenFlags child_flags = ctx.flags();
    child_flags.format_probed = false;
    STRATA_ASSIGN_OR_RETURN(BdrvChild * file,
                            ctx.OpenChild("file", ChildRole::kFile, opts.file(),
                                          FormatChildPermissions(ctx.flags().read_only),
                                          child_flags));
    STRATA_ASSIGN_OR_RETURN(uint64_t length, file->node().GetLength());
    std::vector<uint8_t> buf(std::min<uint64_t>(length, kHeaderBytes));
    STRATA_RETURN_IF_ERROR(file->node().Pread(0, buf.size(), buf.data()));
    STRATA_ASSIGN_OR_RETURN(LuksHeader h, ParseHeader(buf));
    if (h.key_bytes == 0 || h.key_bytes > 64) {
      return ErrnoError(EINVAL, absl::StrCat("Unsupported key length ", h.key_bytes));
    }
    std::unique_ptr<SectorCipher> cipher;
    if (!ctx.flags().no_io) {
      if (opts.key_secret().empty()) {
        return ErrnoError(EINVAL, "Parameter 'key-secret' is required for cipher");
      }
      STRATA_ASSIGN_OR_RETURN(std::string passphrase, LookupSecret(opts.key_secret()));
      STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> mk, Unlock(file->node(), h, passphrase));
      STRATA_ASSIGN_OR_RETURN(cipher, CipherFor(h, mk));
    }
    return std::unique_ptr<DriverInstance>(
        std::make_unique<LuksInstance>(file, std::move(h), std::move(cipher)));
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

  absl::Status Create(const CreateRequest& request) const override {
    CreateParams p;
    for (const auto& [k, v] : request.options) {
      if (k == "key-secret") p.key_secret = v;
      else if (k == "cipher-alg") p.cipher_alg = v;
      else if (k == "cipher-mode") p.cipher_mode = v;
      else if (k == "ivgen-alg") p.ivgen_alg = v;
      else if (k == "ivgen-hash-alg") p.ivgen_hash_alg = v;
      else if (k == "hash-alg") p.hash_alg = v;
      else if (k == "iter-time") {
        if (!absl::SimpleAtoi(v, &p.iter_time)) {
          return ErrnoError(EINVAL, absl::StrCat("Parameter 'iter-time' expects a number"));
        }
      }
    }
    if (p.key_secret.empty()) {
      return ErrnoError(EINVAL, "Parameter 'key-secret' is required for cipher");
    }
    STRATA_ASSIGN_OR_RETURN(std::string passphrase, LookupSecret(p.key_secret));
    if (HashLength(p.hash_alg) == 0) {
      return ErrnoError(EINVAL, absl::StrCat("Invalid parameter '", p.hash_alg, "'"));
    }
    STRATA_ASSIGN_OR_RETURN(const uint32_t key_bytes, KeyBytes(p.cipher_alg, p.cipher_mode));
    LuksHeader h;
    h.cipher_name = "aes";
    h.cipher_mode = p.cipher_mode + "-" + p.ivgen_alg;
    if (p.ivgen_alg == "essiv") h.cipher_mode += ":" + p.ivgen_hash_alg;
    h.hash_spec = p.hash_alg;
    h.key_bytes = key_bytes;
    const std::vector<uint8_t> mk = RandomBytes(key_bytes);
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<SectorCipher> data_cipher, CipherFor(h, mk));
    const std::vector<uint8_t> salt = RandomBytes(32);
    std::copy(salt.begin(), salt.end(), h.mk_digest_salt.begin());
    h.mk_digest_iterations =
        std::max<uint32_t>(1000, IterationsForTime(p.hash_alg, 20, p.iter_time) / 8);
    STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> digest,
                            Pbkdf2(h.hash_spec, std::string(mk.begin(), mk.end()),
                                   h.mk_digest_salt.data(), 32, h.mk_digest_iterations, 20));
    std::copy(digest.begin(), digest.end(), h.mk_digest.begin());
    const std::vector<uint8_t> u = RandomBytes(16);
    h.uuid = absl::StrFormat("%02x%02x%02x%02x-%02x%02x-4%x%02x-%x%x%02x-%02x%02x%02x%02x%02x%02x",
                             u[0], u[1], u[2], u[3], u[4], u[5], u[6] & 0xf, u[7],
                             8 | (u[8] & 3), u[8] >> 4 & 0xf, u[9], u[10], u[11], u[12], u[13],
                             u[14], u[15]);
    const uint64_t slot_sectors = SlotSectors(key_bytes);
    for (size_t i = 0; i < kSlots; ++i) {
      h.slots[i].key_offset = static_cast<uint32_t>(kSlotAlign / kSector + i * slot_sectors);
      h.slots[i].stripes = kStripes;
    }
    h.payload_offset = static_cast<uint32_t>(kSlotAlign / kSector + kSlots * slot_sectors);
    // Slot 0 holds the master key, split and encrypted with the passphrase's key.
    KeySlot& s = h.slots[0];
    s.active = kSlotActive;
    s.iterations = IterationsForTime(p.hash_alg, key_bytes, p.iter_time);
    const std::vector<uint8_t> slot_salt = RandomBytes(32);
    std::copy(slot_salt.begin(), slot_salt.end(), s.salt.begin());
    STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> slot_key,
                            Pbkdf2(h.hash_spec, passphrase, s.salt.data(), 32, s.iterations,
                                   key_bytes));
    std::vector<uint8_t> material =
        AfSplit(h.hash_spec, mk, kStripes, RandomBytes(uint64_t{key_bytes} * (kStripes - 1)));
    material.resize(MaterialBytes(h, s), 0);
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<SectorCipher> slot_cipher, CipherFor(h, slot_key));
    slot_cipher->Encrypt(0, material.data(), material.size());

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
    const std::vector<uint8_t> header = SerializeHeader(h);
    STRATA_RETURN_IF_ERROR(file->Pwrite(0, header.size(), header.data()));
    STRATA_RETURN_IF_ERROR(
        file->Pwrite(uint64_t{s.key_offset} * kSector, material.size(), material.data()));
    const uint64_t size = (request.size_bytes + kSector - 1) / kSector * kSector;
    STRATA_RETURN_IF_ERROR(file->Truncate(uint64_t{h.payload_offset} * kSector + size, false,
                                          PreallocMode::kOff));
    STRATA_RETURN_IF_ERROR(file->Flush());
    return file->Close();
  }
};

}  // namespace

STRATA_REGISTER_DRIVER(LuksDriver);

}  // namespace strata::luks
