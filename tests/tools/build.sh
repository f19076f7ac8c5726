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
  *) echo "build.sh: unknown tool '$NAME' (pebble, pebble-challtestsrv, step-ca)" >&2; exit 2 ;;
esac
DIR="$ROOT/.cache/tools/$NAME-$VERSION"
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
(cd "$TMP" && CGO_ENABLED=0 GOBIN="$TMP/bin" GOFLAGS=-mod=mod go install -trimpath "$PKG@$VERSION" 1>&2)
mv "$TMP/bin/$NAME" "$OUT"
echo "$OUT"
