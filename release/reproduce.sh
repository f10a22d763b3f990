#!/usr/bin/env bash
# Shows that release/build.sh is reproducible: builds VERSION twice, from two copies of
# the committed source in different directories, each with an empty Go build cache, and
# compares the SHA256SUMS files; and, when the tree records VERSION's checksums
# (release/checksums/VERSION.sha256, which the action trusts), compares them with those
# too. Exit 0 when they are the same.
#
#   release/reproduce.sh [VERSION]
set -euo pipefail

version=${1:-v0.0.0-reproduce}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
for n in 1 2; do
  mkdir -p "$work/src-$n/deeper-$n"
  src=$work/src-$n/deeper-$n
  # The committed tree only: what a release is built from.
  git -C "$repo" archive --format=tar HEAD | tar -xf - -C "$src"
  GOCACHE=$work/cache-$n "$src/release/build.sh" "$version" "$work/out-$n" >/dev/null
done
if cmp -s "$work/out-1/SHA256SUMS" "$work/out-2/SHA256SUMS"; then
  echo "reproducible: two builds of $version in different directories with empty caches match"
  cat "$work/out-1/SHA256SUMS"
else
  echo "NOT reproducible:" >&2
  diff "$work/out-1/SHA256SUMS" "$work/out-2/SHA256SUMS" >&2 || true
  exit 1
fi
recorded=$repo/release/checksums/$version.sha256
if [ -f "$recorded" ]; then
  if cmp -s "$work/out-1/SHA256SUMS" "$recorded"; then
    echo "and they match the recorded release/checksums/$version.sha256"
  else
    echo "they do NOT match the recorded release/checksums/$version.sha256 (another Go release, or other sources):" >&2
    diff "$recorded" "$work/out-1/SHA256SUMS" >&2 || true
    exit 1
  fi
fi
