#!/usr/bin/env python3
"""LUKS2 volumes made by cryptsetup, read and written by strata, judged independently.

QEMU 7.2 cannot open LUKS2 (it refuses "Unsupported LUKS version 2"), so the oracle is
cryptsetup plus this script: cryptsetup makes each volume and gives up its volume key
(`luksDump --dump-volume-key`); the script decrypts and encrypts data sectors itself with
Python's `cryptography` (AES in XTS or CBC, plain64 or ESSIV IVs, each sector of the
volume's sector size one message under the IV of its first 512-byte sector, as dm-crypt
does for LUKS2).

Setups are generated from a seed: a sector size (512 to 4096), a cipher (aes-xts-plain64
with 256- or 512-bit keys, aes-cbc-essiv:sha256, aes-cbc-plain64), a key derivation
(PBKDF2 or Argon2id, with small forced costs), a volume size. For each:
  1. strata-io writes generated requests (any 512-byte alignment: strata reads, modifies
     and writes whole volume sectors); the script decrypts the file and must find them;
  2. the script encrypts a pattern into the file; strata-io must read it back;
  3. the header is untouched: cryptsetup still unlocks the volume with the passphrase;
  4. a wrong passphrase is refused in QEMU's words and changes nothing;
  5. `info -f luks` shows the volume's cipher, sector size and data offset as cryptsetup
     does; without -f the volume probes as raw, as in QEMU (whose probe knows LUKS1
     only).

Usage: luks2_interop.py --strata-img P --strata-io P [--setups N] [--seed S]
"""
import argparse
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CIPHERS = [("aes-xts-plain64", 256), ("aes-xts-plain64", 512), ("aes-cbc-essiv:sha256", 256),
           ("aes-cbc-plain64", 128)]
SECTOR_SIZES = [512, 1024, 2048, 4096]


class Volume:
    """Independent encryption of a LUKS2 data segment."""

    def __init__(self, key, spec, sector_size, data_offset):
        self.key, self.spec, self.unit, self.data_offset = key, spec, sector_size, data_offset

    def _iv(self, sector512):
        raw = sector512.to_bytes(16, "little")
        if self.spec.endswith("essiv:sha256"):
            essiv = Cipher(algorithms.AES(hashlib.sha256(self.key).digest()), modes.ECB())
            return essiv.encryptor().update(raw)
        return raw

    def _cipher(self, sector512):
        mode = modes.XTS(self._iv(sector512)) if "-xts-" in self.spec else modes.CBC(
            self._iv(sector512))
        return Cipher(algorithms.AES(self.key), mode)

    def crypt(self, guest_offset, data, encrypt):
        """`data` covers whole volume sectors from `guest_offset`."""
        out = bytearray()
        for pos in range(0, len(data), self.unit):
            c = self._cipher((guest_offset + pos) // 512)
            op = c.encryptor() if encrypt else c.decryptor()
            out += op.update(bytes(data[pos:pos + self.unit])) + op.finalize()
        return bytes(out)


def sh(argv, cwd, stdin=None):
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, input=stdin)
    return p.returncode, p.stdout + p.stderr


def volume_key(cwd):
    rc, out = sh(["cryptsetup", "luksDump", "--dump-volume-key", "--key-file=-", "-q",
                  "v.img"], cwd, stdin="pw")
    if rc != 0:
        raise RuntimeError("luksDump --dump-volume-key: " + out)
    dump = out.split("MK dump:", 1)[1]
    return bytes.fromhex("".join(re.findall(r"\b[0-9a-f]{2}\b", dump)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strata-img", required=True)
    ap.add_argument("--strata-io", required=True)
    ap.add_argument("--setups", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    img, io = os.path.abspath(args.strata_img), os.path.abspath(args.strata_io)
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="luks2.", dir=os.environ.get("TEST_TMPDIR"))
    checks = failures = 0

    def check(ok, what):
        nonlocal checks, failures
        checks += 1
        if not ok:
            failures += 1
            print("FAIL " + what)

    secret = ["--object", "secret,id=sec0,data=pw"]
    opts = "driver=luks,key-secret=sec0,file.filename=v.img"
    try:
        for n in range(args.setups):
            spec, bits = rng.choice(CIPHERS)
            unit = rng.choice(SECTOR_SIZES)
            kdf = rng.choice(["pbkdf2", "argon2id"])
            size = rng.choice([1, 3, 8]) << 20
            setup = "setup %d (%s %d bits, sector %d, %s, %d MiB)" % (n, spec, bits, unit, kdf,
                                                                      size >> 20)
            d = os.path.join(work, str(n))
            os.mkdir(d)
            cost = (["--pbkdf-force-iterations", "1000"] if kdf == "pbkdf2" else
                    ["--pbkdf-force-iterations", "4", "--pbkdf-memory", "32"])
            # A small header area (1 MiB of key slots) keeps the files small.
            with open(os.path.join(d, "v.img"), "wb") as f:
                f.truncate(size + (2 << 20))
            rc, out = sh(["cryptsetup", "luksFormat", "--type", "luks2", "-q", "--cipher", spec,
                          "--key-size", str(bits), "--sector-size", str(unit), "--pbkdf", kdf,
                          "--luks2-keyslots-size", "1m", "--luks2-metadata-size", "16k",
                          "--key-file=-"] + cost + ["v.img"], d, stdin="pw")
            if rc != 0:
                check(False, "%s: cryptsetup luksFormat: %s" % (setup, out))
                continue
            _, dump = sh(["cryptsetup", "luksDump", "v.img"], d)
            data_offset = int(re.search(r"offset:\s+(\d+) \[bytes\]", dump).group(1))
            vol = Volume(volume_key(d), spec, unit, data_offset)
            guest_size = (os.path.getsize(os.path.join(d, "v.img")) - data_offset) // unit * unit

            # 1. strata writes; the script decrypts.
            model = {}
            cmds = []
            for k in range(rng.randint(3, 10)):
                length = rng.choice([512, 1024, 4096, 8192, 65536])
                offset = rng.randrange(0, (guest_size - length) // 512) * 512
                pattern = rng.randrange(1, 256)
                cmds += ["-c", "write -P %d %d %d" % (pattern, offset, length)]
                for s in range(offset // 512, (offset + length) // 512):
                    model[s] = pattern
            rc, out = sh([io] + secret + ["--image-opts", opts] + cmds, d)
            check(rc == 0 and "error" not in out.lower(), "%s: strata-io writes: %s" % (setup, out))
            with open(os.path.join(d, "v.img"), "rb") as f:
                f.seek(data_offset)
                plain = vol.crypt(0, f.read(guest_size), encrypt=False)
            bad = [s for s, p in model.items() if plain[s * 512:(s + 1) * 512] != bytes([p]) * 512]
            check(not bad, "%s: sectors strata wrote decrypt wrong: %s" % (setup, bad[:5]))

            # 2. the script encrypts; strata reads.
            length = unit * rng.randint(1, 8)
            offset = rng.randrange(0, (guest_size - length) // unit) * unit
            with open(os.path.join(d, "v.img"), "r+b") as f:
                f.seek(data_offset + offset)
                f.write(vol.crypt(offset, b"\xc7" * length, encrypt=True))
            rc, out = sh([io] + secret + ["--image-opts", opts, "-c",
                                          "read -P 0xc7 %d %d" % (offset, length)], d)
            check(rc == 0 and "verification failed" not in out,
                  "%s: strata-io reads the script's sectors: %s" % (setup, out))

            # 3. the header is untouched.
            rc, out = sh(["cryptsetup", "luksOpen", "--test-passphrase", "--key-file=-",
                          "v.img"], d, stdin="pw")
            check(rc == 0, "%s: cryptsetup no longer unlocks the volume: %s" % (setup, out))

            # 4. wrong passphrase.
            before = hashlib.sha256(open(os.path.join(d, "v.img"), "rb").read()).digest()
            rc, out = sh([io, "--object", "secret,id=sec0,data=nope", "--image-opts", opts,
                          "-c", "write 0 4k"], d)
            check("Invalid password, cannot unlock any keyslot" in out,
                  "%s: wrong passphrase: %s" % (setup, out))
            after = hashlib.sha256(open(os.path.join(d, "v.img"), "rb").read()).digest()
            check(before == after, "%s: a wrong passphrase changed the volume" % setup)

            # 5. info.
            rc, out = sh([img, "info", "-f", "luks", "v.img"], d)
            cipher, mode = spec.split("-", 1)
            want = ["file format: luks", "virtual size: %s" % "", "version: 2",
                    "cipher: " + cipher, "cipher mode: " + mode, "sector size: %d" % unit,
                    "payload offset: %d" % data_offset, "(%d bytes)" % guest_size]
            missing = [w for w in want if w not in out]
            check(rc == 0 and not missing, "%s: info lacks %s:\n%s" % (setup, missing, out))
            rc, out = sh([img, "info", "v.img"], d)
            _, qout = sh(["qemu-img", "info", "v.img"], d)
            check(out.replace("strata-img", "qemu-img") == qout and "file format: raw" in out,
                  "%s: probed info differs from QEMU's:\n%s\n%s" % (setup, out, qout))
            shutil.rmtree(d)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d luks2 interop checks, %d failed" % (checks, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
