#include "drivers/luks/luks2_volume.h"

#include <fcntl.h>
#include <libcryptsetup.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "block/status.h"
#include "drivers/luks/luks_header.h"

namespace strata::luks {
namespace {

// The binary header: magic, version (big-endian u16 at 6), header size (big-endian u64
// at 8: the binary header and its JSON area; a second copy follows the first).
constexpr size_t kBinaryHeaderBytes = 4096;
constexpr uint64_t kMaxHeaderAreaBytes = 256ull << 20;
constexpr uint64_t kCopyChunk = 1 << 20;

uint64_t LoadBe(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// The library never prints: its messages are dropped (failures come back as errnos,
// reported in strata's words).
void DropLibraryMessage(int, const char*, void*) {}

struct CryptDeviceFree {
  void operator()(crypt_device* cd) const { crypt_free(cd); }
};
using CryptDevice = std::unique_ptr<crypt_device, CryptDeviceFree>;

// A memory file closed on scope exit.
class MemoryFile {
 public:
  MemoryFile() : fd_(memfd_create("strata-luks2-header", MFD_CLOEXEC)) {}
  ~MemoryFile() {
    if (fd_ >= 0) close(fd_);
  }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  int fd() const { return fd_; }
  std::string path() const { return absl::StrCat("/proc/self/fd/", fd_); }

  // Copies volume bytes [offset, offset + len) from `read` to the same place.
  absl::Status CopyFrom(VolumeReader read, uint64_t offset, uint64_t len) {
    std::vector<uint8_t> buf(std::min(len, kCopyChunk));
    for (uint64_t done = 0; done < len;) {
      const uint64_t n = std::min<uint64_t>(buf.size(), len - done);
      STRATA_RETURN_IF_ERROR(read(offset + done, n, buf.data()));
      if (pwrite(fd_, buf.data(), n, static_cast<off_t>(offset + done)) !=
          static_cast<ssize_t>(n)) {
        return ErrnoError(errno, "Cannot stage the LUKS2 header");
      }
      done += n;
    }
    return absl::OkStatus();
  }

 private:
  const int fd_;
};

}  // namespace

bool IsLuks2Header(absl::Span<const uint8_t> first_bytes) {
  return first_bytes.size() >= 8 && std::memcmp(first_bytes.data(), kMagic, 6) == 0 &&
         LoadBe(first_bytes.data() + 6, 2) == 2;
}

absl::StatusOr<Luks2Volume> OpenLuks2Volume(VolumeReader read, uint64_t length,
                                            const std::optional<std::string>& passphrase) {
  uint8_t binary[kBinaryHeaderBytes];
  STRATA_RETURN_IF_ERROR(read(0, sizeof(binary), binary));
  const uint64_t header_bytes = LoadBe(binary + 8, 8);
  if (header_bytes < kBinaryHeaderBytes || header_bytes > kMaxHeaderAreaBytes / 2 ||
      2 * header_bytes > length) {
    return ErrnoError(EINVAL, "Volume is not in LUKS format");
  }
  crypt_set_log_callback(nullptr, DropLibraryMessage, nullptr);
  // The memory file is private to this call: no other process can see it, so the
  // library's metadata locks (files under /run) are not needed.
  (void)crypt_metadata_locking(nullptr, 0);
  MemoryFile staged;
  if (staged.fd() < 0) return ErrnoError(errno, "Cannot stage the LUKS2 header");
  // As long as the volume (a sparse file: the data area is never copied), so the
  // library's size checks see the real volume.
  if (ftruncate(staged.fd(), static_cast<off_t>(length)) != 0) {
    return ErrnoError(errno, "Cannot stage the LUKS2 header");
  }
  // Both metadata copies first; the key slots' area once the metadata says where the
  // data begins.
  STRATA_RETURN_IF_ERROR(staged.CopyFrom(read, 0, 2 * header_bytes));
  crypt_device* raw = nullptr;
  if (crypt_init(&raw, staged.path().c_str()) < 0) {
    return ErrnoError(EIO, "Cannot stage the LUKS2 header");
  }
  CryptDevice cd(raw);
  crypt_set_log_callback(cd.get(), DropLibraryMessage, nullptr);
  if (crypt_load(cd.get(), CRYPT_LUKS2, nullptr) < 0) {
    return ErrnoError(EINVAL, "Volume is not in LUKS format");
  }
  Luks2Volume v;
  v.cipher = crypt_get_cipher(cd.get()) ? crypt_get_cipher(cd.get()) : "";
  v.cipher_mode = crypt_get_cipher_mode(cd.get()) ? crypt_get_cipher_mode(cd.get()) : "";
  v.data_offset = crypt_get_data_offset(cd.get()) * 512;
  v.iv_offset = crypt_get_iv_offset(cd.get());
  v.sector_size = static_cast<uint32_t>(crypt_get_sector_size(cd.get()));
  v.uuid = crypt_get_uuid(cd.get()) ? crypt_get_uuid(cd.get()) : "";
  if (crypt_reencrypt_status(cd.get(), nullptr) != CRYPT_REENCRYPT_NONE) {
    return ErrnoError(ENOTSUP, "LUKS2 volumes in reencryption are not supported");
  }
  crypt_params_integrity integrity{};
  if (crypt_get_integrity_info(cd.get(), &integrity) == 0 && integrity.tag_size != 0) {
    return ErrnoError(ENOTSUP, "LUKS2 volumes with integrity protection are not supported");
  }
  if (v.data_offset < 2 * header_bytes || v.data_offset > kMaxHeaderAreaBytes ||
      v.data_offset > length) {
    return ErrnoError(EINVAL, "LUKS2 data offset outside the volume");
  }
  if (v.cipher.empty() || v.cipher_mode.empty()) {
    return ErrnoError(ENOTSUP, "LUKS2 volume without a data segment cipher");
  }
  if (!passphrase.has_value()) return v;
  STRATA_RETURN_IF_ERROR(
      staged.CopyFrom(read, 2 * header_bytes, v.data_offset - 2 * header_bytes));
  std::vector<char> key(static_cast<size_t>(crypt_get_volume_key_size(cd.get())));
  size_t key_size = key.size();
  const int r = crypt_volume_key_get(cd.get(), CRYPT_ANY_SLOT, key.data(), &key_size,
                                     passphrase->data(), passphrase->size());
  if (r < 0) {
    if (r == -EPERM || r == -ENOENT) {
      return ErrnoError(EPERM, "Invalid password, cannot unlock any keyslot");
    }
    return ErrnoError(-r, "Cannot unlock the LUKS2 volume key");
  }
  v.volume_key.assign(key.begin(), key.begin() + key_size);
  std::memset(key.data(), 0, key.size());
  return v;
}

FormatSpecificDict Luks2VolumeInfo(const Luks2Volume& volume) {
  FormatSpecificDict entries;
  auto add = [&](const char* key, auto value) {
    FormatSpecificEntry e;
    e.key = key;
    e.value = std::move(value);
    entries.push_back(std::move(e));
  };
  add("version", int64_t{2});
  add("cipher", volume.cipher);
  add("cipher-mode", volume.cipher_mode);
  add("uuid", volume.uuid);
  add("sector-size", static_cast<int64_t>(volume.sector_size));
  add("payload-offset", static_cast<int64_t>(volume.data_offset));
  return entries;
}

}  // namespace strata::luks
