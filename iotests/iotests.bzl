"""One sh_test per (iotest, image format), e.g. iotest_001_raw."""

def iotest(name, formats, groups = []):
    for fmt in formats:
        native.sh_test(
            name = "iotest_%s_%s" % (name, fmt),
            srcs = ["run_one.sh"],
            args = [
                name,
                fmt,
                "$(rootpath //tools:strata-io)",
                "$(rootpath //tools:strata-img)",
                "$(rootpath //tests/tools:strata-qcow2)",
            ],
            data = [name, ":common"] + native.glob([name + ".out*"]) + [
                "//tools:strata-io",
                "//tools:strata-img",
                "//tests/tools:strata-qcow2",
            ],
            tags = ["iotest", fmt] + groups,
        )
