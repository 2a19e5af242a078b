#!/usr/bin/env bash
# Installs the local test control plane (etcd, kube-apiserver, kube-controller-manager) the way
# setup-envtest lays it out, plus PostgreSQL 15 and openssl. Idempotent and cached: a second run
# with the binaries present does nothing. Honours KUBEBUILDER_ASSETS (use those binaries as they are).
# The Debian archive it fetches from is the machine's own (its apt sources), so it works behind a
# corporate mirror; DEBIAN_MIRROR overrides it. `--print-mirror` prints the mirror it would use.
set -euo pipefail

K8S_VERSION=1.20.2
ASSETS_DEFAULT="${HOME}/.local/share/kubebuilder-envtest/k8s/${K8S_VERSION}-linux-amd64"
ASSETS="${KUBEBUILDER_ASSETS:-$ASSETS_DEFAULT}"
CACHE="${CONTROLPLANE_BUILD_CACHE:-${HOME}/.cache/controlplane-build}"
APT_ETC="${APT_ETC:-/etc/apt}"   # the tests point this at a fake apt configuration

log() { printf '[install-control-plane] %s\n' "$*" >&2; }

# Every enabled deb/deb-src entry of the machine's apt sources as "URI<TAB>suite" lines, in apt's
# order: sources.list, then sources.list.d/*.list (one-line format) and *.sources (deb822 stanzas;
# URIs:, Suites:, Types:, Enabled:, continuation lines, comments). apt ignores other file names.
apt_source_entries() {
  local f
  [ -f "$APT_ETC/sources.list" ] && one_line_entries "$APT_ETC/sources.list"
  for f in "$APT_ETC"/sources.list.d/*; do
    [ -f "$f" ] || continue
    case "$f" in
      *.list) one_line_entries "$f" ;;
      *.sources) deb822_entries "$f" ;;
    esac
  done
}

one_line_entries() {
  # deb [opt=value ...] URI suite [component ...]
  awk '{ sub(/#.*/, "") }
       $1 == "deb" || $1 == "deb-src" {
         i = 2
         if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
         if (i + 1 <= NF) printf "%s\t%s\n", $i, $(i + 1)
       }' "$1"
}

deb822_entries() {
  awk 'function flush(   n, m, u, s, i, j, t, ok) {
         ok = 0; n = split(types, t, /[ \t]+/)
         for (i = 1; i <= n; i++) if (t[i] == "deb" || t[i] == "deb-src") ok = 1
         if (ok && tolower(enabled) != "no") {
           n = split(uris, u, /[ \t]+/); m = split(suites, s, /[ \t]+/)
           for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) if (u[i] != "" && s[j] != "") printf "%s\t%s\n", u[i], s[j]
         }
         types = uris = suites = enabled = field = ""
       }
       /^[ \t]*#/ { next }
       /^[ \t]*$/ { flush(); next }
       /^[ \t]/ { if (field == "uris") uris = uris " " $0; else if (field == "suites") suites = suites " " $0; else if (field == "types") types = types " " $0; next }
       { key = tolower($0); sub(/:.*/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val); field = key
         if (key == "types") types = val; else if (key == "uris") uris = val; else if (key == "suites") suites = val; else if (key == "enabled") enabled = val }
       END { flush() }' "$1"
}

# The Debian archive: the entry for this release's own suite (not -security/-updates), else the
# first plain suite of any entry. Trailing slashes trimmed.
debian_mirror() {
  local codename="" entries uri
  [ -r "${OS_RELEASE:-/etc/os-release}" ] && codename=$(. "${OS_RELEASE:-/etc/os-release}" && echo "${VERSION_CODENAME:-}")
  entries=$(apt_source_entries)
  uri=""
  [ -n "$codename" ] && uri=$(awk -F'\t' -v c="$codename" '$2 == c { print $1; exit }' <<<"$entries")
  [ -n "$uri" ] || uri=$(awk -F'\t' '$2 !~ /[-\/]/ && $1 ~ /^(https?|ftp|file):/ { print $1; exit }' <<<"$entries")
  printf '%s' "${uri%/}"
}

MIRROR="${DEBIAN_MIRROR:-$(debian_mirror)}"
if [ "${1:-}" = "--print-mirror" ]; then
  [ -n "$MIRROR" ] || { log "no Debian archive in the apt sources under $APT_ETC (set DEBIAN_MIRROR)"; exit 1; }
  echo "$MIRROR"; exit 0
fi

have_all() {
  [ -x "$ASSETS/etcd" ] && [ -x "$ASSETS/kube-apiserver" ] && [ -x "$ASSETS/kube-controller-manager" ]
}

apt_updated=""
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# PostgreSQL server and tools the tests and `make up` start on their own; Lua 5.1 (what Argo CD's gopher-lua implements) for the Argo CD health check tests.
apt_install postgresql-15 openssl lua5.1   # lua5.1: the tests run the Argo CD health checks (config/argocd/health)
if have_all; then
  log "control plane binaries present in $ASSETS"
  exit 0
fi
if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ "$ASSETS" != "$ASSETS_DEFAULT" ]; then
  log "KUBEBUILDER_ASSETS=$ASSETS lacks etcd/kube-apiserver/kube-controller-manager"; exit 1
fi

apt_install etcd-server make rsync ca-certificates dpkg-dev xz-utils
[ -n "$MIRROR" ] || { log "no Debian archive found in the apt sources under $APT_ETC: set DEBIAN_MIRROR to your Debian mirror"; exit 1; }
log "Debian archive: $MIRROR (from the apt sources; DEBIAN_MIRROR overrides)"
mkdir -p "$ASSETS" "$CACHE"

# A private apt configuration so the machine's own sources stay as they were.
APTDIR="$CACHE/apt"
mkdir -p "$APTDIR/lists/partial" "$APTDIR/archives/partial"
cat > "$APTDIR/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bullseye main
SRC
APTOPTS=(-o Dir::Etc::SourceList="$APTDIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o Dir::State::Lists="$APTDIR/lists" -o Dir::Cache::Archives="$APTDIR/archives"
         -o APT::Architecture=amd64 -o Debug::NoLocking=1)

GOROOT_DIR="$CACHE/go1.15"
if [ ! -x "$GOROOT_DIR/usr/lib/go-1.15/bin/go" ]; then
  log "fetching Go 1.15 (bullseye) into $GOROOT_DIR"
  apt-get "${APTOPTS[@]}" update -qq
  (cd "$CACHE" && apt-get "${APTOPTS[@]}" download golang-1.15-go golang-1.15-src >/dev/null)
  mkdir -p "$GOROOT_DIR"
  for deb in "$CACHE"/golang-1.15-go_*.deb "$CACHE"/golang-1.15-src_*.deb; do dpkg -x "$deb" "$GOROOT_DIR"; done
fi
export GOROOT="$GOROOT_DIR/usr/lib/go-1.15"
export PATH="$GOROOT/bin:$PATH"
export GOPATH="$CACHE/gopath" GOCACHE="$CACHE/gocache" GOFLAGS=-mod=vendor GO111MODULE=on

SRC_DIR="$CACHE/kubernetes-src"
if [ ! -d "$SRC_DIR/cmd/kube-apiserver" ]; then
  log "fetching Debian's kubernetes source package"
  [ -f "$APTDIR/lists/lock" ] || apt-get "${APTOPTS[@]}" update -qq
  ls "$APTDIR/lists/" | grep -q Sources || apt-get "${APTOPTS[@]}" update -qq
  mkdir -p "$CACHE/srcpkg"
  (cd "$CACHE/srcpkg" && apt-get "${APTOPTS[@]}" source --download-only kubernetes >/dev/null)
  orig=$(ls "$CACHE"/srcpkg/kubernetes_*.orig.tar.* | head -n1)
  rm -rf "$SRC_DIR.tmp" && mkdir -p "$SRC_DIR.tmp"
  tar -xf "$orig" -C "$SRC_DIR.tmp" --strip-components=1
  mv "$SRC_DIR.tmp" "$SRC_DIR"
fi

if [ ! -x "$SRC_DIR/_output/bin/kube-apiserver" ] || [ ! -x "$SRC_DIR/_output/bin/kube-controller-manager" ]; then
  log "building kube-apiserver and kube-controller-manager with $(go version) (about 4 minutes)"
  (cd "$SRC_DIR" && make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$CACHE/build.log" 2>&1) \
    || { tail -n 40 "$CACHE/build.log" >&2; exit 1; }
fi
install -m 0755 "$SRC_DIR/_output/bin/kube-apiserver" "$ASSETS/kube-apiserver"
install -m 0755 "$SRC_DIR/_output/bin/kube-controller-manager" "$ASSETS/kube-controller-manager"
install -m 0755 "$(command -v etcd || echo /usr/bin/etcd)" "$ASSETS/etcd"
command -v etcdctl >/dev/null && install -m 0755 "$(command -v etcdctl)" "$ASSETS/etcdctl" || true
log "installed into $ASSETS"
