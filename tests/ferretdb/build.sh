#!/usr/bin/env bash
# Builds the embedded FerretDB test server once (Go module proxy), caches it under .cache/, prints its path.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VERSION="v1.24.2"
OUT="${FERRETDB_SERVER_OUT:-$ROOT/.cache/ferretdb-$VERSION/ferretdb-server}"
if [[ "${1:-}" != "--force" && -x "$OUT" ]]; then
  echo "$OUT"
  exit 0
fi
command -v go >/dev/null || { echo "build.sh: Go is required to build the FerretDB test server" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
echo "building FerretDB $VERSION test server (first build takes a few minutes)..." >&2
(cd "$HERE" && CGO_ENABLED=0 go build -trimpath -o "$OUT.tmp" . 1>&2)
mv "$OUT.tmp" "$OUT"
echo "$OUT"
