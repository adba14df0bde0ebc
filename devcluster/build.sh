#!/usr/bin/env bash
# Build the local control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager, kwok) from the
# Go modules pinned in devcluster/go/*/go.{mod,sum}, into a cache outside the work tree:
#
#   ${INFERGATE_CACHE:-~/.cache/infergate}/k8s-<kubernetes version>/bin/
#
# Idempotent: when the binaries are there and their stamp matches the pinned modules, it exits at once.
# Prints the bin directory as the last line of stdout, so callers can do BIN=$(devcluster/build.sh | tail -1).
#
# Environment: INFERGATE_CACHE (cache root), GO (the go command), INFERGATE_REBUILD=1 (ignore the stamp).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
modules="$here/go"

log() { echo "devcluster/build.sh: $*" >&2; }

find_go() {
  if [[ -n "${GO:-}" ]]; then echo "$GO"; return; fi
  if command -v go >/dev/null 2>&1; then command -v go; return; fi
  # A fresh shell (CI) may not have Go's default install location on PATH.
  if [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go; return; fi
  log "error: Go is not installed (looked for \$GO, go on PATH and /usr/local/go/bin/go); Go >= 1.26 is needed"
  exit 1
}

# The version pinned in a module's go.mod (its `require` line for $2).
pinned() { awk -v mod="$2" '$1 == mod && $2 ~ /^v/ {print $2; exit}' "$modules/$1/go.mod"; }

k8s_version="$(pinned kubernetes k8s.io/kubernetes)"
etcd_version="$(pinned etcd go.etcd.io/etcd/server/v3)"
kwok_version="$(pinned kwok sigs.k8s.io/kwok)"
cache_root="${INFERGATE_CACHE:-$HOME/.cache/infergate}"
dest="$cache_root/k8s-$k8s_version"
bin="$dest/bin"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

# The stamp names what was built: any change to the pinned modules, the build flags or this script rebuilds.
stamp_value() {
  {
    echo "kubernetes=$k8s_version etcd=$etcd_version kwok=$kwok_version"
    cat "$modules"/*/go.mod "$modules"/*/go.sum "${BASH_SOURCE[0]}"
  } | sha256sum | cut -d' ' -f1
}
want="$(stamp_value)"

is_built() {
  [[ "${INFERGATE_REBUILD:-0}" != 1 ]] || return 1
  [[ -f "$bin/.stamp" && "$(cat "$bin/.stamp")" == "$want" ]] || return 1
  local b
  for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || return 1; done
}

if is_built; then
  log "up to date: $bin (kubernetes $k8s_version, etcd $etcd_version, kwok $kwok_version)"
  echo "$bin"
  exit 0
fi

mkdir -p "$dest"
# Two builds at once (say `make test` and `make demo`) would each take most of the machine; the second waits
# for the first and then finds everything built.
exec 9>"$dest/.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
  if is_built; then echo "$bin"; exit 0; fi
fi

go_cmd="$(find_go)"
log "using $("$go_cmd" version)"
# -buildvcs=false: these helper modules sit inside our git tree, whose state has nothing to do with the build.
export GOFLAGS="-mod=readonly -trimpath -buildvcs=false"
# Never let the go command fetch a different toolchain behind our back: go.mod asks for 1.26.0.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

staging="$dest/bin.new"
rm -rf "$staging"
mkdir -p "$staging"

timed() {
  local what="$1"; shift
  local start=$SECONDS
  log "building $what"
  "$@"
  log "built $what in $((SECONDS - start))s"
}

# The Kubernetes binaries report their version from ldflags that its own build scripts (hack/lib/version.sh)
# normally set; without them they say v0.0.0-master, which kubectl warns about and version gates dislike.
k8s_build_date="$(cd "$modules/kubernetes" && "$go_cmd" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
k8s_minor="$(echo "$k8s_version" | cut -d. -f2)"
k8s_ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$k8s_build_date"
done

total_start=$SECONDS
(
  cd "$modules/etcd"
  timed "etcd $etcd_version" "$go_cmd" build -ldflags="-s -w" -o "$staging/etcd" go.etcd.io/etcd/server/v3
)
(
  cd "$modules/kwok"
  timed "kwok $kwok_version" "$go_cmd" build -ldflags="-s -w" -o "$staging/kwok" sigs.k8s.io/kwok/cmd/kwok
)
(
  cd "$modules/kubernetes"
  # One go build for the three: they share most packages, and the linker runs for each in parallel.
  timed "kube-apiserver, kube-controller-manager, kube-scheduler $k8s_version" \
    "$go_cmd" build -ldflags="$k8s_ldflags" -o "$staging/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
)

# Swap the new binaries in and write the stamp last, so an interrupted build is never taken for a finished one.
rm -f "$bin/.stamp"
mkdir -p "$bin"
for b in "${binaries[@]}"; do mv -f "$staging/$b" "$bin/$b"; done
rmdir "$staging"
echo "$want" >"$bin/.stamp"
log "done in $((SECONDS - total_start))s: $bin"
echo "$bin"
