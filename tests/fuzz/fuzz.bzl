"""strata_fuzzer: one fuzz target, built two ways.

Under --config=fuzz (clang, --define=fuzzing=libfuzzer) the binary is a libFuzzer
fuzzer; in every other build it links fuzz_main.cc and replays the files it is given,
so seeds and past findings run as regression tests in the normal suite."""

def strata_fuzzer(name, srcs, deps):
    native.cc_library(
        name = name + "_target",
        srcs = srcs,
        deps = deps,
        alwayslink = True,
    )
    native.cc_binary(
        name = name,
        deps = [":" + name + "_target"] + select({
            ":libfuzzer": [],
            "//conditions:default": [":fuzz_main"],
        }),
        linkopts = select({
            ":libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
    )
