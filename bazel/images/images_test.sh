#!/usr/bin/env bash
# Tests of mcl's images (bazel/images/build.sh, oci_image.py, helm/images/Containerfile):
#   * reproducible: two builds give byte-identical archives; the input binary's mtime and the
#     umask do not matter;
#   * minimal: exactly the expected files (no shell), non-root 65532, the binary as entrypoint, the
#     shared objects ldd lists and nothing else, Debian's bytes;
#   * accepted by the tools: skopeo (oci-archive: and docker-archive:), podman load, umoci, and
#     ctr images import into a containerd of its own, which then runs the binaries with runc;
#   * the Containerfile sets the same user, environment and entrypoint, and oci_image.py --rootfs
#     (what it copies) writes the same files as the archive's layers.
#
#   bazel/images/images_test.sh [-c opt|fastbuild]   prints ok/not ok lines and "N passed, N failed"
#   (default opt: the release build, which test.sh makes anyway)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mode="${MCL_IMAGES_MODE:-opt}"
cd "$repo"  # bazel info needs the workspace
[[ "${1:-}" == "-c" ]] && mode="$2"

passed=0; failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); [[ -n "${2:-}" ]] && printf '#   %s\n' "${2:0:3000}" >&2; return 0; }
check() { local n="$1" out; shift; if out="$("$@" 2>&1)"; then ok "$n"; else not_ok "$n" "$out"; fi; }
for t in skopeo podman umoci ctr containerd runc jq; do
  command -v "$t" >/dev/null || { echo "images_test: $t not found: run ./setup.sh" >&2; echo "0 passed, 1 failed"; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/mcl-images-test.XXXXXX")"
# Host paths the tools create on first use (skopeo's and podman's caches as root, the cgroup parent
# of `ctr run`): removed again unless they were there before.
created=()
for p in /var/lib/containers /run/containers; do [[ -e "$p" ]] || created+=("$p"); done
for c in /sys/fs/cgroup/*/; do [[ -e "${c}k8s.io" ]] || created+=("${c}k8s.io"); done
ctd_pid=""
cleanup() {
  if [[ -n "$ctd_pid" ]]; then
    kill -TERM "$ctd_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$ctd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$ctd_pid" 2>/dev/null
    wait "$ctd_pid" 2>/dev/null
  fi
  # containerd's snapshots and runc's state are mounts and cgroups under $work: undo them first.
  grep -o " $work/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
  local p; for p in "${created[@]}"; do
    if [[ "$p" == /sys/fs/cgroup/* ]]; then [[ -d "$p" ]] && find "$p" -depth -type d -exec rmdir {} \; 2>/dev/null
    else rm -rf "$p"; fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- reproducible --------------------------------------------------------------------------------
if "$here/build.sh" -c "$mode" --out "$work/a" >"$work/build-a.log" 2>&1; then
  ok "bazel/images/build.sh -c $mode builds the images"
else
  not_ok "bazel/images/build.sh -c $mode builds the images" "$(tail -30 "$work/build-a.log")"
  echo "$passed passed, $failed failed"; exit 1
fi
(umask 077 && "$here/build.sh" -c "$mode" --out "$work/b" >"$work/build-b.log" 2>&1)
same_bytes() {
  local n; for n in "$work"/a/*.tar; do cmp "$n" "$work/b/$(basename "$n")" || return 1; done
  [[ "$(cut -d' ' -f1-3 "$work/a/images.txt")" == "$(cut -d' ' -f1-3 "$work/b/images.txt")" ]]
}
check "a second build (umask 077) writes byte-identical archives and digests" same_bytes
images=$(cut -d' ' -f1 "$work/a/images.txt" | tr '\n' ' ')
check "built: mcl-controller, mcl-sidecar and mcl-example-go (and mcl when it exists)" \
  bash -c '[[ "$(cut -d" " -f1 "$0" | grep -v "^mcl$" | tr "\n" " ")" == "mcl-controller mcl-example-go mcl-sidecar " ]]' "$work/a/images.txt"
mtime_free() {
  local bin; bin="$(bazel info -c "$mode" bazel-bin 2>/dev/null)/sidecar/mcl-sidecar"
  cp "$bin" "$work/sidecar-copy" && touch -d '2001-02-03' "$work/sidecar-copy"
  local d1 d2
  d1=$(python3 "$here/oci_image.py" --binary "$bin" --name mcl-sidecar --tag t --out "$work/m1.tar" | cut -d' ' -f2)
  d2=$(python3 "$here/oci_image.py" --binary "$work/sidecar-copy" --name mcl-sidecar --tag t --out "$work/m2.tar" | cut -d' ' -f2)
  [[ -n "$d1" && "$d1" == "$d2" ]]
}
check "the input's path and mtime do not change the digest" mtime_free

# --- contents ------------------------------------------------------------------------------------
# layer_listing ARCHIVE: "path mode uid:gid size" of every layer entry, in layer order.
layer_listing() {
  local x="$work/x-$(basename "$1")"
  mkdir -p "$x" && tar xf "$1" -C "$x" || return 1
  local l; for l in $(jq -r '.[0].Layers[]' "$x/manifest.json"); do
    tar tvf "$x/$l" | awk '{print $6, $1, $2, $3}'
  done
}
config_of() { local x="$work/x-$(basename "$1")"; jq -c '.' "$x/$(jq -r '.[0].Config' "$x/manifest.json")"; }
base_files='etc/ drwxr-xr-x 0/0 0
etc/group -rw-r--r-- 0/0 27
etc/nsswitch.conf -rw-r--r-- 0/0 44
etc/passwd -rw-r--r-- 0/0 94
home/ drwxr-xr-x 0/0 0
home/nonroot/ drwx------ 65532/65532 0
root/ drwx------ 0/0 0
tmp/ drwxrwxrwt 0/0 0'
for img in $images; do
  a="$work/a/$img.tar"
  listing="$(layer_listing "$a" | sort)"
  cfg="$(config_of "$a")"
  check "$img: no shell, no package manager, no other programs" \
    bash -c "! grep -qE '(^| )(bin/(sh|bash|dash|busybox)|usr/bin/(sh|bash|apt|dpkg)) ' <<<\"\$0\"" "$listing"
  check "$img: runs as 65532:65532 with the binary as entrypoint, no Cmd" \
    jq -e --arg b "/usr/bin/$img" '.config.User == "65532:65532" and .config.Entrypoint == [$b] and (.config.Cmd == null)' <<<"$cfg"
  check "$img: fixed timestamps (created and every entry at the epoch)" \
    bash -c "jq -e '.created == \"1970-01-01T00:00:00Z\"' <<<\"\$0\" >/dev/null && ! tar tvf \"\$1\" | grep -v ' 1970-01-01 00:00 '" "$cfg" "$a"
  expected="$base_files"
  [[ "$img" == mcl-controller ]] && expected+=$'\netc/ssl/ drwxr-xr-x 0/0 0\netc/ssl/certs/ drwxr-xr-x 0/0 0'
  want_libs=""
  bin="$(bazel info -c "$mode" bazel-bin 2>/dev/null)"
  case "$img" in
    mcl-controller) hostbin="$bin/controller/mcl-controller $bin/controller/injector/mcl-injector $bin/controller/injector/mcl-uninstall" ;;
    mcl-sidecar) hostbin="$bin/sidecar/mcl-sidecar" ;;
    mcl) hostbin="$bin/client-stubs/cpp/mcl" ;;
    *) hostbin="" ;;
  esac
  if [[ -n "$hostbin" ]]; then
    # shellcheck disable=SC2086  # a list of binaries
    want_libs="$(for b in $hostbin; do ldd "$b"; done | grep -oE '/[^ ]+' | sed 's#^/##' | sort -u | tr '\n' ' ')"
  fi
  check "$img: exactly the shared objects ldd lists (${want_libs:-none: static})" \
    bash -c '[[ "$(tr -s " " <<<"$0" | sed "s/ $//")" == "$(tr -s " " <<<"$1" | sed "s/ $//")" ]]' "$want_libs" \
    "$(grep -oE '^lib(64)?/[^ ]*[^/] ' <<<"$listing" | sort | tr '\n' ' ')"
  others="$(grep -vE '^(lib(64)?/|usr/|etc/ssl/certs/ca-certificates.crt )' <<<"$listing")"
  check "$img: the base files are exactly passwd, group, nsswitch.conf, /tmp, /root, /home/nonroot" \
    bash -c '[[ "$0" == "$1" ]]' "$(sort <<<"$expected")" "$others"
done

# --- the tools -----------------------------------------------------------------------------------
for img in $images; do
  a="$work/a/$img.tar"; digest="$(awk -v n="$img" '$1 == n {print $3}' "$work/a/images.txt")"
  check "$img: skopeo inspect oci-archive: shows the manifest digest" \
    bash -c '[[ "$(skopeo inspect oci-archive:"$0" | jq -r .Digest)" == "$1" ]]' "$a" "$digest"
  check "$img: skopeo inspect docker-archive: reads the same layers" \
    bash -c '[[ "$(skopeo inspect docker-archive:"$0" | jq -c .Layers)" == "$(skopeo inspect oci-archive:"$0" | jq -c .Layers)" ]]' "$a"
done
P=(podman --root "$work/podman/root" --runroot "$work/podman/run" --storage-driver vfs
   --tmpdir "$work/podman/tmp" --cgroup-manager cgroupfs --events-backend none)
for img in $images; do
  digest="$(awk -v n="$img" '$1 == n {print $3}' "$work/a/images.txt")"
  check "$img: podman load names it docker.io/library/$img and keeps its digest" \
    bash -c '"${@:2}" load -q -i "$0" >/dev/null && [[ "$("${@:2}" image inspect --format "{{.Digest}}" "docker.io/library/$1:'"$(awk -v n="$img" '$1 == n {print $2}' "$work/a/images.txt" | cut -d: -f2)"'")" == "'"$digest"'" ]]' \
    "$work/a/$img.tar" "$img" "${P[@]}"
done
umoci_unpack() {
  skopeo copy -q "oci-archive:$work/a/mcl-sidecar.tar" "oci:$work/umoci:s" &&
    umoci unpack --image "$work/umoci:s" "$work/bundle" >/dev/null &&
    jq -e '.process.user.uid == 65532 and .process.user.gid == 65532 and .process.args == ["/usr/bin/mcl-sidecar"]' "$work/bundle/config.json"
}
check "umoci unpacks the sidecar image to a bundle that runs /usr/bin/mcl-sidecar as 65532" umoci_unpack

# ctr images import into a containerd of its own (own root, state and socket; no CRI), then run.
mkdir -p "$work/ctd"
cat >"$work/ctd/config.toml" <<EOF
version = 2
root = "$work/ctd/root"
state = "$work/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/ctd/containerd.sock"
[ttrpc]
  address = "$work/ctd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
containerd --config "$work/ctd/config.toml" >"$work/ctd/log" 2>&1 &
ctd_pid=$!
ctr=(ctr -a "$work/ctd/containerd.sock" -n k8s.io)
for _ in $(seq 100); do "${ctr[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
for img in $images; do
  ref="$(awk -v n="$img" '$1 == n {print $2}' "$work/a/images.txt")"
  digest="$(awk -v n="$img" '$1 == n {print $3}' "$work/a/images.txt")"
  check "$img: ctr -n k8s.io images import names it $ref with its digest" \
    bash -c '"${@:3}" images import "$0" >/dev/null && "${@:3}" images ls -q | grep -qx "$1" &&
             [[ "$("${@:3}" images ls | awk -v r="$1" "\$1 == r {print \$3}")" == "$2" ]]' "$work/a/$img.tar" "$ref" "$digest" "${ctr[@]}"
done
run_in_ctr() {  # run_in_ctr REF ID ARGS...: output of the container
  timeout 60 "${ctr[@]}" run --rm "$1" "$2" "${@:3}" 2>&1
}
check "the sidecar image runs under containerd + runc (mcl-sidecar --help)" \
  bash -c 'grep -q "mcl-sidecar: multi-cluster leader election" <<<"$0"' "$(run_in_ctr docker.io/library/mcl-sidecar:"$(awk '$1=="mcl-sidecar"{print $2}' "$work/a/images.txt" | cut -d: -f2)" t1 /usr/bin/mcl-sidecar --help)"
check "the controller image also runs the injector (mcl-injector --help)" \
  bash -c 'grep -q "mcl-injector" <<<"$0"' "$(run_in_ctr "$(awk '$1=="mcl-controller"{print $2}' "$work/a/images.txt")" t4 /usr/bin/mcl-injector --help)"
check "the controller image runs under containerd + runc (mcl-controller --help)" \
  bash -c 'grep -qi "usage\|--cluster-name" <<<"$0"' "$(run_in_ctr "$(awk '$1=="mcl-controller"{print $2}' "$work/a/images.txt")" t2 /usr/bin/mcl-controller --help)"
if grep -q '^mcl ' "$work/a/images.txt"; then
  check "the mcl command's image runs under containerd + runc (mcl --help)" \
    bash -c 'grep -q "mcl run" <<<"$0"' "$(run_in_ctr "$(awk '$1=="mcl"{print $2}' "$work/a/images.txt")" t5 /usr/bin/mcl --help)"
fi
check "there is no shell to exec in the images (ctr run ... /bin/sh fails)" \
  bash -c 'grep -q "no such file or directory" <<<"$0"' "$(run_in_ctr "$(awk '$1=="mcl-sidecar"{print $2}' "$work/a/images.txt")" t3 /bin/sh -c true)"

# --- the Containerfile -----------------------------------------------------------------------------
cf="$repo/helm/images/Containerfile"
stage_of() {  # stage_of TARGET: the Containerfile lines of that stage
  awk -v t="$1" '/^FROM / {on = ($NF == t)} on' "$cf"
}
for img in $images; do
  case "$img" in mcl-controller) t=controller ;; mcl-sidecar) t=sidecar ;; mcl-example-go) t=example ;; *) t="$img" ;; esac
  cfg="$(config_of "$work/a/$img.tar")"
  stage="$(stage_of "$t")"
  env_cf="$(awk '/^ENV / {on = 1} on {print; if ($0 !~ /\\$/) on = 0}' <<<"$stage" |
    sed 's/^ENV //; s/\\$//' | tr -s ' \n' '\n\n' | grep = | sort | tr '\n' ' ')"
  env_img="$(jq -r '.config.Env[]' <<<"$cfg" | sort | tr '\n' ' ')"
  check "Containerfile --target $t: same USER, ENTRYPOINT and ENV as the $img archive" \
    bash -c '[[ "$0" == "$1" ]] && grep -qx "USER $(jq -r .config.User <<<"$2")" <<<"$3" &&
             grep -qxF "ENTRYPOINT $(jq -c .config.Entrypoint <<<"$2" | sed "s/,/, /g")" <<<"$3"' \
    "$env_cf" "$env_img" "$cfg" "$stage"
done
rootfs_same() {  # the --rootfs tree the Containerfile copies == the union of the archive's layers
  local bin; bin="$(bazel info -c "$mode" bazel-bin 2>/dev/null)/controller/mcl-controller"
  python3 "$here/oci_image.py" --binary "$bin" --name mcl-controller --tag t --ca-certificates \
    --also "$(dirname "$bin")/injector/mcl-injector" --also "$(dirname "$bin")/injector/mcl-uninstall" \
    --rootfs "$work/rootfs" >/dev/null || return 1
  local tree layers
  tree="$(cd "$work/rootfs" && find . -mindepth 1 | sed 's#^\./##' | sort | while read -r p; do
    if [[ -d "$p" ]]; then echo "$p/ $(stat -c '%A %u/%g' "$p") 0"; else echo "$p $(stat -c '%A %u/%g %s' "$p")"; fi; done)"
  layers="$(layer_listing "$work/a/mcl-controller.tar" | sort)"
  [[ "$tree" == "$layers" ]] || { diff <(echo "$tree") <(echo "$layers"); return 1; }
}
check "oci_image.py --rootfs (what the Containerfile copies) writes the archive's files, owners and modes" rootfs_same
# The Containerfile's RUN step itself, with this machine standing in for its Debian 12 stage and
# /in, /out and the script's path moved into the work directory: every target's tree comes out
# as the archive's layers have it. (Docker itself does not run here: no engine.)
containerfile_run() {
  local b; b="$(bazel info -c "$mode" bazel-bin 2>/dev/null)"
  mkdir -p "$work/cf/in" "$work/cf/out" && cp "$b/controller/mcl-controller" "$b/controller/injector/mcl-injector" \
    "$b/controller/injector/mcl-uninstall" "$b/sidecar/mcl-sidecar" "$work/cf/in/" || return 1
  local step
  step="$(awk '/^RUN set -e;/,/done$/' "$cf" | sed 's/^RUN //' |
    sed "s#/usr/local/bin/oci_image.py#$here/oci_image.py#g; s#/in/#$work/cf/in/#g; s#/out/#$work/cf/out/#g")"
  sh -c "$step" >/dev/null || return 1
  local t img tree layers
  for t in controller:mcl-controller sidecar:mcl-sidecar; do
    img="${t#*:}"
    tree="$(cd "$work/cf/out/${t%%:*}" && find . -mindepth 1 | sed 's#^\./##' | sort | while read -r p; do
      if [[ -d "$p" ]]; then echo "$p/ $(stat -c '%A %u/%g' "$p") 0"; else echo "$p $(stat -c '%A %u/%g %s' "$p")"; fi; done)"
    layers="$(layer_listing "$work/a/$img.tar" | sort)"
    [[ "$tree" == "$layers" ]] || { echo "$img:"; diff <(echo "$tree") <(echo "$layers"); return 1; }
  done
}
check "the Containerfile's rootfs step writes, per target, exactly the archive's files, owners and modes" containerfile_run

echo "$passed passed, $failed failed"
((failed == 0))
