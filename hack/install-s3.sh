#!/usr/bin/env bash
# Installs s3rver 3.7.1 (npm), the S3-compatible server the backup tests and `make up` run on
# loopback, from whatever registry npm is configured with (npm checks the package's integrity).
# Idempotent and cached: with the pinned version in place it does nothing.
# Installs to $S3RVER_INSTALL_DIR (default ~/.local/share/controlplane-tools/s3rver); the tests
# look for node_modules/s3rver/bin/s3rver.js there, or use $S3RVER.
set -euo pipefail

VERSION="3.7.1"
DEST="${S3RVER_INSTALL_DIR:-${HOME}/.local/share/controlplane-tools/s3rver}"

log() { printf '[install-s3] %s\n' "$*" >&2; }

installed_ok() {
  [ -f "$DEST/node_modules/s3rver/package.json" ] \
    && node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' "$DEST/node_modules/s3rver/package.json" "$VERSION" 2>/dev/null
}

if installed_ok; then
  log "s3rver $VERSION present in $DEST"
  exit 0
fi
command -v node >/dev/null && command -v npm >/dev/null || { log "node and npm are needed for s3rver (apt-get install nodejs npm)"; exit 1; }
mkdir -p "$DEST"
[ -f "$DEST/package.json" ] || echo '{"name":"controlplane-s3rver","private":true}' > "$DEST/package.json"
log "npm install s3rver@$VERSION into $DEST"
npm install --prefix "$DEST" --no-audit --no-fund --silent "s3rver@$VERSION"
installed_ok || { log "s3rver $VERSION did not install"; exit 1; }
log "installed s3rver $VERSION into $DEST"
