#!/usr/bin/env bash
# Prints the SHA-256 of the Go sources a pyship binary is built from, in DIR (default the
# repository this script is in): every .go file but tests, go.mod and go.sum, outside .git
# and testdata, by path and content. release/record.sh writes it into release/VERSION; the
# action computes it over its own checked-out files, and takes the released binary only
# when the two are the same. It reads no git state: the action's directory may be a
# repository whose .git/config could run programs.
#
#   release/source-hash.sh [DIR]
set -euo pipefail

dir=${1:-$(dirname "$0")/..}
cd "$dir"
# Files a build embeds would be sources too, and this list would miss them: refuse, rather
# than match a release to a tree that differs from it.
if embeds=$(grep -rlE --include='*.go' --exclude='*_test.go' --exclude-dir=.git --exclude-dir=testdata '^//go:embed' . 2>/dev/null); then
  echo "release/source-hash.sh: $(printf '%s' "$embeds" | head -n1) embeds files, which this hash does not cover: add them to it" >&2
  exit 1
fi
find . \( -name .git -o -name testdata \) -prune -o -type f \
  \( -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum \) -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64
