#!/usr/bin/env bash
# Builds one real Go tool the tests or the benchmarks run, once, from the Go module proxy, into .cache/tools/,
# and prints its path. Usage: tests/tools/build.sh NAME [--force]   (NAME: see the table below).
# Later runs reuse the binary; a clean checkout reuses Go's module and build caches, so a rebuild is a link.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
NAME="${1:?usage: build.sh NAME [--force]}"
case "$NAME" in
  pebble)              PKG="github.com/letsencrypt/pebble/v2/cmd/pebble";              VERSION="v2.10.3" ;;
  pebble-challtestsrv) PKG="github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv"; VERSION="v2.10.3" ;;
  step-ca)             PKG="github.com/smallstep/certificates/cmd/step-ca";            VERSION="v0.30.2" ;;
  # lego v5: `go install ...@v5.6.0` fails (gitlab.com/greyxor/slogor and many DNS-provider modules are not
  # served), so it is built inside the wrapper module tests/tools/lego (slogor replaced by a stub; only the DNS
  # providers named in the tags: lego_dnslight and lego_dns_exec, the exec provider the dns-01 test drives).
  lego)                PKG="github.com/go-acme/lego/v5";                                VERSION="v5.6.0"
                       TAGS="lego_dnslight,lego_dns_exec"; SUFFIX="-dnsexec" ;;
  # cert-manager's ACME client code (v1.21.2, the newest the proxy serves) driven by our program in the module
  # tests/tools/certmanager-acme; the cached binary is keyed by a hash of that module's files, so an edit rebuilds.
  certmanager-acme)    PKG="."; VERSION="v1.21.2"
                       SUFFIX="-$(cat "$HERE/certmanager-acme/"{go.mod,go.sum,main.go} | sha256sum | cut -c1-12)" ;;
  *) echo "build.sh: unknown tool '$NAME' (pebble, pebble-challtestsrv, step-ca, lego, certmanager-acme)" >&2; exit 2 ;;
esac
DIR="$ROOT/.cache/tools/$NAME-$VERSION${SUFFIX:-}"
OUT="$DIR/$NAME"
if [[ "${2:-}" != "--force" && -x "$OUT" ]]; then
  echo "$OUT"
  exit 0
fi
command -v go >/dev/null || { echo "build.sh: Go is required to build $NAME" >&2; exit 1; }
mkdir -p "$DIR"
echo "building $NAME $VERSION (the first build takes a few minutes)..." >&2
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
if [[ "$NAME" == lego ]]; then
  mkdir -p "$TMP/bin"
  (cd "$HERE/lego" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -tags "$TAGS" -o "$TMP/bin/lego" "$PKG" 1>&2)
elif [[ "$NAME" == certmanager-acme ]]; then
  mkdir -p "$TMP/bin"
  (cd "$HERE/certmanager-acme" && CGO_ENABLED=0 go build -trimpath -o "$TMP/bin/$NAME" "$PKG" 1>&2)
else
  (cd "$TMP" && CGO_ENABLED=0 GOBIN="$TMP/bin" GOFLAGS=-mod=mod go install -trimpath "$PKG@$VERSION" 1>&2)
fi
mv "$TMP/bin/$NAME" "$OUT"
echo "$OUT"
