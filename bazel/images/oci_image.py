#!/usr/bin/env python3
"""Writes a minimal, reproducible container image archive for one binary, without a container engine.

    oci_image.py --binary BIN --name mcl-controller --tag 0.1.0 --out mcl-controller.tar \
        [--dest /usr/bin/mcl-controller] [--registry REG] [--ca-certificates] \
        [--env K=V]... [--label K=V]... [--user 65532:65532]

The archive is an OCI image layout (oci-layout, index.json, blobs/sha256/...) that also carries a
docker-archive manifest.json pointing at the same blobs -- the layout `docker save` writes since
Docker 25 -- so `ctr images import`, `podman load`, `docker load` and skopeo's `oci-archive:` and
`docker-archive:` transports all read the same file.

What goes in (nothing else: no shell, no package manager):
  layer 1  /etc/passwd, /etc/group (root and nonroot = 65532), /etc/nsswitch.conf, /tmp (1777),
           /home/nonroot (65532), and with --ca-certificates Debian's CA bundle at
           /etc/ssl/certs/ca-certificates.crt, rebuilt from the ca-certificates package's files;
  layer 2  exactly the shared objects `ldd BIN` lists (glibc's loader, libc, libm, ... -- the
           binaries are static but for glibc), each checked byte for byte against the md5sums of
           the Debian package that installed it; absent for a static binary (the Go example);
  layer 3  the binary, at --dest (default /usr/bin/<name>), mode 0755, owned by root, and any
           --also programs at /usr/bin/<their name> (the controller image also carries the
           sidecar injector, which the chart runs with its own command).
The image runs as 65532:65532 with the binary as its entrypoint.

Reproducible: the bytes depend only on the input files' contents and the arguments. Entries are
sorted, every timestamp is SOURCE_DATE_EPOCH (default 0), owners are numeric with no names, modes
are normalised (0755 or 0644), layers are uncompressed tars (gzip output differs between zlib
versions; registries and runtimes accept uncompressed layers, and a push may compress them), JSON is
written with sorted keys. Building twice gives the same image digest (bazel/images/images_test.sh).
"""

import argparse
import datetime
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
NONROOT = 65532


class ImageError(Exception):
    """A clear, user-facing reason the image cannot be built."""


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layer:
    """A tar built in memory from (path -> entry) with fixed metadata, written in sorted order."""

    def __init__(self, epoch):
        self.epoch = epoch
        self.entries = {}  # path (no leading '/') -> (type, data or link target, mode, uid, gid)

    def _parents(self, path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.entries:
                self.entries[d] = (tarfile.DIRTYPE, None, 0o755, 0, 0)

    def dir(self, path, mode=0o755, uid=0, gid=0):
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = (tarfile.DIRTYPE, None, mode, uid, gid)

    def file(self, path, data, mode=0o644, uid=0, gid=0):
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = (tarfile.REGTYPE, data, mode, uid, gid)

    def bytes(self):
        buf = io.BytesIO()
        # USTAR: no PAX headers (they would carry sub-second times and vary between Pythons).
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for path in sorted(self.entries):
                kind, data, mode, uid, gid = self.entries[path]
                info = tarfile.TarInfo(path)
                info.type = kind
                info.mode = mode
                info.uid, info.gid = uid, gid
                info.uname = info.gname = ""
                info.mtime = self.epoch
                if kind == tarfile.REGTYPE:
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                else:
                    tar.addfile(info)
        return buf.getvalue()


def normal_mode(host_path):
    return 0o755 if os.stat(host_path).st_mode & 0o111 else 0o644


def ldd(binary):
    """[(path in the image, host path)] of what the dynamic loader maps for BINARY; [] if static."""
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False,
                             env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    except FileNotFoundError:
        raise ImageError("ldd not found (Debian package libc-bin)")
    text = out.stdout + out.stderr
    if "not a dynamic executable" in text or "statically linked" in text:
        return []
    if out.returncode != 0:
        raise ImageError(f"ldd {binary} failed: {text.strip()}")
    libs = []
    for line in out.stdout.splitlines():
        line = line.strip()
        if "not found" in line:
            raise ImageError(f"ldd {binary}: a library is missing on this machine: {line}")
        m = re.match(r"^(\S+) => (/\S+) \(0x[0-9a-f]+\)$", line)
        if m:  # libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6
            libs.append((m.group(2), m.group(2)))
            continue
        m = re.match(r"^(/\S+) \(0x[0-9a-f]+\)$", line)
        if m:  # the loader, at the path the binary's PT_INTERP names
            libs.append((m.group(1), m.group(1)))
            continue
        if line.startswith("linux-vdso") or line.startswith("linux-gate"):
            continue  # provided by the kernel
        raise ImageError(f"ldd {binary}: cannot read line {line!r}")
    return libs


class Dpkg:
    """The dpkg database, read once: which package installed a file, with which md5, at which
    version. (Reading the files directly: one dpkg-query per file took seconds on a loaded machine.)"""

    def __init__(self, root="/var/lib/dpkg"):
        self.md5 = {}  # "/lib/x86_64-linux-gnu/libc.so.6" -> ("libc6:amd64", md5)
        info = os.path.join(root, "info")
        if not os.path.isdir(info):
            raise ImageError(f"{info} not found: images are built from Debian's packages, on Debian")
        for name in sorted(os.listdir(info)):
            if not name.endswith(".md5sums"):
                continue
            pkg = name[: -len(".md5sums")]
            with open(os.path.join(info, name), errors="surrogateescape") as f:
                for line in f:
                    digest, _, rel = line.rstrip("\n").partition("  ")
                    self.md5["/" + rel] = (pkg, digest)
        self.versions = {}  # "libc6:amd64" and "libc6" -> version
        with open(os.path.join(root, "status"), errors="surrogateescape") as f:
            for para in f.read().split("\n\n"):
                fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", para, re.M))
                if "Package" in fields and "Version" in fields:
                    self.versions[fields["Package"]] = fields["Version"]
                    self.versions[f"{fields['Package']}:{fields.get('Architecture', '')}"] = fields["Version"]

    def lookup(self, path):
        """(package, recorded md5) of a host file, following symlinks and Debian's merged /usr."""
        seen, todo = [], [path, os.path.realpath(path)]
        while todo:
            p = os.path.normpath(todo.pop(0))
            if p in seen:
                continue
            seen.append(p)
            for cand in (p, p[4:] if p.startswith("/usr/") else "/usr" + p):
                if cand in self.md5:
                    return self.md5[cand]
            if os.path.islink(p):
                todo.append(os.path.join(os.path.dirname(p), os.readlink(p)))
        raise ImageError(f"{path} was not installed by a Debian package (not in any "
                         "/var/lib/dpkg/info/*.md5sums); the image copies only Debian's files")

    def verify(self, path):
        """Checks PATH's bytes against its package's md5sums; returns 'package=version'."""
        pkg, want = self.lookup(path)
        with open(path, "rb") as f:
            got = hashlib.md5(f.read()).hexdigest()
        name = pkg.split(":")[0]
        version = self.versions.get(pkg) or self.versions.get(name, "?")
        if got != want:
            raise ImageError(f"{path} differs from what package {pkg} {version} installed (md5 {got}, "
                             f"the package says {want}); reinstall it: apt-get install --reinstall {name}")
        return f"{name}={version}"


_dpkg = None


def verify_debian_file(path):
    global _dpkg
    if _dpkg is None:
        _dpkg = Dpkg()
    return _dpkg.verify(path)


def ca_bundle(src_dir="/usr/share/ca-certificates/mozilla"):
    """Debian's CA bundle, rebuilt from the ca-certificates package's own files (sorted), so it does
    not depend on when or with which local additions update-ca-certificates last ran."""
    if not os.path.isdir(src_dir):
        raise ImageError(f"{src_dir} not found: apt-get install ca-certificates")
    out = b""
    packages = set()
    names = sorted(n for n in os.listdir(src_dir) if n.endswith(".crt"))
    for n in names:
        p = os.path.join(src_dir, n)
        packages.add(verify_debian_file(p))
        with open(p, "rb") as f:
            data = f.read()
        out += data if data.endswith(b"\n") else data + b"\n"
    if not names:
        raise ImageError(f"{src_dir} has no certificates")
    return out, sorted(packages)


def base_layer(epoch, with_ca):
    layer = Layer(epoch)
    layer.file("etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\n"
               b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
    layer.file("etc/group", b"root:x:0:\nnonroot:x:65532:\n")
    # glibc 2.34+ has files and dns built in: this needs no NSS modules.
    layer.file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\n")
    layer.dir("root", mode=0o700)
    layer.dir("home/nonroot", mode=0o700, uid=NONROOT, gid=NONROOT)
    layer.dir("tmp", mode=0o1777)
    packages = []
    if with_ca:
        bundle, packages = ca_bundle()
        layer.file("etc/ssl/certs/ca-certificates.crt", bundle)
    return layer, packages


def runtime_layer(epoch, binaries):
    """Layer 2: the union of what ldd lists for each binary; None when all are static."""
    libs = {}
    for binary in binaries:
        for image_path, host_path in ldd(binary):
            libs[image_path] = host_path
    if not libs:
        return None, []
    layer = Layer(epoch)
    packages = set()
    for image_path, host_path in sorted(libs.items()):
        packages.add(verify_debian_file(host_path))
        with open(host_path, "rb") as f:  # follows symlinks: the soname path holds the real bytes
            layer.file(image_path, f.read(), mode=normal_mode(host_path))
    return layer, sorted(packages)


def normalize_ref(registry, name, tag):
    """The reference containerd and the kubelet use for the image ('mcl-controller:0.1.0' ->
    'docker.io/library/mcl-controller:0.1.0'), and the short one Docker tags (RepoTags)."""
    short = f"{registry.rstrip('/')}/{name}" if registry else name
    first = short.split("/")[0]
    if "/" not in short:
        full = f"docker.io/library/{short}"
    elif "." in first or ":" in first or first == "localhost":
        full = short
    else:
        full = f"docker.io/{short}"
    return f"{full}:{tag}", f"{short}:{tag}"


def check_args(args):
    if not re.fullmatch(r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*", args.name):
        raise ImageError(f"--name {args.name!r} is not a repository name (lower-case, digits, . _ - /)")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", args.tag):
        raise ImageError(f"--tag {args.tag!r} is not a valid tag")
    for b in [args.binary] + args.also:
        if not os.path.isfile(b):
            raise ImageError(f"binary {b} not found")
    if not re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", args.user):
        raise ImageError(f"--user {args.user!r}: give a non-root numeric UID:GID")
    for kv in args.env + args.label:
        if "=" not in kv:
            raise ImageError(f"{kv!r}: give KEY=VALUE")


def collect_layers(args, epoch):
    """The image's layers, their history lines, and the Debian packages their files came from."""
    layers, history, packages = [], [], []
    base, pk = base_layer(epoch, args.ca_certificates)
    layers.append(base)
    packages += pk
    history.append("mcl: /etc/passwd, /etc/group, /etc/nsswitch.conf, /tmp, /home/nonroot" +
                   (", Debian CA bundle" if args.ca_certificates else ""))
    rt, pk = runtime_layer(epoch, [args.binary] + args.also)
    if rt is not None:
        layers.append(rt)
        packages += pk
        history.append("mcl: shared objects from `ldd` (Debian: " + " ".join(pk) + ")")
    app = Layer(epoch)
    with open(args.binary, "rb") as f:
        app.file(args.dest, f.read(), mode=0o755)
    for extra in args.also:
        with open(extra, "rb") as f:
            app.file(f"/usr/bin/{os.path.basename(extra)}", f.read(), mode=0o755)
    layers.append(app)
    history.append(" ".join([f"mcl: {args.dest}"] + [f"/usr/bin/{os.path.basename(e)}" for e in args.also]))
    return layers, history, sorted(set(packages))


def image_config(args, created, diff_ids, history, packages):
    labels = {
        "org.opencontainers.image.title": args.name.split("/")[-1],
        "org.opencontainers.image.version": args.tag,
        "org.opencontainers.image.source": "https://github.com/mcl-dev/mcl",
        "org.opencontainers.image.licenses": "Apache-2.0",
    }
    if packages:
        labels["dev.mcl.image.debian-packages"] = " ".join(packages)
    labels.update(kv.split("=", 1) for kv in args.label)
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": args.user,
            "Entrypoint": [args.dest],
            "Env": image_env(args),
            "WorkingDir": "/",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": h} for h in history],
    }


def image_env(args):
    env = ["PATH=/usr/bin:/bin"]
    if args.ca_certificates:
        # OpenSSL (cpprestsdk) and gRPC find the bundle here without a system OpenSSL directory.
        env += ["SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=/etc/ssl/certs/ca-certificates.crt"]
    return env + args.env


def write_archive(args, epoch, layers, history, packages):
    """Writes the OCI layout + docker-archive tar; returns the manifest digest and the reference."""
    created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    blobs = {}  # digest -> bytes
    layer_descs, diff_ids = [], []
    for layer in layers:
        data = layer.bytes()
        d = sha256(data)
        blobs[d] = data
        diff_ids.append(d)
        layer_descs.append({"mediaType": MEDIA_LAYER, "digest": d, "size": len(data)})
    config_bytes = canonical_json(image_config(args, created, diff_ids, history, packages))
    config_digest = sha256(config_bytes)
    blobs[config_digest] = config_bytes
    manifest_bytes = canonical_json({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": layer_descs,
    })
    manifest_digest = sha256(manifest_bytes)
    blobs[manifest_digest] = manifest_bytes

    full_ref, short_ref = normalize_ref(args.registry, args.name, args.tag)
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest_digest,
            "size": len(manifest_bytes),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {
                # containerd names the image by this; OCI tools by the tag.
                "io.containerd.image.name": full_ref,
                "org.opencontainers.image.ref.name": args.tag,
            },
        }],
    }
    blob_path = lambda d: "blobs/sha256/" + d.split(":")[1]  # noqa: E731
    docker_manifest = [{
        "Config": blob_path(config_digest),
        "RepoTags": [short_ref],
        "Layers": [blob_path(d["digest"]) for d in layer_descs],
    }]
    outer = Layer(epoch)
    outer.file("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}))
    outer.file("index.json", canonical_json(index))
    outer.file("manifest.json", canonical_json(docker_manifest))
    for d, data in blobs.items():
        outer.file(blob_path(d), data)
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(outer.bytes())
    os.replace(tmp, args.out)
    return manifest_digest, full_ref


def write_rootfs(layers, root, epoch):
    """The same files as the archive's layers, written to a directory (helm/images/Containerfile
    copies it into a FROM-scratch image). Owners need root; modes and times are set as in the tar."""
    os.makedirs(root, exist_ok=True)
    entries = {}
    for layer in layers:
        entries.update(layer.entries)
    for path in sorted(entries):
        kind, data, mode, uid, gid = entries[path]
        target = os.path.join(root, path)
        if kind == tarfile.DIRTYPE:
            os.makedirs(target, exist_ok=True)
        else:
            with open(target, "wb") as f:
                f.write(data)
        os.chown(target, uid, gid)
        os.chmod(target, mode)
    for path in sorted(entries, reverse=True):  # children first: writing them touches the parent
        os.utime(os.path.join(root, path), (epoch, epoch))


def build(args):
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    check_args(args)
    args.dest = args.dest or f"/usr/bin/{os.path.basename(args.name)}"
    layers, history, packages = collect_layers(args, epoch)
    if args.rootfs:
        write_rootfs(layers, args.rootfs, epoch)
        return None, normalize_ref(args.registry, args.name, args.tag)[0]
    return write_archive(args, epoch, layers, history, packages)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", required=True, help="the program; its ldd libraries come along")
    p.add_argument("--name", required=True, help="repository name, e.g. mcl-controller")
    p.add_argument("--tag", required=True)
    p.add_argument("--out", help="archive to write")
    p.add_argument("--rootfs", help="instead of an archive, write the image's files to this "
                   "directory (for helm/images/Containerfile)")
    p.add_argument("--dest", default="", help="path in the image (default /usr/bin/<name>)")
    p.add_argument("--also", action="append", default=[],
                   help="another program for /usr/bin/<its name> (not the entrypoint), repeatable")
    p.add_argument("--registry", default="", help="registry/prefix for the image's name")
    p.add_argument("--user", default=f"{NONROOT}:{NONROOT}")
    p.add_argument("--ca-certificates", action="store_true", help="add Debian's CA bundle")
    p.add_argument("--env", action="append", default=[], help="K=V, repeatable")
    p.add_argument("--label", action="append", default=[], help="K=V, repeatable")
    args = p.parse_args(argv)
    if bool(args.out) == bool(args.rootfs):
        p.error("give exactly one of --out and --rootfs")
    try:
        digest, ref = build(args)
    except ImageError as e:
        print(f"oci_image: {e}", file=sys.stderr)
        return 1
    print(f"{ref} {digest} {args.out}" if digest else f"{ref} {args.rootfs}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
