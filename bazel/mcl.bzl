"""Rules for mcl's own C++: C++17 with warnings as errors, and integration tests on the test bed.

Libraries depend on gRPC's API (@system_libs//:grpc); each binary and test links one gRPC build,
statically: `grpc_link` (default: with TLS, which the etcd client needs). The sidecar links
GRPC_LOCAL, the build without TLS, xDS and ALTS: it serves loopback and a unix socket only, and
that build maps 1.5 MiB less (docs/benchmarks.md). Two builds in one binary do not link.
"""

load("//bazel:copts.bzl", "MCL_COPTS")

GRPC_TLS = "@system_libs//:grpc_link_tls"
GRPC_LOCAL = "@system_libs//:grpc_link_local"

def mcl_cc_library(name, copts = [], **kwargs):
    native.cc_library(name = name, copts = MCL_COPTS + copts, **kwargs)

def mcl_cc_binary(name, copts = [], deps = [], grpc_link = GRPC_TLS, **kwargs):
    native.cc_binary(name = name, copts = MCL_COPTS + copts, deps = deps + [grpc_link], **kwargs)

def mcl_cc_test(name, copts = [], deps = [], grpc_link = GRPC_TLS, **kwargs):
    """A unit test: no I/O beyond loopback, GoogleTest with its main."""
    native.cc_test(
        name = name,
        copts = MCL_COPTS + copts,
        deps = deps + [grpc_link, "//bazel:lsan_suppressions", "@system_libs//:gtest", "@system_libs//:gtest_main"],
        **kwargs
    )

def mcl_integration_test(name, copts = [], deps = [], data = [], tags = [], size = "large", grpc_link = GRPC_TLS, **kwargs):
    """A test against the real test bed (etcd, kube-apiservers) started by the test itself.

    Runs outside Bazel's sandbox (it starts real servers on loopback and reads the cached
    kube-apiserver from setup.sh) and one at a time (.bazelrc: --local_test_jobs=1).
    """
    native.cc_test(
        name = name,
        copts = MCL_COPTS + copts,
        deps = deps + [grpc_link, "//bazel:lsan_suppressions", "//testbed/cc:testbed", "@system_libs//:gtest", "@system_libs//:gtest_main"],
        data = data + ["//testbed:testbed_files"],
        tags = tags + ["integration", "local", "no-sandbox"],
        size = size,
        **kwargs
    )
