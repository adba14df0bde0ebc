#!/usr/bin/env bash
# Build the local control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager, kwok) and the
# ecosystem controllers the end-to-end tests run (LeaderWorkerSet, JobSet, KServe, OME) and helm (for the chart's
# tests) from the Go modules pinned
# in devcluster/go/*/go.{mod,sum}, into a cache outside the work tree:
#
#   ${INFERGATE_CACHE:-~/.cache/infergate}/k8s-<kubernetes version>/bin/    the control plane
#   ${INFERGATE_CACHE:-~/.cache/infergate}/<controller>-<version>/bin/      one directory per controller
#   ${INFERGATE_CACHE:-~/.cache/infergate}/helm-<version>/bin/               helm
#
#   build.sh                     everything: the control plane, every controller, helm
#   build.sh controlplane        the control plane only
#   build.sh lws jobset ...      these targets only (controlplane, lws, jobset, kserve, ome, helm)
#
# Idempotent: a target whose binaries are there with a stamp matching its pinned modules is not rebuilt. Each
# target has its own lock, so two builds of the same target never run at once while different ones may.
# Prints each target's bin directory; the control plane's is printed again as the last line, so callers can
# still do BIN=$(devcluster/build.sh | tail -1).
#
# Environment: INFERGATE_CACHE (cache root), GO (the go command), INFERGATE_REBUILD=1 (ignore the stamps).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
modules="$here/go"
script="${BASH_SOURCE[0]}"
cache_root="${INFERGATE_CACHE:-$HOME/.cache/infergate}"
controllers=(lws jobset kserve ome)

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
pinned() { awk -v mod="$2" '($1 == mod || ($1 == "require" && $2 == mod)) {v = ($1 == mod) ? $2 : $3; if (v ~ /^v/) {print v; exit}}' "$modules/$1/go.mod"; }

# -buildvcs=false: these helper modules sit inside our git tree, whose state has nothing to do with the build.
export GOFLAGS="-mod=readonly -trimpath -buildvcs=false"
# Never let the go command fetch a different toolchain behind our back: the go.mod files ask for 1.26.0.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
# OME v0.1.5 and two of its dependencies (the sigs.k8s.io/kueue and sigs.k8s.io/scheduler-plugins versions it
# requires) are not in the checksum database; their hashes are pinned in devcluster/go/ome/go.sum instead.
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/sgl-project/ome,sigs.k8s.io/kueue,sigs.k8s.io/scheduler-plugins"

timed() {
  local what="$1"; shift
  local start=$SECONDS
  log "$what"
  "$@"
  log "$what: done in $((SECONDS - start))s"
}

# build_target NAME DEST STAMP BUILD_FUNCTION BINARY...: build into DEST/bin unless its stamp says it is there.
# The stamp names what was built: any change to the pinned modules, the build flags or this script rebuilds.
build_target() {
  local name="$1" dest="$2" want="$3" build="$4"; shift 4
  local bin="$dest/bin" b
  is_built() {
    [[ "${INFERGATE_REBUILD:-0}" != 1 ]] || return 1
    [[ -f "$bin/.stamp" && "$(cat "$bin/.stamp")" == "$want" ]] || return 1
    for b in "$@"; do [[ -x "$bin/$b" ]] || return 1; done
  }
  if is_built "$@"; then
    log "up to date: $bin ($name)"
    echo "$bin"
    return 0
  fi
  mkdir -p "$dest"
  # Two builds of one target at once (say `make test` and `make demo`) would each take most of the machine;
  # the second waits for the first and then finds everything built.
  exec 9>"$dest/.lock"
  if ! flock -n 9; then
    log "another build of $name is running; waiting for it"
    flock 9
    if is_built "$@"; then exec 9>&-; echo "$bin"; return 0; fi
  fi
  local staging="$dest/bin.new" start=$SECONDS
  rm -rf "$staging"
  mkdir -p "$staging"
  "$build" "$staging"
  # Swap the new binaries in and write the stamp last, so an interrupted build is never taken for a finished one.
  rm -f "$bin/.stamp"
  mkdir -p "$bin"
  for b in "$@"; do mv -f "$staging/$b" "$bin/$b"; done
  rmdir "$staging"
  echo "$want" >"$bin/.stamp"
  exec 9>&-
  log "built $name in $((SECONDS - start))s: $bin"
  echo "$bin"
}

stamp_of() {  # stamp_of LABEL FILE...: a hash of the label, the files and this script
  { echo "$1"; shift; cat "$@" "$script"; } | sha256sum | cut -d' ' -f1
}

# --- the control plane ------------------------------------------------------------------------------------
k8s_version="$(pinned kubernetes k8s.io/kubernetes)"
etcd_version="$(pinned etcd go.etcd.io/etcd/server/v3)"
kwok_version="$(pinned kwok sigs.k8s.io/kwok)"

build_controlplane() {
  local staging="$1"
  # The Kubernetes binaries report their version from ldflags that its own build scripts (hack/lib/version.sh)
  # normally set; without them they say v0.0.0-master, which kubectl warns about and version gates dislike.
  local k8s_build_date k8s_minor k8s_ldflags="-s -w" pkg
  k8s_build_date="$(cd "$modules/kubernetes" && "$go_cmd" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
  k8s_minor="$(echo "$k8s_version" | cut -d. -f2)"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
    k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$k8s_build_date"
  done
  (cd "$modules/etcd" && timed "building etcd $etcd_version" \
    "$go_cmd" build -ldflags="-s -w" -o "$staging/etcd" go.etcd.io/etcd/server/v3)
  (cd "$modules/kwok" && timed "building kwok $kwok_version" \
    "$go_cmd" build -ldflags="-s -w" -o "$staging/kwok" sigs.k8s.io/kwok/cmd/kwok)
  # One go build for the three: they share most packages, and the linker runs for each in parallel.
  (cd "$modules/kubernetes" && timed "building kube-apiserver, kube-controller-manager, kube-scheduler $k8s_version" \
    "$go_cmd" build -ldflags="$k8s_ldflags" -o "$staging/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
}

controlplane() {
  local stamp
  stamp="$(stamp_of "kubernetes=$k8s_version etcd=$etcd_version kwok=$kwok_version" \
    "$modules"/{etcd,kubernetes,kwok}/go.mod "$modules"/{etcd,kubernetes,kwok}/go.sum)"
  build_target controlplane "$cache_root/k8s-$k8s_version" "$stamp" build_controlplane \
    etcd kube-apiserver kube-controller-manager kube-scheduler kwok
}

# --- the ecosystem controllers ----------------------------------------------------------------------------
# name -> the module it pins, the main package built from it, the binary's name.
declare -A controller_module=(
  [lws]=sigs.k8s.io/lws [jobset]=sigs.k8s.io/jobset
  [kserve]=github.com/kserve/kserve [ome]=github.com/sgl-project/ome
)
declare -A controller_package=(
  [lws]=sigs.k8s.io/lws/cmd [jobset]=sigs.k8s.io/jobset
  # OME's own cmd/manager links a Rust library; devcluster/go/ome/main.go starts OME's InferenceService
  # controller and webhooks from OME's packages instead (see there).
  [kserve]=github.com/kserve/kserve/cmd/manager [ome]=infergate.io/devcluster/ome
)
controller_binary() { echo "$1-controller-manager"; }

build_controller() {
  local name="$controller_name" staging="$1"
  (
    cd "$modules/$name"
    # The module download on its own, so that its time shows apart from compiling.
    timed "downloading the modules of $name ($controller_version)" "$go_cmd" mod download
    timed "building $name ($controller_version)" \
      "$go_cmd" build -ldflags="-s -w" -o "$staging/$(controller_binary "$name")" "${controller_package[$name]}"
  )
}

controller() {
  local stamp
  controller_name="$1"
  controller_version="$(pinned "$1" "${controller_module[$1]}")"
  [[ -n "$controller_version" ]] || { log "error: devcluster/go/$1/go.mod does not pin ${controller_module[$1]}"; exit 1; }
  stamp="$(stamp_of "$1=$controller_version" "$modules/$1"/go.mod "$modules/$1"/go.sum \
    $(find "$modules/$1" -maxdepth 1 -name '*.go' | sort))"
  build_target "$1" "$cache_root/$1-$controller_version" "$stamp" build_controller "$(controller_binary "$1")"
}

# --- helm (for the chart's tests) ---------------------------------------------------------------------------
helm_version="$(pinned helm helm.sh/helm/v3)"

build_helm() {
  local staging="$1" client_go k8s_minor ldflags pkg
  # The ldflags helm's own Makefile sets: its version, and the Kubernetes version `helm template` and `helm lint`
  # assume without a cluster (from its client-go v0.X.Y: 1.X; left unset it is 1.20, older than charts allow).
  client_go="$(cd "$modules/helm" && "$go_cmd" list -m -f '{{.Version}}' k8s.io/client-go)"
  k8s_minor="$(echo "$client_go" | cut -d. -f2)"
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
  done
  (cd "$modules/helm" && timed "building helm $helm_version" \
    "$go_cmd" build -ldflags="$ldflags" -o "$staging/helm" helm.sh/helm/v3/cmd/helm)
}

helm() {
  build_target helm "$cache_root/helm-$helm_version" \
    "$(stamp_of "helm=$helm_version" "$modules/helm"/go.mod "$modules/helm"/go.sum)" build_helm helm
}

# --- main -------------------------------------------------------------------------------------------------
if [[ $# -eq 0 ]]; then targets=(controlplane "${controllers[@]}" helm); else targets=("$@"); fi
for target in "${targets[@]}"; do
  if [[ "$target" != controlplane && "$target" != helm && -z "${controller_module[$target]:-}" ]]; then
    log "error: unknown target '$target' (known: controlplane ${controllers[*]} helm)"
    exit 2
  fi
done
go_cmd="$(find_go)"
log "using $("$go_cmd" version)"
total_start=$SECONDS
controlplane_bin=""
for target in "${targets[@]}"; do
  if [[ "$target" == controlplane ]]; then controlplane_bin="$(controlplane)"; echo "$controlplane_bin"
  elif [[ "$target" == helm ]]; then helm
  else controller "$target"; fi
done
log "done in $((SECONDS - total_start))s"
# The control plane's bin directory is the last line, for BIN=$(devcluster/build.sh | tail -1).
[[ -z "$controlplane_bin" ]] || echo "$controlplane_bin"
