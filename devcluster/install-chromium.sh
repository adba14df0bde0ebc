#!/usr/bin/env bash
# Install Debian's headless-capable `chromium`, used only by the GPU map's browser test
# (tests/extender/gpumap/test_gpumap_browser.py). Does nothing when a Chromium is already there.
#
# Environment: INFERGATE_CHROMIUM (a Chromium binary to use instead; the test reads it too),
# INFERGATE_SKIP_CHROMIUM=1 (install nothing; the browser test then skips outside CI, fails in it).
set -euo pipefail

log() { echo "devcluster/install-chromium.sh: $*" >&2; }

if [[ "${INFERGATE_SKIP_CHROMIUM:-0}" == 1 ]]; then log "skipped (INFERGATE_SKIP_CHROMIUM=1)"; exit 0; fi
for candidate in "${INFERGATE_CHROMIUM:-}" chromium chromium-browser; do
  if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null 2>&1; then
    log "found $(command -v "$candidate")"
    exit 0
  fi
done
# Nothing else of `make setup` needs Chromium: when it cannot be installed here, say so and go on; the browser
# test then names what is missing (and fails in CI).
cannot() { log "warning: $*; tests/extender/gpumap/test_gpumap_browser.py will not run"; exit 0; }
command -v apt-get >/dev/null 2>&1 || cannot "no chromium and no apt-get: install Chromium and set INFERGATE_CHROMIUM"
sudo=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || cannot "installing chromium needs root (or sudo without a password)"
  sudo=(sudo -n)
fi
log "installing chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq || cannot "apt-get update failed"
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium fonts-dejavu-core \
  >/dev/null || cannot "apt-get install chromium failed"
log "installed $(command -v chromium)"
