#!/usr/bin/env bash
# Create the TLS material for the self-signed overlay, once:
#
#   bash deploy/overlays/self-signed/setup.sh            # writes tls/ if it is missing, else keeps it
#   bash deploy/overlays/self-signed/setup.sh --renew    # new serving certificate, same CA
#   kubectl apply -k deploy/overlays/self-signed
#
# `infergate certs` writes a private CA (ca.crt, ca.key) and a serving certificate (tls.crt, tls.key) into
# tls/. The certificate names the webhook Service (what the API server connects to) and 127.0.0.1 (what
# kube-scheduler connects to for the extender beside it). kustomization.yaml puts ca.crt, tls.crt and tls.key
# in the Secret infergate-tls and ca.crt, base64-encoded, into the caBundle of every webhook. ca.key never
# leaves this directory; keep it (it lets --renew keep the CA) or delete it (the next run makes a new CA).
#
# tls/ is git-ignored. INFERGATE may name the infergate executable (default: on PATH, else the repo's .venv);
# INFERGATE_CERT_DAYS sets the validity of tls.crt (default 365).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tls="$here/tls"
renew=0
case "${1:-}" in
  --renew) renew=1 ;;
  "") ;;
  -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--renew]" >&2; exit 2 ;;
esac

if [ -n "${INFERGATE:-}" ]; then
  infergate="$INFERGATE"
elif command -v infergate >/dev/null 2>&1; then
  infergate="$(command -v infergate)"
elif [ -x "$here/../../../.venv/bin/infergate" ]; then
  infergate="$here/../../../.venv/bin/infergate"
else
  echo "setup.sh: infergate not found: run \`make setup\` (it installs .venv/bin/infergate) or set INFERGATE" >&2
  exit 1
fi

if [ "$renew" -eq 0 ] && [ -s "$tls/ca.crt" ] && [ -s "$tls/tls.crt" ] && [ -s "$tls/tls.key" ]; then
  echo "keeping the existing certificates in $tls (use --renew for a new serving certificate)"
else
  "$infergate" certs --out "$tls" \
    --dns infergate-webhook.infergate-system.svc,infergate-webhook.infergate-system.svc.cluster.local,localhost \
    --ip 127.0.0.1 \
    --days "${INFERGATE_CERT_DAYS:-365}"
fi
echo "next: kubectl apply -k ${here#"$PWD"/}"
