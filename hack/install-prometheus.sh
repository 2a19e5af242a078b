#!/usr/bin/env bash
# Installs Prometheus from Debian's `prometheus` package (2.42 on bookworm), the real server the
# Rollout successRate tests and benchmarks start on loopback (their own config, port and storage:
# the package's system service is not used). Uses the machine's own apt configuration.
# Idempotent: with a prometheus binary present (on PATH, or $PROMETHEUS) it does nothing.
set -euo pipefail

log() { printf '[install-prometheus] %s\n' "$*" >&2; }

if [ -n "${PROMETHEUS:-}" ]; then
  [ -x "$PROMETHEUS" ] || { log "PROMETHEUS=$PROMETHEUS is not an executable"; exit 1; }
  log "using $PROMETHEUS"; exit 0
fi
if command -v prometheus >/dev/null; then
  log "prometheus present: $(prometheus --version 2>&1 | head -n1)"
  exit 0
fi
log "apt-get install prometheus (Debian package)"
apt-get update -qq
# --no-install-recommends: the node exporter and the rest are not needed.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus >/dev/null || { log "prometheus did not install"; exit 1; }
log "installed: $(prometheus --version 2>&1 | head -n1)"
