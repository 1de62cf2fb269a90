"""Wide crossings for the drop-in corpus: every qemu-io command with each of its flags and
with every class of operand value, and every qemu-img subcommand with each program-wide
option (before and after its operands) and with a bad value in each operand.

Nothing here is picked case by case: the command table below is qemu-io's `help` output
and qemu-img's `--help` turned into data, and the value classes are crossed with all of
it. Each generator yields (tool, group, argv, readonly); dropin_corpus.py runs them.
"""

# qemu-io commands: (flags without a value, flags with a value and values for them,
# operand shape). Operand shapes: "off len", "off lens" (a vector), "off [count]",
# "off" (truncate), "" (none), or a list of literal operand lists.
IO_TABLE = {
    "read": ("abCqvp", {"-P": ["0x11", "0"], "-s": ["5"], "-l": ["10"]}, "off len"),
    "readv": ("Cqv", {"-P": ["0x11"]}, "off lens"),
    "write": ("bcCfnquz", {"-P": ["0x77"], "-s": ["src.bin", "nope.bin"]}, "off len"),
    "writev": ("Cfq", {"-P": ["0x77"]}, "off lens"),
    "aio_read": ("Ciqv", {"-P": ["0x11"]}, "off lens"),
    "aio_write": ("Cfiquz", {"-P": ["0x77"]}, "off lens"),
    "discard": ("Cq", {}, "off len"),
    "alloc": ("", {}, "off [count]"),
    "truncate": ("", {"-m": ["off", "metadata", "falloc", "full"]}, "off"),
    "map": ("", {}, ""),
    "length": ("", {}, ""),
    "info": ("", {}, ""),
    "flush": ("", {}, ""),
    "aio_flush": ("", {}, ""),
    "close": ("", {}, ""),
    "quit": ("", {}, ""),
    "help": ("", {}, [[], ["read"], ["aio_write"], ["open"], ["bogus"], ["read", "x"]]),
    "sleep": ("", {}, [["1"], ["0"], ["x"], ["-1"], ["1k"], [], ["1", "2"]]),
    "sigraise": ("", {}, [["x"], ["0"], ["15"], ["-1"], [], ["1", "2"]]),
    "abort": ("", {}, [[], ["x"]]),
    "open": ("rsCnkU", {"-t": ["none", "writeback"], "-d": ["unmap", "ignore"],
                        "-o": ["driver=qcow2"]}, [["base.qcow2"], [], ["nope.qcow2"]]),
    "reopen": ("rw", {"-c": ["none", "writethrough"], "-o": ["lazy-refcounts=on"]}, [[]]),
    "break": ("", {}, [["read_aio", "A"], ["bogus_event", "A"], ["read_aio"], []]),
    "remove_break": ("", {}, [["A"], []]),
    "resume": ("", {}, [["A"], []]),
    "wait_break": ("", {}, [["A"], []]),
}

# Value classes for each operand kind. Offsets cover the start, unaligned, the last
# cluster, the end and past it, signs, suffixes, hex, fractions, the int64 edge and junk;
# lengths zero, tiny, unaligned, a cluster, across the request limit, signs and junk.
OFFSETS = ["0", "512", "1000", "1.5k", "0x200", "63M", "64M", "65M", "1T", "-1", "x", "1x",
           "9223372036854775807", "9223372036854775808", "8E", ""]
LENGTHS = ["0", "1", "4k", "1000", "65537", "2147483136", "2147483137", "3G", "-1", "x",
           "0x10", "1.5k", "99999999999999999999", ""]
# Bad values for flags that take one.
BAD_FLAG_VALUES = ["x", "300", "-1", ""]


def _flag_variants(flags, valued):
    """Each flag alone, then each valued flag with each good and bad value."""
    yield []
    for f in flags:
        yield ["-" + f]
    for f, values in valued.items():
        for v in values + BAD_FLAG_VALUES:
            yield [f, v]
    yield ["-Z"]  # unknown flag


def _operand_lists(shape):
    if isinstance(shape, list):
        return shape
    if shape == "off len":
        return ([[o, "4k"] for o in OFFSETS] + [["4k", n] for n in LENGTHS] +
                [["0"], [], ["0", "4k", "x"]])
    if shape == "off lens":
        return ([[o, "512", "512"] for o in OFFSETS] + [["4k", n, "512"] for n in LENGTHS] +
                [["0"], [], ["0", "4k"]])
    if shape == "off [count]":
        return [[o] for o in OFFSETS] + [["0", n] for n in LENGTHS] + [[], ["0", "1", "2"]]
    if shape == "off":
        return [[o] for o in OFFSETS[:12]] + [[], ["1M", "2M"]]
    return [[], ["x"]]


def _quote(token):
    return token if token else "''"


def io_wide_cases():
    """qemu-io: each command's flags (good operands) and operand classes (no flags), on a
    qcow2 image, an odd-sized raw image and read-only."""
    for name, (flags, valued, shape) in IO_TABLE.items():
        group = "wide io " + name
        operands = _operand_lists(shape)
        good = operands[1] if shape in ("off len", "off lens") else operands[0]
        if name in ("break", "remove_break", "resume", "wait_break"):
            prefix = ["-c", "open -o driver=raw,file.driver=blkdebug,file.image.filename=raw.img"]
            image = []
        elif name in ("open",):
            prefix, image = [], []
        else:
            prefix, image = [], ["base.qcow2"]
        for variant in _flag_variants(flags, valued):
            cmd = " ".join([name] + [_quote(t) for t in variant + good])
            yield "qemu-io", group, prefix + ["-c", cmd] + image, False
        for ops in operands:
            cmd = " ".join([name] + [_quote(t) for t in ops])
            yield "qemu-io", group, prefix + ["-c", cmd] + image, False
            if image and shape in ("off len", "off lens", "off [count]", "off"):
                yield "qemu-io", group, ["-f", "raw", "-c", cmd, "odd.raw"], False
                yield "qemu-io", group, ["-r", "-c", cmd, "base.qcow2"], True
        # A tab between arguments, and the command with no file open.
        if image:
            tabbed = "\t".join([name] + [_quote(t) for t in good])
            yield "qemu-io", group, ["-c", tabbed] + image, False
            yield "qemu-io", group, ["-c", " ".join([name] + good)], True
            # The null drivers: no data at all, or zeroes.
            cmd = " ".join([name] + [_quote(t) for t in good])
            yield "qemu-io", group, ["-f", "raw", "-c", cmd, "null-co://"], True
            yield "qemu-io", group, ["-c", cmd, "--image-opts",
                                     "driver=null-aio,read-zeroes=on,size=1M"], True


# qemu-io's program options (its --help), short and long, each with good and bad values,
# before and after the file, with a write and a read.
IO_PROGRAM_OPTIONS = [
    ["--object", "secret,id=s0,data=x"], ["--object", "bogus"], ["--image-opts"],
    ["-f", "qcow2"], ["-f", "raw"], ["-f", "bogus"], ["--format=qcow2"], ["-r"],
    ["--read-only"], ["-s"], ["--snapshot"], ["-n"], ["--nocache"], ["-C"],
    ["--copy-on-read"], ["-m"], ["--misalign"], ["-k"], ["--native-aio"], ["-i", "threads"],
    ["-i", "native"], ["-i", "io_uring"], ["-i", "bogus"], ["--aio=threads"],
    ["-t", "none"], ["-t", "writethrough"], ["-t", "directsync"], ["-t", "unsafe"],
    ["-t", "bogus"], ["--cache=writeback"], ["-d", "ignore"], ["-d", "off"], ["-d", "on"],
    ["-d", "bogus"], ["--discard=unmap"], ["-T", "foo"], ["--trace", "enable=x"], ["-U"],
    ["--force-share"], ["-k", "-t", "none"], ["-i", "native", "-n"], ["--cmd"]]


def io_program_cases():
    for opt in IO_PROGRAM_OPTIONS:
        for cmd, readonly in (("write -P 0x42 0 4k", False), ("read 0 4k", True)):
            ro = readonly or any(o in opt for o in ("-r", "--read-only", "-s", "--snapshot"))
            yield "qemu-io", "wide io options", opt + ["-c", cmd, "base.qcow2"], ro
            yield "qemu-io", "wide io options", ["-c", cmd, "base.qcow2"] + opt, ro


# qemu-img subcommands: one command line that works, its read-only promise, and which of
# its tokens are operands (index into argv) with the kind of value each takes.
IMG_BASE = {
    "info": (["info", "base.qcow2"], True, {1: "image"}),
    "check": (["check", "base.qcow2"], True, {1: "image"}),
    "map": (["map", "top.qcow2"], True, {1: "image"}),
    "measure": (["measure", "-O", "qcow2", "base.qcow2"], True, {3: "image"}),
    "compare": (["compare", "base.qcow2", "top.qcow2"], True, {1: "image", 2: "image"}),
    "create": (["create", "-f", "qcow2", "new.qcow2", "1M"], False, {3: "new", 4: "size"}),
    "resize": (["resize", "v2.qcow2", "+1M"], False, {1: "image"}),
    "snapshot": (["snapshot", "-c", "s1", "base.qcow2"], False, {2: "name", 3: "image"}),
    "commit": (["commit", "top.qcow2"], False, {1: "image"}),
    "convert": (["convert", "-O", "raw", "top.qcow2", "out.img"], False,
                {3: "image", 4: "new"}),
    "rebase": (["rebase", "-u", "-b", "", "top.qcow2"], False, {4: "image"}),
    "amend": (["amend", "-o", "lazy_refcounts=on", "base.qcow2"], False, {3: "image"}),
    "bench": (["bench", "-c", "1", "base.qcow2"], False, {3: "image"}),
    "dd": (["dd", "if=raw.img", "of=out.img"], False, {}),
    "bitmap": (["bitmap", "--add", "base.qcow2", "b0"], False, {2: "image", 3: "name"}),
}

# Program-wide options (each subcommand either takes them or refuses them by name), with
# good and bad values.
GLOBAL_OPTIONS = [["-U"], ["-q"], ["-p"], ["-f", "qcow2"], ["-f", "raw"], ["-f", "bogus"],
                  ["-f", ""], ["--object", "secret,id=sec0,data=abc"], ["--object", "bogus"],
                  ["--object", "secret,id=sec0"], ["--object", "help"], ["-T", "foo"],
                  ["--image-opts"], ["--output", "json"], ["--output", "bogus"],
                  ["-t", "none"], ["-t", "bogus"], ["-T", "none"], ["-o", "help"],
                  ["--force-share"], ["--quiet"]]

# Bad values for each operand kind.
BAD_OPERANDS = {
    "image": ["nope.qcow2", "", ".", "json:{", "json:{}", 'json:{"driver": "qcow2"}',
              "raw.img", "odd.raw", "bogus:x"],
    "new": ["", ".", "nodir/x.img", "base.qcow2"],
    "size": ["", "x", "-1", "0", "1.5", "9223372036854775807", "1P"],
    "name": ["", "x" * 300, "s 1"],
}


def img_wide_cases():
    """qemu-img: each program-wide option before and after the operands, and each
    operand replaced by each bad value of its kind."""
    for sub, (argv, readonly, operands) in IMG_BASE.items():
        group = "wide img " + sub
        for opt in GLOBAL_OPTIONS:
            if sub == "commit" and opt == ["-p"]:
                continue  # QEMU's commit -p lines vary from run to run (known_divergences)
            if opt == ["--object", "help"] and sub != "info":
                continue  # one subcommand shows the list (a deliberate divergence)
            # An option that may change the image (a format for a fresh image) keeps the
            # read-only promise of the subcommand.
            yield "qemu-img", group, argv[:1] + opt + argv[1:], readonly
            yield "qemu-img", group, argv + opt, readonly
        for index, kind in operands.items():
            for bad in BAD_OPERANDS[kind]:
                changed = list(argv)
                changed[index] = bad
                yield "qemu-img", group, changed, readonly
        yield "qemu-img", group, argv + ["extra"], readonly


# json: filenames: a valid document cut short at every byte, with each byte deleted, and
# with bytes that matter to a JSON lexer inserted at every place between tokens; then
# value classes (escapes, Unicode, numbers, keywords, nesting, options without a driver).
# Raw bytes that are not UTF-8 are written as surrogate escapes ("\udcff" is byte 0xff),
# which is how they reach argv. Dotted keys ("file.filename") mix with objects.
# (No raw offset or size in the document: with either, QEMU names the node json:{...}, a
# class of its own; the size values below meet it.)
JSON_DOCUMENT = '{"driver":"raw","file":{"driver":"file","filename":"raw.img"}}'
JSON_INSERTS = [" ", ",", ":", "}", "]", "[", '"', "'", "x", "\\", "@", "\t", "1", "{}"]
JSON_VALUES = [
    '"\\u0041"', '"\\u00e9"', '"\\ud800"', '"\\ud83d\\ude00"', '"\\udc00"',
    '"\\uZZZZ"', '"\\u12"', '"\\x41"', '"\\/"', "'it\\'s'", '"\udcc3\udca9"',
    '"\udcc3"', '"\udcff"', '"\x7f"', '"a\tb"', "1", "-0", "1.5", "1e5",
    "1E+5", "01", "-", "1.", ".5", "+1", "0x10", "1e999", "99999999999999999999", "true",
    "false", "null", "nul", "TRUE", "truex", "[]", "[1,]", "[1 2]", "{}", '{"a":1}',
    "[[[[[[[[[[1]]]]]]]]]]", "%d", '"\\u0000"', '"\udcc0\udc80"', '"a\\u0000b"',
    '"\\uFFFF"', '"\\uFDD0"', '"\\uFDF0"', '"\\ud83f\\udfff"', '"\udcef\udcbf\udcbf"',
    '"\udcef\udcb7\udc90"', '"\udcf4\udc8f\udcb8\udc80"']
JSON_DOCUMENTS = [
    "", " ", "[]", "1", '"x"', "null", "{}", '{"file":{"filename":"top.qcow2"}}',
    '{"file":{"driver":"file","filename":"raw.img"}}', '{"file":"raw.img"}', '{"file":1}',
    '{"driver":1}', '{"driver":null,"file":{"filename":"base.qcow2"}}', '{"driver":""}',
    "{'driver':'raw','file':{'driver':'file','filename':'raw.img'}}",
    '{"driver":"raw","file":{"driver":"file","filename":"raw.img"}} {}',
    '{"a":' + "[" * 1023 + "]" * 1023 + "}", '{"a":' + "[" * 1024 + "]" * 1024 + "}",
    '{"driver":"raw","file.filename":"raw.img"}', '{"file.driver":"file","file.filename":"raw.img"}',
    '{"file.filename":"top.qcow2"}', '{"driver":"raw","file":{"driver":"file"},"file.filename":"raw.img"}',
    '{"driver":"raw","file.filename":"raw.img","file":{"filename":"top.qcow2"}}',
    '{"driver":"qcow2","file.driver":"file","file.filename":"top.qcow2","file.locking":"off"}',
    '{"driver":"raw","file.filename":"raw.img","file.aio":"threads"}']


def json_texts():
    doc = JSON_DOCUMENT
    for cut in range(len(doc)):
        yield doc[:cut]
    for at in range(len(doc)):
        yield doc[:at] + doc[at + 1:]
    boundaries = [i for i in range(1, len(doc)) if doc[i - 1] in '{}[],:"' or doc[i] in '{}[],:"']
    for at in boundaries:
        for text in JSON_INSERTS:
            yield doc[:at] + text + doc[at:]
    for value in JSON_VALUES:
        yield doc[:-1] + ',"size":' + value + "}"
        yield '{"driver":"raw","file":{"driver":"file","filename":%s}}' % value
    yield from JSON_DOCUMENTS


def json_cases():
    """json: filenames through qemu-img info and qemu-io's open."""
    for text in json_texts():
        yield "qemu-img", "json syntax", ["info", "json:" + text], True
    for text in JSON_DOCUMENTS:
        yield "qemu-io", "json syntax", ["-c", "open json:" + text, "-c", "read 0 512"], True
        yield "qemu-img", "json syntax", ["map", "json:" + text], True
    # Options with no driver: the format probed from the "file" object.
    for opts in ("file.filename=base.qcow2", "file.filename=raw.img", "file=base.qcow2",
                 "x=1", "file.driver=file,file.filename=top.qcow2", "file.filename=nope"):
        yield "qemu-img", "json syntax", ["info", "--image-opts", opts], True
        yield "qemu-io", "json syntax", ["--image-opts", "-c", "write 0 512", opts], False


# Node names (QEMU's json:{...} for nodes given strong options, exact names otherwise):
# every driver's strong options, each with values of every class (key=value strings and
# JSON numbers, strings, null, empty and nested containers), alone, mixed with options
# that do not name a node, and nested under each format; printed by info (human and
# JSON). Children given by reference beside options, and options flattened where no
# option takes them, are refused in QEMU's words.
STRONG_OPTIONS = {
    "raw": ["offset", "size"],
    "null-co": ["size", "read-zeroes", "latency-ns"],
    "null-aio": ["size", "read-zeroes"],
    "blkdebug": ["align", "max-transfer", "opt-write-zero", "max-write-zero", "opt-discard",
                 "max-discard", "config"],
}
NAMING_VALUES = {
    "offset": ["0", "512", '"4096"', "-0", "1e3", "4096.0", "null", "{}", "[]", '{"a":1}',
                "[1]", '"4k"', "true", '"x"'],
    "size": ["0", "4096", '"4096"', "1e6", "null", "{}", "[[1]]", '"1M"', "-1"],
    "read-zeroes": ["true", '"on"', "false", "null", "1"],
    "latency-ns": ["0", '"10"', "-1", "null"],
    "align": ["512", '"4096"', "3", "null"],
    "max-transfer": ["65536", '"65536"', "1000"],
    "opt-write-zero": ["4096"], "max-write-zero": ["8192"], "opt-discard": ["4096"],
    "max-discard": ["8192"], "config": ['"bd-10-5-off.conf"', '""', "null"],
}
# Each driver's node with room for options: (json object text without its closing brace,
# the same as key=value pairs with PREFIX. for the node's own keys).
NAMING_NODES = {
    "raw": ('{"driver":"raw","file":{"driver":"file","filename":"raw.img"}',
            "driver=raw,file.filename=raw.img"),
    "null-co": ('{"driver":"null-co"', "driver=null-co"),
    "null-aio": ('{"driver":"null-aio"', "driver=null-aio"),
    "blkdebug": ('{"driver":"blkdebug","image":{"driver":"file","filename":"base.qcow2"}',
                 "driver=blkdebug,image.filename=base.qcow2"),
}


def _keyval_value(json_value):
    return json_value[1:-1] if json_value.startswith('"') else json_value


def naming_documents():
    for driver, options in STRONG_OPTIONS.items():
        head, keyval = NAMING_NODES[driver]
        yield "json:" + head + "}", None
        yield None, keyval
        for option in options:
            for value in NAMING_VALUES[option]:
                yield "json:%s,\"%s\":%s}" % (head, option, value), None
                if value[0] not in "{[n":
                    yield None, "%s,%s=%s" % (keyval, option, _keyval_value(value))
        # Two strong options, and one beside options that name nothing.
        yield "json:%s,\"%s\":%s,\"read-only\":true,\"cache\":{\"direct\":false}}" % (
            head, options[0], NAMING_VALUES[options[0]][1]), None
        if len(options) > 1:
            yield None, "%s,%s=%s,%s=%s" % (keyval, options[0], _keyval_value(
                NAMING_VALUES[options[0]][1]), options[1], _keyval_value(NAMING_VALUES[options[1]][0]))
    # Nested: each format over each driver's node with and without a strong option.
    for fmt in ("raw", "qcow2"):
        for child, child_keyval in (("file", "file.filename=raw.img"),
                                    ("file.driver=null-co", "file.driver=null-co"),
                                    ("blkdebug", "file.driver=blkdebug,file.image.filename=raw.img"),
                                    ("raw", "file.driver=raw,file.file.filename=raw.img")):
            base = "driver=%s,%s" % (fmt, child_keyval.replace("raw.img", "base.qcow2")
                                     if fmt == "qcow2" else child_keyval)
            yield None, base
            yield None, base + ",file.node-name=n1,file.cache.no-flush=on"
            if child == "blkdebug":
                yield None, base + ",file.align=512"
                yield None, base + ",file.inject-error.0.event=l2_load"
                yield None, base + ",file.set-state.0.event=l2_load,file.set-state.0.new_state=2"
                yield None, base + ",file.config=bd-10-5-off.conf"
            if child == "raw":
                yield None, base + ",file.offset=0"
            if fmt == "raw":
                yield None, base + ",size=1M"
    # Children by reference beside options; containers where no option takes them.
    for doc in ('{"driver":"raw","file":"raw.img","file.filename":"raw.img"}',
                '{"driver":"raw","file.driver":"file","file":"raw.img"}',
                '{"driver":"qcow2","file":{"driver":"blkdebug","image":"base.qcow2","image.driver":"file"}}',
                '{"driver":"raw","file":{}}', '{"driver":"raw","file":{},"file.filename":"raw.img"}',
                '{"driver":"qcow2","file":{"filename":"base.qcow2"},"backing":{}}',
                '{"driver":"qcow2","file":{"filename":"top.qcow2"},"backing":null}',
                '{"driver":"qcow2","file":{"filename":"top.qcow2"},"backing":"base.qcow2"}',
                '{"driver":"qcow2","file":{"filename":"top.qcow2"},"backing":{"driver":"qcow2",'
                '"file":{"filename":"base.qcow2"}}}',
                '{"driver":"qcow2","file":{"filename":"base.qcow2"},"cache":{}}',
                '{"driver":"qcow2","file":{"filename":"base.qcow2"},"cache":null}',
                '{"driver":"qcow2","file":{"filename":"base.qcow2"},"read-only":null}',
                '{"driver":"qcow2","file":{"filename":"base.qcow2"},"l2-cache-size":[1]}',
                '{"driver":"qcow2","file":{"filename":"base.qcow2"},"l2-cache-size":{"x":{}}}',
                '{"driver":"qcow2","file":{"driver":"blkdebug","inject-error":[],'
                '"image":{"filename":"base.qcow2"}}}',
                '{"driver":"qcow2","file":{"driver":"blkdebug","x-image":"base.qcow2"}}',
                '{"driver":"qcow2","filename":"base.qcow2"}', '{"driver":"blkdebug","filename":"base.qcow2"}',
                '{"driver":"qcow2","file":{"filename":"blkdebug::base.qcow2"}}',
                '{"driver":"raw","file":{"filename":"null-co://"}}'):
        yield "json:" + doc, None
    for keyval in ("driver=raw,file=raw.img,file.filename=raw.img",
                   "driver=qcow2,file.filename=top.qcow2,backing.file.filename=base.qcow2",
                   "driver=qcow2,file.filename=top.qcow2,backing.driver=qcow2,"
                   "backing.file.filename=base.qcow2", "driver=raw,file.filename=file:raw.img"):
        yield None, keyval
    for name in ("null-co://", "null-aio://", "null-co:", "null-co://x", "null-aio:x"):
        yield name, None


def naming_cases():
    for name, keyval in naming_documents():
        for output in ([], ["--output=json"]):
            if name is not None:
                yield "qemu-img", "node names", ["info"] + output + [name], True
            else:
                yield "qemu-img", "node names", ["info"] + output + ["--image-opts", keyval], True
    # The null drivers' data: none at all (neither data nor zero), or zeroes.
    for spec in (["null-co://"], ["-f", "raw", "null-aio://"],
                 ["--image-opts", "driver=raw,file.driver=null-co,file.size=1M"],
                 ["--image-opts", "driver=null-co,size=1M,read-zeroes=on"]):
        for cmd in (["map"], ["map", "--output=json"], ["check"], ["compare"]):
            operands = spec + (spec[-1:] if cmd == ["compare"] else [])
            yield "qemu-img", "null drivers", cmd + operands, True


# sub/top.qcow2 names its backing file relatively ("base.qcow2", in sub/). Every way of
# naming the top image: the backing file is found in the directory of the file below the
# format node (through raw and blkdebug nodes), never in the text of a json:{...} name.
BASE_DIRECTORY_NAMES = [
    ("sub/top.qcow2", None), ("./sub/top.qcow2", None), ("file:sub/top.qcow2", None),
    ("blkdebug::sub/top.qcow2", None),
    ('json:{"driver":"qcow2","file":{"driver":"file","filename":"sub/top.qcow2"}}', None),
    ('json:{"driver":"qcow2","file":{"driver":"raw","offset":0,'
     '"file":{"driver":"file","filename":"sub/top.qcow2"}}}', None),
    ('json:{"driver":"qcow2","file":{"driver":"blkdebug",'
     '"image":{"driver":"file","filename":"sub/top.qcow2"}}}', None),
    ('json:{"driver":"raw","offset":0,"file":{"driver":"file","filename":"sub/top.qcow2"}}', None),
    (None, "driver=qcow2,file.filename=sub/top.qcow2"),
    (None, "driver=qcow2,file.driver=raw,file.size=327680,file.file.filename=sub/top.qcow2"),
    (None, "driver=qcow2,file.driver=blkdebug,file.align=512,file.image.filename=sub/top.qcow2"),
]


def base_directory_cases():
    for name, keyval in BASE_DIRECTORY_NAMES:
        operand = [name] if name is not None else ["--image-opts", keyval]
        for cmd in (["info"], ["info", "--output=json"], ["info", "--backing-chain"],
                    ["info", "--output=json", "--backing-chain"], ["map"], ["check"]):
            yield "qemu-img", "base directories", cmd + operand, True
        yield "qemu-img", "base directories", ["convert", "-O", "raw"] + operand + ["out.img"], False
        yield "qemu-img", "base directories", ["compare", "base.qcow2"] + operand, True
        yield "qemu-io", "base directories", ["-c", "read -P 0x77 0 4k", "-c", "read -P 0 64k 4k",
                                              "-r"] + operand, True


def wide_cases():
    yield from naming_cases()
    yield from base_directory_cases()
    yield from io_wide_cases()
    yield from img_wide_cases()
    yield from json_cases()
    yield from io_program_cases()
