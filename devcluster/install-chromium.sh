#!/usr/bin/env bash
# Install Debian's headless-capable `chromium`, used only by the GPU map's browser test
# (tests/extender/test_gpumap_browser.py). Does nothing when a Chromium is already there.
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
if ! command -v apt-get >/dev/null 2>&1; then
  log "no chromium and no apt-get: install Chromium yourself and set INFERGATE_CHROMIUM"
  exit 1
fi
sudo=()
if [[ "$(id -u)" != 0 ]]; then sudo=(sudo -n); fi
log "installing chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
log "installed $(command -v chromium)"
