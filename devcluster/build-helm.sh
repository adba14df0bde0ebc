#!/usr/bin/env bash
# Build helm from the Go module pinned in devcluster/go/helm/go.{mod,sum}, into a cache outside the work tree:
#
#   ${INFERGATE_CACHE:-~/.cache/infergate}/helm-<helm version>/bin/helm
#
# The chart tests (tests/deploy/test_helm*.py) lint, render and install deploy/helm/infergate with it.
# Idempotent: when the binary is there and its stamp matches the pinned module, it exits at once.
# Prints the bin directory as the last line of stdout, so callers can do BIN=$(devcluster/build-helm.sh | tail -1).
#
# Environment: INFERGATE_CACHE (cache root), GO (the go command), INFERGATE_REBUILD=1 (ignore the stamp).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module="$here/go/helm"

log() { echo "devcluster/build-helm.sh: $*" >&2; }

find_go() {
  if [[ -n "${GO:-}" ]]; then echo "$GO"; return; fi
  if command -v go >/dev/null 2>&1; then command -v go; return; fi
  if [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go; return; fi
  log "error: Go is not installed (looked for \$GO, go on PATH and /usr/local/go/bin/go); Go >= 1.26 is needed"
  exit 1
}

version="$(awk '$1 == "helm.sh/helm/v3" && $2 ~ /^v/ {print $2; exit}' "$module/go.mod")"
dest="${INFERGATE_CACHE:-$HOME/.cache/infergate}/helm-$version"
bin="$dest/bin"
want="$( { echo "helm=$version"; cat "$module/go.mod" "$module/go.sum" "${BASH_SOURCE[0]}"; } | sha256sum | cut -d' ' -f1)"

is_built() {
  [[ "${INFERGATE_REBUILD:-0}" != 1 ]] || return 1
  [[ -f "$bin/.stamp" && "$(cat "$bin/.stamp")" == "$want" && -x "$bin/helm" ]]
}

if is_built; then
  log "up to date: $bin (helm $version)"
  echo "$bin"
  exit 0
fi

mkdir -p "$dest"
# A second build at once waits for the first and then finds the binary built.
exec 9>"$dest/.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
  if is_built; then echo "$bin"; exit 0; fi
fi

go_cmd="$(find_go)"
log "using $("$go_cmd" version)"
export GOFLAGS="-mod=readonly -trimpath -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

start=$SECONDS
log "building helm $version"
mkdir -p "$bin"
rm -f "$bin/.stamp"
# The ldflags helm's own Makefile sets: its version, and the Kubernetes version `helm template` and `helm lint`
# assume without a cluster (from its client-go v0.X.Y: 1.X; left unset it is 1.20, older than charts allow).
client_go="$(cd "$module" && "$go_cmd" list -m -f '{{.Version}}' k8s.io/client-go)"
k8s_minor="$(echo "$client_go" | cut -d. -f2)"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
(cd "$module" && "$go_cmd" build -ldflags="$ldflags" -o "$bin/helm.new" helm.sh/helm/v3/cmd/helm)
mv -f "$bin/helm.new" "$bin/helm"
echo "$want" >"$bin/.stamp"
log "built helm $version in $((SECONDS - start))s: $bin"
echo "$bin"
