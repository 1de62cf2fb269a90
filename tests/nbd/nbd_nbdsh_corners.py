"""Corner cases of an NBD server as libnbd sees them, printed one result per line.

Run by nbd_nbdsh_test.py through Debian's Python with libnbd's bindings (the module nbdsh
uses), once against qemu-nbd and once against strata-nbd; the two outputs must be equal.
Usage: python3 nbd_nbdsh_corners.py URI
"""
import sys

import nbd

URI = sys.argv[1]


def show(label, fn):
    try:
        print(label, fn())
    except nbd.Error as e:
        print(label, "error", e.errno)


def connected(strict=True, structured=True):
    h = nbd.NBD()
    h.set_request_structured_replies(structured)
    h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    if not strict:
        h.set_strict_mode(0)  # send what libnbd would refuse, let the server answer
    h.connect_uri(URI)
    return h


h = connected()
for flag in ("can_flush", "can_fua", "can_trim", "can_zero", "can_fast_zero", "can_df",
             "can_multi_conn", "can_cache", "is_read_only", "is_rotational",
             "get_structured_replies_negotiated"):
    show(flag, getattr(h, flag))
show("can_meta_context", lambda: h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION))
for name in ("MINIMUM", "PREFERRED", "MAXIMUM"):
    show("block_size " + name, lambda: h.get_block_size(getattr(nbd, "SIZE_" + name)))
size = h.get_size()
print("size", size)

# Reads: plain, DF, structured chunks over data and a hole, past the end.
show("pread", lambda: h.pread(16, 1 << 20).hex())
show("pread DF", lambda: h.pread(16, 1 << 20, flags=nbd.CMD_FLAG_DF).hex())
chunks = []
show("pread_structured", lambda: len(h.pread_structured(
    2 << 20, 0, lambda buf, off, status, err: chunks.append((off, len(buf), status)))))
# The server may split chunks as it likes; what they cover must add up.
print("chunk bytes", sum(c[1] for c in chunks), "holes",
      sum(c[1] for c in chunks if c[2] == nbd.READ_HOLE) > 0)
show("pread past end", lambda: h.pread(512, size))

# Block status: the first extent only (REQ_ONE), then a whole walk.
extents = []
show("block_status REQ_ONE", lambda: h.block_status(
    4 << 20, 0, lambda ctx, off, ents, err: extents.append(ents[:2]),
    flags=nbd.CMD_FLAG_REQ_ONE))
print("extents", extents)
walk = []
show("block_status", lambda: h.block_status(
    size, 0, lambda ctx, off, ents, err: walk.append(len(ents))))
print("walked", sum(walk) > 0)

# Writes and friends.
show("pwrite FUA", lambda: h.pwrite(b"\xab" * 4096, 3 << 20, flags=nbd.CMD_FLAG_FUA))
show("zero", lambda: h.zero(4096, 3 << 20))
show("zero NO_HOLE", lambda: h.zero(4096, 3 << 20, flags=nbd.CMD_FLAG_NO_HOLE))
show("zero FAST_ZERO", lambda: h.zero(65536, 3 << 20, flags=nbd.CMD_FLAG_FAST_ZERO))
show("trim", lambda: h.trim(65536, 3 << 20))
show("cache", lambda: h.cache(65536, 0))
show("flush", lambda: h.flush())
show("read back", lambda: h.pread(8, 3 << 20).hex())
h.shutdown()

# What strict libnbd would not send: zero lengths, unaligned, unknown flags, too large.
h = connected(strict=False)
show("pread zero length", lambda: len(h.pread(0, 0)))
show("pread unaligned", lambda: h.pread(3, 1).hex())
show("pread unknown flag", lambda: h.pread(512, 0, flags=1 << 7))
show("pread too large", lambda: h.pread(64 << 20, 0))
show("zero past end", lambda: h.zero(4096, size))
show("trim past end", lambda: h.trim(4096, size))
show("block_status zero length", lambda: h.block_status(
    0, 0, lambda ctx, off, ents, err: None))
h.shutdown()

# Without structured replies: DF means nothing, block status is refused.
h = connected(structured=False)
show("plain structured", h.get_structured_replies_negotiated)
show("plain can_df", h.can_df)
show("plain can_meta_context", lambda: h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION))
show("plain pread", lambda: h.pread(16, 1 << 20).hex())
h.shutdown()

# Option haggling: list the exports and the contexts, ask about one, then go.
h = nbd.NBD()
h.set_opt_mode(True)
h.connect_uri(URI)
names = []
show("opt_list", lambda: h.opt_list(lambda name, desc: names.append((name, desc))))
print("exports", names)
contexts = []
show("opt_list_meta_context", lambda: h.opt_list_meta_context(
    lambda name: contexts.append(name)))
print("contexts", sorted(contexts))
show("opt_info", lambda: h.opt_info())
show("info size", h.get_size)
show("opt_go", lambda: h.opt_go())
show("after go", lambda: h.pread(4, 0).hex())
h.shutdown()
