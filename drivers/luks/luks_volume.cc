#include "drivers/luks/luks_volume.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "block/secrets.h"
#include "block/status.h"

namespace strata::luks {
namespace {

constexpr uint32_t kStripes = 4000;
// QEMU's layout: key material from 4 KiB on, each slot's area rounded up to 4 KiB, the
// payload after the eight slots.
constexpr uint64_t kSlotAlign = 4096;

uint64_t SlotSectors(uint32_t key_bytes) {
  return (uint64_t{key_bytes} * kStripes + kSlotAlign - 1) / kSlotAlign * kSlotAlign /
         kSectorBytes;
}

// The cipher-alg values QEMU 7.2 accepts (its QAPI enumeration), and the mode, hash and
// IV generator names.
constexpr const char* kCipherAlgs[] = {"aes-128",     "aes-192",     "aes-256",     "des",
                                       "3des",        "cast5-128",   "serpent-128", "serpent-192",
                                       "serpent-256", "twofish-128", "twofish-192", "twofish-256"};
constexpr const char* kCipherModes[] = {"ecb", "cbc", "xts", "ctr"};
constexpr const char* kIvgenAlgs[] = {"plain", "plain64", "essiv"};
constexpr const char* kHashAlgs[] = {"md5",    "sha1",   "sha224",   "sha256",
                                     "sha384", "sha512", "ripemd160"};

template <size_t N>
absl::Status CheckEnum(const char* const (&values)[N], const std::string& value,
                       const char* param) {
  for (const char* v : values) {
    if (value == v) return absl::OkStatus();
  }
  return ErrnoError(EINVAL, absl::StrCat("Parameter '", param, "' does not accept value '",
                                         value, "'"));
}

// "serpent-256" and the mode: the LUKS cipher name and the key length. QEMU accepts DES
// and 3DES as names but offers neither for LUKS.
absl::StatusOr<std::pair<std::string, uint32_t>> CipherNameAndKeyBytes(const std::string& alg,
                                                                      const std::string& mode) {
  const size_t dash = alg.rfind('-');
  uint32_t bits = 0;
  if (dash == std::string::npos || !absl::SimpleAtoi(alg.substr(dash + 1), &bits)) {
    return ErrnoError(ENOTSUP, absl::StrCat("Algorithm '", alg, "' not supported"));
  }
  return std::make_pair(alg.substr(0, dash), bits / 8 * (mode == "xts" ? 2 : 1));
}

std::string AlgName(const LuksHeader& h) {
  const uint32_t bits = h.key_bytes * 8 / (h.mode() == "xts" ? 2 : 1);
  return absl::StrCat(h.cipher_name, "-", bits);
}

// The key-material sectors of a slot (the split key, rounded up to sectors).
uint64_t MaterialBytes(const LuksHeader& h, const KeySlot& s) {
  return (uint64_t{h.key_bytes} * s.stripes + kSectorBytes - 1) / kSectorBytes * kSectorBytes;
}

std::string NewUuid() {
  const std::vector<uint8_t> u = RandomBytes(16);
  return absl::StrFormat("%02x%02x%02x%02x-%02x%02x-4%x%02x-%x%x%02x-%02x%02x%02x%02x%02x%02x",
                         u[0], u[1], u[2], u[3], u[4], u[5], u[6] & 0xf, u[7], 8 | (u[8] & 3),
                         u[8] >> 4 & 0xf, u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

// A header's cipher fields for `p`; the rest left default.
absl::StatusOr<LuksHeader> CipherFields(const VolumeParams& p) {
  STRATA_ASSIGN_OR_RETURN(const auto name_and_key,
                          CipherNameAndKeyBytes(p.cipher_alg, p.cipher_mode));
  LuksHeader h;
  h.cipher_name = name_and_key.first;
  h.cipher_mode = p.cipher_mode + "-" + p.ivgen_alg;
  if (p.ivgen_alg == "essiv") h.cipher_mode += ":" + p.ivgen_hash_alg;
  h.hash_spec = p.hash_alg;
  h.key_bytes = name_and_key.second;
  return h;
}

}  // namespace

absl::StatusOr<bool> SetVolumeParam(VolumeParams& p, const std::string& key,
                                    const std::string& value, const std::string& prefix) {
  if (key == "key-secret") p.key_secret = value;
  else if (key == "cipher-alg") p.cipher_alg = value;
  else if (key == "cipher-mode") p.cipher_mode = value;
  else if (key == "ivgen-alg") p.ivgen_alg = value;
  else if (key == "ivgen-hash-alg") p.ivgen_hash_alg = value;
  else if (key == "hash-alg") p.hash_alg = value;
  else if (key == "iter-time") {
    if (!absl::SimpleAtoi(value, &p.iter_time)) {
      return ErrnoError(EINVAL, absl::StrCat("Parameter '", prefix, "iter-time' expects a number"));
    }
  } else {
    return false;
  }
  return true;
}

absl::Status ValidateVolumeParams(const VolumeParams& p, const std::string& prefix) {
  // QEMU's order: the enumerations as its option parser meets them, the secret, then
  // what the crypto layer refuses.
  STRATA_RETURN_IF_ERROR(CheckEnum(kCipherAlgs, p.cipher_alg, "cipher-alg"));
  STRATA_RETURN_IF_ERROR(CheckEnum(kCipherModes, p.cipher_mode, "cipher-mode"));
  STRATA_RETURN_IF_ERROR(CheckEnum(kIvgenAlgs, p.ivgen_alg, "ivgen-alg"));
  STRATA_RETURN_IF_ERROR(CheckEnum(kHashAlgs, p.ivgen_hash_alg, "ivgen-hash-alg"));
  STRATA_RETURN_IF_ERROR(CheckEnum(kHashAlgs, p.hash_alg, "hash-alg"));
  if (p.key_secret.empty()) {
    return ErrnoError(EINVAL, absl::StrCat("Parameter '", prefix, "key-secret' is required for cipher"));
  }
  STRATA_RETURN_IF_ERROR(LookupSecret(p.key_secret).status());
  if (p.cipher_alg == "des" || p.cipher_alg == "3des") {
    return ErrnoError(ENOTSUP, absl::StrCat("Algorithm '", p.cipher_alg, "' not supported"));
  }
  STRATA_ASSIGN_OR_RETURN(const LuksHeader h, CipherFields(p));
  // A mode or an IV generator the cipher cannot take fails here.
  return VolumeCipher(h, std::vector<uint8_t>(h.key_bytes, 0)).status();
}

absl::StatusOr<NewVolume> FormatVolume(const VolumeParams& p, const std::string& prefix) {
  STRATA_RETURN_IF_ERROR(ValidateVolumeParams(p, prefix));
  STRATA_ASSIGN_OR_RETURN(std::string passphrase, LookupSecret(p.key_secret));
  NewVolume v;
  STRATA_ASSIGN_OR_RETURN(v.header, CipherFields(p));
  LuksHeader& h = v.header;
  const uint32_t key_bytes = h.key_bytes;
  v.master_key = RandomBytes(key_bytes);
  const std::vector<uint8_t> salt = RandomBytes(32);
  std::copy(salt.begin(), salt.end(), h.mk_digest_salt.begin());
  h.mk_digest_iterations =
      std::max<uint32_t>(1000, IterationsForTime(p.hash_alg, 20, p.iter_time) / 8);
  const std::string mk(v.master_key.begin(), v.master_key.end());
  STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> digest,
                          Pbkdf2(h.hash_spec, mk, h.mk_digest_salt.data(), 32,
                                 h.mk_digest_iterations, 20));
  std::copy(digest.begin(), digest.end(), h.mk_digest.begin());
  h.uuid = NewUuid();
  const uint64_t slot_sectors = SlotSectors(key_bytes);
  for (size_t i = 0; i < kSlots; ++i) {
    h.slots[i].key_offset = static_cast<uint32_t>(kSlotAlign / kSectorBytes + i * slot_sectors);
    h.slots[i].stripes = kStripes;
  }
  h.payload_offset = static_cast<uint32_t>(kSlotAlign / kSectorBytes + kSlots * slot_sectors);
  // Slot 0 holds the master key, split and encrypted with the passphrase's key.
  KeySlot& s = h.slots[0];
  s.active = kSlotActive;
  s.iterations = IterationsForTime(p.hash_alg, key_bytes, p.iter_time);
  const std::vector<uint8_t> slot_salt = RandomBytes(32);
  std::copy(slot_salt.begin(), slot_salt.end(), s.salt.begin());
  STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> slot_key,
                          Pbkdf2(h.hash_spec, passphrase, s.salt.data(), 32, s.iterations,
                                 key_bytes));
  v.material = AfSplit(h.hash_spec, v.master_key, kStripes,
                       RandomBytes(uint64_t{key_bytes} * (kStripes - 1)));
  v.material.resize(MaterialBytes(h, s), 0);
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<SectorCipher> slot_cipher, VolumeCipher(h, slot_key));
  slot_cipher->Encrypt(0, v.material.data(), v.material.size());
  v.material_offset = uint64_t{s.key_offset} * kSectorBytes;
  v.header_bytes = SerializeHeader(h);
  return v;
}

absl::StatusOr<LuksHeader> ReadVolumeHeader(VolumeReader read) {
  std::vector<uint8_t> buf(kHeaderBytes);
  STRATA_RETURN_IF_ERROR(read(0, buf.size(), buf.data()));
  STRATA_ASSIGN_OR_RETURN(LuksHeader h, ParseHeader(buf));
  if (h.key_bytes == 0 || h.key_bytes > 64) {
    return ErrnoError(EINVAL, absl::StrCat("Unsupported key length ", h.key_bytes));
  }
  return h;
}

namespace {

// The master key if `passphrase` opens slot `s`, nullopt if not.
absl::StatusOr<std::optional<std::vector<uint8_t>>> TrySlot(const LuksHeader& h,
                                                            const KeySlot& s,
                                                            const std::string& passphrase,
                                                            VolumeReader read) {
  if (s.active != kSlotActive || s.stripes == 0 || s.stripes > 100000) return std::nullopt;
  STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> slot_key,
                          Pbkdf2(h.hash_spec, passphrase, s.salt.data(), s.salt.size(),
                                 s.iterations, h.key_bytes));
  std::vector<uint8_t> material(MaterialBytes(h, s));
  STRATA_RETURN_IF_ERROR(
      read(uint64_t{s.key_offset} * kSectorBytes, material.size(), material.data()));
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<SectorCipher> c, VolumeCipher(h, slot_key));
  c->Decrypt(0, material.data(), material.size());
  std::vector<uint8_t> mk = AfMerge(h.hash_spec, material.data(), h.key_bytes, s.stripes);
  STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> digest,
                          Pbkdf2(h.hash_spec, std::string(mk.begin(), mk.end()),
                                 h.mk_digest_salt.data(), h.mk_digest_salt.size(),
                                 h.mk_digest_iterations, h.mk_digest.size()));
  if (std::memcmp(digest.data(), h.mk_digest.data(), digest.size()) != 0) return std::nullopt;
  return mk;
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> UnlockVolume(const LuksHeader& h,
                                                  const std::string& passphrase,
                                                  VolumeReader read) {
  if (HashLength(h.hash_spec) == 0) {
    return ErrnoError(ENOTSUP, absl::StrCat("Unsupported hash algorithm ", h.hash_spec));
  }
  for (const KeySlot& s : h.slots) {
    STRATA_ASSIGN_OR_RETURN(std::optional<std::vector<uint8_t>> mk,
                            TrySlot(h, s, passphrase, read));
    if (mk) return *std::move(mk);
  }
  return ErrnoError(EPERM, "Invalid password, cannot unlock any keyslot");
}

std::vector<CreateOptionSpec> KeySlotAmendOptions(const std::string& prefix) {
  return {
      {prefix + "state", "str", "Select new state of affected keyslots (active/inactive)", ""},
      {prefix + "new-secret", "str",
       "New secret to set in the matching keyslots. Empty string to erase", ""},
      {prefix + "old-secret", "str", "Select all keyslots that match this password", ""},
      {prefix + "keyslot", "num", "Select a single keyslot to modify explicitly", ""},
      {prefix + "iter-time", "num", "Time to spend in PBKDF in milliseconds", ""},
  };
}

absl::StatusOr<bool> SetKeySlotAmendParam(KeySlotAmend& a, const std::string& key,
                                          const std::string& value, const std::string& prefix) {
  if (key == "state") {
    if (value != "active" && value != "inactive") {
      return ErrnoError(EINVAL, absl::StrCat("Parameter 'state' does not accept value '", value,
                                             "'"));
    }
    a.state = value;
  } else if (key == "new-secret") {
    a.new_secret = value;
  } else if (key == "old-secret") {
    a.old_secret = value;
  } else if (key == "keyslot") {
    int64_t n;
    if (!absl::SimpleAtoi(value, &n)) {
      return ErrnoError(EINVAL, absl::StrCat("Parameter '", prefix, "keyslot' expects a number"));
    }
    a.keyslot = n;
  } else if (key == "iter-time") {
    uint64_t ms;
    if (!absl::SimpleAtoi(value, &ms)) {
      return ErrnoError(EINVAL, absl::StrCat("Parameter '", prefix, "iter-time' expects a number"));
    }
    a.iter_time = ms;
  } else {
    return false;
  }
  return true;
}

absl::Status AmendKeySlots(LuksHeader& h, const std::vector<uint8_t>& master_key,
                           const KeySlotAmend& a, VolumeReader read, VolumeWriter write) {
  if (a.state.empty()) return ErrnoError(EINVAL, "Parameter 'state' is missing");
  // After the state's own checks (QEMU's order).
  auto check_range = [&]() -> absl::Status {
    if (a.keyslot && (*a.keyslot < 0 || *a.keyslot >= static_cast<int64_t>(kSlots))) {
      // (QEMU prints the number unsigned: -1 is 4294967295.)
      return ErrnoError(EINVAL, absl::StrCat("Invalid keyslot ",
                                             static_cast<uint32_t>(*a.keyslot),
                                             " specified, must be between 0 and 7"));
    }
    return absl::OkStatus();
  };
  auto active = [&](size_t i) { return h.slots[i].active == kSlotActive; };
  if (a.state == "active") {
    if (a.new_secret.empty()) {
      return ErrnoError(EINVAL, "'new-secret' is required to activate a keyslot");
    }
    if (!a.old_secret.empty()) {
      return ErrnoError(EINVAL, "'old-secret' must not be given when activating keyslots");
    }
    STRATA_RETURN_IF_ERROR(check_range());
    size_t slot = kSlots;
    if (a.keyslot) {
      slot = static_cast<size_t>(*a.keyslot);
      if (active(slot)) {
        return ErrnoError(EINVAL, absl::StrCat("Refusing to overwrite active keyslot ", slot,
                                               " - please erase it first"));
      }
    } else {
      for (size_t i = 0; i < kSlots && slot == kSlots; ++i) {
        if (!active(i)) slot = i;
      }
      if (slot == kSlots) {
        return ErrnoError(EINVAL, "Can't add a keyslot - all keyslots are in use");
      }
    }
    STRATA_ASSIGN_OR_RETURN(const std::string passphrase, LookupSecret(a.new_secret));
    LuksHeader next = h;
    KeySlot& s = next.slots[slot];
    s.iterations = IterationsForTime(h.hash_spec, h.key_bytes, a.iter_time.value_or(2000));
    const std::vector<uint8_t> salt = RandomBytes(32);
    std::copy(salt.begin(), salt.end(), s.salt.begin());
    if (s.stripes == 0) s.stripes = kStripes;
    STRATA_ASSIGN_OR_RETURN(std::vector<uint8_t> slot_key,
                            Pbkdf2(h.hash_spec, passphrase, s.salt.data(), 32, s.iterations,
                                   h.key_bytes));
    std::vector<uint8_t> material =
        AfSplit(h.hash_spec, master_key, s.stripes,
                RandomBytes(uint64_t{h.key_bytes} * (s.stripes - 1)));
    material.resize(MaterialBytes(h, s), 0);
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<SectorCipher> cipher, VolumeCipher(h, slot_key));
    cipher->Encrypt(0, material.data(), material.size());
    // The material first: until the header names the slot active, nothing reads it.
    STRATA_RETURN_IF_ERROR(write(uint64_t{s.key_offset} * kSectorBytes, material));
    s.active = kSlotActive;
    STRATA_RETURN_IF_ERROR(write(0, SerializeHeader(next)));
    h = std::move(next);
    return absl::OkStatus();
  }
  // Erasing.
  if (!a.new_secret.empty()) {
    return ErrnoError(EINVAL, "'new-secret' must not be given when erasing keyslots");
  }
  if (a.iter_time) {
    return ErrnoError(EINVAL, "'iter-time' must not be given when erasing keyslots");
  }
  STRATA_RETURN_IF_ERROR(check_range());
  std::string old_passphrase;
  if (!a.old_secret.empty()) {
    STRATA_ASSIGN_OR_RETURN(old_passphrase, LookupSecret(a.old_secret));
  }
  size_t active_count = 0;
  for (size_t i = 0; i < kSlots; ++i) active_count += active(i);
  std::vector<size_t> erase;
  if (a.keyslot) {
    const size_t slot = static_cast<size_t>(*a.keyslot);
    if (!a.old_secret.empty()) {
      STRATA_ASSIGN_OR_RETURN(std::optional<std::vector<uint8_t>> mk,
                              TrySlot(h, h.slots[slot], old_passphrase, read));
      if (!mk) {
        return ErrnoError(EINVAL, absl::StrCat("Given keyslot ", slot,
                                               " doesn't contain the given old password for "
                                               "erase operation"));
      }
    }
    if (!active(slot)) {
      return ErrnoError(EINVAL, absl::StrCat("Given keyslot ", slot,
                                             " is already erased (inactive) "));
    }
    if (active_count == 1) {
      return ErrnoError(EINVAL, absl::StrCat("Attempt to erase the only active keyslot ", slot,
                                             " which will erase all the data in the image "
                                             "irreversibly - refusing operation"));
    }
    erase.push_back(slot);
  } else if (!a.old_secret.empty()) {
    for (size_t i = 0; i < kSlots; ++i) {
      STRATA_ASSIGN_OR_RETURN(std::optional<std::vector<uint8_t>> mk,
                              TrySlot(h, h.slots[i], old_passphrase, read));
      if (mk) erase.push_back(i);
    }
    if (erase.empty()) {
      return ErrnoError(EINVAL, "No keyslots match given (old) password for erase operation");
    }
    if (erase.size() == active_count) {
      return ErrnoError(EINVAL, "All the active keyslots match the (old) password that was "
                                "given and erasing them will erase all the data in the image "
                                "irreversibly - refusing operation");
    }
  } else {
    return ErrnoError(EINVAL, "To erase keyslot(s), either explicit keyslot index or the "
                              "password currently contained in them must be given");
  }
  LuksHeader next = h;
  for (size_t i : erase) {
    KeySlot& s = next.slots[i];
    s.active = kSlotInactive;
    s.iterations = 0;
    s.salt.fill(0);
  }
  // The header first: a slot it no longer names is never read; then its material goes.
  STRATA_RETURN_IF_ERROR(write(0, SerializeHeader(next)));
  for (size_t i : erase) {
    const KeySlot& s = h.slots[i];
    STRATA_RETURN_IF_ERROR(write(uint64_t{s.key_offset} * kSectorBytes,
                                 RandomBytes(MaterialBytes(h, s))));
  }
  h = std::move(next);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SectorCipher>> VolumeCipher(const LuksHeader& h,
                                                           const std::vector<uint8_t>& key) {
  return SectorCipher::Create(h.cipher_name, h.mode(), h.ivgen(), h.ivgen_hash(), key);
}

FormatSpecificDict VolumeInfo(const LuksHeader& h, bool with_format) {
  FormatSpecificDict entries;
  auto add = [](FormatSpecificDict& d, const char* key, auto value) {
    FormatSpecificEntry e;
    e.key = key;
    e.value = std::move(value);
    d.push_back(std::move(e));
  };
  add(entries, "ivgen-alg", h.ivgen());
  add(entries, "hash-alg", h.hash_spec);
  add(entries, "cipher-alg", AlgName(h));
  add(entries, "uuid", h.uuid);
  if (!h.ivgen_hash().empty()) add(entries, "ivgen-hash-alg", h.ivgen_hash());
  if (with_format) add(entries, "format", std::string("luks"));
  add(entries, "cipher-mode", h.mode());
  std::vector<FormatSpecificDict> slots;
  for (const KeySlot& s : h.slots) {
    FormatSpecificDict d;
    const bool active = s.active == kSlotActive;
    add(d, "active", active);
    if (active) add(d, "iters", static_cast<int64_t>(s.iterations));
    add(d, "key-offset", static_cast<int64_t>(uint64_t{s.key_offset} * kSectorBytes));
    if (active) add(d, "stripes", static_cast<int64_t>(s.stripes));
    slots.push_back(std::move(d));
  }
  add(entries, "slots", std::move(slots));
  add(entries, "payload-offset",
      static_cast<int64_t>(uint64_t{h.payload_offset} * kSectorBytes));
  add(entries, "master-key-iters", static_cast<int64_t>(h.mk_digest_iterations));
  return entries;
}

}  // namespace strata::luks
