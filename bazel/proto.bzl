"""cc_grpc_library: C++ message and gRPC service code from .proto files, with Debian's protoc and
grpc_cpp_plugin. Usable from any package, including external repositories (see etcd_api.BUILD).

Import paths are relative to the package that calls the macro: a file at <package>/a/b.proto is
imported as "a/b.proto" and its generated header is included as "a/b.pb.h". Well-known types
(google/protobuf/*.proto) resolve from /usr/include.
"""

def _package_root():
    repo = native.repository_name()
    prefix = "" if repo == "@" else "external/" + repo[1:]
    pkg = native.package_name()
    if prefix and pkg:
        return prefix + "/" + pkg
    return prefix or pkg or "."

def cc_grpc_library(name, srcs, services = True, deps = [], visibility = None):
    """Generates and compiles C++ for `srcs`.

    Args:
      name: the cc_library target.
      srcs: .proto files in this package (subdirectories allowed); all compiled in one protoc run.
      services: also run grpc_cpp_plugin (for files that declare services).
      deps: further cc libraries the generated code needs.
      visibility: of the cc_library.
    """
    root = _package_root()
    stems = [s[:-len(".proto")] for s in srcs]
    outs = [s + ".pb.h" for s in stems] + [s + ".pb.cc" for s in stems]
    if services:
        outs += [s + ".grpc.pb.h" for s in stems] + [s + ".grpc.pb.cc" for s in stems]
    out_root = "$(GENDIR)/" + root if root != "." else "$(GENDIR)"
    cmd = "protoc -I{root} -I/usr/include --cpp_out={out}".format(root = root, out = out_root)
    if services:
        cmd += " --grpc_out={out} --plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin)".format(out = out_root)
    cmd += " " + " ".join(["%s/%s" % (root, s) for s in srcs])
    native.genrule(
        name = name + "_codegen",
        srcs = srcs,
        outs = outs,
        cmd = cmd,
        message = "protoc " + name,
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        includes = ["."],
        # Generated code is not ours to keep warning-free.
        copts = ["-w"],
        deps = deps + ["@system_libs//:grpc", "@system_libs//:protobuf"],
        visibility = visibility,
    )
