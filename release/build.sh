#!/usr/bin/env bash
# Builds pyship's release binaries for linux/amd64 and linux/arm64 into OUTDIR (default
# dist/), with a SHA256SUMS file, reproducibly: the same source, Go release and VERSION
# give the same bytes in any directory, on any machine. stdout gets SHA256SUMS.
#
#   release/build.sh v1.2.3 [OUTDIR]
set -euo pipefail

version=${1:-}
out=${2:-dist}
if ! [[ $version =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "usage: release/build.sh vX.Y.Z[-PRERELEASE] [OUTDIR] (got \"$version\")" >&2
  exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

# What would make two builds differ: the directory (-trimpath), the VCS state
# (-buildvcs=false: the version is stamped instead), cgo and the C toolchain
# (CGO_ENABLED=0), the build ID's inputs (-buildid= ), and the Go release: GOTOOLCHAIN=local
# keeps the go command from switching to another, and the one used is printed; the same Go
# gives the same bytes.
export CGO_ENABLED=0 GOFLAGS= GOTOOLCHAIN=local GOWORK=off
cd "$repo"
echo "building pyship $version with $(go env GOVERSION)" >&2
files=()
for arch in amd64 arm64; do
  f=pyship-$version-linux-$arch
  GOOS=linux GOARCH=$arch go build -trimpath -buildvcs=false \
    -ldflags "-s -w -buildid= -X main.version=$version" -o "$out/$f" ./cmd/pyship
  files+=("$f")
done
cd "$out"
sha256sum "${files[@]}" >SHA256SUMS
cat SHA256SUMS
