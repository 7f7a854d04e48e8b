"""Rules for mcl's own C++: C++17 with warnings as errors, and integration tests on the test bed."""

load("//bazel:copts.bzl", "MCL_COPTS")

def mcl_cc_library(name, copts = [], **kwargs):
    native.cc_library(name = name, copts = MCL_COPTS + copts, **kwargs)

def mcl_cc_binary(name, copts = [], **kwargs):
    native.cc_binary(name = name, copts = MCL_COPTS + copts, **kwargs)

def mcl_cc_test(name, copts = [], deps = [], **kwargs):
    """A unit test: no I/O beyond loopback, GoogleTest with its main."""
    native.cc_test(
        name = name,
        copts = MCL_COPTS + copts,
        deps = deps + ["//bazel:lsan_suppressions", "@system_libs//:gtest", "@system_libs//:gtest_main"],
        **kwargs
    )

def mcl_integration_test(name, copts = [], deps = [], data = [], tags = [], size = "large", **kwargs):
    """A test against the real test bed (etcd, kube-apiservers) started by the test itself.

    Runs outside Bazel's sandbox (it starts real servers on loopback and reads the cached
    kube-apiserver from setup.sh) and one at a time (.bazelrc: --local_test_jobs=1).
    """
    native.cc_test(
        name = name,
        copts = MCL_COPTS + copts,
        deps = deps + ["//bazel:lsan_suppressions", "//testbed/cc:testbed", "@system_libs//:gtest", "@system_libs//:gtest_main"],
        data = data + ["//testbed:testbed_files"],
        tags = tags + ["integration", "local", "no-sandbox"],
        size = size,
        **kwargs
    )
