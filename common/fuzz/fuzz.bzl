"""libFuzzer targets that are also plain tests (common/fuzz/README.md).

mcl_fuzz_target(name, srcs, deps) makes, from one file that defines LLVMFuzzerTestOneInput:

  <name>       the fuzzer. With --config=fuzz (clang, common/fuzz/run.sh) it links libFuzzer's
               driver; in the ordinary g++ build it links replay_main, so `bazel build //...` builds
               it too and it replays the files or directories it is given.
  <name>_test  a test in every build that replays the committed seed corpus (corpus/<name>/) and the
               reproducers of everything the fuzzers found (regressions/<name>/): what a fuzzer once
               found stays fixed, under g++, asan and ubsan as well.
"""

load("//bazel:copts.bzl", "MCL_COPTS")

def mcl_fuzz_target(name, srcs, deps = [], copts = [], **kwargs):
    lib = name + "_lib"
    native.cc_library(
        name = lib,
        testonly = True,
        srcs = srcs,
        copts = MCL_COPTS + copts,
        deps = deps,
        alwayslink = True,
        **kwargs
    )
    native.cc_binary(
        name = name,
        testonly = True,
        deps = [lib] + select({
            "//common/fuzz:fuzzing": [],
            "//conditions:default": ["//common/fuzz:replay_main"],
        }),
        linkopts = select({
            "//common/fuzz:fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        tags = ["mcl_fuzzer"],
    )
    dirs = ["corpus/" + name, "regressions/" + name]
    native.cc_test(
        name = name + "_test",
        size = "small",
        deps = [lib, "//common/fuzz:replay_main"],
        data = native.glob([d + "/**" for d in dirs]),
        args = [native.package_name() + "/" + d for d in dirs],
    )
