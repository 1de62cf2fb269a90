#include "drivers/luks/luks_header.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "block/status.h"

namespace strata::luks {
namespace {

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
void PutBe32(uint8_t* p, uint32_t v) {
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}
// A NUL-padded text field.
std::string Text(const uint8_t* p, size_t n) {
  size_t len = 0;
  while (len < n && p[len] != 0) ++len;
  return std::string(reinterpret_cast<const char*>(p), len);
}
void PutText(uint8_t* p, size_t n, const std::string& s) {
  std::memcpy(p, s.data(), std::min(n - 1, s.size()));
}

// Field offsets of the LUKS1 phdr.
constexpr size_t kVersion = 6, kCipherName = 8, kCipherMode = 40, kHashSpec = 72,
                 kPayloadOffset = 104, kKeyBytes = 108, kMkDigest = 112, kMkSalt = 132,
                 kMkIterations = 164, kUuid = 168, kSlot0 = 208, kSlotBytes = 48;

}  // namespace

std::string LuksHeader::mode() const { return cipher_mode.substr(0, cipher_mode.find('-')); }

std::string LuksHeader::ivgen() const {
  const size_t dash = cipher_mode.find('-');
  if (dash == std::string::npos) return "";
  std::string iv = cipher_mode.substr(dash + 1);
  return iv.substr(0, iv.find(':'));
}

std::string LuksHeader::ivgen_hash() const {
  const size_t colon = cipher_mode.find(':');
  return colon == std::string::npos ? "" : cipher_mode.substr(colon + 1);
}

absl::StatusOr<LuksHeader> ParseHeader(absl::Span<const uint8_t> buf) {
  if (buf.size() < kHeaderBytes || std::memcmp(buf.data(), kMagic, 6) != 0) {
    return ErrnoError(EINVAL, "Volume is not in LUKS format");
  }
  const uint8_t* p = buf.data();
  LuksHeader h;
  h.version = static_cast<uint16_t>((p[kVersion] << 8) | p[kVersion + 1]);
  if (h.version != 1) {
    return ErrnoError(ENOTSUP, absl::StrCat("Unsupported LUKS version ", h.version));
  }
  h.cipher_name = Text(p + kCipherName, 32);
  h.cipher_mode = Text(p + kCipherMode, 32);
  h.hash_spec = Text(p + kHashSpec, 32);
  h.payload_offset = Be32(p + kPayloadOffset);
  h.key_bytes = Be32(p + kKeyBytes);
  std::memcpy(h.mk_digest.data(), p + kMkDigest, 20);
  std::memcpy(h.mk_digest_salt.data(), p + kMkSalt, 32);
  h.mk_digest_iterations = Be32(p + kMkIterations);
  h.uuid = Text(p + kUuid, 40);
  for (size_t i = 0; i < kSlots; ++i) {
    const uint8_t* s = p + kSlot0 + i * kSlotBytes;
    KeySlot& k = h.slots[i];
    k.active = Be32(s);
    k.iterations = Be32(s + 4);
    std::memcpy(k.salt.data(), s + 8, 32);
    k.key_offset = Be32(s + 40);
    k.stripes = Be32(s + 44);
  }
  return h;
}

std::vector<uint8_t> SerializeHeader(const LuksHeader& h) {
  std::vector<uint8_t> out(kHeaderBytes, 0);
  uint8_t* p = out.data();
  std::memcpy(p, kMagic, 6);
  p[kVersion] = h.version >> 8;
  p[kVersion + 1] = h.version & 0xff;
  PutText(p + kCipherName, 32, h.cipher_name);
  PutText(p + kCipherMode, 32, h.cipher_mode);
  PutText(p + kHashSpec, 32, h.hash_spec);
  PutBe32(p + kPayloadOffset, h.payload_offset);
  PutBe32(p + kKeyBytes, h.key_bytes);
  std::memcpy(p + kMkDigest, h.mk_digest.data(), 20);
  std::memcpy(p + kMkSalt, h.mk_digest_salt.data(), 32);
  PutBe32(p + kMkIterations, h.mk_digest_iterations);
  PutText(p + kUuid, 40, h.uuid);
  for (size_t i = 0; i < kSlots; ++i) {
    uint8_t* s = p + kSlot0 + i * kSlotBytes;
    const KeySlot& k = h.slots[i];
    PutBe32(s, k.active);
    PutBe32(s + 4, k.iterations);
    std::memcpy(s + 8, k.salt.data(), 32);
    PutBe32(s + 40, k.key_offset);
    PutBe32(s + 44, k.stripes);
  }
  return out;
}

}  // namespace strata::luks
